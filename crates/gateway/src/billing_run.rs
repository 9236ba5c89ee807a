//! The billing run: moves every organization's subscription to now (ends trials, renews
//! periods, applies scheduled downgrades, ends cancelled subscriptions) and cuts the
//! invoices of the period boundaries crossed, one organization per transaction. The
//! server runs it on a timer; `platform billing run` runs it once.

use crate::startup::AppState;
use std::time::Duration;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    /// Organizations looked at.
    pub organizations: usize,
    /// Organizations whose subscription moved.
    pub advanced: usize,
    /// Organizations that failed (logged; retried on the next run).
    pub failed: usize,
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
            anyhow::Ok(moved)
        };
        match step.await {
            Ok(true) => report.advanced += 1,
            Ok(false) => {}
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
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match run_once(&state).await {
            Ok(report) if report.advanced > 0 || report.failed > 0 => {
                tracing::info!(?report, "billing run");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "billing run failed"),
        }
    }
}
