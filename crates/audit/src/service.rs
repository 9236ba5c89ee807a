//! [`AuditLog`]: records events in the caller's transaction, reads them back, verifies
//! chains and erases people.

use crate::chain::{self, GENESIS};
use crate::entity::audit_event;
use crate::error::Result;
use crate::model::{
    AuditEvent, BrokenLink, EventFilter, Hashing, NewEvent, ReadChange, VerifyReport,
};
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

    /// Recomputes the organization's chain in `seq` order and names the first broken
    /// link: a changed row, a missing `seq`, reordered rows. On PostgreSQL the database
    /// hashes ([`Hashing::InDatabase`]); on SQLite, which has no SHA-256, this process does.
    pub async fn verify(&self, tx: &TenantTx) -> Result<VerifyReport> {
        self.verify_with(tx, self.default_hashing()).await
    }

    /// Where [`verify`](Self::verify) hashes on this engine.
    pub fn default_hashing(&self) -> Hashing {
        match self.backend {
            Backend::Postgres => Hashing::InDatabase,
            Backend::Sqlite => Hashing::Here,
        }
    }

    /// [`verify`](Self::verify) with the hashing done where `hashing` says.
    #[tracing::instrument(name = "audit.verify", skip_all, fields(org.id = %tx.org_id(), ?hashing), err)]
    pub async fn verify_with(&self, tx: &TenantTx, hashing: Hashing) -> Result<VerifyReport> {
        let mut report = match self.chain_start(tx).await? {
            Ok(previous) => self.verify_range(tx, hashing, previous, None).await?,
            Err(broken) => broken,
        };
        report.unsealed = self.unsealed(tx).await?;
        Ok(report)
    }

    /// [`verify_with`](Self::verify_with) split into consecutive ranges of `seq`, one per
    /// transaction (`main` and `others`, all read transactions of one organization),
    /// checked concurrently: checking a range needs only the stored hash of the row
    /// before it. Short chains, and a single transaction, are checked in one pass. When
    /// any range finds a broken link, the whole chain is checked again in one pass in
    /// the first transaction and that is the answer, so an append or a purge committed
    /// between the ranges' snapshots cannot be reported as a break, and the link named
    /// is the first broken one.
    #[tracing::instrument(name = "audit.verify_in_parts", skip_all, fields(org.id = %main.org_id(), parts = others.len() + 1, ?hashing), err)]
    pub async fn verify_in_parts(
        &self,
        main: &TenantTx,
        others: &[TenantTx],
        hashing: Hashing,
    ) -> Result<VerifyReport> {
        match self.verify_ranges(main, others, hashing).await? {
            Some(mut report) => {
                report.unsealed = self.unsealed(main).await?;
                Ok(report)
            }
            None => self.verify_with(main, hashing).await,
        }
    }

    /// The concurrent part of [`verify_in_parts`](Self::verify_in_parts): the report when
    /// it is decided (every range verified, a short chain checked in one pass, or a start
    /// that no purge anchors), `None` when a range found a break or its boundary row is
    /// gone, which one pass then decides.
    pub async fn verify_ranges(
        &self,
        main: &TenantTx,
        others: &[TenantTx],
        hashing: Hashing,
    ) -> Result<Option<VerifyReport>> {
        let txs: Vec<&TenantTx> = std::iter::once(main).chain(others).collect();
        let previous = match self.chain_start(main).await? {
            Ok(previous) => previous,
            Err(broken) => return Ok(Some(broken)),
        };
        let after = previous.as_ref().map_or(0, |(seq, _)| *seq);
        let (last, _) = head(main).await?;
        let parts = i64::try_from(txs.len()).unwrap_or(1);
        if parts < 2 || last - after < PARALLEL_VERIFY_MIN {
            return self
                .verify_range(main, hashing, previous, None)
                .await
                .map(Some);
        }
        // Range k is (bounds[k], bounds[k + 1]]; the last one is open-ended, as one pass is.
        let bounds: Vec<i64> = (0..parts)
            .map(|k| after + (last - after) * k / parts)
            .collect();
        let ranges = txs.into_iter().enumerate().map(|(k, tx)| {
            let previous = previous.clone();
            let (from, until) = (bounds[k], bounds.get(k + 1).copied());
            async move {
                let previous = if k == 0 {
                    previous
                } else {
                    match self.stored_hash(tx, from).await? {
                        Some(hash) => Some((from, hash)),
                        None => return Ok(None),
                    }
                };
                self.verify_range(tx, hashing, previous, until)
                    .await
                    .map(Some)
            }
        });
        let mut checked = 0;
        for range in futures::future::join_all(ranges).await {
            match range? {
                Some(VerifyReport {
                    checked: ok,
                    broken: None,
                    ..
                }) => checked += ok,
                _ => return Ok(None),
            }
        }
        Ok(Some(VerifyReport {
            checked,
            ..VerifyReport::default()
        }))
    }

    /// The stored hash of the event at `seq`.
    async fn stored_hash(&self, tx: &TenantTx, seq: i64) -> Result<Option<String>> {
        Ok(tx
            .select::<audit_event::Entity>()
            .select_only()
            .column(audit_event::Column::Hash)
            .filter(audit_event::Column::Seq.eq(seq))
            .into_tuple::<String>()
            .one(tx.conn())
            .await?)
    }

    /// Where the chain starts: `Ok(None)` at seq 1 (the genesis), `Ok(Some(anchor))`
    /// after a purge (the last purged seq and its hash, named by a chained purge event),
    /// or `Err(report)` naming the first event when no recorded purge anchors it.
    async fn chain_start(
        &self,
        tx: &TenantTx,
    ) -> Result<std::result::Result<Option<(i64, String)>, VerifyReport>> {
        // After a purge the chain starts at an anchor that a (chained) purge event names.
        let first = tx
            .select::<audit_event::Entity>()
            .select_only()
            .column(audit_event::Column::Seq)
            .column(audit_event::Column::PrevHash)
            .order_by_asc(audit_event::Column::Seq)
            .limit(1)
            .into_tuple::<(i64, String)>()
            .one(tx.conn())
            .await?;
        let mut previous: Option<(i64, String)> = None;
        if let Some((first_seq, first_prev)) = first
            && first_seq != 1
        {
            let anchors = crate::retention::recorded_anchors(tx).await?;
            match anchors
                .into_iter()
                .find(|(seq, hash)| *seq == first_seq - 1 && *hash == first_prev)
            {
                Some(anchor) => previous = Some(anchor),
                None => {
                    return Ok(Err(VerifyReport {
                        checked: 0,
                        broken: Some(BrokenLink {
                            seq: first_seq,
                            reason: format!(
                                "events before seq {first_seq} are missing and no recorded purge anchors the chain there"
                            ),
                        }),
                        ..VerifyReport::default()
                    }));
                }
            }
        }
        Ok(Ok(previous))
    }

    /// Checks the links after `previous` (none: from the genesis) up to `until` (none: to
    /// the end).
    async fn verify_range(
        &self,
        tx: &TenantTx,
        hashing: Hashing,
        mut previous: Option<(i64, String)>,
        until: Option<i64>,
    ) -> Result<VerifyReport> {
        let until = until.unwrap_or(i64::MAX);
        if hashing == Hashing::InDatabase && self.backend == Backend::Postgres {
            return self.verify_in_database(tx, previous, until).await;
        }
        // Checking a batch needs only the stored hash of the row before it, so batch k
        // is hashed on a blocking thread while batch k + 1 is fetched; results are taken
        // in order, so the first broken link reported is the first in the chain.
        let mut checked = 0u64;
        let mut in_flight: Option<tokio::task::JoinHandle<(u64, Option<BrokenLink>)>> = None;
        loop {
            let after = previous.as_ref().map_or(0, |(seq, _)| *seq);
            let batch = self.fetch_links(tx, after, until).await?;
            if let Some(checking) = in_flight.take() {
                let (ok, broken) = checking
                    .await
                    .map_err(|e| crate::Error::Worker(e.to_string()))?;
                checked += ok;
                if broken.is_some() {
                    return Ok(VerifyReport {
                        checked,
                        broken,
                        ..VerifyReport::default()
                    });
                }
            }
            let Some((last_seq, last_hash)) = batch.last().map(|l| (l.seq, l.hash.clone())) else {
                return Ok(VerifyReport {
                    checked,
                    ..VerifyReport::default()
                });
            };
            let before = previous.replace((last_seq, last_hash));
            in_flight = Some(tokio::task::spawn_blocking(move || {
                check_batch(batch, before)
            }));
        }
    }

    /// Verification by PostgreSQL in one pass: each row's SHA-256 over the canonical
    /// serialization (the same expression the chain was written with, checked against
    /// this crate's own serializer by tests) and its link to the row before it (a window
    /// over `seq`), answering only the first broken row. Nothing but that row and a count
    /// leaves the server, which is what makes a million events take seconds; the rows are
    /// still recomputed from what is stored, so a change by a superuser is found.
    async fn verify_in_database(
        &self,
        tx: &TenantTx,
        previous: Option<(i64, String)>,
        until: i64,
    ) -> Result<VerifyReport> {
        let (after, after_hash) = previous.unwrap_or((0, GENESIS.to_owned()));
        let org: sea_orm::Value = tx.org_id().as_uuid().into();
        let first_broken = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT seq, expected_seq, prev_hash = expected_prev AS linked, \
                            hash = computed AS intact \
                       FROM (SELECT seq, prev_hash, hash, \
                                    lag(seq, 1, $2::bigint) OVER w + 1 AS expected_seq, \
                                    lag(hash, 1, $3::text) OVER w AS expected_prev, \
                                    encode(sha256(convert_to({}, 'UTF8')), 'hex') AS computed \
                               FROM audit_events \
                              WHERE organization_id = $1 AND seq > $2 AND seq <= $4 \
                             WINDOW w AS (ORDER BY seq)) AS links \
                      WHERE seq <> expected_seq OR prev_hash <> expected_prev OR hash <> computed \
                      ORDER BY seq LIMIT 1",
                    chain::PG_CANONICAL
                ),
                [org.clone(), after.into(), after_hash.into(), until.into()],
            ))
            .await?;
        let broken = match first_broken {
            Some(row) => {
                let seq: i64 = row.try_get_by_index(0)?;
                let expected_seq: i64 = row.try_get_by_index(1)?;
                let linked: bool = row.try_get_by_index(2)?;
                let intact: bool = row.try_get_by_index(3)?;
                chain::broken_reason(seq, expected_seq, linked, intact)
                    .map(|reason| BrokenLink { seq, reason })
            }
            None => None,
        };
        // Events checked: those before the first broken one.
        let until = broken.as_ref().map_or(until, |link| link.seq - 1);
        let checked = tx
            .conn()
            .query_one_raw(Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT count(*) FROM audit_events WHERE organization_id = $1 AND seq > $2 AND seq <= $3",
                [org, after.into(), until.into()],
            ))
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        Ok(VerifyReport {
            checked: u64::try_from(checked).unwrap_or(0),
            broken,
            ..VerifyReport::default()
        })
    }

    /// The next batch of links after `after`, each row serialized by the database (one
    /// text column to decode instead of seventeen) and hashed here.
    async fn fetch_links(&self, tx: &TenantTx, after: i64, until: i64) -> Result<Vec<chain::Link>> {
        let (backend, sql) = match self.backend {
            Backend::Postgres => (
                sea_orm::DbBackend::Postgres,
                format!(
                    "SELECT seq, prev_hash, hash, {} AS canonical FROM audit_events \
                     WHERE organization_id = $1 AND seq > $2 AND seq <= $4 ORDER BY seq LIMIT $3",
                    chain::PG_CANONICAL
                ),
            ),
            Backend::Sqlite => (
                sea_orm::DbBackend::Sqlite,
                format!(
                    "SELECT seq, prev_hash, hash, {} AS canonical FROM audit_events \
                     WHERE organization_id = ?1 AND seq > ?2 AND seq <= ?4 ORDER BY seq LIMIT ?3",
                    chain::SQLITE_CANONICAL
                ),
            ),
        };
        let org = tx.org_id().as_uuid();
        let mut values: Vec<sea_orm::Value> = vec![
            org.into(),
            after.into(),
            (VERIFY_BATCH as i64).into(),
            until.into(),
        ];
        if self.backend == Backend::Sqlite {
            values.push(org.to_string().into());
        }
        let rows = tx
            .conn()
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(chain::Link {
                    seq: row.try_get_by_index(0)?,
                    prev_hash: row.try_get_by_index(1)?,
                    hash: row.try_get_by_index(2)?,
                    canonical: row.try_get_by_index::<String>(3)?.into_bytes(),
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()?)
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

/// Checks consecutive links after `previous` (seq, stored hash): how many passed, and
/// the first broken link.
fn check_batch(
    links: Vec<chain::Link>,
    mut previous: Option<(i64, String)>,
) -> (u64, Option<BrokenLink>) {
    let mut ok = 0;
    for link in &links {
        if let Some(reason) = chain::check(link, previous.as_ref().map(|(s, h)| (*s, h.as_str()))) {
            return (
                ok,
                Some(BrokenLink {
                    seq: link.seq,
                    reason,
                }),
            );
        }
        ok += 1;
        previous = Some((link.seq, link.hash.clone()));
    }
    (ok, None)
}
