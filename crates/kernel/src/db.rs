//! The database handle. SQLite is the embedded default for trying the platform out;
//! PostgreSQL is production, where Row-Level Security backs the tenant boundary.

use crate::error::ErrorCode;
use sea_orm::sqlx;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, RuntimeErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use std::future::Future;
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
    /// Connections the pool closed because they came back inside a transaction.
    stale_closed: Arc<AtomicU64>,
    /// Tenant transactions open now.
    open_tenant_transactions: Arc<AtomicU64>,
    /// Tenant transactions begun so far (what the one-unit-of-work tests count).
    tenant_transactions_begun: Arc<AtomicU64>,
    /// The pool's size: how many lost connections a `BEGIN` may meet in a row.
    max_connections: u32,
}

/// Counts a tenant transaction as open until it is dropped.
#[derive(Debug)]
pub(crate) struct OpenTransaction(Arc<AtomicU64>);

impl Drop for OpenTransaction {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

tokio::task_local! {
    /// Statements executed by the current task, when it counts them.
    static TASK_STATEMENTS: Arc<AtomicU64>;
    /// Set while the current task is background work (see [`in_background`]).
    static BACKGROUND: ();
}

/// Runs `future` as the server's background work (the job worker, the audit sealer,
/// timers): its statements are left out of [`Db::statements_executed`], which measures
/// what requests and commands cost. Tasks it spawns must be wrapped again.
pub async fn in_background<F: Future>(future: F) -> F::Output {
    BACKGROUND.scope((), future).await
}

/// Runs `future`, adding each SQL statement it executes through a [`Db`] (BEGIN and
/// COMMIT excluded) to `counter`, whatever else runs concurrently. Work the future hands
/// to other tasks is not counted.
pub async fn count_statements<F: Future>(counter: Arc<AtomicU64>, future: F) -> F::Output {
    TASK_STATEMENTS.scope(counter, future).await
}

/// PostgreSQL ends a session that sits inside a transaction this long with nothing
/// running: the server's own backstop should a connection ever be lost with its
/// transaction open (no request runs that long: see the gateway's request deadline).
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

/// A PostgreSQL connection idle in the pool for less than this is handed out unchecked:
/// the pool checked it when it came back (see [`pg_release_check`]), and a connection
/// that died since is met by the `BEGIN` of [`Db::begin`], which then takes another. One
/// idle longer is checked first (as PgBouncer's `server_check_delay`), for the callers
/// that use the pool without a transaction.
const CHECK_IDLE_CONNECTION_AFTER: Duration = Duration::from_secs(1);

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
        let stale_closed = Arc::new(AtomicU64::new(0));
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            // Replaced by `pg_release_check` and `pg_probe` (an embedded SQLite
            // needs no ping).
            .test_before_acquire(false)
            .sqlx_logging(false);
        // A PostgreSQL connection goes back to the pool only outside any transaction,
        // as its driver counts them and as the server reports (checked on its way back,
        // off the request's path: see `pg_release_check`). SQLite's driver counts
        // transactions in its worker thread, which has processed a dropped transaction's
        // rollback only once the connection is back: it is checked on the way out instead.
        let closed = stale_closed.clone();
        options.map_sqlx_postgres_pool_opts(move |pool| {
            let closed = closed.clone();
            pool.after_release(move |conn, _| {
                let closed = closed.clone();
                Box::pin(async move { pg_release_check(conn, &closed).await })
            })
        });
        let closed = stale_closed.clone();
        options.map_sqlx_postgres_before_acquire(move |conn, meta| {
            let closed = closed.clone();
            Box::pin(async move {
                if meta.idle_for < CHECK_IDLE_CONNECTION_AFTER {
                    return Ok(true);
                }
                pg_probe(conn, &closed).await
            })
        });
        options.map_sqlx_postgres_opts(|connect| {
            connect.options([(
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_TIMEOUT,
            )])
        });
        let closed = stale_closed.clone();
        options.map_sqlx_sqlite_before_acquire(move |conn, _| {
            let outside = outside_transaction(conn, &closed);
            Box::pin(async move { Ok(outside) })
        });
        let mut conn = Database::connect(options).await?;
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        conn.set_metric_callback(move |_| {
            if BACKGROUND.try_with(|()| ()).is_ok() {
                return;
            }
            counter.fetch_add(1, Ordering::Relaxed);
            let _ = TASK_STATEMENTS.try_with(|task| task.fetch_add(1, Ordering::Relaxed));
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
            stale_closed,
            open_tenant_transactions: Arc::default(),
            tenant_transactions_begun: Arc::default(),
            max_connections,
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
            stale_closed: Arc::default(),
            open_tenant_transactions: Arc::default(),
            tenant_transactions_begun: Arc::default(),
            max_connections: 1,
        }
    }

    /// Tenant transactions open right now (each holds a connection).
    pub fn open_tenant_transactions(&self) -> u64 {
        self.open_tenant_transactions.load(Ordering::Relaxed)
    }

    /// Tenant transactions begun so far through this handle and its clones (background
    /// work, see [`in_background`], not counted).
    pub fn tenant_transactions_begun(&self) -> u64 {
        self.tenant_transactions_begun.load(Ordering::Relaxed)
    }

    pub(crate) fn count_open_transaction(&self) -> OpenTransaction {
        if BACKGROUND.try_with(|()| ()).is_err() {
            self.tenant_transactions_begun
                .fetch_add(1, Ordering::Relaxed);
        }
        self.open_tenant_transactions
            .fetch_add(1, Ordering::Relaxed);
        OpenTransaction(self.open_tenant_transactions.clone())
    }

