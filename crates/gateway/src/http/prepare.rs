//! What one operation runs and whether its caller may: trusted and persisted documents,
//! introspection, idempotency keys, rate limits and an API key's metering.

use super::HttpState;
use super::graphql::{Method, admit_text, is_mutation};
use crate::config::Introspection;
use crate::context::{Authentication, RequestContext};
use crate::error::{request_error, server_error};
use crate::graphql::admission;
use crate::graphql::admission::Refusal;
use crate::rate_limit::Subject;
use crate::startup::AppState;
use crate::wire::{Form, Submitted};
use async_graphql::{Request, ServerError};
use kernel::{ErrorCode, OrgId, Principal};
use std::sync::Arc;

/// Whether the operation's document asks the schema about itself (`__schema`, `__type`:
/// fields of the query root, reached directly or through fragments on it).
fn asks_for_introspection(request: &mut Request) -> bool {
    use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
    fn asks<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        seen: &mut std::collections::HashSet<&'a str>,
    ) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(field) => {
                matches!(field.node.name.node.as_str(), "__schema" | "__type")
            }
            Selection::InlineFragment(inline) => {
                asks(document, &inline.node.selection_set.node, seen)
            }
            Selection::FragmentSpread(spread) => {
                let name = &spread.node.fragment_name.node;
                // Each fragment is walked once (a cycle is refused by validation later;
                // here it just ends the walk).
                if !seen.insert(name.as_str()) {
                    return false;
                }
                document
                    .fragments
                    .get(name)
                    .is_some_and(|fragment| asks(document, &fragment.node.selection_set.node, seen))
            }
        })
    }
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    document.operations.iter().any(|(_, operation)| {
        asks(
            document,
            &operation.node.selection_set.node,
            &mut std::collections::HashSet::new(),
        )
    })
}

/// Whether the caller may introspect under `policy`: `UNAUTHENTICATED` without valid
/// credentials where signing in is required, `FORBIDDEN` (`reason =
/// "INTROSPECTION_DISABLED"`) where it is off.
async fn may_introspect(
    app: &AppState,
    context: &RequestContext,
    policy: Introspection,
) -> Result<(), ServerError> {
    match policy {
        Introspection::All => Ok(()),
        Introspection::Off => Err(introspection_refused()),
        Introspection::SignedIn => match context.verified_principal(&app.tenancy).await {
            Ok(_) => Ok(()),
            Err(tenancy::Error::InvalidToken) => Err(request_error(
                ErrorCode::Unauthenticated,
                "log in (or use an API key) to introspect the schema",
            )),
            Err(e) => Err(server_error(e.into())),
        },
    }
}

