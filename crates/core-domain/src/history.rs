//! A document's history, a page at a time: its versions (newest first) and its review
//! decisions (oldest first). A page of documents reads the same page of each one's
//! history in one query (a window per document), so a long history is never read whole.

use crate::DocumentService;
use crate::documents::{review_from_row, version_from_row};
use crate::entity::{document_review, document_version};
use crate::error::Result;
use crate::model::{DocumentVersion, Review};
use authz::{Action, Permit, ResourceType};
use kernel::{DocumentId, Page, PageRequest, TenantTx};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A version's place in its document's history, as a page cursor carries it.
pub fn version_key(version: u32) -> Uuid {
    Uuid::from_u128(u128::from(version))
}

fn version_of_key(key: Uuid) -> i64 {
    i64::try_from(key.as_u128()).unwrap_or(i64::MAX)
}

/// How one kind of history row is paged.
struct Paging {
    table: &'static str,
    /// The column rows are ordered by within a document.
    key: &'static str,
    /// Whether that order is descending (newest version first).
    descending: bool,
}

const VERSIONS: Paging = Paging {
    table: "document_versions",
    key: "version",
    descending: true,
};

const REVIEWS: Paging = Paging {
    table: "document_reviews",
    key: "id",
    descending: false,
};

impl Paging {
    /// Up to `page.limit + 1` rows of each of `documents` in the page's direction, after
    /// its bounds; ordered by document, then position.
    fn statement(
        &self,
        backend: DbBackend,
        tx: &TenantTx,
        documents: &[DocumentId],
        page: &PageRequest,
        bound: impl Fn(Uuid) -> Value,
    ) -> Statement {
        let mut values: Vec<Value> = vec![tx.org_id().as_uuid().into()];
        let placeholder = |value: Value, values: &mut Vec<Value>| {
            values.push(value);
            format!("${}", values.len())
        };
        let ids: Vec<String> = documents
            .iter()
            .map(|id| placeholder((*id).into(), &mut values))
            .collect();
        // Reading from the end of the order flips it.
        let descending = self.descending != page.from_end;
        let (key, mut bounds) = (self.key, String::new());
        let (after, before) = if self.descending {
            ("<", ">")
        } else {
            (">", "<")
        };
        if let Some(cursor) = page.after {
            let at = placeholder(bound(cursor), &mut values);
            bounds.push_str(&format!(" AND {key} {after} {at}"));
        }
        if let Some(cursor) = page.before {
            let at = placeholder(bound(cursor), &mut values);
            bounds.push_str(&format!(" AND {key} {before} {at}"));
        }
        let limit = i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX);
        let limit = placeholder(limit.into(), &mut values);
        let sql = format!(
            "SELECT * FROM (SELECT h.*, ROW_NUMBER() OVER (PARTITION BY document_id ORDER BY {key} {order}) AS place \
             FROM {table} h WHERE organization_id = $1 AND document_id IN ({ids}){bounds}) paged \
             WHERE place <= {limit} ORDER BY document_id, place",
            table = self.table,
            order = if descending { "DESC" } else { "ASC" },
            ids = ids.join(", "),
        );
        Statement::from_sql_and_values(backend, kernel::numbered(backend, &sql), values)
    }
}

/// Rows (ordered by document, then position) as one page per document; documents
/// without rows get an empty page.
fn pages<T>(
    documents: &[DocumentId],
    rows: Vec<T>,
    document_of: fn(&T) -> DocumentId,
    page: &PageRequest,
) -> BTreeMap<DocumentId, Page<T>> {
    let mut grouped: BTreeMap<DocumentId, Vec<T>> =
        documents.iter().map(|id| (*id, Vec::new())).collect();
    for row in rows {
        grouped.entry(document_of(&row)).or_default().push(row);
    }
    grouped
        .into_iter()
        .map(|(id, rows)| (id, Page::from_overfetch(rows, page)))
        .collect()
}

impl DocumentService {
    /// A page of a document's versions, newest first.
    pub async fn versions(
        &self,
        tx: &TenantTx,
        permit: &Permit,
        id: DocumentId,
        page: &PageRequest,
    ) -> Result<Page<DocumentVersion>> {
        permit.ensure(tx, ResourceType::Document, Action::Read, Some(id.as_uuid()))?;
        let mut pages = self.versions_of(tx, &[id], page).await?;
        Ok(pages
            .remove(&id)
            .unwrap_or_else(|| Page::from_overfetch(Vec::new(), page)))
    }

    /// The same page of the versions of each of `documents`, newest first, in one query.
    /// The caller has already been allowed to read those documents (nested fields).
    pub async fn versions_of(
        &self,
        tx: &TenantTx,
        documents: &[DocumentId],
        page: &PageRequest,
    ) -> Result<BTreeMap<DocumentId, Page<DocumentVersion>>> {
        let backend = tx.conn().get_database_backend();
        let statement =
            VERSIONS.statement(backend, tx, documents, page, |k| version_of_key(k).into());
        let rows = document_version::Model::find_by_statement(statement)
            .all(tx.conn())
            .await?;
        let versions = rows
            .into_iter()
            .map(version_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(pages(
            documents,
            versions,
            |v: &DocumentVersion| v.document_id,
            page,
        ))
    }

    /// The same page of the review decisions on each of `documents`, oldest first, in one
    /// query. The caller has already been allowed to read those documents.
    pub async fn reviews_of(
        &self,
        tx: &TenantTx,
        documents: &[DocumentId],
        page: &PageRequest,
    ) -> Result<BTreeMap<DocumentId, Page<Review>>> {
        let backend = tx.conn().get_database_backend();
        let statement = REVIEWS.statement(backend, tx, documents, page, Value::from);
        let rows = document_review::Model::find_by_statement(statement)
            .all(tx.conn())
            .await?;
        let reviews = rows
            .into_iter()
            .map(review_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(pages(documents, reviews, |r: &Review| r.document_id, page))
    }

    /// The approvals that count now on each of `documents` (those of its current review
    /// round: at most the project's required number), in one query.
    pub async fn approvals_of(
        &self,
        tx: &TenantTx,
        documents: &[DocumentId],
    ) -> Result<Vec<Review>> {
        let backend = tx.conn().get_database_backend();
        let mut values: Vec<Value> = vec![
            tx.org_id().as_uuid().into(),
            sea_orm::ActiveEnum::to_value(&crate::model::ReviewDecision::Approved).into(),
        ];
        let ids: Vec<String> = documents
            .iter()
            .map(|id| {
                values.push((*id).into());
                format!("${}", values.len())
            })
            .collect();
        let sql = format!(
            "SELECT r.* FROM document_reviews r JOIN documents d \
             ON d.organization_id = r.organization_id AND d.id = r.document_id \
             AND d.review_round = r.review_round \
             WHERE r.organization_id = $1 AND r.decision = $2 AND r.document_id IN ({}) \
             ORDER BY r.id",
            ids.join(", ")
        );
        let statement =
            Statement::from_sql_and_values(backend, kernel::numbered(backend, &sql), values);
        document_review::Model::find_by_statement(statement)
            .all(tx.conn())
            .await?
            .into_iter()
            .map(review_from_row)
            .collect()
    }
}
