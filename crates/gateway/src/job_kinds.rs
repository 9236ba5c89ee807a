//! The kinds of job this server runs on the durable queue (crate `jobs`) and their
//! handlers. Payloads carry ids only; a handler must be safe to run twice.

use crate::startup::AppState;
use kernel::OrgId;
use std::time::Instant;

/// Bills one organization (`{"organization_id": uuid}`): `billing_run::run_organization`.
pub const BILLING_ORGANIZATION: &str = "billing.organization";

/// The worker of this server: every kind above with its handler.
pub fn worker(state: AppState) -> jobs::Worker {
    jobs::Worker::new(state.jobs.clone(), jobs::WorkerSettings::default()).handle(
        BILLING_ORGANIZATION,
        move |job| {
            let state = state.clone();
            Box::pin(async move {
                let org = organization_of(&job)?;
                let started = Instant::now();
                let billed = crate::billing_run::run_organization(&state, org).await;
                state
                    .metrics
                    .billing_run(started.elapsed(), usize::from(billed.is_err()));
                billed.map(|_| ()).map_err(|e| format!("{e:#}"))
            })
        },
    )
}

/// The organization a job's payload names.
fn organization_of(job: &jobs::Job) -> Result<OrgId, String> {
    job.payload["organization_id"]
        .as_str()
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .map(OrgId::from_uuid)
        .ok_or_else(|| format!("job {} names no organization", job.id))
}
