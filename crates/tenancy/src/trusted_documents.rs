//! Trusted documents (persisted queries): the GraphQL documents an organization's
//! integrations run by id. Its admins register them from an Apollo persisted query
//! manifest; a key restricted to trusted documents runs nothing else. The platform's own
//! apps have a store of their own, imported by an operator.
//!
//! A document's id is the SHA-256 of its text, so a request by id names exactly one text
//! and a manifest whose ids do not match its bodies is refused. Whether a body is a
//! GraphQL document the schema accepts is the GraphQL layer's to check; here it is text.

use crate::entity::{api_key, platform_trusted_document, trusted_document};
use crate::error::{Error, Result};
use crate::service::TenancyService;
use audit::NewEvent;
use authz::{Action, Permit, ResourceType};
use chrono::{DateTime, Utc};
use kernel::page::keyset;
use kernel::{ApiKeyId, OrgId, Page, PageRequest, TenantTx};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use sha2::{Digest, Sha256};
use std::fmt;

/// The most bytes a trusted document may have (what the GraphQL layer admits).
pub const MAX_TRUSTED_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most operations one manifest may register.
pub const MAX_MANIFEST_OPERATIONS: usize = 250;
/// The most live trusted documents an organization keeps.
pub const MAX_TRUSTED_DOCUMENTS: u64 = 1_000;
/// The longest operation name kept.
const MAX_NAME_CHARS: usize = 200;
/// The manifest format accepted.
const MANIFEST_FORMAT: &str = "apollo-persisted-query-manifest";

/// The id of a document: the SHA-256 of its text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentHash([u8; 32]);

impl DocumentHash {
    /// The hash of `text`.
    pub fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// Reads 64 hexadecimal digits (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            out[i] = u8::try_from(high * 16 + low).ok()?;
        }
        Some(Self(out))
    }

    /// Lowercase hexadecimal (as stored and as manifests write it).
    pub fn to_hex(&self) -> String {
        use std::fmt::Write;
        self.0.iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }
}

impl fmt::Display for DocumentHash {
    /// The GraphQL-over-HTTP form: `sha256:<hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl fmt::Debug for DocumentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What kind of operation a trusted document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedOperationType {
    /// A query.
    Query,
    /// A mutation.
    Mutation,
}

impl TrustedOperationType {
    /// As stored and as manifests write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Mutation => "mutation",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "query" => Some(Self::Query),
            "mutation" => Some(Self::Mutation),
            _ => None,
        }
    }
}

/// One operation of a manifest, its id checked against its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestOperation {
    /// The SHA-256 of `body`.
    pub hash: DocumentHash,
    /// The operation's name.
    pub name: String,
    /// Query or mutation.
    pub operation_type: TrustedOperationType,
    /// The document's text.
    pub body: String,
}

/// Reads an Apollo persisted query manifest
/// (`{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{"id",
/// "name", "type", "body"}]}`): every id must be the SHA-256 of its body. An operation
/// listed twice counts once.
pub fn read_manifest(manifest: &serde_json::Value) -> Result<Vec<ManifestOperation>> {
    let invalid = |reason: String| Error::invalid("manifest", reason);
    let object = manifest
        .as_object()
        .ok_or_else(|| invalid("must be a JSON object".into()))?;
    if object.get("format").and_then(|f| f.as_str()) != Some(MANIFEST_FORMAT) {
        return Err(invalid(format!("format must be \"{MANIFEST_FORMAT}\"")));
    }
    if object.get("version").and_then(|v| v.as_u64()) != Some(1) {
        return Err(invalid("version must be 1".into()));
    }
    let listed = object
        .get("operations")
        .and_then(|o| o.as_array())
        .ok_or_else(|| invalid("operations must be a list".into()))?;
    if listed.is_empty() || listed.len() > MAX_MANIFEST_OPERATIONS {
        return Err(invalid(format!(
            "operations must list 1 to {MAX_MANIFEST_OPERATIONS} operations ({} listed); register more in several calls",
            listed.len()
        )));
    }
    let mut operations: Vec<ManifestOperation> = Vec::with_capacity(listed.len());
    for (i, operation) in listed.iter().enumerate() {
        let at = |key: &str, reason: &str| invalid(format!("operations[{i}].{key} {reason}"));
        let text = |key: &str| {
            operation
                .get(key)
                .and_then(|v| v.as_str())
                .ok_or_else(|| at(key, "must be a string"))
        };
        let body = text("body")?;
        if body.trim().is_empty() || body.len() > MAX_TRUSTED_DOCUMENT_BYTES {
            return Err(at(
                "body",
                &format!("must be a document of 1 to {MAX_TRUSTED_DOCUMENT_BYTES} bytes"),
            ));
        }
        if body.contains('\0') {
            return Err(at("body", "must not contain NUL characters"));
        }
        let hash = DocumentHash::from_hex(text("id")?)
            .ok_or_else(|| at("id", "must be 64 hexadecimal digits (SHA-256)"))?;
        if hash != DocumentHash::of(body) {
            return Err(at("id", "is not the SHA-256 of the body"));
        }
        let name = text("name")?;
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(at(
                "name",
                &format!(
                    "must be an operation name of 1 to {MAX_NAME_CHARS} letters, digits and underscores"
                ),
            ));
        }
        let operation_type = TrustedOperationType::parse(text("type")?).ok_or_else(|| {
            at(
                "type",
                "must be \"query\" or \"mutation\" (this API has no subscriptions)",
            )
        })?;
        if operations.iter().any(|seen| seen.hash == hash) {
            continue;
        }
        operations.push(ManifestOperation {
            hash,
            name: name.to_owned(),
            operation_type,
            body: body.to_owned(),
        });
    }
    Ok(operations)
}

