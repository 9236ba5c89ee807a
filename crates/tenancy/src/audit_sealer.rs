//! The audit sealer: chains the events a busy organization's transactions left in its
//! inbox (PostgreSQL; see `audit::sealing`). Each server runs one
//! ([`TenancyService::run_audit_sealer`]); `platform audit seal` runs its sweep once.

use crate::error::Result;
use crate::service::TenancyService;
use kernel::{OrgId, TxMode};
use std::time::Duration;

/// How soon an organization whose sealing failed is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a sweep found and sealed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SealSweep {
    /// Organizations with events waiting.
    pub organizations: usize,
    /// Events chained.
    pub events: u64,
}

impl TenancyService {
    /// Chains every event waiting in `org`'s inbox, a batch per transaction; how many.
    pub async fn seal_audit_inbox(&self, org: OrgId) -> Result<u64> {
        let mut total = 0;
        loop {
            let tx = self.open(org, TxMode::Write).await?;
            let sealed = self.audit.seal(&tx, audit::SEAL_BATCH).await?;
            tx.commit().await?;
            total += u64::from(sealed);
            if sealed < audit::SEAL_BATCH {
                return Ok(total);
            }
        }
    }

    /// Finds every organization (and the platform) with events waiting, whoever recorded
    /// them, and seals them: for inboxes an instance left when it stopped.
    pub async fn seal_every_audit_inbox(&self) -> Result<SealSweep> {
        let orgs = self.all_organization_ids().await?;
        let waiting = self
            .audit
            .unsealed_organizations(self.db.conn(), &orgs)
            .await?;
        let mut sweep = SealSweep {
            organizations: waiting.len(),
            events: 0,
        };
        for org in waiting {
            sweep.events += self.seal_audit_inbox(org).await?;
        }
        Ok(sweep)
    }

    /// Seals the inboxes this process's commits report, as they come, and sweeps every
    /// `sweep_every` (first at start). Runs until its task is aborted; a failure is
    /// logged and the organization tried again after [`RETRY_AFTER`].
    pub async fn run_audit_sealer(self, sweep_every: Duration) {
        let mut sweep = tokio::time::interval(sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                orgs = self.audit.organizations_to_seal() => {
                    for org in orgs {
                        if let Err(error) = self.seal_audit_inbox(org).await {
                            tracing::warn!(org.id = %org, %error, "sealing audit events failed; trying again");
                            let audit = self.audit.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(RETRY_AFTER).await;
                                audit.request_seal(org);
                            });
                        }
                    }
                }
                _ = sweep.tick() => match self.seal_every_audit_inbox().await {
                    Ok(SealSweep { organizations: 0, .. }) => {}
                    Ok(found) => tracing::info!(
                        organizations = found.organizations,
                        events = found.events,
                        "sealed audit events nobody had sealed"
                    ),
                    Err(error) => tracing::warn!(%error, "sweeping audit inboxes failed"),
                },
            }
        }
    }
}
