//! [`AuditLog`]: records events in the caller's transaction, reads them back, verifies
//! chains and erases people.

mod verification;

use crate::chain::{self, GENESIS};
use crate::entity::audit_event;
use crate::error::Result;
use crate::model::{AuditEvent, EventFilter, NewEvent, ReadChange};
use crate::pii;
use chrono::{DateTime, SecondsFormat, Utc};
use kernel::page::keyset_in;
use kernel::{Backend, Page, PageRequest, Principal, SharedClock, TenantTx};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use uuid::Uuid;

/// Rows read per round trip while verifying.
pub(crate) const VERIFY_BATCH: u64 = 5_000;

/// Chains shorter than this are verified in one pass even when several transactions are
/// offered (splitting them costs more round trips than it saves).
const PARALLEL_VERIFY_MIN: i64 = 20_000;

/// The audit trail.
#[derive(Debug, Clone)]
pub struct AuditLog {
    clock: SharedClock,
    backend: Backend,
    /// Organizations with events waiting to be chained (shared by every clone).
    seals: std::sync::Arc<crate::sealing::SealQueue>,
    /// Only in benchmark builds (feature `bench-unrecorded`, never in the server or the
    /// tests): whether `record` writes, so a benchmark can time the same mutation with and
    /// without its event.
    #[cfg(feature = "bench-unrecorded")]
    recording: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AuditLog {
    pub(crate) fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn seal_queue(&self) -> &crate::sealing::SealQueue {
        &self.seals
    }

    /// A trail whose event times come from `clock`.
    pub fn new(clock: SharedClock, backend: Backend) -> Self {
        Self {
            clock,
            backend,
            seals: std::sync::Arc::default(),
            #[cfg(feature = "bench-unrecorded")]
            recording: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true)),
        }
    }

    /// Benchmarks only: stops (`false`) or resumes recording for this trail and its clones.
    #[cfg(feature = "bench-unrecorded")]
    pub fn set_recording_for_benchmarks(&self, on: bool) {
        self.recording
            .store(on, std::sync::atomic::Ordering::SeqCst);
    }

    /// Records `event` in the caller's transaction: the event commits or rolls back with
    /// the change it describes. On PostgreSQL `audit_append` (migration m0033) chains it
    /// in place, in one round trip, when it gets the organization's chain lock; when
    /// another transaction of the organization holds the lock, the event waits in the
    /// organization's inbox instead and is chained after this transaction commits (see
    /// [`crate::sealing`]), so one busy organization's writes do not queue behind each
    /// other's commits. SQLite writers hold the database lock and always chain in place.
    #[tracing::instrument(name = "audit.record", skip_all, fields(action = %event.action), err(level = "warn"))]
    pub async fn record(&self, tx: &TenantTx, event: NewEvent) -> Result<()> {
        #[cfg(feature = "bench-unrecorded")]
        if !self.recording.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let meta = kernel::request::current();
        let actor = event.actor.or(meta.principal);
        let org = tx.org_id();
        let now = self.clock.now();
        let mut diff = Vec::with_capacity(event.changes.len());
        for change in event.changes {
            let entry = match &change.personal_of {
                Some(subject) => {
                    let key = pii::key_for(tx.conn(), subject, now).await?;
                    let seal =
                        |v: &Option<Value>| v.as_ref().map(|v| pii::seal(&key, v)).transpose();
                    json!({ "field": change.field, "personal": subject, "before": seal(&change.before)?, "after": seal(&change.after)? })
                }
                None => {
                    json!({ "field": change.field, "before": change.before, "after": change.after })
                }
            };
            diff.push(entry);
        }
        let client_subject = actor.map(|p| p.subject()).or(event.client_subject);
        let client = match (
            &client_subject,
            meta.ip.is_some() || meta.user_agent.is_some(),
        ) {
            (Some(subject), true) => {
                let key = pii::key_for(tx.conn(), subject, now).await?;
                let sealed = pii::seal(&key, &json!({ "ip": meta.ip, "ua": meta.user_agent }))?;
                Some(json!({ "personal": subject, "value": sealed }).to_string())
            }
            _ => None,
        };
        let (actor_type, actor_id) = match actor {
            Some(Principal::User(id)) => ("user", Some(id.to_string())),
            Some(Principal::ApiKey { key, .. }) => ("api_key", Some(key.to_string())),
            None => ("system", None),
        };
        if self.backend == Backend::Postgres {
            // Lock, head read, hash and insert in one round trip (migration m0033).
            let args: [sea_orm::Value; 14] = [
                org.as_uuid().into(),
                Uuid::now_v7().into(),
                stored_time(now).into(),
                actor_type.into(),
                actor_id.into(),
                meta.impersonator.map(|u| u.to_string()).into(),
                event.action.into(),
                event.target_type.into(),
                event.target_id.into(),
                event.outcome.as_str().into(),
                Value::Array(diff).to_string().into(),
                meta.request_id.into(),
                meta.operation.into(),
                client.into(),
            ];
            let appended = tx
                .conn()
                .query_one_raw(Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT appended_seq FROM audit_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                    args,
                ))
                .await?;
            let chained = match appended {
                Some(row) => row.try_get_by_index::<Option<i64>>(0)?.is_some(),
                None => false,
            };
            if !chained {
                let seals = self.seals.clone();
                tx.after_commit(move || seals.push(org));
            }
            return Ok(());
        }
        // SQLite: the writer holds the database lock, so reading the head and inserting
        // cannot interleave with another append.
        let (head_seq, prev_hash) = head(tx).await?;
        let seq = head_seq + 1;
        let mut row = audit_event::Model {
            organization_id: org.as_uuid(),
            seq,
            id: Uuid::now_v7(),
            occurred_at: stored_time(now),
            actor_type: actor_type.to_owned(),
            actor_id,
            impersonator_id: meta.impersonator.map(|u| u.to_string()),
            action: event.action,
            target_type: event.target_type,
            target_id: event.target_id,
            outcome: event.outcome.as_str().to_owned(),
            diff: Value::Array(diff).to_string(),
            request_id: meta.request_id,
            operation: meta.operation,
            client,
            prev_hash,
            hash: String::new(),
        };
        row.hash = chain::hash(&row);
        audit_event::Entity::insert(row.insertable())
            .exec_without_returning(tx.conn())
            .await?;
        Ok(())
    }

    /// One page of the organization's events matching `filter`, in `order`.
    pub async fn events(
        &self,
        tx: &TenantTx,
        filter: &EventFilter,
        page: &PageRequest,
        order: kernel::ListOrder,
    ) -> Result<Page<AuditEvent>> {
        let mut select = tx.select::<audit_event::Entity>();
        if let Some(actor) = &filter.actor {
            let (_, id) = actor.split_once(':').unwrap_or(("", actor));
            select = select.filter(audit_event::Column::ActorId.eq(id));
        }
        if let Some(action) = &filter.action {
            select = select.filter(audit_event::Column::Action.eq(action));
        }
        if let Some(target_type) = &filter.target_type {
            select = select.filter(audit_event::Column::TargetType.eq(target_type));
        }
        if let Some(target_id) = &filter.target_id {
            select = select.filter(audit_event::Column::TargetId.eq(target_id));
        }
        if let Some(from) = filter.from {
            select = select.filter(audit_event::Column::OccurredAt.gte(stored_time(from)));
        }
        if let Some(to) = filter.to {
            select = select.filter(audit_event::Column::OccurredAt.lt(stored_time(to)));
        }
        let rows = keyset_in(select, audit_event::Column::Id, page, order)
            .all(tx.conn())
            .await?;
        let page = Page::from_overfetch(rows, page);
        let items = self.decrypt(tx, page.items).await?;
        Ok(Page {
            items,
            has_previous: page.has_previous,
            has_next: page.has_next,
        })
    }

    /// The organization's event `id`, if there is one.
    pub async fn event(&self, tx: &TenantTx, id: Uuid) -> Result<Option<AuditEvent>> {
        let row = tx
            .select::<audit_event::Entity>()
            .filter(audit_event::Column::Id.eq(id))
            .one(tx.conn())
            .await?;
        match row {
            Some(row) => Ok(self.decrypt(tx, vec![row]).await?.into_iter().next()),
            None => Ok(None),
        }
    }

    /// Reads rows back, opening personal data whose keys still exist.
    async fn decrypt(
        &self,
        tx: &TenantTx,
        rows: Vec<audit_event::Model>,
    ) -> Result<Vec<AuditEvent>> {
        let parsed: Vec<(audit_event::Model, Vec<Value>, Option<Value>)> = rows
            .into_iter()
            .map(|row| {
                let diff: Vec<Value> = serde_json::from_str(&row.diff).unwrap_or_default();
                let client: Option<Value> = row
                    .client
                    .as_deref()
                    .and_then(|c| serde_json::from_str(c).ok());
                (row, diff, client)
            })
            .collect();
        let subjects: BTreeSet<String> = parsed
            .iter()
            .flat_map(|(_, diff, client)| {
                diff.iter()
                    .chain(client.iter())
                    .filter_map(|v| v.get("personal").and_then(Value::as_str).map(str::to_owned))
            })
            .collect();
        let keys = pii::keys_for(tx.conn(), subjects.into_iter().collect()).await?;
        Ok(parsed
            .into_iter()
            .map(|(row, diff, client)| {
                let changes = diff
                    .iter()
                    .map(|entry| {
                        let field = entry["field"].as_str().unwrap_or_default().to_owned();
                        let value = |name: &str| match (
                            &entry[name],
                            entry.get("personal").and_then(Value::as_str),
                        ) {
                            (Value::Null, _) => None,
                            (sealed, Some(subject)) => Some(pii::open(keys.get(subject), sealed)),
                            (plain, None) => Some(plain.clone()),
                        };
                        ReadChange {
                            before: value("before"),
                            after: value("after"),
                            field,
                        }
                    })
                    .collect();
                let opened = client.as_ref().map(|c| {
                    let subject = c["personal"].as_str().unwrap_or_default();
                    pii::open(keys.get(subject), &c["value"])
                });
                let client_field = |name: &str| {
                    opened.as_ref().and_then(|o| match o {
                        Value::String(erased) => Some(erased.clone()),
                        other => other[name].as_str().map(str::to_owned),
                    })
                };
                AuditEvent {
                    id: row.id,
                    seq: row.seq,
                    occurred_at: DateTime::parse_from_rfc3339(&row.occurred_at)
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default(),
                    actor_type: row.actor_type,
                    actor_id: row.actor_id,
                    impersonator_id: row.impersonator_id,
                    action: row.action,
                    target_type: row.target_type,
                    target_id: row.target_id,
                    outcome: row.outcome,
                    changes,
                    request_id: row.request_id,
                    operation: row.operation,
                    ip: client_field("ip"),
                    user_agent: client_field("ua"),
                    hash: row.hash,
                }
            })
            .collect())
    }

    /// Crypto-shreds a person: deletes the keys of `user:<id>` and `email:<address>`.
    /// Returns how many keys were deleted.
    pub async fn erase_person(
        &self,
        conn: &impl ConnectionTrait,
        subjects: &[String],
    ) -> Result<u64> {
        pii::erase(conn, subjects).await
    }
}

/// The organization's chain head: its last `seq` and hash; `(0, GENESIS)` when it has
/// no events.
pub(crate) async fn head(tx: &TenantTx) -> Result<(i64, String)> {
    let head = tx
        .select::<audit_event::Entity>()
        .select_only()
        .column(audit_event::Column::Seq)
        .column(audit_event::Column::Hash)
        .order_by_desc(audit_event::Column::Seq)
        .limit(1)
        .into_tuple::<(i64, String)>()
        .one(tx.conn())
        .await?;
    Ok(head.unwrap_or((0, GENESIS.to_owned())))
}

/// How an instant is stored (and compared, as text: the format sorts chronologically).
pub(crate) fn stored_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}