/// A trusted document of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDocument {
    /// Row id.
    pub id: uuid::Uuid,
    /// The organization.
    pub org_id: OrgId,
    /// Its id: the SHA-256 of its text.
    pub hash: DocumentHash,
    /// The operation's name.
    pub name: String,
    /// Query or mutation.
    pub operation_type: TrustedOperationType,
    /// Its text.
    pub body: String,
    /// Who registered it (a person or a key).
    pub created_by: uuid::Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was revoked (it no longer runs).
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a registration did.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Every operation of the manifest, as now live (new or registered before).
    pub documents: Vec<TrustedDocument>,
    /// How many were new.
    pub registered: usize,
}

fn from_row(row: trusted_document::Model) -> Result<TrustedDocument> {
    let corrupt = |what: &str| {
        Error::Db(sea_orm::DbErr::Custom(format!(
            "trusted document {}: stored {what} is corrupt",
            row.id
        )))
    };
    Ok(TrustedDocument {
        hash: DocumentHash::from_hex(&row.hash).ok_or_else(|| corrupt("hash"))?,
        operation_type: TrustedOperationType::parse(&row.operation_type)
            .ok_or_else(|| corrupt("operation type"))?,
        id: row.id,
        org_id: OrgId::from_uuid(row.organization_id),
        name: row.name,
        body: row.body,
        created_by: row.created_by,
        created_at: row.created_at,
        revoked_at: row.revoked_at,
    })
}

