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

/// The worker of this server: every kind above with its handler.
pub fn worker(state: AppState) -> jobs::Worker {
    let exports = state.clone();
    let retention = state.clone();
    jobs::Worker::new(state.jobs.clone(), jobs::WorkerSettings::default())
        .handle(RETENTION_RUN, move |_job| {
            let state = retention.clone();
            Box::pin(async move { crate::retention_run::run_as_job(&state).await })
        })
        .handle(PREPARE_EXPORT, move |job| {
            let state = exports.clone();
            Box::pin(async move {
                let id = id_in(&job, "export_id")?;
                match state.tenancy.data_export(id).await {
                    Ok(Some(export)) if export.status == tenancy::ExportStatus::Pending => {
                        crate::data_export::prepare(&state, &export).await;
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
                let billed = crate::billing_run::run_organization(&state, org).await;
                state
                    .metrics
                    .billing_run(started.elapsed(), usize::from(billed.is_err()));
                billed.map(|_| ()).map_err(|e| format!("{e:#}"))
            })
        })
}

/// The id a job's payload holds under `field`.
fn id_in(job: &jobs::Job, field: &str) -> Result<uuid::Uuid, String> {
    job.payload[field]
        .as_str()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| format!("job {} has no {field}", job.id))
}
