//! The billing run: moves every organization's subscription to now (ends trials, renews
//! periods, applies scheduled downgrades, ends cancelled subscriptions) and cuts the
//! invoices of the period boundaries crossed, one organization per transaction. The
//! server runs it on a timer; `platform billing run` runs it once.

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

/// One run over every organization.
pub async fn run_once(state: &AppState) -> anyhow::Result<RunReport> {
    let mut report = RunReport::default();
    for org in state.tenancy.all_organization_ids().await? {
        report.organizations += 1;
        let step = async {
            let tx = state.tenancy.system_tx(org).await?;
            let moved = state.subscriptions.advance_if_due(&tx).await?;
            tx.commit().await?;
            let charged = collect(state, org).await?;
            anyhow::Ok((moved, charged))
        };
        match step.await {
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

/// Runs the billing run every `every`, forever (the server's background task).
pub async fn every(state: AppState, every: Duration) {
    crate::schedule::repeat(every, || async {
        let started = std::time::Instant::now();
        let ran = run_once(&state).await;
        if let Ok(report) = &ran {
            state.metrics.billing_run(started.elapsed(), report.failed);
        }
        match ran {
            Ok(report) if report.advanced > 0 || report.failed > 0 => {
                tracing::info!(?report, "billing run");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "billing run failed"),
        }
    })
    .await;
}