impl TenancyService {
    /// Registers the manifest's operations as the organization's trusted documents (who
    /// may create API keys may register what they run). Operations already live are left
    /// as they are; all or nothing.
    #[tracing::instrument(
        name = "tenancy.register_trusted_documents",
        skip_all,
        err(level = "debug")
    )]
    pub async fn register_trusted_documents(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        operations: &[ManifestOperation],
    ) -> Result<Registration> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Create, None)?;
        // Registrations of one organization one at a time: the count below stays true.
        tx.lock(&format!("trusted_documents:{}", tx.org_id()))
            .await?;
        let hashes: Vec<String> = operations.iter().map(|o| o.hash.to_hex()).collect();
        let live = tx
            .select::<trusted_document::Entity>()
            .filter(trusted_document::Column::RevokedAt.is_null())
            .filter(trusted_document::Column::Hash.is_in(hashes))
            .all(tx.conn())
            .await?;
        let fresh: Vec<&ManifestOperation> = operations
            .iter()
            .filter(|o| !live.iter().any(|row| row.hash == o.hash.to_hex()))
            .collect();
        let count = tx
            .select::<trusted_document::Entity>()
            .filter(trusted_document::Column::RevokedAt.is_null())
            .count(tx.conn())
            .await?;
        if count + fresh.len() as u64 > MAX_TRUSTED_DOCUMENTS {
            return Err(Error::TooMany(kernel::TooMany {
                what: "trusted_documents",
                max: MAX_TRUSTED_DOCUMENTS,
            }));
        }
        let created_by = permit.principal().id();
        let now = self.clock.now();
        let mut documents = live.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        for operation in &fresh {
            let row = trusted_document::Entity::insert(trusted_document::ActiveModel {
                organization_id: Set(tx.org_id().as_uuid()),
                id: Set(uuid::Uuid::now_v7()),
                hash: Set(operation.hash.to_hex()),
                name: Set(operation.name.clone()),
                operation_type: Set(operation.operation_type.as_str().to_owned()),
                body: Set(operation.body.clone()),
                created_by: Set(created_by),
                created_at: Set(now),
                revoked_at: Set(None),
            })
            .exec_with_returning(tx.conn())
            .await?;
            documents.push(from_row(row)?);
        }
        if !fresh.is_empty() {
            let ids: Vec<String> = fresh.iter().map(|o| o.hash.to_string()).collect();
            self.audit
                .record(
                    tx,
                    NewEvent::new(
                        "trusted_documents.registered",
                        "trusted_document",
                        None::<uuid::Uuid>,
                    )
                    .change("count", None::<i64>, Some(fresh.len() as i64))
                    .change(
                        "document_ids",
                        None::<String>,
                        Some(ids.join(",")),
                    ),
                )
                .await?;
        }
        // In the manifest's order.
        documents.sort_by_key(|d| operations.iter().position(|o| o.hash == d.hash));
        Ok(Registration {
            documents,
            registered: fresh.len(),
        })
    }

    /// One page of the organization's live trusted documents, oldest first.
    pub async fn trusted_documents(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        page: &PageRequest,
    ) -> Result<Page<TrustedDocument>> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Read, None)?;
        let rows = keyset(
            tx.select::<trusted_document::Entity>()
                .filter(trusted_document::Column::RevokedAt.is_null()),
            trusted_document::Column::Id,
            page,
        )
        .all(tx.conn())
        .await?;
        Page::from_overfetch(rows, page).try_map(from_row)
    }

    /// How many live trusted documents the organization has (every page of
    /// [`Self::trusted_documents`]).
    pub async fn count_trusted_documents(&self, tx: &TenantTx, permit: &Permit) -> Result<u64> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Read, None)?;
        Ok(tx
            .select::<trusted_document::Entity>()
            .filter(trusted_document::Column::RevokedAt.is_null())
            .count(tx.conn())
            .await?)
    }

    /// Revokes a live trusted document: it stops running at once on this instance, and
    /// on others when their cache lets it go (see the GraphQL layer).
    #[tracing::instrument(
        name = "tenancy.revoke_trusted_document",
        skip_all,
        err(level = "debug")
    )]
    pub async fn revoke_trusted_document(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        hash: DocumentHash,
    ) -> Result<TrustedDocument> {
        permit.ensure(tx, ResourceType::ApiKey, Action::Delete, None)?;
        let Some(row) = live_row(tx, hash).await? else {
            return Err(Error::NotFound {
                entity: "trusted document",
            });
        };
        let now = self.clock.now();
        trusted_document::Entity::update_many()
            .col_expr(trusted_document::Column::RevokedAt, Expr::value(now))
            .filter(trusted_document::Column::OrganizationId.eq(row.organization_id))
            .filter(trusted_document::Column::Id.eq(row.id))
            .exec(tx.conn())
            .await?;
        self.audit
            .record(
                tx,
                NewEvent::new("trusted_document.revoked", "trusted_document", Some(row.id)).change(
                    "document_id",
                    Some(hash.to_string()),
                    None::<String>,
                ),
            )
            .await?;
        from_row(trusted_document::Model {
            revoked_at: Some(now),
            ..row
        })
    }

    /// The organization's live document with this hash, for running it (the caller is
    /// the organization's, as entering it checked).
    pub async fn live_trusted_document(
        &self,
        tx: &TenantTx,
        hash: DocumentHash,
    ) -> Result<Option<TrustedDocument>> {
        live_row(tx, hash).await?.map(from_row).transpose()
    }

    /// The platform's document with this hash (its own apps'), as `(name, body)`.
    pub async fn platform_trusted_document(
        &self,
        conn: &impl ConnectionTrait,
        hash: DocumentHash,
    ) -> Result<Option<String>> {
        Ok(platform_trusted_document::Entity::find_by_id(hash.to_hex())
            .one(conn)
            .await?
            .map(|row| row.body))
    }

    /// Imports the platform's own documents (an operator's action, as the owner role):
    /// new ones are added, known ones left as they are. How many were new.
    pub async fn import_platform_trusted_documents(
        &self,
        operations: &[ManifestOperation],
    ) -> Result<usize> {
        let now = self.clock.now();
        let mut added = 0;
        for operation in operations {
            let inserted =
                platform_trusted_document::Entity::insert(platform_trusted_document::ActiveModel {
                    hash: Set(operation.hash.to_hex()),
                    name: Set(operation.name.clone()),
                    operation_type: Set(operation.operation_type.as_str().to_owned()),
                    body: Set(operation.body.clone()),
                    created_at: Set(now),
                })
                .on_conflict(
                    OnConflict::column(platform_trusted_document::Column::Hash)
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(self.db.conn())
                .await?;
            added += usize::from(inserted > 0);
        }
        Ok(added)
    }

    /// Whether the key may run trusted documents only (fixed when it is made).
    pub async fn key_runs_trusted_documents_only(
        &self,
        tx: &TenantTx,
        key: ApiKeyId,
    ) -> Result<bool> {
        let row = tx
            .select::<api_key::Entity>()
            .filter(api_key::Column::Id.eq(key.as_uuid()))
            .one(tx.conn())
            .await?
            .ok_or(Error::InvalidToken)?;
        Ok(row.trusted_documents_only)
    }
}

