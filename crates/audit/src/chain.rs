//! The per-organization hash chain. Each event's hash covers a canonical serialization
//! of exactly the values stored in its row (the timestamp as the stored text, personal
//! data as stored ciphertext) plus the previous event's hash. Order is by `seq`, never by
//! time.

use crate::entity::audit_event;
use sha2::{Digest, Sha256};

/// The `prev_hash` of an organization's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Hex SHA-256 over the row's stored values, in a fixed order, as a JSON array.
pub(crate) fn hash(row: &audit_event::Model) -> String {
    let canonical = serde_json::json!([
        row.organization_id.to_string(),
        row.seq,
        row.id.to_string(),
        row.occurred_at,
        row.actor_type,
        row.actor_id,
        row.impersonator_id,
        row.action,
        row.target_type,
        row.target_id,
        row.outcome,
        row.diff,
        row.request_id,
        row.operation,
        row.client,
        row.prev_hash,
    ]);
    let digest = Sha256::digest(canonical.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one row against its predecessor; the reason it breaks the chain, if it does.
pub(crate) fn check(row: &audit_event::Model, previous: Option<(i64, &str)>) -> Option<String> {
    let (expected_seq, expected_prev) = match previous {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS),
    };
    if row.seq != expected_seq {
        return Some(format!(
            "expected seq {expected_seq}, found {} (missing or reordered events)",
            row.seq
        ));
    }
    if row.prev_hash != expected_prev {
        return Some(
            "prev_hash does not match the previous event (reordered or replaced events)".into(),
        );
    }
    if row.hash != hash(row) {
        return Some("hash does not match the stored values (the row was changed)".into());
    }
    None
}
