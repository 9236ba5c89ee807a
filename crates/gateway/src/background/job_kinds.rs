//! The kinds of job this server runs on the durable queue (crate `jobs`) and their
//! handlers. Payloads carry ids only; a handler must be safe to run twice.

use crate::startup::AppState;
use kernel::OrgId;
use std::time::Instant;

/// Bills one organization (`{"organization_id": uuid}`): `billing_run::run_organization`.
pub const BILLING_ORGANIZATION: &str = "billing.organization";

/// Prepares a data export (`{"export_id": uuid}`), enqueued with its request; an export
/// no longer pending (prepared by an earlier attempt, or gone) is left alone.
pub use tenancy::PREPARE_EXPORT;

/// The retention run over every organization (`{}`, one per interval):
/// `retention_run::run_once`.
pub const RETENTION_RUN: &str = "retention.run";

/// One attempt of a webhook delivery (`{"organization_id", "delivery_id", "attempt"}`):
/// prepared and recorded in short transactions of their own, sent with none open.
pub use webhooks::DELIVER as WEBHOOK_DELIVER;

/// The worker of this server: every kind above with its handler, except webhook
/// deliveries, which have a worker of their own ([`webhook_worker`]).
pub fn worker(state: AppState) -> jobs::Worker {
    let exports = state.clone();
    let retention = state.clone();
    jobs::Worker::new(state.jobs.clone(), jobs::WorkerSettings::default())
        .handle(RETENTION_RUN, move |_job| {
            let state = retention.clone();
            Box::pin(async move { crate::background::retention_run::run_as_job(&state).await })
        })
        .handle(PREPARE_EXPORT, move |job| {
            let state = exports.clone();
            Box::pin(async move {
                let id = id_in(&job, "export_id")?;
                match state.tenancy.data_export(id).await {
                    Ok(Some(export)) if export.status == tenancy::ExportStatus::Pending => {
                        crate::background::data_export::prepare(&state, &export).await;
                        Ok(())
                    }
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!("reading export {id}: {e}")),
                }
            })
        })
        .handle(BILLING_ORGANIZATION, move |job| {
            let state = state.clone();
            Box::pin(async move {
                let org = OrgId::from_uuid(id_in(&job, "organization_id")?);
                let started = Instant::now();
                let billed = crate::background::billing_run::run_organization(&state, org).await;
                state
                    .metrics
                    .billing_run(started.elapsed(), usize::from(billed.is_err()));
                billed.map(|_| ()).map_err(|e| format!("{e:#}"))
            })
        })
}

/// The worker of webhook deliveries. Its own, so slow receivers (an attempt may take up
/// to 10 s to resolve and 10 s to answer) hold its slots, never the billing run's or an
/// export's.
pub fn webhook_worker(state: AppState) -> jobs::Worker {
    let settings = jobs::WorkerSettings {
        concurrency: 4,
        ..jobs::WorkerSettings::default()
    };
    jobs::Worker::new(state.jobs.clone(), settings).handle(WEBHOOK_DELIVER, move |job| {
        let state = state.clone();
        Box::pin(async move { deliver_webhook(&state, &job).await })
    })
}

async fn deliver_webhook(state: &AppState, job: &jobs::Job) -> Result<(), String> {
    let org = OrgId::from_uuid(id_in(job, "organization_id")?);
    let delivery = id_in(job, "delivery_id")?;
    let attempt = job.payload["attempt"]
        .as_i64()
        .and_then(|a| i32::try_from(a).ok())
        .ok_or_else(|| format!("job {} has no attempt", job.id))?;
    let failed = |what: &str, e: &dyn std::fmt::Display| format!("{what} delivery {delivery}: {e}");
    let tx = state
        .tenancy
        .system_tx(org)
        .await
        .map_err(|e| failed("opening", &e))?;
    let prepared = state
        .webhooks
        .prepare(&tx, delivery, attempt)
        .await
        .map_err(|e| failed("preparing", &e))?;
    tx.commit().await.map_err(|e| failed("preparing", &e))?;
    let Some(prepared) = prepared else {
        return Ok(());
    };
    let response = state.webhooks.send(&prepared).await;
    let tx = state
        .tenancy
        .system_tx(org)
        .await
        .map_err(|e| failed("opening", &e))?;
    let recorded = state
        .webhooks
        .record(&tx, &prepared, &response)
        .await
        .map_err(|e| failed("recording", &e))?;
    tx.commit().await.map_err(|e| failed("recording", &e))?;
    if let Some(attempt) = recorded {
        state.metrics.webhook_delivery(attempt.status.as_str());
        tracing::info!(
            org.id = %org,
            delivery.id = %delivery,
            attempt = prepared.attempt,
            status = response.status,
            outcome = attempt.status.as_str(),
            "webhook delivery attempt"
        );
    }
    Ok(())
}

/// The id a job's payload holds under `field`.
fn id_in(job: &jobs::Job, field: &str) -> Result<uuid::Uuid, String> {
    job.payload[field]
        .as_str()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| format!("job {} has no {field}", job.id))
}
