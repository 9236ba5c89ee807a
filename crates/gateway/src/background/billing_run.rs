//! The billing run: moves every organization's subscription to now (ends trials, renews
//! periods, applies scheduled downgrades, ends cancelled subscriptions) and cuts the
//! invoices of the period boundaries crossed, one organization per transaction. The
//! server's timer enqueues one job per organization and interval (the instances' workers
//! share them); `platform billing run` runs every organization once, in the command.

use crate::startup::AppState;
use kernel::OrgId;
use std::time::Duration;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Organizations looked at.
    pub organizations: usize,
    /// Organizations whose subscription moved.
    pub advanced: usize,
    /// Charges attempted (whatever the provider answered).
    pub charged: usize,
    /// Organizations that failed (logged; retried on the next run).
    pub failed: usize,
}

/// Charges the organization's invoices that are due: each provider call outside any
/// transaction, each answer recorded in its own. A provider that does not answer is
/// retried on the next run without counting as a failed payment. Returns the charges
/// answered.
pub async fn collect(state: &AppState, org: OrgId) -> anyhow::Result<usize> {
    let tx = state.tenancy.system_tx(org).await?;
    let due = state.subscriptions.due_charges(&tx).await?;
    tx.rollback().await?;
    let mut answered = 0;
    for request in due {
        let (invoice, attempt) = (request.invoice_id, request.attempt);
        match state.payments.charge(request).await {
            Ok(outcome) => {
                let tx = state.tenancy.system_tx(org).await?;
                state
                    .subscriptions
                    .record_charge(&tx, invoice, &outcome, state.payments.name(), Some(attempt))
                    .await?;
                tx.commit().await?;
                answered += 1;
            }
            Err(e) => {
                tracing::warn!(org.id = %org, invoice.id = %invoice, error = %e, "payment provider did not answer; retried on the next run");
            }
        }
    }
    Ok(answered)
}

/// Moves one organization's subscription to now and charges what is due: whether it
/// moved, and the charges answered. Safe to run twice (a second run finds nothing due),
/// as a job must be.
pub async fn run_organization(state: &AppState, org: OrgId) -> anyhow::Result<(bool, usize)> {
    let tx = state.tenancy.system_tx(org).await?;
    let moved = state.subscriptions.advance_if_due(&tx).await?;
    tx.commit().await?;
    let charged = collect(state, org).await?;
    Ok((moved, charged))
}

/// One run over every organization, here and now (`platform billing run`, tests).
pub async fn run_once(state: &AppState) -> anyhow::Result<RunReport> {
    let mut report = RunReport::default();
    for org in state.tenancy.all_organization_ids().await? {
        report.organizations += 1;
        match run_organization(state, org).await {
            Ok((moved, charged)) => {
                report.advanced += usize::from(moved);
                report.charged += charged;
            }
            Err(e) => {
                report.failed += 1;
                tracing::error!(org.id = %org, error = ?e, "billing run failed for an organization");
            }
        }
    }
    Ok(report)
}

/// Enqueues the billing of every organization for the run of `slot` (the interval the
/// server's timer is in): one job per organization and slot, however many instances
/// enqueue it, so instances share the organizations and each is billed once a slot
/// (`schedule::slot`).
/// How many jobs were new.
pub async fn schedule(state: &AppState, slot: i64) -> anyhow::Result<usize> {
    let mut enqueued = 0;
    for org in state.tenancy.all_organization_ids().await? {
        let job = jobs::NewJob::new(
            crate::background::job_kinds::BILLING_ORGANIZATION,
            serde_json::json!({ "organization_id": org.as_uuid() }),
        )
        .unique(format!("{org}:{slot}"));
        if state.jobs.enqueue(state.db.conn(), job).await? {
            enqueued += 1;
        }
    }
    if enqueued > 0 {
        state.jobs.wake();
    }
    Ok(enqueued)
}

/// Done billing jobs are kept for this many intervals (an operator sees the last few
/// runs; one row per organization and interval would otherwise pile up for the
/// retention run's week).
const BILLING_JOBS_KEPT_INTERVALS: u32 = 10;

/// Deletes the done billing jobs older than [`BILLING_JOBS_KEPT_INTERVALS`] intervals of
/// `every`; how many.
pub async fn forget_old_jobs(state: &AppState, every: Duration) -> anyhow::Result<u64> {
    let kept = chrono::Duration::from_std(every.saturating_mul(BILLING_JOBS_KEPT_INTERVALS))?;
    let Some(before) = state.clock.now().checked_sub_signed(kept) else {
        return Ok(0);
    };
    Ok(state
        .jobs
        .delete_finished_before(
            before,
            Some(crate::background::job_kinds::BILLING_ORGANIZATION),
        )
        .await?)
}

/// Every `every`, enqueues the billing of every organization (the server's background
/// task); the job worker runs them.
pub async fn every(state: AppState, every: Duration) {
    crate::background::schedule::repeat(every, || async {
        match schedule(
            &state,
            crate::background::schedule::slot(state.clock.now(), every),
        )
        .await
        {
            Ok(0) => {}
            Ok(enqueued) => tracing::info!(enqueued, "billing run scheduled"),
            Err(e) => tracing::error!(error = ?e, "scheduling the billing run failed"),
        }
        if let Err(e) = forget_old_jobs(&state, every).await {
            tracing::warn!(error = %e, "deleting done billing jobs failed");
        }
    })
    .await;
}
