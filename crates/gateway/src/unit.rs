//! One unit of work per operation and organization.
//!
//! Every field and loader of an operation that reads an organization's data shares one
//! transaction of that organization: it is entered once (membership or key checked
//! once), its statements run one after the other on one connection, and it ends when
//! the operation ends. A write (a mutation field) has a transaction of its own that it
//! commits. The request's turn makes these take turns, so a request never holds more
//! than one pooled connection: a read unit of another organization, or a write, waits
//! until the open read unit is no longer in use and ends it first.
//!
//! An API key's call is metered in a write transaction of its organization before the
//! operation runs ([`OperationUnits::adopt`]): that transaction becomes the operation's
//! read unit, so the call enters its organization once, and it commits (the meter with
//! it) before the answer goes out, or the call is not served.

use kernel::{OrgId, RequestTurn, TenantTx, TxMode};
use std::sync::Arc;
use tenancy::{Actor, Caller, TenancyService};
use tokio::sync::{Mutex, Notify};

/// The units of one operation (cheap to clone: all clones are the same units).
#[derive(Debug, Clone, Default)]
pub struct OperationUnits(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    /// The open read unit, if any.
    slot: Mutex<Option<ReadUnit>>,
    /// Woken whenever a handle on the read unit is dropped.
    released: Notify,
}

#[derive(Debug)]
struct ReadUnit {
    org: OrgId,
    tx: Arc<TenantTx>,
    actor: Actor,
}

/// A transaction as a resolver sees it: the operation's shared read unit, or a write of
/// its own. Dereferences to the [`TenantTx`].
#[derive(Debug)]
pub enum UnitTx {
    /// The operation's read unit of this organization: ended when the operation ends.
    Read(SharedRead),
    /// A write transaction: the resolver commits it.
    Write(TenantTx),
}

/// A handle on the operation's read unit.
#[derive(Debug)]
pub struct SharedRead {
    // Fields drop in order: the reference first, then the notice that it is gone.
    tx: Arc<TenantTx>,
    _released: NotifyOnDrop,
}

/// Tells those waiting for the read unit to be free that a handle is gone.
#[derive(Debug)]
struct NotifyOnDrop(Arc<Inner>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.released.notify_waiters();
    }
}

impl std::ops::Deref for UnitTx {
    type Target = TenantTx;

    fn deref(&self) -> &TenantTx {
        match self {
            Self::Read(read) => &read.tx,
            Self::Write(tx) => tx,
        }
    }
}

impl UnitTx {
    /// Commits a write; a read is ended with its operation, so this only lets go of it.
    pub async fn commit(self) -> Result<(), sea_orm::DbErr> {
        match self {
            Self::Read(_) => Ok(()),
            Self::Write(tx) => tx.commit().await,
        }
    }

    /// Rolls a write back; lets go of a read.
    pub async fn rollback(self) -> Result<(), sea_orm::DbErr> {
        match self {
            Self::Read(_) => Ok(()),
            Self::Write(tx) => tx.rollback().await,
        }
    }
}

impl OperationUnits {
    /// Enters `org` for the caller: the operation's read unit of it (opened on first
    /// use), or a new write transaction.
    pub async fn enter(
        &self,
        tenancy: &TenancyService,
        turn: &RequestTurn,
        caller: &Caller,
        org: OrgId,
        mode: TxMode,
    ) -> Result<(UnitTx, Actor), tenancy::Error> {
        match mode {
            TxMode::Read => self.read(tenancy, turn, caller, org).await,
            TxMode::Write => {
                // The write needs the connection: the read unit ends first, and the turn
                // is taken before another read can open one.
                let turn = self.outside(turn).await?;
                let (tx, actor) = tenancy.enter(caller, org, mode).await?;
                Ok((UnitTx::Write(tx.holding(turn)), actor))
            }
        }
    }

    async fn read(
        &self,
        tenancy: &TenancyService,
        turn: &RequestTurn,
        caller: &Caller,
        org: OrgId,
    ) -> Result<(UnitTx, Actor), tenancy::Error> {
        // The unit of this organization, whether or not others are using it.
        let mut slot = self.0.slot.lock().await;
        if let Some(unit) = slot.as_ref().filter(|unit| unit.org == org) {
            return Ok((self.handle(unit.tx.clone()), unit.actor.clone()));
        }
        drop(slot);
        // Otherwise another organization's unit ends first, once nothing uses it.
        slot = self.idle_slot().await;
        if let Some(unit) = slot.as_ref().filter(|unit| unit.org == org) {
            // Opened by another field while this one waited.
            return Ok((self.handle(unit.tx.clone()), unit.actor.clone()));
        }
        if let Some(idle) = slot.take() {
            end(idle).await?;
        }
        let turn = turn.take().await;
        let (tx, actor) = tenancy.enter(caller, org, TxMode::Read).await?;
        let tx = Arc::new(tx.holding(turn));
        *slot = Some(ReadUnit {
            org,
            tx: tx.clone(),
            actor: actor.clone(),
        });
        Ok((self.handle(tx), actor))
    }

