//! Reporting usage of billable metrics (the organization's own systems and partners,
//! usually with an API key of the billing admin role).

use crate::context::{Where, write};
use crate::error::{ApiError, GqlResult};
use crate::standing::WriteClass;
use async_graphql::{Context, InputObject, Object, SimpleObject};
use authz::{Action, Resource, ResourceType};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Default)]
pub struct UsageMutation;

/// A string property of a usage event.
#[derive(InputObject)]
pub struct UsagePropertyInput {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// One reported use.
#[derive(InputObject)]
pub struct UsageEventInput {
    /// The billable metric (`api_calls`, …).
    pub metric: String,
    /// Idempotency key, unique per metric: a retry with the same key and payload is
    /// answered as the first time; another payload is `CONFLICT`.
    pub key: String,
    /// When it happened; the receipt time when omitted.
    pub occurred_at: Option<DateTime<Utc>>,
    /// A decimal as a string (`"1"`, `"0.25"`), up to 12 places; 1 when omitted.
    pub value: Option<String>,
    /// Properties (for unique counts).
    #[graphql(default)]
    pub properties: Vec<UsagePropertyInput>,
}

/// Input of `recordUsage`.
#[derive(InputObject)]
pub struct RecordUsageInput {
    /// 1 to 1,000 events, recorded all or nothing.
    pub events: Vec<UsageEventInput>,
}

/// What `recordUsage` did.
#[derive(SimpleObject)]
pub struct RecordUsagePayload {
    /// Events stored now.
    pub stored: i32,
    /// Events already stored with the same payload (nothing changed).
    pub replayed: i32,
}

#[Object]
impl UsageMutation {
    /// Records usage events in the active organization: all or nothing, idempotent per
    /// (metric, key). Needs the billing right (owners, billing admins, their API keys).
    async fn record_usage(
        &self,
        ctx: &Context<'_>,
        input: RecordUsageInput,
    ) -> GqlResult<RecordUsagePayload> {
        if input.events.len() > billing::MAX_BATCH {
            return Err(ApiError::bad_input(
                "events",
                format!("at most {} events per call", billing::MAX_BATCH),
            )
            .into());
        }
        let mut batch = Vec::with_capacity(input.events.len());
        for event in input.events {
            let value = match &event.value {
                Some(text) => Some(
                    Decimal::from_str(text)
                        .map_err(|_| ApiError::bad_input("value", "a decimal such as \"0.25\""))?,
                ),
                None => None,
            };
            batch.push(billing::NewUsage {
                metric: event.metric,
                key: event.key,
                occurred_at: event.occurred_at,
                value,
                properties: event
                    .properties
                    .into_iter()
                    .map(|p| (p.name, p.value))
                    .collect::<BTreeMap<_, _>>(),
            });
        }
        let outcomes = write(ctx, Where::Active, WriteClass::Settling, async |unit| {
            let on_billing = Resource::of_type(ResourceType::Billing);
            let permit = unit.permit(on_billing, Action::Create).await?;
            let (tx, state) = (unit.tx, unit.state);
            let grace = state.usage_grace;
            let oldest = state.subscriptions.oldest_reportable(tx, grace).await?;
            Ok(state.usage.record(tx, &permit, batch, oldest).await?)
        })
        .await?;
        let stored = outcomes
            .iter()
            .filter(|o| **o == billing::Recorded::Stored)
            .count();
        Ok(RecordUsagePayload {
            stored: i32::try_from(stored).unwrap_or(i32::MAX),
            replayed: i32::try_from(outcomes.len() - stored).unwrap_or(i32::MAX),
        })
    }
}
