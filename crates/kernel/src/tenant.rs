//! [`TenantTx`]: one database transaction bound to one organization. Tenant data is only
//! reachable through it. On PostgreSQL opening it sets `app.org_id` for the transaction
//! (`set_config(…, true)` is `SET LOCAL`), so Row-Level Security confines every statement
//! to that organization and a pooled connection never carries the setting to the next
//! request. On SQLite, repositories start every query from [`TenantTx::select`], which
//! adds the organization filter.

use crate::db::{Backend, Db, TxMode};
use crate::id::OrgId;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter, Select,
    Statement,
};
use std::sync::Arc;

/// Proof that the caller may open a tenant transaction. Only the `tenancy` crate creates
/// one, after it has verified a membership, an API key or an invitation; a test in
/// `tests/` fails when any other crate names the constructor.
#[derive(Debug)]
pub struct TenantOpener {
    _private: (),
}

impl TenantOpener {
    /// For the `tenancy` crate only (checked by `tests/api/boundary_source.rs`).
    #[doc(hidden)]
    pub const fn issued_by_tenancy() -> Self {
        Self { _private: () }
    }
}

/// An entity whose rows belong to one organization.
pub trait TenantScoped: EntityTrait {
    /// The `organization_id` column.
    fn organization_column() -> Self::Column;
}

/// One request's turn at the database: the request's tenant transactions take turns
/// (one open at a time) instead of each taking a connection from the shared pool, so no
/// request holds more than one connection however many fields it asks for at once.
#[derive(Debug, Clone)]
pub struct RequestTurn(Arc<tokio::sync::Semaphore>);

impl Default for RequestTurn {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(1)))
    }
}

/// A request's turn, held (dropped) until the transaction that took it ends.
#[derive(Debug)]
pub struct Turn {
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl RequestTurn {
    /// Waits for the request's other transaction, if one is open, to end.
    pub async fn take(&self) -> Turn {
        // The semaphore is never closed: acquiring only waits.
        Turn {
            _permit: self.0.clone().acquire_owned().await.ok(),
        }
    }
}

/// A transaction scoped to one organization.
#[derive(Debug)]
pub struct TenantTx {
    org: OrgId,
    mode: TxMode,
    txn: DatabaseTransaction,
    /// SQLite writers' place in the queue; released after the transaction ends (fields
    /// drop in order).
    _writer: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// The request's turn at the database, released after the transaction ends.
    _turn: Option<Turn>,
    /// Counted among the open tenant transactions until dropped.
    _open: crate::db::OpenTransaction,
    /// Facts read once in this transaction (one value per type), e.g. the policy
    /// version: later reads in it reuse them instead of asking the database again.
    memo: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send + Sync>>>,
    /// What to do once the transaction has committed (never after a rollback).
    after_commit: AfterCommit,
}

/// Work that waits for a commit: see [`TenantTx::after_commit`].
#[derive(Default)]
struct AfterCommit(std::sync::Mutex<Vec<Box<dyn FnOnce() + Send + Sync>>>);

impl std::fmt::Debug for AfterCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = self.0.lock().map_or(0, |w| w.len());
        write!(f, "AfterCommit({waiting})")
    }
}

