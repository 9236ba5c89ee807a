//! Verifying an organization's chain: recomputed link by link here or in the database,
//! in parts that fit one transaction's budget, naming the first broken link and the
//! unsealed tail.

use super::{AuditLog, PARALLEL_VERIFY_MIN, VERIFY_BATCH, head};
use crate::chain::{self, GENESIS};
use crate::entity::audit_event;
use crate::error::Result;
use crate::model::{BrokenLink, Hashing, VerifyReport};
use kernel::{Backend, TenantTx};
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, QueryOrder, QuerySelect, Statement};

/// Checks consecutive links after `previous` (seq, stored hash): how many passed, and
/// the first broken link.
pub(super) fn check_batch(
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

impl AuditLog {
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
    pub(super) async fn stored_hash(&self, tx: &TenantTx, seq: i64) -> Result<Option<String>> {
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
    pub(super) async fn chain_start(
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
    pub(super) async fn verify_range(
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
    pub(super) async fn verify_in_database(
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
    pub(super) async fn fetch_links(
        &self,
        tx: &TenantTx,
        after: i64,
        until: i64,
    ) -> Result<Vec<chain::Link>> {
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
}