/// Settles what one operation runs and whether its caller may: the document found (by
/// id: the platform's or the organization's trusted documents, or a text an APQ client
/// registered) and admitted, refused where the caller may run trusted documents only
/// and sent text, introspection allowed or refused, and an API key's call metered.
/// Answers the request and whether its document introspects.
///
/// An API key does all of it in one transaction of its organization, in the request's
/// turn: entering checks the key (secret, revocation, expiry), the key's restriction and
/// its organization's documents are read there, and the call is recorded as `api_calls`
/// usage (refused with `LIMIT_EXCEEDED` past a hard quota) before the operation runs.
/// For a query that transaction is handed on ([`Prepared::metered`]) to be the
/// operation's unit of work, committed before the answer goes out; a mutation's is
/// committed here (its write needs a transaction of its own). Never skipped: a call that
/// cannot be metered is not served, and a refused call is not metered.
pub(super) async fn prepare(
    state: &HttpState,
    context: &RequestContext,
    Submitted { request, form }: Submitted,
    method: Method,
) -> Result<Prepared, ServerError> {
    let app = &state.app;
    let tenancy_error = |e: tenancy::Error| server_error(e.into());
    let key_call = match (context.caller().ok(), context.org) {
        (Some(caller), Some(org)) => match caller.claimed() {
            Principal::ApiKey { key, .. } => Some((caller, org, key)),
            Principal::User(_) => None,
        },
        _ => None,
    };
    if let Some((caller, org, key)) = key_call {
        // Over its rate: refused before anything runs or is metered (before its
        // organization is even entered, once the plan's rate is known here).
        let cached_rates = state.rate_limits.plan_rates(org);
        if let Some(per_minute) = cached_rates.and_then(|rates| rates.per_api_key) {
            within_rate(state, Subject::ApiKey(key.as_uuid()), per_minute).await?;
        }
        let turn = context.turn.take().await;
        let (tx, actor) = app
            .tenancy
            .enter(caller, org, kernel::TxMode::Write)
            .await
            .map_err(tenancy_error)?;
        let tx = tx.holding(turn);
        app.tenancy
            .note_key_use(&tx, caller)
            .await
            .map_err(tenancy_error)?;
        if cached_rates.is_none() {
            // Read once a minute per organization, in the transaction already open.
            let plan = app
                .subscriptions
                .request_rates(&tx)
                .await
                .map_err(|e| server_error(e.into()))?;
            let rates = state.rate_limits.keep_plan_rates(org, plan);
            if let Some(per_minute) = rates.per_api_key {
                within_rate(state, Subject::ApiKey(key.as_uuid()), per_minute).await?;
            }
        }
        let trusted_only = match app.persisted.key_policy(key) {
            Some(known) => known,
            None => {
                let read = app
                    .tenancy
                    .key_runs_trusted_documents_only(&tx, key)
                    .await
                    .map_err(tenancy_error)?;
                app.persisted.keep_key_policy(key, read);
                read
            }
        };
        let lookup = OrgLookup::In(&tx);
        let apq_scope = Some(key.as_uuid());
        let mut request = resolve(state, request, form, (apq_scope, trusted_only), lookup).await?;
        only_queries_over_get(&mut request, method)?;
        let introspects = asks_for_introspection(&mut request);
        // Entering verified the key: `signed-in` lets it introspect, unless it is
        // restricted to trusted documents (its integration has no need to).
        if introspects && (trusted_only || state.introspection == Introspection::Off) {
            return Err(introspection_refused());
        }
        app.subscriptions
            .meter_api_call(&tx, uuid::Uuid::now_v7())
            .await
            .map_err(|e| server_error(e.into()))?;
        if is_mutation(&mut request) {
            tx.commit().await.map_err(|e| server_error(e.into()))?;
            return Ok(Prepared::new(request, introspects));
        }
        return Ok(Prepared {
            request,
            introspects,
            metered: Some((tx, actor)),
        });
    }
    // A person's rate is the server's: they act across organizations, and the one a
    // request names is not checked yet (its plan must not choose the rate). The token's
    // signature is checked, so the id is theirs.
    if let Some(caller) = context.caller().ok()
        && let Principal::User(user) = caller.claimed()
        && let Some(per_minute) = state.rate_limits.defaults().per_user
    {
        within_rate(state, Subject::User(user.as_uuid()), per_minute).await?;
    }
    let (trusted_only, lookup) = match (&context.auth, context.org) {
        (Authentication::Caller(caller), Some(org)) => {
            (state.trusted_only.users, OrgLookup::Enter(caller, org))
        }
        (Authentication::Caller(_), None) => (state.trusted_only.users, OrgLookup::None),
        _ => (state.trusted_only.anonymous, OrgLookup::None),
    };
    // Texts an APQ client registered are the caller's own (a token's signature is
    // checked, so its id is the caller's); an anonymous caller's are everyone's.
    let apq_scope = context.caller().ok().map(|caller| caller.claimed().id());
    let mut request = resolve(state, request, form, (apq_scope, trusted_only), lookup).await?;
    only_queries_over_get(&mut request, method)?;
    let introspects = asks_for_introspection(&mut request);
    if introspects {
        if trusted_only {
            return Err(introspection_refused());
        }
        may_introspect(app, context, state.introspection).await?;
    }
    Ok(Prepared::new(request, introspects))
}

/// An operation ready to run.
pub(super) struct Prepared {
    pub request: Request,
    /// Whether its document asks for introspection (and may).
    pub introspects: bool,
    /// An API key's query: the transaction that metered the call, still open, for the
    /// operation to read in and commit (see `OperationUnits::adopt`).
    pub metered: Option<(kernel::TenantTx, tenancy::Actor)>,
}

impl Prepared {
    fn new(request: Request, introspects: bool) -> Self {
        Self {
            request,
            introspects,
            metered: None,
        }
    }
}

