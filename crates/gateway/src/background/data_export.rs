//! Data export archives (GDPR Art. 15 and 20), prepared in the background: a zip of one
//! NDJSON file per table and a `manifest.json` (table, rows, SHA-256 of its file).
//!
//! - An organization's export holds every row of it in every table (the same tables its
//!   purge deletes, and its own `organizations` row); audit values stay as stored
//!   (encrypted per person).
//! - A person's export holds what is held about them across every crate: their account,
//!   sessions with addresses, and in each organization they belong to, the rows that
//!   name them (memberships, what they authored, reviewed, granted, invited, created),
//!   and the audit events they caused, decrypted.
//!
//! Credentials (password hashes, token and key digests: the data map's `credentials`
//! category) are never exported. Rows are streamed from the database into the archive;
//! one archive is prepared at a time per process.

use crate::startup::AppState;
use anyhow::Context as _;
use audit::EventFilter;
use futures::TryStreamExt;
use kernel::data_map::Category;
use kernel::{OrgId, PageRequest, TenantTx, UserId};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, JsonValue, Statement, Value};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::PathBuf;
use tenancy::{DataExport, ExportScope};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

/// One archive is prepared at a time in a process: an export reads a whole organization.
static PREPARING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// Audit events read per page for a person's export.
const AUDIT_PAGE: u64 = 100;

/// The rows of an organization that name a person: `(table, column, how it names them)`.
const PERSON_ROWS: &[(&str, &str, Names)] = &[
    ("memberships", "user_id", Names::Id),
    ("projects", "created_by", Names::Id),
    ("documents", "author_id", Names::Id),
    ("document_versions", "edited_by", Names::Id),
    ("document_reviews", "reviewer_id", Names::Id),
    ("invitations", "invited_by", Names::Id),
    ("invitations", "accepted_by", Names::Id),
    ("api_keys", "created_by", Names::Id),
    ("authz_role_assignments", "subject", Names::Subject),
    ("authz_rules", "subject", Names::Subject),
    ("authz_rules", "created_by", Names::Subject),
    ("record_grants", "subject", Names::Subject),
    ("record_grants", "granted_by", Names::Subject),
    ("dpa_acceptances", "accepted_by", Names::Id),
];

/// How a column names a person.
#[derive(Clone, Copy)]
enum Names {
    /// Their user id (a UUID column).
    Id,
    /// A policy subject, `user:<id>`.
    Subject,
}

/// Where export `id`'s archive is.
pub fn archive_path(state: &AppState, id: uuid::Uuid) -> PathBuf {
    state.export_dir.join(format!("{id}.zip"))
}

/// Prepares `export` and records how it ended (a failure is logged by id and recorded
/// without detail; asking again is allowed). An export that is gone meanwhile takes its
/// archive with it.
pub async fn prepare(state: &AppState, export: &DataExport) {
    let Ok(_turn) = PREPARING.acquire().await else {
        return;
    };
    let path = archive_path(state, export.id);
    let outcome = match build(state, export).await {
        Ok(done) => Ok(done),
        Err(e) => {
            tracing::error!(export.id = %export.id, error = ?e, "data export failed");
            remove(&path.with_extension("part"));
            Err("preparing the export failed; ask for a new one".to_owned())
        }
    };
    match state.tenancy.finish_export(export.id, outcome).await {
        Ok(true) => {}
        Ok(false) => {
            remove(&path);
        }
        Err(e) => {
            tracing::error!(export.id = %export.id, error = ?e, "recording a data export failed");
        }
    }
}

/// Deletes a file if it is there (logged when that fails: the next run tries again).
fn remove(path: &std::path::Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::error!(error = %e, "deleting a data export archive failed");
            false
        }
    }
}

/// Deletes the archives and rows of exports whose time is over, and archives whose
/// export is gone (its person erased, its organization purged, a preparation that
/// outlived its export); returns how many exports and archives went.
pub async fn purge_expired(state: &AppState) -> anyhow::Result<u64> {
    let mut purged = 0;
    for export in state.tenancy.expired_exports().await? {
        let path = archive_path(state, export.id);
        if remove(&path) && remove(&path.with_extension("part")) {
            state.tenancy.delete_export(export.id).await?;
            purged += 1;
        }
    }
    let Ok(entries) = std::fs::read_dir(&state.export_dir) else {
        return Ok(purged);
    };
    let known = state.tenancy.export_ids().await?;
    for entry in entries.flatten() {
        let path = entry.path();
        let orphan = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .and_then(|stem| uuid::Uuid::parse_str(stem).ok())
            .is_some_and(|id| !known.contains(&id));
        if orphan && remove(&path) {
            purged += 1;
        }
    }
    Ok(purged)
}

