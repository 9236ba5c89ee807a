//! Per-person keys: personal data inside events is encrypted (AES-256-GCM) with the key
//! of the person it is about. Erasing the person deletes the key; their values then read
//! `[erased]`, while the chain, which hashes the ciphertext, still verifies.
//!
//! The keys live in the same database as the events (a key management service would
//! hold them apart; noted for operations).

use crate::entity::personal_data_key;
use crate::error::{Error, Result};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use std::collections::HashMap;

/// What an erased value reads as.
pub const ERASED: &str = "[erased]";

/// The key of `subject`, created on first use.
pub(crate) async fn key_for(
    conn: &impl ConnectionTrait,
    subject: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<u8>> {
    if let Some(existing) = find(conn, subject).await? {
        return Ok(existing);
    }
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    personal_data_key::Entity::insert(personal_data_key::ActiveModel {
        subject: Set(subject.to_owned()),
        key: Set(STANDARD.encode(key)),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(personal_data_key::Column::Subject)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    // A concurrent writer may have won the insert: read back whichever key is stored.
    find(conn, subject)
        .await?
        .ok_or_else(|| Error::Crypto(format!("no key for {subject} after creating one")))
}

async fn find(conn: &impl ConnectionTrait, subject: &str) -> Result<Option<Vec<u8>>> {
    let row = personal_data_key::Entity::find_by_id(subject.to_owned())
        .one(conn)
        .await?;
    row.map(|r| {
        STANDARD
            .decode(r.key)
            .map_err(|e| Error::Crypto(e.to_string()))
    })
    .transpose()
}

/// Keys of several subjects (missing ones were erased).
pub(crate) async fn keys_for(
    conn: &impl ConnectionTrait,
    subjects: Vec<String>,
) -> Result<HashMap<String, Vec<u8>>> {
    if subjects.is_empty() {
        return Ok(HashMap::new());
    }
    personal_data_key::Entity::find()
        .filter(personal_data_key::Column::Subject.is_in(subjects))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            let key = STANDARD
                .decode(row.key)
                .map_err(|e| Error::Crypto(e.to_string()))?;
            Ok((row.subject, key))
        })
        .collect()
}

/// Deletes the keys of the given subjects: the crypto-shredding of a person.
pub(crate) async fn erase(conn: &impl ConnectionTrait, subjects: &[String]) -> Result<u64> {
    let deleted = personal_data_key::Entity::delete_many()
        .filter(personal_data_key::Column::Subject.is_in(subjects.iter().cloned()))
        .exec(conn)
        .await?;
    Ok(deleted.rows_affected)
}

/// `{"enc": base64(nonce ‖ ciphertext)}`.
pub(crate) fn seal(key: &[u8], value: &Value) -> Result<Value> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| Error::Crypto(e.to_string()))?;
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let plaintext = serde_json::to_vec(value)?;
    let mut sealed = nonce.to_vec();
    sealed.extend(
        cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext.as_slice())
            .map_err(|e| Error::Crypto(e.to_string()))?,
    );
    Ok(serde_json::json!({ "enc": STANDARD.encode(sealed) }))
}

/// The plaintext of a sealed value, or `[erased]` without the key.
pub(crate) fn open(key: Option<&Vec<u8>>, sealed: &Value) -> Value {
    let Some(key) = key else {
        return Value::String(ERASED.to_owned());
    };
    let opened = (|| {
        let data = STANDARD.decode(sealed.get("enc")?.as_str()?).ok()?;
        if data.len() < 12 {
            return None;
        }
        let cipher = Aes256Gcm::new_from_slice(key).ok()?;
        let plaintext = cipher
            .decrypt(Nonce::from_slice(&data[..12]), &data[12..])
            .ok()?;
        serde_json::from_slice(&plaintext).ok()
    })();
    opened.unwrap_or_else(|| Value::String(ERASED.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_their_key_only() {
        let (k1, k2) = (vec![7u8; 32], vec![8u8; 32]);
        let sealed = seal(&k1, &serde_json::json!("alice@example.com")).unwrap();
        assert!(!sealed.to_string().contains("alice"));
        assert_eq!(
            open(Some(&k1), &sealed),
            serde_json::json!("alice@example.com")
        );
        assert_eq!(open(Some(&k2), &sealed), serde_json::json!(ERASED));
        assert_eq!(open(None, &sealed), serde_json::json!(ERASED));
    }
}
