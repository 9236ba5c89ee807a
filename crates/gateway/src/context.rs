//! What a resolver knows about its request, and the two steps every resolver starts
//! with: who is calling, and the organization's transaction for them.

use crate::error::{ApiError, GqlResult, ResultExt};
use crate::graphql::ids::GlobalId;
use crate::standing::{Refusal, Standing, WriteClass};
use crate::startup::AppState;
use crate::unit::{OperationUnits, UnitTx};
use async_graphql::Context;
use authz::{Action, Permit, Resource};
use kernel::{OrgId, Principal, RequestTurn, TenantTx, TxMode, UserId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tenancy::{Actor, ClientInfo};

/// How the caller authenticated, if at all.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No `Authorization` header.
    Anonymous,
    /// A header that did not verify (expired, tampered, revoked). Kept so that only the
    /// operations that need a caller fail, with `UNAUTHENTICATED`.
    Invalid,
    /// A credential that verified (see [`tenancy::Caller`]: a person's session is
    /// known to be live only once the request has checked it).
    Caller(tenancy::Caller),
}

/// Per-request facts, built by the HTTP layer.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The caller.
    pub auth: Authentication,
    /// The organization named by `X-Organization-Id` (or the API key's own).
    pub org: Option<OrgId>,
    /// `X-Request-Id` or a fresh UUIDv7.
    pub request_id: String,
    /// Address and user agent.
    pub client: ClientInfo,
    /// Permission decisions already taken in this request (never shared between
    /// requests), so a list does not ask once per row.
    pub decisions: Arc<Mutex<HashMap<(OrgId, &'static str), bool>>>,
    /// The request's turn at the database: its tenant transactions (resolvers' and
    /// loaders') are open one at a time, on one connection of the shared pool.
    pub turn: RequestTurn,
}

impl RequestContext {
    /// The caller as its credential names it, or `UNAUTHENTICATED`: for entering an
    /// organization (which checks the rest) and for [`ContextExt::principal`].
    pub fn caller(&self) -> Result<&tenancy::Caller, ApiError> {
        match &self.auth {
            Authentication::Caller(caller) => Ok(caller),
            Authentication::Anonymous | Authentication::Invalid => Err(ApiError::Unauthenticated),
        }
    }

    /// The verified caller, checked with a statement of its own if the request has not
    /// yet (for handlers outside GraphQL operations, which hold no unit of work);
    /// `InvalidToken` without valid credentials.
    pub async fn verified_principal(
        &self,
        tenancy: &tenancy::TenancyService,
    ) -> tenancy::Result<Principal> {
        match &self.auth {
            Authentication::Caller(caller) => tenancy.verify(caller).await,
            Authentication::Anonymous | Authentication::Invalid => {
                Err(tenancy::Error::InvalidToken)
            }
        }
    }

    /// The principal the credential names, not yet known to be live: for logs and the
    /// request's trace, never to decide access.
    pub fn claimed_principal(&self) -> Option<Principal> {
        self.caller().ok().map(tenancy::Caller::claimed)
    }