async fn build(state: &AppState, export: &DataExport) -> anyhow::Result<(String, i64)> {
    create_private_dir(&state.export_dir)?;
    let path = archive_path(state, export.id);
    let partial = path.with_extension("part");
    let mut archive = Archive::create(&partial)?;
    match export.scope {
        ExportScope::Organization => {
            let org = export
                .organization
                .context("an organization export without one")?;
            organization(state, org, &mut archive).await?;
        }
        ExportScope::Person => person(state, export.requested_by, &mut archive).await?,
    }
    archive.finish()?;
    std::fs::rename(&partial, &path).context("publishing the archive")?;
    let (sha256, size) = digest(&path)?;
    Ok((sha256, i64::try_from(size).unwrap_or(i64::MAX)))
}

/// The export directory, readable by the server's user alone.
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).context("creating the export directory")
}

/// Every row of `org` in every table.
async fn organization(state: &AppState, org: OrgId, archive: &mut Archive) -> anyhow::Result<()> {
    let tx = state.tenancy.system_read_tx(org).await?;
    let backend = tx.conn().get_database_backend();
    let id: Value = org.as_uuid().into();
    archive
        .table(
            "organizations",
            &tx,
            select(backend, "organizations", "id", 1),
            vec![id.clone()],
        )
        .await?;
    for table in tenancy::PURGED_TABLES {
        archive
            .table(
                table,
                &tx,
                select(backend, table, "organization_id", 1),
                vec![id.clone()],
            )
            .await?;
    }
    tx.rollback().await?;
    Ok(())
}

/// What is held about `user`, across crates and organizations.
async fn person(state: &AppState, user: UserId, archive: &mut Archive) -> anyhow::Result<()> {
    let tx = state.tenancy.system_read_tx(OrgId::PLATFORM).await?;
    let backend = tx.conn().get_database_backend();
    let id: Value = user.as_uuid().into();
    archive
        .table(
            "users",
            &tx,
            select(backend, "users", "id", 1),
            vec![id.clone()],
        )
        .await?;
    archive
        .table(
            "sessions",
            &tx,
            select(backend, "sessions", "user_id", 1),
            vec![id.clone()],
        )
        .await?;
    audit_events(state, &tx, user, "platform", archive).await?;
    tx.rollback().await?;
    let subject = authz::Subject::User(user).as_policy();
    for org in state.tenancy.organization_ids_of(user).await? {
        let tx = state.tenancy.system_read_tx(org).await?;
        let name = format!("organization-{}", org.as_uuid());
        for (table, column, names) in PERSON_ROWS {
            let value: Value = match names {
                Names::Id => user.as_uuid().into(),
                Names::Subject => subject.clone().into(),
            };
            let sql = format!(
                "{} AND {column} = {}",
                select(backend, table, "organization_id", 1),
                placeholder(backend, 2)
            );
            archive
                .table(
                    &format!("{name}/{table}.{column}"),
                    &tx,
                    sql,
                    vec![org.as_uuid().into(), value],
                )
                .await?;
        }
        audit_events(state, &tx, user, &name, archive).await?;
        tx.rollback().await?;
    }
    Ok(())
}

/// The audit events `user` caused in the transaction's chain, decrypted.
async fn audit_events(
    state: &AppState,
    tx: &TenantTx,
    user: UserId,
    prefix: &str,
    archive: &mut Archive,
) -> anyhow::Result<()> {
    let filter = EventFilter {
        actor: Some(format!("user:{user}")),
        ..EventFilter::default()
    };
    let mut entry = archive.begin(&format!("{prefix}/audit_events"))?;
    let mut after = None;
    loop {
        let page = PageRequest {
            after,
            before: None,
            limit: AUDIT_PAGE,
            from_end: false,
        };
        let events = state
            .audit
            .events(tx, &filter, &page, kernel::ListOrder::OldestFirst)
            .await?;
        for event in &events.items {
            archive.row(
                &mut entry,
                &json!({
                    "id": event.id,
                    "seq": event.seq,
                    "occurred_at": event.occurred_at,
                    "action": event.action,
                    "target_type": event.target_type,
                    "target_id": event.target_id,
                    "outcome": event.outcome,
                    "changes": event.changes.iter().map(|c| json!({
                        "field": c.field, "before": c.before, "after": c.after,
                    })).collect::<Vec<_>>(),
                    "ip": event.ip,
                    "user_agent": event.user_agent,
                }),
            )?;
        }
        match (events.has_next, events.items.last()) {
            (true, Some(last)) => after = Some(last.id),
            _ => break,
        }
    }
    archive.end(entry);
    Ok(())
}

