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
    digest_hex(&canonical(row))
}

/// The canonical serialization of a row: a compact JSON array of the stored values,
/// written element by element (the same bytes as a `serde_json::Value` array of those
/// values, without building one). On PostgreSQL, `audit_append` and [`PG_CANONICAL`]
/// produce the same bytes in SQL.
pub(crate) fn canonical(row: &audit_event::Model) -> Vec<u8> {
    let mut canonical = Canonical::default();
    canonical.push(&row.organization_id.to_string());
    canonical.push(&row.seq);
    canonical.push(&row.id.to_string());
    canonical.push(&row.occurred_at);
    canonical.push(&row.actor_type);
    canonical.push(&row.actor_id);
    canonical.push(&row.impersonator_id);
    canonical.push(&row.action);
    canonical.push(&row.target_type);
    canonical.push(&row.target_id);
    canonical.push(&row.outcome);
    canonical.push(&row.diff);
    canonical.push(&row.request_id);
    canonical.push(&row.operation);
    canonical.push(&row.client);
    canonical.push(&row.prev_hash);
    canonical.finish()
}

/// The canonical serialization computed by PostgreSQL from the stored columns (the
/// expression of `audit_append`, migration m0007): verification reads one text column
/// instead of decoding seventeen, and hashes it here. Tests check these expressions
/// against [`canonical`] on both engines (values with quotes, controls and non-ASCII).
pub(crate) const PG_CANONICAL: &str = "'[' || to_json(organization_id::text)::text \
    || ',' || seq::text \
    || ',' || to_json(id::text)::text \
    || ',' || to_json(occurred_at)::text \
    || ',' || to_json(actor_type)::text \
    || ',' || coalesce(to_json(actor_id)::text, 'null') \
    || ',' || coalesce(to_json(impersonator_id)::text, 'null') \
    || ',' || to_json(action)::text \
    || ',' || to_json(target_type)::text \
    || ',' || coalesce(to_json(target_id)::text, 'null') \
    || ',' || to_json(outcome)::text \
    || ',' || to_json(diff)::text \
    || ',' || coalesce(to_json(request_id)::text, 'null') \
    || ',' || coalesce(to_json(operation)::text, 'null') \
    || ',' || coalesce(to_json(client)::text, 'null') \
    || ',' || to_json(prev_hash)::text \
    || ']'";

/// The same serialization by SQLite (`json_array` escapes as serde_json does; UUIDs are
/// stored as 16-byte blobs and formatted here as hyphenated lower-case hex). The
/// organization is `?5`, its id as text: every row read has that id (the query selects
/// on it), so it is formatted once instead of once per row.
pub(crate) const SQLITE_CANONICAL: &str = "json_array(\
    ?5, \
    seq, \
    lower(substr(hex(id), 1, 8) || '-' || substr(hex(id), 9, 4) || '-' || substr(hex(id), 13, 4) \
      || '-' || substr(hex(id), 17, 4) || '-' || substr(hex(id), 21)), \
    occurred_at, actor_type, actor_id, impersonator_id, action, target_type, target_id, \
    outcome, diff, request_id, operation, client, prev_hash)";

/// Lower-case hex SHA-256, without an allocation per byte.
fn digest_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in Sha256::digest(bytes) {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

/// A JSON array written one element at a time.
#[derive(Default)]
struct Canonical(Vec<u8>);

impl Canonical {
    fn push<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        self.0.push(if self.0.is_empty() { b'[' } else { b',' });
        // Strings, integers and nulls cannot fail to serialize into a Vec.
        let _ = serde_json::to_writer(&mut self.0, value);
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.push(b']');
        self.0
    }
}

/// One link of a chain as verification sees it.
pub(crate) struct Link {
    /// Its `seq`.
    pub seq: i64,
    /// The stored `prev_hash`.
    pub prev_hash: String,
    /// The stored `hash`.
    pub hash: String,
    /// The canonical serialization of its stored values.
    pub canonical: Vec<u8>,
}

/// Checks one link against its predecessor; the reason it breaks the chain, if it does.
pub(crate) fn check(link: &Link, previous: Option<(i64, &str)>) -> Option<String> {
    let (expected_seq, expected_prev) = match previous {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS),
    };
    broken_reason(
        link.seq,
        expected_seq,
        link.prev_hash == expected_prev,
        link.hash == digest_hex(&link.canonical),
    )
}

/// Why a link is broken, checked in this order whoever hashed (here or the database):
/// its `seq` does not follow the previous one, its `prev_hash` is not the previous
/// event's hash, or its hash does not cover its stored values.
pub(crate) fn broken_reason(
    seq: i64,
    expected_seq: i64,
    linked: bool,
    intact: bool,
) -> Option<String> {
    if seq != expected_seq {
        return Some(format!(
            "expected seq {expected_seq}, found {seq} (missing or reordered events)"
        ));
    }
    if !linked {
        return Some(
            "prev_hash does not match the previous event (reordered or replaced events)".into(),
        );
    }
    if !intact {
        return Some("hash does not match the stored values (the row was changed)".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Hashes already stored were computed over `serde_json::json!([...]).to_string()`;
    /// the element-by-element writer must give exactly those bytes.
    #[test]
    fn the_hash_covers_the_same_bytes_as_a_json_array_of_the_stored_values() {
        let row = audit_event::Model {
            organization_id: uuid::Uuid::now_v7(),
            seq: 42,
            id: uuid::Uuid::now_v7(),
            occurred_at: "2026-11-29T08:00:00.123456Z".into(),
            actor_type: "user".into(),
            actor_id: Some("a \"quoted\" id".into()),
            impersonator_id: None,
            action: "document.approved".into(),
            target_type: "document".into(),
            target_id: Some("ünïcödé ✓ \u{1}".into()),
            outcome: "success".into(),
            diff: r#"[{"field":"status","before":"in_review","after":"approved"}]"#.into(),
            request_id: None,
            operation: Some("Approve\n".into()),
            client: None,
            prev_hash: GENESIS.into(),
            hash: String::new(),
        };
        let as_value = serde_json::json!([
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
        ])
        .to_string();
        let expected: String = Sha256::digest(as_value.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash(&row), expected);
    }
}
