//! `usage`: the quantity of a billable metric over a period.

use crate::context::ContextExt;
use crate::error::{ApiError, GqlResult, ResultExt};
use async_graphql::{Context, Enum, Object};
use authz::{Action, Resource, ResourceType};
use chrono::{DateTime, Utc};

#[derive(Default)]
pub struct UsageQuery;

/// How a metric's events become a quantity.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UsageAggregation {
    /// Number of events.
    Count,
    /// Sum of values.
    Sum,
    /// Largest value.
    Max,
    /// Distinct values of `property`.
    UniqueCount,
    /// Value of the latest event (by occurrence, then receipt).
    Latest,
}

/// A billing period of the active organization's subscription.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UsagePeriod {
    /// The period running now.
    Current,
    /// The one before it.
    Previous,
}

// A resolver's parameters are its GraphQL arguments (plus the context).
#[allow(clippy::too_many_arguments)]
#[Object]
impl UsageQuery {
    /// The quantity of `metric` in the active organization over a billing `period`, or
    /// over `[from, to)`, as a decimal string. Owners and billing admins only.
    async fn usage(
        &self,
        ctx: &Context<'_>,
        metric: String,
        period: Option<UsagePeriod>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        aggregation: UsageAggregation,
        property: Option<String>,
    ) -> GqlResult<String> {
        let aggregation = match (aggregation, property) {
            (UsageAggregation::Count, _) => billing::Aggregation::Count,
            (UsageAggregation::Sum, _) => billing::Aggregation::Sum,
            (UsageAggregation::Max, _) => billing::Aggregation::Max,
            (UsageAggregation::Latest, _) => billing::Aggregation::Latest,
            (UsageAggregation::UniqueCount, Some(property)) => {
                billing::Aggregation::UniqueCount { property }
            }
            (UsageAggregation::UniqueCount, None) => {
                return Err(
                    ApiError::bad_input("property", "UNIQUE_COUNT needs a property").into(),
                );
            }
        };
        let (tx, permit) = ctx
            .enter_active_read_permitted(Resource::of_type(ResourceType::Billing), Action::Read)
            .await?;
        let (from, to) = match (period, from, to) {
            (Some(period), None, None) => ctx
                .state()
                .subscriptions
                .period_bounds(&tx, &permit, period == UsagePeriod::Previous)
                .await
                .gql()?,
            (None, Some(from), Some(to)) => (from, to),
            _ => {
                return Err(ApiError::bad_input(
                    "period",
                    "give either a period or both from and to",
                )
                .into());
            }
        };
        let quantity = ctx
            .state()
            .usage
            .quantity(&tx, &permit, &metric, from, to, &aggregation)
            .await
            .gql()?;
        Ok(quantity.normalize().to_string())
    }
}