    /// A decision taken earlier in this request.
    pub fn decision(&self, key: (OrgId, &'static str)) -> Option<bool> {
        self.decisions.lock().ok()?.get(&key).copied()
    }

    /// Remembers a decision for the rest of this request.
    pub fn remember(&self, key: (OrgId, &'static str), allowed: bool) {
        if let Ok(mut decisions) = self.decisions.lock() {
            decisions.insert(key, allowed);
        }
    }

    /// The active organization, or `BAD_USER_INPUT` when none was named. Credentials come
    /// first: a caller without valid ones is `UNAUTHENTICATED` whatever the header says.
    pub fn active_org(&self) -> Result<OrgId, ApiError> {
        self.caller()?;
        self.org.ok_or(ApiError::NoActiveOrganization)
    }
}

/// Shortcuts for resolvers.
pub trait ContextExt {
    /// The application state.
    fn state(&self) -> &AppState;
    /// The request's facts.
    fn request(&self) -> &RequestContext;
    /// The verified caller, or `UNAUTHENTICATED` (no credentials, or a person's session
    /// that is not live: checked here unless the request has already).
    fn principal(&self) -> impl Future<Output = GqlResult<Principal>> + Send;
    /// The calling person, or an error for anonymous callers and API keys.
    fn user(&self) -> impl Future<Output = GqlResult<UserId>> + Send;
    /// The operation's read unit of `org` for the caller (membership or key verified).
    /// Reads only: a write goes through [`write`], which names its [`WriteClass`].
    fn enter_read(&self, org: OrgId) -> impl Future<Output = GqlResult<(UnitTx, Actor)>> + Send;
    /// Like `enter_read`, but a caller who is not a member gets `None`: for answers where
    /// another organization must look exactly like nothing at all.
    fn enter_read_if_member(
        &self,
        org: OrgId,
    ) -> impl Future<Output = GqlResult<Option<(UnitTx, Actor)>>> + Send;
    /// A permit for the caller to do `action` on `resource` in the transaction's
    /// organization, or `FORBIDDEN`.
    fn permit(
        &self,
        tx: &TenantTx,
        actor: &Actor,
        resource: Resource,
        action: Action,
    ) -> impl Future<Output = GqlResult<Permit>> + Send;
    /// Opens the active organization's read unit for the caller.
    fn enter_active_read(&self) -> impl Future<Output = GqlResult<(UnitTx, Actor)>> + Send;
    /// Opens the active organization's read unit with a permit for the caller to do
    /// `action` on `resource` there, or `FORBIDDEN`.
    fn enter_active_read_permitted(
        &self,
        resource: Resource,
        action: Action,
    ) -> impl Future<Output = GqlResult<(UnitTx, Permit)>> + Send;
}

/// `PAYMENT_REQUIRED` or `CONFLICT` (`reason = "PENDING_DELETION"`) for a write its
/// organization's standing does not admit (see [`WriteClass::refusal`]). The suspension is
/// looked up only for a write it could refuse. (Only an organization's owners enter it
/// pending deletion at all: tenancy refuses everyone else.)
async fn admit(
    ctx: &Context<'_>,
    tx: &TenantTx,
    actor: &Actor,
    mode: TxMode,
    class: WriteClass,
) -> GqlResult<()> {
    if mode != TxMode::Write {
        return Ok(());
    }
    let known = Standing {
        pending_deletion: actor.organization_pending_deletion,
        suspended: false,
    };
    let standing = if class.refusal(known).is_some() || class.runs_while_suspended() {
        known
    } else {
        Standing {
            suspended: ctx.state().subscriptions.payment_required(tx).await.gql()?,
            ..known
        }
    };
    match class.refusal(standing) {
        None => Ok(()),
        Some(Refusal::PendingDeletion) => Err(tenancy::Error::PendingDeletion).gql(),
        Some(Refusal::PaymentRequired) => Err(billing::Error::PaymentRequired).gql(),
    }
}

/// The caller's unit of `org` in this operation (see [`OperationUnits::enter`]); the
/// outer error is the caller's (unauthenticated), the inner one the organization's.
async fn enter_unit(
    ctx: &Context<'_>,
    org: OrgId,
    mode: TxMode,
) -> GqlResult<Result<(UnitTx, Actor), tenancy::Error>> {
    let caller = ctx.request().caller().gql()?;
    Ok(ctx
        .data_unchecked::<OperationUnits>()
        .enter(&ctx.state().tenancy, &ctx.request().turn, caller, org, mode)
        .await)
}

/// `org`'s unit for the caller, admitted for a write of `class`.
async fn enter_as(
    ctx: &Context<'_>,
    org: OrgId,
    mode: TxMode,
    class: WriteClass,
) -> GqlResult<(UnitTx, Actor)> {
    let (tx, actor) = enter_unit(ctx, org, mode).await?.gql()?;
    admit(ctx, &tx, &actor, mode, class).await?;
    Ok((tx, actor))
}

/// Like [`enter_as`], but `None` for a caller who is not a member.
async fn enter_if_member_as(
    ctx: &Context<'_>,
    org: OrgId,
    mode: TxMode,
    class: WriteClass,
) -> GqlResult<Option<(UnitTx, Actor)>> {
    match enter_unit(ctx, org, mode).await? {
        Ok((tx, actor)) => {
            admit(ctx, &tx, &actor, mode, class).await?;
            Ok(Some((tx, actor)))
        }
        Err(tenancy::Error::NotMember) => Ok(None),
        Err(e) => Err(e).gql(),
    }
}

impl ContextExt for Context<'_> {
    fn state(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }

    fn request(&self) -> &RequestContext {
        self.data_unchecked::<RequestContext>()
    }

    async fn principal(&self) -> GqlResult<Principal> {
        let caller = self.request().caller().gql()?;
        if let Some(known) = caller.established() {
            return known.gql();
        }
        // On the operation's open transaction if there is one: never a second connection.
        let tenancy = &self.state().tenancy;
        self.data_unchecked::<OperationUnits>()
            .platform_read(&self.request().turn, async |tx| match tx {
                Some(tx) => tenancy.verify_on(tx.conn(), caller).await,
                None => tenancy.verify(caller).await,
            })
            .await
            .gql()
    }

    async fn user(&self) -> GqlResult<UserId> {
        self.principal()
            .await?
            .user_id()
            .ok_or(ApiError::WrongPrincipal(
                "this operation is for people, not API keys",
            ))
            .gql()
    }

    async fn enter_read(&self, org: OrgId) -> GqlResult<(UnitTx, Actor)> {
        // A read is never refused for the organization's standing: the class is moot.
        enter_as(self, org, TxMode::Read, WriteClass::Ordinary).await
    }

    async fn enter_read_if_member(&self, org: OrgId) -> GqlResult<Option<(UnitTx, Actor)>> {
        enter_if_member_as(self, org, TxMode::Read, WriteClass::Ordinary).await
    }

    async fn permit(
        &self,
        tx: &TenantTx,
        actor: &Actor,
        resource: Resource,
        action: Action,
    ) -> GqlResult<Permit> {
        self.state()
            .authz
            .check(tx, actor.principal, resource, action)
            .await
            .gql()
    }

    async fn enter_active_read(&self) -> GqlResult<(UnitTx, Actor)> {
        let org = self.request().active_org().gql()?;
        self.enter_read(org).await
    }

    async fn enter_active_read_permitted(
        &self,
        resource: Resource,
        action: Action,
    ) -> GqlResult<(UnitTx, Permit)> {
        let (tx, actor) = self.enter_active_read().await?;
        let permit = self.permit(&tx, &actor, resource, action).await?;
        Ok((tx, permit))
    }
}

/// Which organization a unit of work runs in.
#[derive(Clone, Copy)]
pub enum Where<'a> {
    /// The active organization (`X-Organization-Id`, or the API key's own).
    Active,
    /// The organization a record id belongs to. An organization the caller is not a
    /// member of, or one that disagrees with `X-Organization-Id`, is `NOT_FOUND`: the
    /// same answer as for an id that never existed.
    RecordOf(&'a GlobalId),
    /// An organization the caller names (membership verified).
    Org(OrgId),
}

/// One organization's transaction for the caller, inside a unit of work.
pub struct Unit<'a> {
    /// The transaction (bound to the organization).
    pub tx: &'a TenantTx,
    /// The caller as seen by the organization.
    pub actor: &'a Actor,
    /// The services.
    pub state: &'a AppState,
}

