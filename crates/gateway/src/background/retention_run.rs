//! The retention run: purges, in every organization that set a retention
//! (`setAuditRetention`), the audit events older than it, one organization per
//! transaction, each purge recorded in its chain as the system's event. The server runs
//! it every `AUDIT_RETENTION_INTERVAL_SECS`; `platform audit purge-expired` runs it once.

use crate::startup::AppState;
use anyhow::Context as _;
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
    /// Sessions deleted, ended longer ago than the data map keeps them.
    pub ended_sessions: u64,
    /// Sign-up counters deleted.
    pub old_sign_up_counters: u64,
    /// Invitations deleted, ended longer ago than the data map keeps invitees' addresses.
    pub ended_invitations: u64,
    /// Organizations purged because their deletion was due.
    pub purged_organizations_deleted: usize,
    /// Data exports deleted (archive and row) because they expired.
    pub expired_exports: u64,
    /// Usage events deleted: their period is invoiced, its grace over, and the data
    /// map's retention after that has passed.
    pub old_usage_events: u64,
    /// Invoices of deleted organizations deleted at the end of their legal retention.
    pub retained_invoices: u64,
    /// Idempotency keys (and the answers they kept) past their 24 hours.
    pub expired_idempotency_keys: u64,
    /// Jobs done or cancelled more than [`FINISHED_JOBS_KEPT`] ago.
    pub finished_jobs: u64,
    /// Webhook deliveries over more than `webhooks::DELIVERY_LOG_KEPT` ago.
    pub old_webhook_deliveries: u64,
}

/// How long done and cancelled jobs stay visible to operators.
pub const FINISHED_JOBS_KEPT: chrono::Duration = chrono::Duration::days(7);

impl RetentionReport {
    /// Whether the run removed or failed anything (worth a log line).
    fn eventful(&self) -> bool {
        self.purged_events > 0
            || self.failed > 0
            || self.expired_throttles > 0
            || self.ended_sessions > 0
            || self.old_sign_up_counters > 0
            || self.ended_invitations > 0
            || self.purged_organizations_deleted > 0
            || self.expired_exports > 0
            || self.old_usage_events > 0
            || self.retained_invoices > 0
            || self.expired_idempotency_keys > 0
            || self.finished_jobs > 0
            || self.old_webhook_deliveries > 0
    }
}

/// Purges every organization whose deletion is due, one after the other (each resumes
/// from its ledger if an earlier run stopped midway); one that fails is logged and tried
/// again on the next run.
pub async fn purge_due_organizations(
    state: &AppState,
) -> anyhow::Result<Vec<tenancy::PurgeReport>> {
    let mut purged = Vec::new();
    for org in state.tenancy.organizations_due_for_purge().await? {
        match state.tenancy.purge_organization(org).await {
            Ok(report) => {
                let rows: u64 = report.rows.iter().map(|(_, rows)| rows).sum();
                tracing::info!(org.id = %org, rows, tombstone = report.tombstone, "organization purged");
                purged.push(report);
            }
            Err(e) => tracing::error!(org.id = %org, error = ?e, "organization purge failed"),
        }
    }
    Ok(purged)
}

