//! The database handle. SQLite is the embedded default for trying the platform out;
//! PostgreSQL is production, where Row-Level Security backs the tenant boundary.

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which database engine the handle talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Whether a transaction may write. On SQLite a writing transaction takes the write lock
/// up front (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of one
/// failing when it upgrades a read lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// Reads only.
    Read,
    /// Reads and writes.
    Write,
}

/// A pooled database connection.
#[derive(Debug, Clone)]
pub struct Db {
    conn: DatabaseConnection,
    backend: Backend,
    /// SQL statements executed through this handle and its transactions (BEGIN and
    /// COMMIT excluded): what the N+1 tests count.
    statements: Arc<AtomicU64>,
    /// SQLite has one writer: this process's write transactions queue here, in order,
    /// instead of in SQLite's busy handler, which sleeps (up to 100 ms a try) while the
    /// lock is held.
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// How long a write transaction waits in the queue before it goes to SQLite's own lock
/// (a task that already holds a write transaction and opens another would otherwise
/// wait for itself forever; SQLite's busy timeout turns that into an error).
const WRITER_QUEUE_WAIT: Duration = Duration::from_secs(10);

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). SQLite files are created when
    /// missing, with foreign keys on and write-ahead logging.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbErr> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbErr::Custom(format!(
                "unsupported DATABASE_URL scheme (expected sqlite: or postgres:): {}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let mut options = ConnectOptions::new(url);
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        let mut conn = Database::connect(options).await?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        conn.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        if backend == Backend::Sqlite {
            conn.execute_unprepared("PRAGMA journal_mode = WAL;")
                .await?;
            conn.execute_unprepared("PRAGMA foreign_keys = ON;").await?;
        }
        Ok(Self {
            conn,
            backend,
            statements,
            writer: Arc::default(),
        })
    }

    /// Wraps an existing connection (tests, tools).
    pub fn from_connection(conn: DatabaseConnection) -> Self {
        let backend = match conn.get_database_backend() {
            DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        };
        Self {
            conn,
            backend,
            statements: Arc::new(AtomicU64::new(0)),
            writer: Arc::default(),
        }
    }

    /// SQL statements executed so far through a handle made by [`Db::connect`] (its
    /// clones share the count; BEGIN and COMMIT are not counted).
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The engine behind this handle.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw connection, for tables that belong to no organization (users, sessions).
    /// Tenant tables are reached through a `TenantTx` instead.
    pub fn conn(&self) -> &DatabaseConnection {
        &self.conn
    }

    /// Begins a transaction that is not bound to an organization.
    pub async fn begin(&self, mode: TxMode) -> Result<DatabaseTransaction, DbErr> {
        match (self.backend, mode) {
            (Backend::Sqlite, TxMode::Write) => {
                self.conn
                    .begin_with_options(TransactionOptions {
                        isolation_level: None,
                        access_mode: None,
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    })
                    .await
            }
            _ => self.conn.begin().await,
        }
    }

    /// A place in this process's queue of SQLite writers (`None` on PostgreSQL, for
    /// reads, or when the queue did not move for [`WRITER_QUEUE_WAIT`]). Held until the
    /// write transaction ends.
    pub(crate) async fn queue_writer(
        &self,
        mode: TxMode,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        if self.backend != Backend::Sqlite || mode != TxMode::Write {
            return None;
        }
        tokio::time::timeout(WRITER_QUEUE_WAIT, self.writer.clone().lock_owned())
            .await
            .ok()
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), DbErr> {
        self.conn.ping().await
    }
}

/// Raw SQL written once with PostgreSQL's numbered placeholders (`$1`, `$2`, …), for
/// `backend`: SQLite takes the same numbers as `?1`, `?2`, ….
pub fn numbered(backend: DbBackend, sql: &str) -> String {
    if backend == DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod numbered_tests {
    use super::*;

    #[test]
    fn numbered_placeholders_become_sqlites() {
        let sql = "SELECT 1 FROM t WHERE a = $1 AND b IN ($2, $10) AND c = '$x'";
        assert_eq!(numbered(DbBackend::Postgres, sql), sql);
        assert_eq!(
            numbered(DbBackend::Sqlite, sql),
            "SELECT 1 FROM t WHERE a = ?1 AND b IN (?2, ?10) AND c = '$x'"
        );
    }
}