impl Unit<'_> {
    /// A permit for the caller to do `action` on `resource`, or `FORBIDDEN`.
    pub async fn permit(&self, resource: Resource, action: Action) -> Result<Permit, ApiError> {
        Ok(self
            .state
            .authz
            .check(self.tx, self.actor.principal, resource, action)
            .await?)
    }
}

/// Enters the organization `at` names for `mode` (a write admitted as `class`).
async fn enter_at(
    ctx: &Context<'_>,
    at: Where<'_>,
    mode: TxMode,
    class: WriteClass,
) -> GqlResult<(UnitTx, Actor)> {
    match at {
        Where::Active => {
            let org = ctx.request().active_org().gql()?;
            enter_as(ctx, org, mode, class).await
        }
        Where::Org(org) => enter_as(ctx, org, mode, class).await,
        Where::RecordOf(id) => {
            let not_found = || tenancy::Error::NotFound { entity: "record" };
            let org = id.org.ok_or_else(not_found).gql()?;
            if ctx.request().org.is_some_and(|active| active != org) {
                return Err(not_found()).gql();
            }
            enter_if_member_as(ctx, org, mode, class)
                .await?
                .ok_or_else(not_found)
                .gql()
        }
    }
}

/// The unit of work of a mutation: enters the organization for writing (if its standing
/// admits a write of `class`), runs `change` in its transaction and commits once if it
/// succeeds (an error rolls everything back), with errors mapped to GraphQL codes in one
/// place.
pub async fn write<T>(
    ctx: &Context<'_>,
    at: Where<'_>,
    class: WriteClass,
    change: impl AsyncFnOnce(Unit<'_>) -> Result<T, ApiError>,
) -> GqlResult<T> {
    let (tx, actor) = enter_at(ctx, at, TxMode::Write, class).await?;
    // A mutation sent with an Idempotency-Key claims it in its change's transaction.
    let claim = ctx.data_opt::<std::sync::Arc<crate::idempotency::IdempotencyClaim>>();
    let claimed = match claim {
        Some(claim) => claim.claim_in(&ctx.state().tenancy, &tx).await?,
        None => false,
    };
    let unit = Unit {
        tx: &tx,
        actor: &actor,
        state: ctx.state(),
    };
    let done = change(unit).await?;
    tx.commit().await.gql()?;
    if let Some(claim) = claim.filter(|_| claimed) {
        claim.committed();
    }
    Ok(done)
}

/// A read in the operation's unit of the organization (shared with every other field
/// and loader of the operation that reads it).
pub async fn read<T>(
    ctx: &Context<'_>,
    at: Where<'_>,
    query: impl AsyncFnOnce(Unit<'_>) -> Result<T, ApiError>,
) -> GqlResult<T> {
    // Boxed: async-graphql moves each field's future, as large as its type's largest
    // field, into a box of its own; a field that read inline would make every other field
    // of its type (a name, a date) as large a move.
    Box::pin(async move {
        let (tx, actor) = enter_at(ctx, at, TxMode::Read, WriteClass::Ordinary).await?;
        let unit = Unit {
            tx: &tx,
            actor: &actor,
            state: ctx.state(),
        };
        Ok(query(unit).await?)
    })
    .await
}
