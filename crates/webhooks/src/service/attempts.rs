//! Delivery attempts (background, as the system): prepared in a transaction, sent
//! outside any, recorded in another; retries on the schedule, endpoints disabled after
//! a failure streak.

use super::{DISABLE_AFTER, EXCERPT_CHARS, RETRY_SCHEDULE, Webhooks};
use crate::egress::{self};
use crate::entity::{webhook_delivery, webhook_endpoint, webhook_message};
use crate::error::{Error, Result};
use crate::model::{Attempt, DeliveryStatus, Prepared};
use crate::signing;
use audit::NewEvent;
use chrono::{Duration, SecondsFormat};
use kernel::TenantTx;
use sea_orm::ActiveValue::Set;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, IntoActiveModel, QueryFilter, QuerySelect,
};
use uuid::Uuid;

/// A wait times a factor in [0.9, 1.1], so deliveries that failed together spread out.
pub(super) fn jittered(wait: Duration) -> Duration {
    let factor = 0.9 + 0.2 * rand::random::<f64>();
    // Milliseconds of at most ten hours fit f64 exactly.
    #[allow(clippy::cast_possible_truncation)]
    let millis = (wait.num_milliseconds() as f64 * factor).round() as i64;
    Duration::milliseconds(millis)
}

/// Text a receiver sent, as it may be stored: bounded, without NUL (PostgreSQL's text
/// cannot hold it).
pub(super) fn storable(text: &str) -> String {
    text.chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c == '\0' { '\u{fffd}' } else { c })
        .collect()
}

