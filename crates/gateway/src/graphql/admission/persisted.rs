//! Documents known by id, kept per process: trusted documents (the platform's and each
//! organization's, read from the database), automatic persisted queries (texts clients
//! sent with their hash, APQ), and whether each API key runs trusted documents only.
//!
//! A trusted document is kept parsed: running one by id reads neither its text from the
//! database nor parses it again. It is kept for [`TRUSTED_FOR`]: a revocation takes
//! effect at once on the instance that made it, and on the others within that time.
//! Every cache is bounded by an estimate of its memory, so a stream of distinct ids or
//! texts only evicts.

use async_graphql::parser::types::ExecutableDocument;
use kernel::{ApiKeyId, OrgId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tenancy::DocumentHash;

/// How long a trusted document is served from memory before it is read again (so a
/// revocation on another instance takes effect).
pub const TRUSTED_FOR: Duration = Duration::from_secs(60);
/// How much more memory a parse takes than its text, roughly (see `parsed.rs`).
const PARSE_BYTES_PER_TEXT_BYTE: u64 = 16;
/// The memory kept trusted documents may take, as estimated.
const TRUSTED_BYTES: u64 = 32 * 1024 * 1024;
/// The memory kept APQ texts may take.
const AUTOMATIC_BYTES: u64 = 8 * 1024 * 1024;
/// Keys whose restriction is kept.
const KEY_POLICIES: usize = 100_000;

/// Whose document: the platform's (`None`) or an organization's.
pub type Scope = Option<OrgId>;

/// A trusted document, parsed.
pub struct Trusted {
    /// Its text (what cost and string checks read).
    pub text: String,
    /// Its parse.
    pub parsed: ExecutableDocument,
    /// When it was read from the database.
    read_at: Instant,
}

#[derive(Clone)]
struct TrustedWeight;

impl quick_cache::Weighter<(Scope, DocumentHash), Arc<Trusted>> for TrustedWeight {
    fn weight(&self, _: &(Scope, DocumentHash), kept: &Arc<Trusted>) -> u64 {
        (kept.text.len() as u64 + 1) * (PARSE_BYTES_PER_TEXT_BYTE + 1)
    }
}

#[derive(Clone)]
struct TextWeight;

impl quick_cache::Weighter<(Option<uuid::Uuid>, DocumentHash), Arc<str>> for TextWeight {
    fn weight(&self, _: &(Option<uuid::Uuid>, DocumentHash), text: &Arc<str>) -> u64 {
        text.len() as u64 + 64
    }
}

/// The process's documents known by id (shared by every request).
pub struct PersistedDocuments {
    trusted: quick_cache::sync::Cache<(Scope, DocumentHash), Arc<Trusted>, TrustedWeight>,
    automatic: quick_cache::sync::Cache<(Option<uuid::Uuid>, DocumentHash), Arc<str>, TextWeight>,
    key_policies: quick_cache::sync::Cache<ApiKeyId, bool>,
}

impl std::fmt::Debug for PersistedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersistedDocuments")
            .field("trusted", &self.trusted.len())
            .field("automatic", &self.automatic.len())
            .finish_non_exhaustive()
    }
}

impl Default for PersistedDocuments {
    fn default() -> Self {
        Self {
            trusted: quick_cache::sync::Cache::with_weighter(1_024, TRUSTED_BYTES, TrustedWeight),
            automatic: quick_cache::sync::Cache::with_weighter(4_096, AUTOMATIC_BYTES, TextWeight),
            key_policies: quick_cache::sync::Cache::new(KEY_POLICIES),
        }
    }
}

impl PersistedDocuments {
    /// The trusted document kept for `scope` and `hash`, if read within [`TRUSTED_FOR`].
    pub fn trusted(&self, scope: Scope, hash: DocumentHash) -> Option<Arc<Trusted>> {
        self.trusted
            .get(&(scope, hash))
            .filter(|kept| kept.read_at.elapsed() < TRUSTED_FOR)
    }

    /// Keeps a trusted document just read from the database, parsed.
    pub fn keep_trusted(
        &self,
        scope: Scope,
        hash: DocumentHash,
        text: String,
    ) -> Result<Arc<Trusted>, async_graphql::parser::Error> {
        let parsed = async_graphql::parser::parse_query(&text)?;
        let kept = Arc::new(Trusted {
            text,
            parsed,
            read_at: Instant::now(),
        });
        self.trusted.insert((scope, hash), kept.clone());
        Ok(kept)
    }

    /// Lets a revoked document go (on this instance: at once).
    pub fn forget_trusted(&self, scope: Scope, hash: DocumentHash) {
        self.trusted.remove(&(scope, hash));
    }

    /// The text an APQ client registered for `hash`, as the caller `principal` (a
    /// person's or a key's id; `None`: anonymous callers).
    pub fn automatic(&self, principal: Option<uuid::Uuid>, hash: DocumentHash) -> Option<Arc<str>> {
        self.automatic.get(&(principal, hash))
    }

    /// Registers an APQ text (its hash checked by the caller).
    pub fn keep_automatic(&self, scope: Option<uuid::Uuid>, hash: DocumentHash, text: &str) {
        if self.automatic.get(&(scope, hash)).is_none() {
            self.automatic.insert((scope, hash), Arc::from(text));
        }
    }

    /// Whether the key runs trusted documents only, if known (fixed when a key is made,
    /// so it never goes stale).
    pub fn key_policy(&self, key: ApiKeyId) -> Option<bool> {
        self.key_policies.get(&key)
    }

    /// Keeps a key's restriction.
    pub fn keep_key_policy(&self, key: ApiKeyId, trusted_only: bool) {
        self.key_policies.insert(key, trusted_only);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_documents_are_kept_parsed_per_scope() {
        let documents = PersistedDocuments::default();
        let text = "query Q { __typename }";
        let hash = DocumentHash::of(text);
        let org = Some(OrgId::from_uuid(uuid::Uuid::now_v7()));
        assert!(documents.trusted(org, hash).is_none());
        documents.keep_trusted(org, hash, text.into()).unwrap();
        let kept = documents.trusted(org, hash).unwrap();
        assert_eq!(kept.text, text);
        assert_eq!(kept.parsed.operations.iter().count(), 1);
        // Another organization (or the platform) does not see it.
        assert!(documents.trusted(None, hash).is_none());
        assert!(
            documents
                .trusted(Some(OrgId::from_uuid(uuid::Uuid::now_v7())), hash)
                .is_none()
        );
        documents.forget_trusted(org, hash);
        assert!(documents.trusted(org, hash).is_none());
        assert!(documents.keep_trusted(None, hash, "{ nope".into()).is_err());
    }

    #[test]
    fn automatic_texts_stay_within_their_bound() {
        let documents = PersistedDocuments::default();
        let padding = "x".repeat(60_000);
        for i in 0..400 {
            let text = format!("{{ __typename # {i} {padding}\n}}");
            documents.keep_automatic(None, DocumentHash::of(&text), &text);
        }
        let most = AUTOMATIC_BYTES / 60_000;
        assert!(documents.automatic.len() as u64 <= most + 1);
    }
}