    /// Connections the pool has closed because they were released inside a transaction
    /// (zero unless something dropped a transaction in a way the drivers do not track).
    pub fn stale_connections_closed(&self) -> u64 {
        self.stale_closed.load(Ordering::Relaxed)
    }

    /// SQL statements executed so far through a handle made by [`Db::connect`] (its
    /// clones share the count; BEGIN and COMMIT and background work, see
    /// [`in_background`], are not counted).
    pub fn statements_executed(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The pool's connections: how many are open and how many of them are idle.
    pub fn pool_connections(&self) -> (u32, usize) {
        match self.backend {
            Backend::Postgres => {
                let pool = self.conn.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            Backend::Sqlite => {
                let pool = self.conn.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
        }
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
    ///
    /// Cancel-safe: sqlx 0.9's PostgreSQL `BEGIN` is not (it counts the transaction only
    /// after the server's answer, so a future dropped while `BEGIN` is in flight leaves the
    /// session inside a transaction nothing rolls back; sqlx issues #2054, #4393). The
    /// transaction is therefore begun on a task of its own, which a dropped caller does not
    /// cancel; a transaction nobody takes is dropped there and rolled back like any other.
    ///
    /// A pooled connection is handed out without a round trip of its own, so `BEGIN` is
    /// the first to find one that died in the pool (a database restart): the pool closes
    /// it and `BEGIN` is tried on another, at most once per connection the pool holds.
    pub async fn begin(&self, mode: TxMode) -> Result<DatabaseTransaction, DbErr> {
        let options = TransactionOptions {
            isolation_level: None,
            access_mode: None,
            sqlite_transaction_mode: (self.backend == Backend::Sqlite && mode == TxMode::Write)
                .then_some(SqliteTransactionMode::Immediate),
        };
        let mut lost = 0;
        loop {
            let conn = self.conn.clone();
            let begun = tokio::spawn(async move { conn.begin_with_options(options).await })
                .await
                .map_err(|e| DbErr::Custom(format!("beginning a transaction: {e}")))?;
            match begun {
                Err(error) if is_connection_lost(&error) && lost < self.max_connections => {
                    lost += 1;
                    tracing::debug!(%error, "a pooled connection was lost: beginning on another");
                }
                begun => return begun,
            }
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

/// The pool's check of a PostgreSQL connection coming back to it: it must be outside
/// any transaction its driver knows of (one dropped while a statement held it could not
/// queue its rollback) and any the server reports (a `BEGIN` whose caller was dropped
/// before the driver counted it, a raw `BEGIN`). A connection inside one is closed, which
/// rolls the transaction back on the server, instead of running a later request inside
/// it. The probe's round trip also carries a dropped transaction's queued `ROLLBACK`
/// (how a read ends: `TenantTx::end`), after which sqlx pings the connection.
async fn pg_release_check(
    conn: &mut sqlx::PgConnection,
    closed: &AtomicU64,
) -> Result<bool, sqlx::Error> {
    if !outside_transaction(conn, closed) {
        return Ok(false);
    }
    pg_probe(conn, closed).await
}

/// Whether a PostgreSQL connection is alive and, as the server reports, outside any
/// transaction (false: it is closed). Run when a connection comes back to the pool, and
/// again before one idle for a while is handed out.
///
/// The probe is an empty simple query sent as `begin_with`: the driver then reads the
/// transaction status PostgreSQL reports after every command and, where the session is
/// not inside a transaction, answers `BeginFailed`. (A session in a *failed* transaction
/// reports no transaction either; one can only arise from a transaction this check
/// would have seen open when the connection came back.)
async fn pg_probe(conn: &mut sqlx::PgConnection, closed: &AtomicU64) -> Result<bool, sqlx::Error> {
    match sqlx::Connection::begin_with(&mut *conn, "").await {
        Err(sqlx::Error::BeginFailed) => Ok(true),
        Ok(stale) => {
            drop(stale);
            closed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("a pooled connection was inside a transaction: closed");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Whether the driver knows of no open transaction on `conn` (false: it is closed).
fn outside_transaction<C: sqlx::Connection>(conn: &C, closed: &AtomicU64) -> bool {
    if conn.is_in_transaction() {
        closed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("a pooled connection came back with an open transaction: closed");
        return false;
    }
    true
}

/// The code a database failure reaches clients with: `SERVICE_UNAVAILABLE` (retry
/// later) when the database could not be reached or the connection was lost (a restart, a
/// terminated backend, an exhausted pool); `INTERNAL` for everything else.
pub fn db_error_code(error: &DbErr) -> ErrorCode {
    if is_unavailable(error) {
        ErrorCode::ServiceUnavailable
    } else {
        ErrorCode::Internal
    }
}

/// Whether `error` says the connection is gone (its socket closed, its server process
/// ended), as opposed to the pool being exhausted or the statement failing.
fn is_connection_lost(error: &DbErr) -> bool {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = error
    else {
        return false;
    };
    match &**e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match &**e {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                    // 08: connection exception; 57P01-03: shutdown, crash, starting up;
                    // 53300: too many connections.
                    code.starts_with("08")
                        || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
                }),
                _ => false,
            }
        }
        _ => false,
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

#[cfg(test)]
mod background_tests {
    use super::*;

    #[tokio::test]
    async fn background_work_is_left_out_of_the_statement_count() {
        let db = Db::connect("sqlite::memory:", 1).await.unwrap();
        let before = db.statements_executed();
        let select = || sea_orm::Statement::from_string(DbBackend::Sqlite, "SELECT 1");
        db.conn().query_one_raw(select()).await.unwrap();
        assert_eq!(db.statements_executed(), before + 1);
        in_background(db.conn().query_one_raw(select()))
            .await
            .unwrap();
        assert_eq!(db.statements_executed(), before + 1);
    }
}