impl TenantTx {
    /// Begins the organization's transaction and, on PostgreSQL, binds RLS to it (and
    /// makes a [`TxMode::Read`] transaction read-only) in one statement.
    pub async fn open(
        db: &Db,
        org: OrgId,
        mode: TxMode,
        _opener: TenantOpener,
    ) -> Result<Self, DbErr> {
        let tx = Self::open_binding_in_first_statement(db, org, mode, _opener).await?;
        if db.backend() == Backend::Postgres {
            tx.txn
                .execute_raw(Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    format!(
                        "SELECT set_config('app.org_id', $1, true){}",
                        Self::read_only_column(mode)
                    ),
                    [org.to_string().into()],
                ))
                .await?;
        }
        Ok(tx)
    }

    /// Begins the organization's transaction without binding RLS to it on PostgreSQL:
    /// for a caller whose first statement binds it itself (tenancy's
    /// `enter_organization`, which sets `app.org_id` and reads the caller's standing in
    /// one round trip). Until bound, the transaction sees no tenant row (fail closed).
    /// That statement must also select [`TenantTx::read_only_column`] for `mode`, which
    /// [`TenantTx::end`] relies on.
    pub async fn open_binding_in_first_statement(
        db: &Db,
        org: OrgId,
        mode: TxMode,
        _opener: TenantOpener,
    ) -> Result<Self, DbErr> {
        let open = db.count_open_transaction();
        let writer = db.queue_writer(mode).await;
        let txn = db.begin(mode).await?;
        Ok(Self {
            org,
            mode,
            txn,
            _writer: writer,
            _turn: None,
            _open: open,
            memo: std::sync::Mutex::default(),
            after_commit: AfterCommit::default(),
        })
    }

    /// Holds the request's `turn` until this transaction ends.
    pub fn holding(mut self, turn: Turn) -> Self {
        self._turn = Some(turn);
        self
    }

    /// The value of type `T` remembered in this transaction, if any.
    pub fn remembered<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        let memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        memo.iter()
            .find_map(|value| value.downcast_ref::<T>())
            .cloned()
    }

    /// Remembers `value` for the rest of this transaction (replacing one of its type).
    pub fn remember<T: Send + Sync + 'static>(&self, value: T) {
        let mut memo = self.memo.lock().unwrap_or_else(|p| p.into_inner());
        memo.retain(|held| !held.is::<T>());
        memo.push(Box::new(value));
    }

    /// Runs `then` once this transaction has committed, and not at all if it rolls back
    /// or is dropped: for telling others about a change only when it exists (e.g. the
    /// audit sealer about an event waiting to be chained). `then` must be quick; it runs
    /// on the committing task.
    pub fn after_commit(&self, then: impl FnOnce() + Send + Sync + 'static) {
        self.after_commit
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(then));
    }

    /// The organization this transaction is bound to.
    pub fn org_id(&self) -> OrgId {
        self.org
    }

    /// The underlying transaction, for inserts and updates whose rows carry `org_id()`.
    pub fn conn(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// A raw statement for this transaction's engine, written with PostgreSQL's `$n`
    /// placeholders (numbered for SQLite). Raw SQL on a tenant table names
    /// `organization_id` itself: only [`TenantTx::select`] adds it.
    pub fn statement(&self, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        let backend = self.txn.get_database_backend();
        Statement::from_sql_and_values(backend, crate::numbered(backend, sql), values)
    }

    /// `SELECT … FROM E WHERE organization_id = <this organization>`: where every
    /// repository query on a tenant table starts.
    pub fn select<E: TenantScoped>(&self) -> Select<E> {
        E::find().filter(E::organization_column().eq(self.org.as_uuid()))
    }

    /// Serializes transactions that name the same `key` until this one ends (a
    /// transaction-scoped advisory lock on PostgreSQL). On SQLite a writing transaction
    /// already holds the database lock, so nothing is needed.
    pub async fn lock(&self, key: &str) -> Result<(), DbErr> {
        if self.txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    [key.into()],
                ))
                .await?;
        }
        Ok(())
    }

    /// Commits the change.
    pub async fn commit(self) -> Result<(), DbErr> {
        let Self {
            txn,
            _writer,
            _turn,
            after_commit,
            ..
        } = self;
        let committed = txn.commit().await;
        drop(_writer);
        drop(_turn);
        if committed.is_ok() {
            for then in after_commit
                .0
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
            {
                then();
            }
        }
        committed
    }

    /// What the first statement of a PostgreSQL transaction in `mode` selects besides its
    /// own columns: for a read, `set_config('transaction_read_only', 'on', true)`, so a
    /// read transaction that tried to write would fail instead of its write being lost by
    /// [`TenantTx::end`]. (Turning read-only on is allowed at any point of a
    /// transaction; only turning it off must come before the first query.)
    pub const fn read_only_column(mode: TxMode) -> &'static str {
        match mode {
            TxMode::Read => ", set_config('transaction_read_only', 'on', true) AS read_only",
            TxMode::Write => "",
        }
    }

    /// Whether this transaction may write.
    pub fn mode(&self) -> TxMode {
        self.mode
    }

    /// Ends the transaction: a write commits. On PostgreSQL, where a read transaction is
    /// read-only, a read is dropped without waiting for the server: its `ROLLBACK` (which
    /// for a transaction that wrote nothing is its commit) is queued on the connection
    /// and goes out with the check the pool makes when the connection returns to it, so
    /// the request saves a round trip. A read on SQLite (whose driver settles a dropped
    /// transaction only later) is committed.
    pub async fn end(self) -> Result<(), DbErr> {
        if self.mode == TxMode::Read
            && self.txn.get_database_backend() == sea_orm::DbBackend::Postgres
        {
            drop(self);
            return Ok(());
        }
        self.commit().await
    }

    /// Rolls the change back (dropping the transaction does the same).
    pub async fn rollback(self) -> Result<(), DbErr> {
        let Self {
            txn,
            _writer,
            _turn,
            ..
        } = self;
        let rolled_back = txn.rollback().await;
        drop(_writer);
        drop(_turn);
        rolled_back
    }
}