async fn live_row(tx: &TenantTx, hash: DocumentHash) -> Result<Option<trusted_document::Model>> {
    Ok(tx
        .select::<trusted_document::Entity>()
        .filter(trusted_document::Column::Hash.eq(hash.to_hex()))
        .filter(trusted_document::Column::RevokedAt.is_null())
        .one(tx.conn())
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(operations: serde_json::Value) -> serde_json::Value {
        json!({"format": MANIFEST_FORMAT, "version": 1, "operations": operations})
    }

    fn operation(name: &str, body: &str) -> serde_json::Value {
        json!({"id": DocumentHash::of(body).to_hex(), "name": name, "type": "query", "body": body})
    }

    #[test]
    fn a_hash_reads_back_in_either_case_and_prints_in_both_forms() {
        let hash = DocumentHash::of("{ __typename }");
        assert_eq!(DocumentHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(
            DocumentHash::from_hex(&hash.to_hex().to_uppercase()),
            Some(hash)
        );
        assert_eq!(hash.to_string(), format!("sha256:{}", hash.to_hex()));
        for bad in ["", "ab", &"g".repeat(64), &"a".repeat(63), &"é".repeat(32)] {
            assert_eq!(DocumentHash::from_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_manifest_is_read_with_its_ids_checked() {
        let read = read_manifest(&manifest(json!([
            operation("A", "query A { __typename }"),
            operation("A", "query A { __typename }"),
            {"id": DocumentHash::of("mutation B { logOut }").to_hex(), "name": "B", "type": "mutation", "body": "mutation B { logOut }"},
        ])))
        .unwrap();
        assert_eq!(read.len(), 2, "a repeated operation counts once");
        assert_eq!(read[1].operation_type, TrustedOperationType::Mutation);
        assert_eq!(read[0].hash, DocumentHash::of("query A { __typename }"));
    }

    #[test]
    fn a_bad_manifest_is_refused_with_where() {
        let wrong_id = json!([{"id": DocumentHash::of("x").to_hex(), "name": "A", "type": "query", "body": "query A { a }"}]);
        let cases = [
            (json!([]), "operations must list"),
            (
                json!({"format": "other", "version": 1, "operations": []}),
                "format",
            ),
            (wrong_id, "operations[0].id is not the SHA-256"),
            (
                json!([{"id": "zz", "name": "A", "type": "query", "body": "q"}]),
                "operations[0].id must be",
            ),
            (
                json!([{"id": DocumentHash::of("subscription S { a }").to_hex(), "name": "S", "type": "subscription", "body": "subscription S { a }"}]),
                "operations[0].type",
            ),
            (
                json!([operation("A b", "query A { a }")]),
                "operations[0].name",
            ),
            (json!([operation("A", "query A { a }\0")]), "NUL"),
            (
                json!([operation("A", &"x".repeat(MAX_TRUSTED_DOCUMENT_BYTES + 1))]),
                "operations[0].body",
            ),
        ];
        for (input, expected) in cases {
            let input = if input.is_array() {
                manifest(input)
            } else {
                input
            };
            let error = read_manifest(&input).unwrap_err().to_string();
            assert!(error.contains(expected), "{error} (expected {expected})");
        }
        let many: Vec<_> = (0..=MAX_MANIFEST_OPERATIONS)
            .map(|i| operation(&format!("Q{i}"), &format!("query Q{i} {{ a }}")))
            .collect();
        assert!(read_manifest(&manifest(json!(many))).is_err());
    }
}