    /// Makes `tx`, a write transaction of `actor`'s organization opened before the
    /// operation runs (in the request's turn), the operation's read unit: its fields read
    /// in it, and it commits when the operation ends (or before a write of the operation
    /// begins), so what it wrote is committed before the answer goes out.
    pub async fn adopt(&self, tx: TenantTx, actor: Actor) {
        let mut slot = self.0.slot.lock().await;
        debug_assert!(slot.is_none(), "a unit was open before the operation ran");
        *slot = Some(ReadUnit {
            org: actor.org_id,
            tx: Arc::new(tx),
            actor,
        });
    }

    /// The slot, locked, once its unit (if any) is no longer in use by any handle.
    async fn idle_slot(&self) -> tokio::sync::MutexGuard<'_, Option<ReadUnit>> {
        loop {
            let released = self.0.released.notified();
            let slot = self.0.slot.lock().await;
            if slot
                .as_ref()
                .is_none_or(|unit| Arc::strong_count(&unit.tx) <= 1)
            {
                return slot;
            }
            drop(slot);
            released.await;
        }
    }

    fn handle(&self, tx: Arc<TenantTx>) -> UnitTx {
        UnitTx::Read(SharedRead {
            tx,
            _released: NotifyOnDrop(self.0.clone()),
        })
    }

    /// Ends the read unit once nothing uses it any more.
    async fn end_read_unit(&self) -> Result<(), sea_orm::DbErr> {
        match self.idle_slot().await.take() {
            Some(idle) => end(idle).await,
            None => Ok(()),
        }
    }

    /// Reads platform-wide tables (users, plans) without a second connection: `read` gets
    /// the open read unit if there is one (these tables are not tenant data, so any
    /// organization's transaction reads them), or `None` to use the pool in the
    /// request's turn.
    pub async fn platform_read<T>(
        &self,
        turn: &RequestTurn,
        read: impl AsyncFnOnce(Option<&TenantTx>) -> T,
    ) -> T {
        // The slot stays locked throughout, so no unit opens (and takes the turn) between
        // finding none and taking the turn.
        let slot = self.0.slot.lock().await;
        match slot.as_ref() {
            Some(unit) => read(Some(&unit.tx)).await,
            None => {
                let _turn = turn.take().await;
                read(None).await
            }
        }
    }

    /// The request's turn for a transaction of its own (a write, or a person's
    /// memberships across organizations): the read unit ends first, once nothing uses it.
    /// Fails only where the unit wrote and could not commit.
    pub async fn outside(&self, turn: &RequestTurn) -> Result<kernel::Turn, sea_orm::DbErr> {
        let mut slot = self.idle_slot().await;
        if let Some(idle) = slot.take() {
            end(idle).await?;
        }
        // Taken under the slot's lock: no unit can open in between.
        Ok(turn.take().await)
    }

    /// Ends the operation's read unit (called when the operation has been answered, and
    /// before the answer goes out). Fails only where the unit wrote and could not commit.
    pub async fn finish(&self) -> Result<(), sea_orm::DbErr> {
        self.end_read_unit().await
    }
}

/// Ends a read unit nobody holds, which releases the request's turn and the connection:
/// one that only read without a round trip of its own, one that wrote (an API key's
/// meter: see [`OperationUnits::adopt`]) by committing it (see [`TenantTx::end`]). Only
/// a write's failure is an error: a read has nothing to lose.
async fn end(unit: ReadUnit) -> Result<(), sea_orm::DbErr> {
    let wrote = unit.tx.mode() == TxMode::Write;
    match Arc::try_unwrap(unit.tx) {
        Ok(tx) => match tx.end().await {
            Err(error) if !wrote => {
                tracing::debug!(%error, "ending a read unit");
                Ok(())
            }
            ended => ended,
        },
        // Unreachable while the slot's lock is held and the count was one; dropping it
        // rolls back when the last holder lets go.
        Err(shared) => {
            drop(shared);
            match wrote {
                true => Err(sea_orm::DbErr::Custom(
                    "a unit that wrote was still in use".into(),
                )),
                false => Ok(()),
            }
        }
    }
}
