//! The audit trail: one event per change or decision, written by the same transaction as
//! the change ([`AuditLog::record`]), append-only in the database, chained per
//! organization with SHA-256 so that a changed, missing or reordered event is found by
//! [`AuditLog::verify`], and with personal data encrypted per person so that erasing a
//! person leaves `[erased]` and a chain that still verifies.

mod chain;
pub mod data_map;
mod entity;
pub mod error;
mod feed;
pub mod model;
mod pii;
mod retention;
mod sealing;
mod service;

pub use chain::GENESIS;
pub use error::{Error, Result};
pub use feed::FeedEvent;
pub use model::{
    AuditEvent, BrokenLink, Change, EventFilter, Hashing, NewEvent, Outcome, ReadChange,
    VerifyReport,
};
pub use pii::ERASED;
pub use retention::{PURGED, PurgeReport};
pub use sealing::{SEAL_BATCH, UnsealedTail};
pub use service::AuditLog;

/// Entry points for benchmarks and tests only: fill a chain fast enough to measure (and
/// test) verification over long chains.
#[doc(hidden)]
pub mod bench_support {
    use crate::chain;
    use crate::entity::audit_event;
    use crate::error::Result;
    use chrono::{DateTime, Utc};
    use kernel::TenantTx;
    use sea_orm::EntityTrait;
    use uuid::Uuid;

    /// Reads every event of the organization in verification's batches without checking
    /// them: how much of verification is fetching.
    pub async fn fetch_only(tx: &TenantTx) -> Result<u64> {
        use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
        let mut after = 0i64;
        let mut rows = 0u64;
        loop {
            let batch = tx
                .select::<audit_event::Entity>()
                .filter(audit_event::Column::Seq.gt(after))
                .order_by_asc(audit_event::Column::Seq)
                .limit(crate::service::VERIFY_BATCH)
                .all(tx.conn())
                .await?;
            let Some(last) = batch.last() else {
                return Ok(rows);
            };
            after = last.seq;
            rows += batch.len() as u64;
        }
    }

    /// Rows per multi-row INSERT (17 columns stays under SQLite's bound-variable limit).
    const BATCH: usize = 1_000;

    /// Appends `count` chained events after the organization's chain head, in multi-row
    /// inserts: what `AuditLog::record` would store, without its per-event round trips
    /// (benchmarks, and the end-to-end test of verification in parts).
    pub async fn append_synthetic(tx: &TenantTx, count: u64, at: DateTime<Utc>) -> Result<()> {
        let (head_seq, mut prev_hash) = crate::service::head(tx).await?;
        let last = head_seq + count as i64;
        let mut batch = Vec::with_capacity(BATCH);
        for seq in head_seq + 1..=last {
            let mut row = audit_event::Model {
                organization_id: tx.org_id().as_uuid(),
                seq,
                id: Uuid::now_v7(),
                occurred_at: crate::service::stored_time(at),
                actor_type: "system".to_owned(),
                actor_id: None,
                impersonator_id: None,
                action: "project.updated".to_owned(),
                target_type: "project".to_owned(),
                target_id: Some(Uuid::now_v7().to_string()),
                outcome: "success".to_owned(),
                diff: format!(
                    r#"[{{"field":"name","before":"Project {}","after":"Project {seq}"}}]"#,
                    seq - 1
                ),
                request_id: Some(Uuid::now_v7().to_string()),
                operation: Some("UpdateProject".to_owned()),
                client: None,
                prev_hash: std::mem::take(&mut prev_hash),
                hash: String::new(),
            };
            row.hash = chain::hash(&row);
            prev_hash.clone_from(&row.hash);
            batch.push(row.insertable());
            if batch.len() == BATCH || seq == last {
                audit_event::Entity::insert_many(std::mem::take(&mut batch))
                    .exec_without_returning(tx.conn())
                    .await?;
            }
        }
        Ok(())
    }
}
