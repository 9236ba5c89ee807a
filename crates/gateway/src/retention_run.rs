//! The retention run: purges, in every organization that set a retention
//! (`setAuditRetention`), the audit events older than it, one organization per
//! transaction, each purge recorded in its chain as the system's event. The server runs
//! it every `AUDIT_RETENTION_INTERVAL_SECS`; `platform audit purge-expired` runs it once.

use crate::startup::AppState;
use std::time::Duration;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionReport {
    /// Organizations looked at (and the platform's own chain).
    pub organizations: usize,
    /// Organizations that had events to purge.
    pub purged_organizations: usize,
    /// Events purged.
    pub purged_events: u64,
    /// Organizations that failed (logged; tried again on the next run).
    pub failed: usize,
    /// Log-in throttling counters dropped because their window is over (they name an
    /// email address and a client address: kept no longer than they are needed).
    pub expired_throttles: u64,
}

/// One run over every organization.
pub async fn run_once(state: &AppState) -> anyhow::Result<RetentionReport> {
    let mut report = RetentionReport {
        expired_throttles: state.tenancy.forget_expired_throttles().await?,
        ..RetentionReport::default()
    };
    for org in state.tenancy.all_organization_ids().await? {
        report.organizations += 1;
        match state.tenancy.purge_expired_audit(org).await {
            Ok(purge) if purge.purged > 0 => {
                report.purged_organizations += 1;
                report.purged_events += purge.purged;
            }
            Ok(_) => {}
            Err(e) => {
                report.failed += 1;
                tracing::error!(org.id = %org, error = ?e, "audit retention failed for an organization");
            }
        }
    }
    Ok(report)
}

/// Runs the retention run every `every`, forever (the server's background task).
pub async fn every(state: AppState, every: Duration) {
    crate::schedule::repeat(every, || async {
        match run_once(&state).await {
            Ok(report)
                if report.purged_events > 0
                    || report.failed > 0
                    || report.expired_throttles > 0 =>
            {
                tracing::info!(?report, "audit retention run");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = ?e, "audit retention run failed"),
        }
    })
    .await;
}