impl Webhooks {
    /// What attempt `attempt` of delivery `id` needs, or `None` when there is nothing to
    /// send: the attempt was made already (a job run twice), the delivery is over, or its
    /// endpoint is gone or disabled (the delivery then fails).
    pub async fn prepare(&self, tx: &TenantTx, id: Uuid, attempt: i32) -> Result<Option<Prepared>> {
        let Some(delivery) = tx
            .select::<webhook_delivery::Entity>()
            .filter(webhook_delivery::Column::Id.eq(id))
            .one(tx.conn())
            .await?
        else {
            return Ok(None);
        };
        if delivery.status != DeliveryStatus::Pending.as_str() || delivery.attempts != attempt - 1 {
            return Ok(None);
        }
        let endpoint = tx
            .select::<webhook_endpoint::Entity>()
            .filter(webhook_endpoint::Column::Id.eq(delivery.endpoint_id))
            .one(tx.conn())
            .await?;
        let Some(endpoint) = endpoint.filter(|e| e.enabled) else {
            let mut update = delivery.into_active_model();
            update.status = Set(DeliveryStatus::Failed.as_str().to_owned());
            update.next_attempt_at = Set(None);
            update.last_error = Set(Some("the endpoint is disabled".into()));
            update.updated_at = Set(self.clock.now());
            update.update(tx.conn()).await?;
            return Ok(None);
        };
        let message = tx
            .select::<webhook_message::Entity>()
            .filter(webhook_message::Column::Id.eq(delivery.message_id))
            .one(tx.conn())
            .await?
            .ok_or_else(|| Error::Corrupt(format!("delivery {id} without its message")))?;
        let corrupt = || Error::Corrupt(format!("endpoint {}: secret", endpoint.id));
        let mut keys = vec![signing::key_of(&endpoint.secret).ok_or_else(corrupt)?];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_secret, endpoint.previous_secret_until)
            && until > self.clock.now()
        {
            keys.push(signing::key_of(previous).ok_or_else(corrupt)?);
        }
        Ok(Some(Prepared {
            delivery_id: id,
            endpoint_id: endpoint.id,
            attempt,
            url: endpoint.url,
            keys,
            message_id: message.id,
            payload: message.payload,
        }))
    }

    /// Sends a prepared attempt, signed, under the egress policy (no transaction open).
    pub async fn send(&self, prepared: &Prepared) -> egress::Response {
        let id = prepared.message_id.to_string();
        let timestamp = self.clock.now().timestamp();
        let body = prepared.payload.as_bytes().to_vec();
        // Several signatures are separated by spaces (the specification's form).
        let signature = prepared
            .keys
            .iter()
            .map(|key| signing::signature(key, &id, timestamp, &body))
            .collect::<Vec<_>>()
            .join(" ");
        let headers = [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        self.egress.post(&prepared.url, &headers, body).await
    }

    /// Records how an attempt went: succeeded; pending again with the next attempt
    /// enqueued per [`RETRY_SCHEDULE`]; or failed after the last. A failure starts or
    /// continues the endpoint's failure streak, and a streak of [`DISABLE_AFTER`] disables
    /// it (recorded as `webhook_endpoint.disabled`, itself an event of the catalog).
    pub async fn record(
        &self,
        tx: &TenantTx,
        prepared: &Prepared,
        response: &egress::Response,
    ) -> Result<Option<Attempt>> {
        // Attempts to one endpoint recorded at once take turns on its row (PostgreSQL), so
        // a failure streak disables it once. Locked before the delivery is read: an
        // endpoint being deleted (which locks its row first too) is gone by then, with
        // its deliveries, and the attempt is not recorded.
        let mut endpoint = tx
            .select::<webhook_endpoint::Entity>()
            .filter(webhook_endpoint::Column::Id.eq(prepared.endpoint_id));
        if tx.conn().get_database_backend() == sea_orm::DbBackend::Postgres {
            endpoint = endpoint.lock_exclusive();
        }
        let endpoint = endpoint.one(tx.conn()).await?;
        let Some(delivery) = tx
            .select::<webhook_delivery::Entity>()
            .filter(webhook_delivery::Column::Id.eq(prepared.delivery_id))
            .one(tx.conn())
            .await?
        else {
            return Ok(None);
        };
        if delivery.status != DeliveryStatus::Pending.as_str()
            || delivery.attempts != prepared.attempt - 1
        {
            return Ok(None);
        }
        let now = self.clock.now();
        let mut endpoint_disabled = false;
        let (status, next_attempt_at) = if response.succeeded() {
            if let Some(endpoint) = endpoint.filter(|e| e.failing_since.is_some()) {
                let mut update = endpoint.into_active_model();
                update.failing_since = Set(None);
                update.update(tx.conn()).await?;
            }
            (DeliveryStatus::Succeeded, None)
        } else {
            let wait = usize::try_from(prepared.attempt - 1)
                .ok()
                .and_then(|i| RETRY_SCHEDULE.get(i));
            if let Some(endpoint) = endpoint {
                let since = endpoint.failing_since.unwrap_or(now);
                let enabled = endpoint.enabled;
                let mut update = endpoint.into_active_model();
                update.failing_since = Set(Some(since));
                // Disabled only when a delivery has used all its attempts and the streak
                // is five days old: days without events do not count against a receiver
                // that may have been fixed meanwhile (its next delivery still retries).
                if enabled && wait.is_none() && now - since >= DISABLE_AFTER {
                    update.enabled = Set(false);
                    update.disabled_reason = Set(Some("FAILING".into()));
                    update.updated_at = Set(now);
                    endpoint_disabled = true;
                }
                update.update(tx.conn()).await?;
                if endpoint_disabled {
                    self.audit
                        .record(
                            tx,
                            NewEvent::new(
                                "webhook_endpoint.disabled",
                                "webhook_endpoint",
                                Some(prepared.endpoint_id),
                            )
                            .change("enabled", Some(true), Some(false))
                            .change(
                                "failing_since",
                                None::<String>,
                                Some(since.to_rfc3339_opts(SecondsFormat::Secs, true)),
                            ),
                        )
                        .await?;
                }
            }
            match wait {
                Some(wait) if !endpoint_disabled => {
                    (DeliveryStatus::Pending, Some(now + jittered(*wait)))
                }
                _ => (DeliveryStatus::Failed, None),
            }
        };
        let mut update = delivery.into_active_model();
        update.status = Set(status.as_str().to_owned());
        update.attempts = Set(prepared.attempt);
        update.next_attempt_at = Set(next_attempt_at);
        update.response_status = Set(response.status.map(i32::from));
        update.latency_ms = Set(Some(
            i32::try_from(response.latency.as_millis()).unwrap_or(i32::MAX),
        ));
        update.response_excerpt = Set(response.excerpt.as_deref().map(storable));
        update.last_error = Set(response.error.as_deref().map(storable));
        update.updated_at = Set(now);
        update.update(tx.conn()).await?;
        if let Some(at) = next_attempt_at {
            self.enqueue_attempt(tx, prepared.delivery_id, prepared.attempt + 1, at)
                .await?;
        }
        Ok(Some(Attempt {
            status,
            next_attempt_at,
            endpoint_disabled,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_about_a_day_and_a_half_with_bounded_jitter() {
        let total: i64 = RETRY_SCHEDULE.iter().map(|d| d.num_minutes()).sum();
        assert_eq!(total, 5 + 30 + 120 + 300 + 600 + 600); // the 5 s wait rounds to 0
        for _ in 0..100 {
            let waited = jittered(Duration::hours(10));
            assert!(waited >= Duration::hours(9) && waited <= Duration::hours(11));
        }
    }

    #[test]
    fn stored_text_is_bounded_and_without_nul() {
        let stored = storable(&format!("a\0b{}", "x".repeat(2_000)));
        assert!(stored.starts_with("a\u{fffd}b"));
        assert_eq!(stored.chars().count(), EXCERPT_CHARS);
    }
}