/// The earlier request with the caller's Idempotency-Key, or a claim for this one: a key
/// belongs to an organization and a caller, so both are needed.
pub(super) async fn idempotent(
    state: &HttpState,
    context: &RequestContext,
    request: &mut Request,
    key: String,
) -> Result<crate::idempotency::Earlier, ServerError> {
    let refused = |message: String| Err(request_error(ErrorCode::BadRequest, message));
    let operation_name = request.operation_name.clone();
    if let Ok(document) = request.parsed_query() {
        for field in root_fields(document, operation_name.as_deref()) {
            if let Some((_, why)) = crate::idempotency::NOT_IDEMPOTENT_MUTATIONS
                .iter()
                .find(|(name, _)| *name == field)
            {
                return refused(format!(
                    "Idempotency-Key is not accepted with {field}: {why}"
                ));
            }
            if field != "__typename" && !crate::idempotency::IDEMPOTENT_MUTATIONS.contains(&field) {
                return refused(format!("Idempotency-Key is not accepted with {field}"));
            }
        }
    }
    let (Ok(caller), Some(org)) = (context.caller(), context.org) else {
        return Err(request_error(
            ErrorCode::BadRequest,
            "Idempotency-Key applies to mutations in an organization: send it with credentials \
             and X-Organization-Id (an API key names its own)",
        ));
    };
    let fingerprint = crate::idempotency::fingerprint(request);
    crate::idempotency::look_up(&state.app, caller, org, key, fingerprint)
        .await
        .map_err(server_error)
}

/// `RATE_LIMITED` (with `retryAfterSeconds`) when `subject` is over `per_minute`.
async fn within_rate(
    state: &HttpState,
    subject: Subject,
    per_minute: std::num::NonZeroU32,
) -> Result<(), ServerError> {
    let Err(wait) = state.rate_limits.check(subject, per_minute).await else {
        return Ok(());
    };
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut refused = request_error(
        ErrorCode::RateLimited,
        format!("more than {per_minute} requests a minute; retry in {seconds} s"),
    );
    if let Some(ext) = refused.extensions.as_mut() {
        ext.set("retryAfterSeconds", seconds);
    }
    Err(refused)
}

/// The names of the root fields the operation selects (through fragments too).
fn root_fields<'a>(
    document: &'a async_graphql::parser::types::ExecutableDocument,
    operation_name: Option<&str>,
) -> Vec<&'a str> {
    use async_graphql::parser::types::{Selection, SelectionSet};
    fn walk<'a>(
        document: &'a async_graphql::parser::types::ExecutableDocument,
        set: &'a SelectionSet,
        seen: &mut Vec<&'a str>,
        names: &mut Vec<&'a str>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => names.push(field.node.name.node.as_str()),
                Selection::InlineFragment(inline) => {
                    walk(document, &inline.node.selection_set.node, seen, names)
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    if let Some(fragment) = document.fragments.get(&spread.node.fragment_name.node)
                    {
                        walk(document, &fragment.node.selection_set.node, seen, names);
                    }
                }
            }
        }
    }
    let operation = document
        .operations
        .iter()
        .find(|(name, _)| match operation_name {
            Some(wanted) => name.map(|n| n.as_str()) == Some(wanted),
            None => true,
        });
    let mut names = Vec::new();
    if let Some((_, operation)) = operation {
        walk(
            document,
            &operation.node.selection_set.node,
            &mut Vec::new(),
            &mut names,
        );
    }
    names
}