/// One run over every organization.
pub async fn run_once(state: &AppState) -> anyhow::Result<RetentionReport> {
    let tenancy = &state.tenancy;
    let mut report = RetentionReport {
        expired_throttles: tenancy.forget_expired_throttles().await?,
        ended_sessions: tenancy.purge_ended_sessions().await?,
        old_sign_up_counters: tenancy.purge_old_sign_up_counters().await?,
        purged_organizations_deleted: purge_due_organizations(state).await?.len(),
        expired_exports: crate::background::data_export::purge_expired(state).await?,
        retained_invoices: tenancy
            .purge_retained_invoices()
            .await?
            .iter()
            .map(|purge| purge.invoices)
            .sum(),
        ..RetentionReport::default()
    };
    tenancy
        .record_platform_retention(&[
            ("expired_throttles", report.expired_throttles),
            ("ended_sessions", report.ended_sessions),
            ("old_sign_up_counters", report.old_sign_up_counters),
            ("expired_exports", report.expired_exports),
        ])
        .await?;
    match state
        .jobs
        .delete_finished_before(state.clock.now() - FINISHED_JOBS_KEPT, None)
        .await
    {
        Ok(deleted) => report.finished_jobs = deleted,
        Err(e) => {
            report.failed += 1;
            tracing::error!(error = ?e, "deleting finished jobs failed");
        }
    }
    for org in webhooks::Webhooks::followed_organizations(&state.db).await? {
        match forget_old_deliveries(state, org).await {
            Ok(deleted) => report.old_webhook_deliveries += deleted,
            Err(e) => {
                report.failed += 1;
                tracing::error!(org.id = %org, error = ?e, "webhook log retention failed for an organization");
            }
        }
    }
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
        if org == kernel::OrgId::PLATFORM {
            continue;
        }
        match state.tenancy.purge_ended_invitations(org).await {
            Ok(purged) => report.ended_invitations += purged,
            Err(e) => {
                report.failed += 1;
                tracing::error!(org.id = %org, error = ?e, "invitation retention failed for an organization");
            }
        }
        match state.tenancy.purge_expired_idempotency_keys(org).await {
            Ok(purged) => report.expired_idempotency_keys += purged,
            Err(e) => {
                report.failed += 1;
                tracing::error!(org.id = %org, error = ?e, "idempotency key retention failed for an organization");
            }
        }
        match purge_old_usage(state, org).await {
            Ok(purged) => report.old_usage_events += purged,
            Err(e) => {
                report.failed += 1;
                tracing::error!(org.id = %org, error = ?e, "usage retention failed for an organization");
            }
        }
    }
    Ok(report)
}

async fn forget_old_deliveries(state: &AppState, org: kernel::OrgId) -> anyhow::Result<u64> {
    let tx = state.tenancy.system_tx(org).await?;
    let deleted = state
        .webhooks
        .forget_before(&tx, state.clock.now() - webhooks::DELIVERY_LOG_KEPT)
        .await?;
    tx.commit().await?;
    Ok(deleted)
}

/// Without a live subscription nothing is invoiced; usage then counts towards quotas
/// for at most a month.
const UNBILLED_USAGE_WINDOW: chrono::Duration = chrono::Duration::days(31);

/// Deletes `org`'s usage events older than what may still be reported (the current
/// period, or during its grace the previous one) by the data map's retention.
async fn purge_old_usage(state: &AppState, org: kernel::OrgId) -> anyhow::Result<u64> {
    let keep =
        kernel::data_map::retention_days(billing::data_map::DATA_MAP, "usage_events", "properties")
            .context("the data map keeps usage events a number of days")?;
    let tx = state.tenancy.system_tx(org).await?;
    let settled = match state
        .subscriptions
        .oldest_reportable(&tx, state.usage_grace)
        .await?
    {
        Some(oldest) => oldest,
        None => state.clock.now() - UNBILLED_USAGE_WINDOW,
    };
    let purged = state
        .usage
        .purge_before(&tx, settled - chrono::Duration::days(i64::from(keep)))
        .await?;
    tx.commit().await?;
    Ok(purged)
}

/// The retention run as a job (see [`schedule`]): a failure is retried with backoff.
pub async fn run_as_job(state: &AppState) -> Result<(), String> {
    match run_once(state).await {
        Ok(report) if report.eventful() => {
            tracing::info!(?report, "retention run");
            if report.failed > 0 {
                return Err(format!(
                    "{} organizations or steps failed; see the log",
                    report.failed
                ));
            }
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Enqueues the retention run of interval `slot` (see `schedule::slot`): one job
/// however many instances enqueue it, so one instance runs it. Whether it was new.
pub async fn schedule(state: &AppState, slot: i64) -> anyhow::Result<bool> {
    let job = jobs::NewJob::new(
        crate::background::job_kinds::RETENTION_RUN,
        serde_json::json!({}),
    )
    .unique(slot.to_string());
    let new = state.jobs.enqueue(state.db.conn(), job).await?;
    if new {
        state.jobs.wake();
    }
    Ok(new)
}

/// Every `every`, enqueues the retention run (the server's background task); the job
/// worker of one instance runs it.
pub async fn every(state: AppState, every: Duration) {
    crate::background::schedule::repeat(every, || async {
        let slot = crate::background::schedule::slot(state.clock.now(), every);
        if let Err(e) = schedule(&state, slot).await {
            tracing::error!(error = ?e, "scheduling the retention run failed");
        }
    })
    .await;
}
