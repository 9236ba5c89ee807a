//! The webhook dispatcher: follows each organization's audit trail from its cursor and
//! fans new events of the catalog out to its endpoints (crate `webhooks`), one batch per
//! transaction. Every instance runs it; concurrent fan-outs of one organization wait for
//! each other on its cursor, so each event is fanned out once. The deliveries themselves
//! are jobs (`webhook.deliver`, see `job_kinds`).

use crate::graphql::ids::{GlobalId, NodeKind};
use crate::graphql::types::audit::global_id_of;
use crate::startup::AppState;
use kernel::OrgId;
use serde_json::{Value, json};

/// Runs [`run_once`] every `every`, for as long as the server runs.
pub async fn every(state: AppState, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = run_once(&state).await {
            tracing::warn!(error = %e, "webhook dispatch failed; retried at the next tick");
        }
    }
}

/// The organizations whose events are followed (those with an endpoint).
pub async fn followed(state: &AppState) -> anyhow::Result<Vec<OrgId>> {
    Ok(webhooks::Webhooks::followed_organizations(&state.db).await?)
}

/// Fans out every followed organization's new events; returns the deliveries made. An
/// organization that fails is logged and left for the next pass.
pub async fn run_once(state: &AppState) -> anyhow::Result<usize> {
    let mut made = 0;
    for org in webhooks::Webhooks::followed_organizations(&state.db).await? {
        match fan_out(state, org).await {
            Ok(deliveries) => made += deliveries,
            Err(e) => {
                tracing::warn!(org.id = %org, error = %e, "webhook fan-out failed");
            }
        }
    }
    Ok(made)
}

async fn fan_out(state: &AppState, org: OrgId) -> anyhow::Result<usize> {
    let organization = GlobalId::global(NodeKind::Organization, org.as_uuid());
    let render = move |event: &audit::FeedEvent| data_of(org, event);
    let look = state.tenancy.system_read_tx(org).await?;
    let behind = state.webhooks.behind(&look).await?;
    look.commit().await?;
    if !behind {
        return Ok(0);
    }
    let mut made = 0;
    loop {
        let tx = state.tenancy.system_tx(org).await?;
        let fan = state.webhooks.fan_out(&tx, &organization, &render).await?;
        tx.commit().await?;
        made += fan.deliveries;
        if !fan.more() {
            return Ok(made);
        }
    }
}

/// A message's `data`: the record the event is about and who acted, by the ids the
/// GraphQL API gives them (global ids; invoices and subscriptions by their own id).
fn data_of(org: OrgId, event: &audit::FeedEvent) -> Value {
    let id = global_id_of(org, &event.target_type, event.target_id.as_deref())
        .map(|id| Value::String(id.0))
        .or_else(|| event.target_id.clone().map(Value::String))
        .unwrap_or(Value::Null);
    let actor = global_id_of(org, &event.actor_type, event.actor_id.as_deref())
        .map(|id| Value::String(id.0))
        .unwrap_or(Value::Null);
    json!({
        "object": { "type": event.target_type, "id": id },
        "actorId": actor,
    })
}