/// Where an organization's trusted documents are read: in the caller's transaction
/// already open (an API key's), by entering the organization (a person: membership and
/// session checked), or nowhere (no caller, or no organization named).
enum OrgLookup<'a> {
    In(&'a kernel::TenantTx),
    Enter(&'a tenancy::Caller, OrgId),
    None,
}

/// The request with its document, as `form` names it, admitted.
async fn resolve(
    state: &HttpState,
    mut request: Request,
    form: Form,
    (scope, trusted_only): (Option<uuid::Uuid>, bool),
    lookup: OrgLookup<'_>,
) -> Result<Request, ServerError> {
    let persisted = &state.app.persisted;
    match form {
        Form::Own => Ok(request),
        Form::Text if trusted_only => Err(not_in_list()),
        Form::Text => Ok(request),
        Form::TextWithId(hash) => {
            if trusted_only {
                // Runs if it is a trusted document (the id was checked against the text).
                if find_trusted(state, hash, lookup).await?.is_none() {
                    return Err(not_in_list());
                }
            } else {
                // An APQ client registering its text for this caller's scope.
                persisted.keep_automatic(scope, hash, &request.query);
            }
            Ok(request)
        }
        Form::ById(hash) => {
            // A caller who may send text may have registered it by APQ: the same text
            // as any trusted document with this id (the id is its hash), found without
            // a statement.
            if !trusted_only && let Some(text) = persisted.automatic(scope, hash) {
                request.query = text.to_string();
                return admit_text(state, request, None);
            }
            match find_trusted(state, hash, lookup).await? {
                Some(trusted) => {
                    request.query = trusted.text.clone();
                    admit_text(state, request, Some(trusted.parsed.clone()))
                }
                None => Err(request_error(
                    ErrorCode::PersistedQueryNotFound,
                    format!(
                        "no document {hash} is known here: send its text with its id (APQ), \
                         or register it as a trusted document"
                    ),
                )),
            }
        }
    }
}

/// The trusted document `hash` the caller may run: the platform's, or its
/// organization's, kept parsed after it is first read. An organization's is looked for
/// only once the caller is known to be its (its transaction entered): a kept one is
/// never handed to a caller who merely names the organization.
async fn find_trusted(
    state: &HttpState,
    hash: tenancy::DocumentHash,
    lookup: OrgLookup<'_>,
) -> Result<Option<Arc<admission::Trusted>>, ServerError> {
    let app = &state.app;
    let persisted = &app.persisted;
    if let Some(kept) = persisted.trusted(None, hash) {
        return Ok(Some(kept));
    }
    // An API key's organization is entered already: its kept documents cost nothing.
    if let OrgLookup::In(tx) = &lookup
        && let Some(kept) = persisted.trusted(Some(tx.org_id()), hash)
    {
        return Ok(Some(kept));
    }
    let tenancy_error = |e: tenancy::Error| server_error(e.into());
    let platform = match &lookup {
        OrgLookup::In(tx) => app.tenancy.platform_trusted_document(tx.conn(), hash).await,
        _ => {
            app.tenancy
                .platform_trusted_document(app.db.conn(), hash)
                .await
        }
    }
    .map_err(tenancy_error)?;
    let of_org = |tx: &kernel::TenantTx| persisted.trusted(Some(tx.org_id()), hash);
    let (scope, text) = match (platform, lookup) {
        (Some(text), _) => (None, text),
        (None, OrgLookup::In(tx)) => {
            match app
                .tenancy
                .live_trusted_document(tx, hash)
                .await
                .map_err(tenancy_error)?
            {
                Some(document) => (Some(document.org_id), document.body),
                None => return Ok(None),
            }
        }
        (None, OrgLookup::Enter(caller, org)) => {
            // Entering checks the person's membership (and session).
            let (tx, _) = app
                .tenancy
                .enter(caller, org, kernel::TxMode::Read)
                .await
                .map_err(tenancy_error)?;
            if let Some(kept) = of_org(&tx) {
                return Ok(Some(kept));
            }
            let found = app
                .tenancy
                .live_trusted_document(&tx, hash)
                .await
                .map_err(tenancy_error)?;
            match found {
                Some(document) => (Some(document.org_id), document.body),
                None => return Ok(None),
            }
        }
        (None, OrgLookup::None) => return Ok(None),
    };
    persisted
        .keep_trusted(scope, hash, text)
        .map(Some)
        .map_err(|e| Refusal::Parse(ServerError::from(e).message).into_server_error())
}

/// `PERSISTED_QUERY_NOT_IN_LIST`: the caller sent text but may run trusted documents only.
fn not_in_list() -> ServerError {
    request_error(
        ErrorCode::PersistedQueryNotInList,
        "this caller may run trusted documents only: send `documentId` (`sha256:<hex>`) of a \
         document its organization registered, not the text",
    )
}

/// `FORBIDDEN` with `reason = "INTROSPECTION_DISABLED"`.
fn introspection_refused() -> ServerError {
    let mut refused = request_error(
        ErrorCode::Forbidden,
        "introspection is turned off for this caller; the schema is published as `schema.graphql`",
    );
    if let Some(ext) = refused.extensions.as_mut() {
        ext.set("reason", "INTROSPECTION_DISABLED");
    }
    refused
}

/// Refuses a mutation over GET (a document sent by id is known only once found).
fn only_queries_over_get(request: &mut Request, method: Method) -> Result<(), ServerError> {
    if method == Method::Get && is_mutation(request) {
        return Err(request_error(
            ErrorCode::BadRequest,
            "mutations are only accepted over POST",
        ));
    }
    Ok(())
}
