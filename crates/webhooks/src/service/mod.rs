//! [`Webhooks`]: endpoints (admins), the fan-out from the audit trail, and deliveries.
//!
//! Files: here the policy (schedule, limits, retention); `endpoints`, `log` (the delivery
//! log and redelivery), `fan_out` (trail → messages → deliveries), `attempts` (prepare,
//! send, record).

mod attempts;
mod endpoints;
mod fan_out;
mod log;

use crate::egress::EgressPolicy;
use audit::{AuditLog, FeedEvent};
use chrono::Duration;
use kernel::SharedClock;
use serde_json::Value as Json;
use std::sync::Arc;

/// The job kind of one delivery attempt (`{"organization_id", "delivery_id", "attempt"}`).
pub const DELIVER: &str = "webhook.deliver";

/// How long to wait after failed attempt n (1-based) before attempt n + 1: eight
/// attempts over about 33 hours, each wait times a jitter factor in [0.9, 1.1].
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
    Duration::hours(10),
];

/// How long the secret before a rotation still signs deliveries (beside the new one).
pub const PREVIOUS_SECRET_SIGNS: Duration = Duration::hours(24);

/// How long past its due time a pending delivery may wait before it counts as lost.
const STUCK_AFTER: Duration = Duration::days(1);

/// How long the delivery log (and the messages it sent) is kept.
pub const DELIVERY_LOG_KEPT: Duration = Duration::days(30);

/// An endpoint whose every delivery has failed for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::days(5);

/// Endpoints per organization.
const MAX_ENDPOINTS: u64 = 20;

/// Characters of a description.
const MAX_DESCRIPTION_CHARS: usize = 500;

/// Characters of a response kept.
const EXCERPT_CHARS: usize = 512;

/// Events read from the trail per fan-out transaction.
pub const FAN_OUT_BATCH: u64 = 200;

/// What `data` of a message is, for an event of the trail: the gateway renders it (it
/// knows the global ids).
pub type RenderData = dyn Fn(&FeedEvent) -> Json + Send + Sync;

/// What one fan-out transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FanOut {
    /// Events read from the trail (a full batch: there may be more).
    pub events: usize,
    /// Deliveries made.
    pub deliveries: usize,
}

impl FanOut {
    /// Whether another batch may be waiting.
    pub fn more(&self) -> bool {
        self.events as u64 >= FAN_OUT_BATCH
    }
}

/// The webhooks service.
#[derive(Debug, Clone)]
pub struct Webhooks {
    audit: AuditLog,
    jobs: jobs::Jobs,
    clock: SharedClock,
    egress: Arc<EgressPolicy>,
}

impl Webhooks {
    /// The service, recording in `audit`, enqueueing on `jobs`, sending under `egress`.
    pub fn new(
        audit: AuditLog,
        jobs: jobs::Jobs,
        clock: SharedClock,
        egress: EgressPolicy,
    ) -> Self {
        Self {
            audit,
            jobs,
            clock,
            egress: Arc::new(egress),
        }
    }

    /// Where deliveries may go.
    pub fn egress(&self) -> &EgressPolicy {
        &self.egress
    }

    // ---- endpoints (the organization's admins) ----

    // ---- the fan-out (background, as the system) ----

    // ---- deliveries (background, as the system) ----
}