/// `SELECT * FROM table WHERE column = <placeholder n>`.
fn select(backend: DbBackend, table: &str, column: &str, n: usize) -> String {
    format!(
        "SELECT * FROM {table} WHERE {column} = {}",
        placeholder(backend, n)
    )
}

fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// An archive being written: one NDJSON entry per table, then the manifest.
struct Archive {
    zip: ZipWriter<std::io::BufWriter<std::fs::File>>,
    manifest: Vec<serde_json::Value>,
    /// `table.column` pairs never exported (credentials).
    withheld: BTreeSet<(&'static str, &'static str)>,
}

/// The file of the archive being written.
struct Entry {
    name: String,
    rows: u64,
    hasher: Sha256,
}

impl Archive {
    fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            // Personal data: readable by the server's user alone.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(path).context("creating the archive")?;
        let withheld = crate::privacy::data_map()
            .into_iter()
            .flat_map(|table| {
                table.columns.iter().filter_map(move |column| {
                    let personal = column.personal?;
                    (personal.category == Category::Credentials)
                        .then_some((table.name, column.name))
                })
            })
            .collect();
        Ok(Self {
            zip: ZipWriter::new(std::io::BufWriter::new(file)),
            manifest: Vec::new(),
            withheld,
        })
    }

    /// Streams the rows `sql` selects into `name.ndjson`, credentials left out.
    async fn table(
        &mut self,
        name: &str,
        tx: &TenantTx,
        sql: String,
        values: Vec<Value>,
    ) -> anyhow::Result<()> {
        let table = name
            .rsplit('/')
            .next()
            .unwrap_or(name)
            .split('.')
            .next()
            .unwrap_or(name);
        let backend = tx.conn().get_database_backend();
        let statement = Statement::from_sql_and_values(backend, sql, values);
        let mut entry = self.begin(name)?;
        let mut stream = JsonValue::find_by_statement(statement)
            .stream(tx.conn())
            .await?;
        while let Some(mut row) = stream.try_next().await? {
            if let Some(object) = row.as_object_mut() {
                object.retain(|column, _| !self.withheld.contains(&(table, column.as_str())));
            }
            self.row(&mut entry, &row)?;
        }
        self.end(entry);
        Ok(())
    }

    /// Starts `name.ndjson`.
    fn begin(&mut self, name: &str) -> anyhow::Result<Entry> {
        // Large: an organization's table may pass 4 GiB.
        let options = SimpleFileOptions::default().large_file(true);
        self.zip.start_file(format!("{name}.ndjson"), options)?;
        Ok(Entry {
            name: name.to_owned(),
            rows: 0,
            hasher: Sha256::new(),
        })
    }

    /// One row as a line of the current file.
    fn row(&mut self, entry: &mut Entry, row: &serde_json::Value) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(row)?;
        line.push(b'\n');
        entry.hasher.update(&line);
        self.zip.write_all(&line)?;
        entry.rows += 1;
        Ok(())
    }

    /// Ends the current file: its line in the manifest.
    fn end(&mut self, entry: Entry) {
        self.manifest.push(json!({
            "table": entry.name,
            "rows": entry.rows,
            "sha256": hex(&entry.hasher.finalize()),
        }));
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.zip
            .start_file("manifest.json", SimpleFileOptions::default())?;
        let manifest = json!({ "format": "ndjson-per-table", "files": self.manifest });
        self.zip
            .write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
        let file = self
            .zip
            .finish()?
            .into_inner()
            .context("flushing the archive")?;
        file.sync_all()?;
        Ok(())
    }
}

/// The file's SHA-256 (hex) and size.
fn digest(path: &std::path::Path) -> anyhow::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::PERSON_ROWS;
    use kernel::data_map::Category;

    #[test]
    fn every_column_that_names_a_person_is_classified_as_their_identity() {
        let map = crate::privacy::data_map();
        for (table, column, _) in PERSON_ROWS {
            let found = map
                .iter()
                .find(|t| t.name == *table)
                .and_then(|t| t.columns.iter().find(|c| c.name == *column))
                .unwrap_or_else(|| panic!("{table}.{column} is not in the data map"));
            assert_eq!(
                found.personal.map(|p| p.category),
                Some(Category::Identity),
                "{table}.{column}"
            );
            assert!(tenancy::PURGED_TABLES.contains(table), "{table}");
        }
    }
}
