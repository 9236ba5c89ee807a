//! Requests abandoned half-way never leave a transaction open on a pooled connection: a
//! client that hangs up mid-request, and a request future dropped at every statement of
//! its database work, under concurrency. Afterwards no session idles inside a
//! transaction, PostgreSQL warned of no nested `BEGIN`, every project has exactly one
//! `project.created` event and every such event its project, the chains verify, and
//! another organization's requests on the same connections work.
//!
//! Longer than 600 lines on purpose: one feature's scenarios, each test self-contained
//! (it spins its own server and database): read them one at a time.

use crate::helpers::{TestApp, TestOrg, TestUser, on_postgres};
use axum::body::Body;
use axum::extract::ConnectInfo;
use rand::Rng;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

const CREATE: &str =
    "mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }";

#[tokio::test]
async fn abandoned_requests_leave_no_transaction_open() {
    let log = CapturedLog::default();
    let _capture = tracing::subscriber::set_default(log.subscriber());
    let app = TestApp::spawn_with(|config| config.limits.plan_max_projects = 0).await;
    let mut tenants = Vec::new();
    for name in ["acme", "globex", "initech"] {
        let owner = app.user(&format!("{name}@example.com")).await;
        let org = app.org(&owner, name).await;
        tenants.push((owner, org));
    }

    // Clients that hang up: each request is abandoned after 0.5-16 ms or awaited.
    let clients = (0..8).map(|client| {
        let (owner, org) = tenants[client % tenants.len()].clone();
        let app = &app;
        async move {
            for request in 0..25 {
                let mut post = app
                    .http
                    .post(format!("{}/graphql", app.address))
                    .bearer_auth(&owner.token)
                    .header("X-Organization-Id", &org.id)
                    .json(&json!({ "query": CREATE, "variables": { "n": format!("c{client}-{request}") } }));
                let hang_up = rand::thread_rng().gen_bool(0.6);
                if hang_up {
                    let micros = rand::thread_rng().gen_range(500..16_000);
                    post = post.timeout(Duration::from_micros(micros));
                }
                let _ = post.send().await;
            }
        }
    });
    futures::future::join_all(clients).await;
    app_settles(&app).await;
    assert_eq!(
        log.matching("transaction in progress"),
        Vec::<String>::new(),
        "a client that hangs up must not cancel its request's transaction"
    );

    // Futures dropped at every statement boundary of the same request, three
    // organizations at once (the counter is per future, so concurrency does not blur it).
    let routes = gateway::http::routes(
        app.state.clone(),
        gateway::startup::build_schema(app.state.clone()),
        &gateway::http::Surface::default(),
    );
    let (owner, org) = &tenants[0];
    let whole = drop_after(u64::MAX, call(&routes, owner, org, "measured")).await;
    let statements = whole.expect("the measured request ran to its end").1;
    assert!(
        statements >= 3,
        "a createProject runs {statements} statements"
    );
    for k in 0..=statements {
        let rounds = tenants
            .iter()
            .map(|(owner, org)| drop_after(k, call(&routes, owner, org, &format!("dropped-{k}"))));
        futures::future::join_all(rounds).await;
    }
    app_settles(&app).await;

    assert_eq!(
        log.matching("already a transaction in progress"),
        Vec::<String>::new()
    );
    if on_postgres() {
        assert_eq!(
            idle_in_transaction(&app).await,
            0,
            "a session idles inside a transaction"
        );
    }
    // Connections the pool had to close (a transaction dropped while its statement held
    // the connection cannot queue its rollback; the pool then closes the connection).
    eprintln!(
        "{statements} statements per request; pool closed {} connections",
        app.server_db.stale_connections_closed()
    );
    for (owner, org) in &tenants {
        assert_one_event_per_project(&app, owner, org).await;
        assert_chain_verifies(&app, owner, org).await;
    }

    // Another organization, on the same pooled connections, is served as usual.
    let newcomer = app.user("newcomer@example.com").await;
    let fresh = app.org(&newcomer, "fresh").await;
    for i in 0..16 {
        app.gql(CREATE)
            .vars(json!({ "n": format!("after-{i}") }))
            .as_user(&newcomer)
            .in_org(&fresh)
            .send()
            .await
            .data();
    }
    let listed = app
        .gql("{ projects(first: 50) { edges { node { name } } } }")
        .as_user(&newcomer)
        .in_org(&fresh)
        .send()
        .await;
    assert_eq!(
        listed.data()["projects"]["edges"].as_array().map(Vec::len),
        Some(16)
    );
    assert_one_event_per_project(&app, &newcomer, &fresh).await;
}

/// A request that outlives its deadline is stopped with `TIMEOUT` (HTTP 503) and its
/// transaction rolled back: nothing of it stays, and nothing is left open.
#[tokio::test]
async fn a_request_past_its_deadline_is_stopped_and_rolled_back() {
    let app = TestApp::spawn_with(|config| config.limits.plan_max_projects = 0).await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    let mut outcomes = BTreeMap::<String, usize>::new();
    // Deadlines from before the first statement to around the commit.
    for deadline_ms in [2, 6, 12, 25] {
        let hurried = app
            .spawn_twin_with(|config| {
                config.http.request_timeout = Duration::from_millis(deadline_ms);
            })
            .await;
        for i in 0..15 {
            let name = format!("p{deadline_ms}-{i}");
            let create = json!({ "query": CREATE, "variables": { "n": name } });
            let (status, _, body) = post(&hurried, &alice, &org, create).await;
            let outcome = body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("served")
                .to_owned();
            if outcome == "TIMEOUT" {
                assert_eq!(status, 503, "{body}");
            }
            *outcomes.entry(outcome).or_default() += 1;
        }
    }
    eprintln!("with deadlines of 2 to 25 ms: {outcomes:?}");
    assert!(outcomes.contains_key("TIMEOUT"), "{outcomes:?}");
    assert!(
        outcomes.keys().all(|k| k == "served" || k == "TIMEOUT"),
        "{outcomes:?}"
    );
    app_settles(&app).await;
    if on_postgres() {
        assert_eq!(idle_in_transaction(&app).await, 0);
    }
    assert_one_event_per_project(&app, &alice, &org).await;
    assert_chain_verifies(&app, &alice, &org).await;
}

/// A `BEGIN` whose caller is dropped while it is in flight is finished and rolled back by
/// its own task: the one pooled connection serves the next transaction outside of it,
/// without the pool having to close it.
#[tokio::test]
async fn a_begin_dropped_in_flight_is_rolled_back() {
    let log = CapturedLog::default();
    let _capture = tracing::subscriber::set_default(log.subscriber());
    let app = TestApp::spawn().await;
    let db = kernel::Db::connect(&app.database_url, 1).await.unwrap();
    for attempt in 0..200_u64 {
        let mode = if attempt % 2 == 0 {
            kernel::TxMode::Read
        } else {
            kernel::TxMode::Write
        };
        let wait = Duration::from_micros(attempt * 7 % 400);
        let _ = tokio::time::timeout(wait, db.begin(mode)).await;
    }
    let tx = db.begin(kernel::TxMode::Write).await.unwrap();
    tx.execute_unprepared("SELECT 1").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.stale_connections_closed(), 0);
    assert_eq!(
        log.matching("transaction in progress"),
        Vec::<String>::new()
    );
    if on_postgres() {
        assert_eq!(idle_in_transaction(&app).await, 0);
    }
}

/// On PostgreSQL the pool itself closes a connection that is inside a transaction its
/// driver does not know of, rather than running the next request inside it.
#[tokio::test]
async fn the_pool_closes_a_connection_left_inside_a_transaction() {
    if !on_postgres() {
        eprintln!("needs PostgreSQL: SQLite's driver tracks its own BEGIN");
        return;
    }
    let log = CapturedLog::default();
    let _capture = tracing::subscriber::set_default(log.subscriber());
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    // A raw BEGIN the driver does not count, as a cancelled `begin()` leaves behind.
    app.server_db
        .conn()
        .execute_unprepared("BEGIN")
        .await
        .unwrap();
    for i in 0..20 {
        app.gql(CREATE)
            .vars(json!({ "n": format!("p{i}") }))
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await
            .data();
    }
    assert_eq!(app.server_db.stale_connections_closed(), 1);
    assert_eq!(
        log.matching("transaction in progress"),
        Vec::<String>::new()
    );
    assert_eq!(idle_in_transaction(&app).await, 0);
    assert_one_event_per_project(&app, &alice, &org).await;
}

/// A connection lost in the middle of a transaction fails with a code clients retry.
#[tokio::test]
async fn a_terminated_backend_is_service_unavailable() {
    if !on_postgres() {
        eprintln!("needs PostgreSQL (pg_terminate_backend)");
        return;
    }
    let app = TestApp::spawn().await;
    let db = kernel::Db::connect(&app.database_url, 2).await.unwrap();
    let tx = db.begin(kernel::TxMode::Read).await.unwrap();
    let pid = tx
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i32>(0)
        .unwrap();
    let owner = app.owner_db().await;
    owner
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
        .await
        .unwrap();
    let error = tx.execute_unprepared("SELECT 1").await.unwrap_err();
    assert_eq!(
        kernel::db_error_code(&error),
        kernel::ErrorCode::ServiceUnavailable,
        "{error}"
    );
    drop(tx);
    // The pool replaces the dead connection.
    let tx = db.begin(kernel::TxMode::Read).await.unwrap();
    tx.execute_unprepared("SELECT 1").await.unwrap();
}

/// While the database cannot be reached, requests answer `SERVICE_UNAVAILABLE` (HTTP 503,
/// `Retry-After`), never `INTERNAL`; connections cut under load fail only the requests
/// that were using them, and nothing is half-written. Once it is back, requests are
/// served again without a restart, and connections that died idle cost no request.
#[tokio::test]
async fn an_unreachable_database_answers_service_unavailable() {
    if !on_postgres() {
        eprintln!("needs PostgreSQL (a proxy in front of the server)");
        return;
    }
    let proxy = Arc::new(std::sync::OnceLock::new());
    let app = {
        let proxy = proxy.clone();
        TestApp::spawn_with(move |config| {
            let (running, url) = Proxy::start(&config.database.url);
            config.database.url = url;
            config.limits.plan_max_projects = 0;
            let _ = proxy.set(running);
        })
        .await
    };
    let proxy: &Proxy = proxy.get().unwrap();
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;

    // Connections cut under load.
    let outcomes = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let clients = (0..4).map(|client| {
        let (app, alice, org, outcomes) = (&app, &alice, &org, outcomes.clone());
        async move {
            for request in 0..30 {
                let body = json!({ "query": CREATE, "variables": { "n": format!("c{client}-{request}") } });
                let (status, retry_after, body) = post(app, alice, org, body).await;
                let outcome = match body["errors"][0]["extensions"]["code"].as_str() {
                    None => "served".to_owned(),
                    Some(code) => {
                        if code == "SERVICE_UNAVAILABLE" {
                            assert_eq!((status, retry_after.as_deref()), (503, Some("1")));
                        }
                        code.to_owned()
                    }
                };
                *outcomes.lock().unwrap().entry(outcome).or_default() += 1;
            }
        }
    });
    let cutter = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(40)).await;
            proxy.cut_all();
        }
    };
    futures::future::join(futures::future::join_all(clients), cutter).await;
    let outcomes = outcomes.lock().unwrap().clone();
    eprintln!("under cuts: {outcomes:?}");
    assert!(
        outcomes
            .keys()
            .all(|k| k == "served" || k == "SERVICE_UNAVAILABLE"),
        "{outcomes:?}"
    );

    // The database unreachable: every request is refused with a code to retry on.
    proxy.refuse(true);
    proxy.cut_all();
    for _ in 0..3 {
        let query = json!({ "query": "{ projects(first: 5) { edges { node { id } } } }" });
        let (status, retry_after, body) = post(&app, &alice, &org, query).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
            "{body}"
        );
        assert_eq!((status, retry_after.as_deref()), (503, Some("1")));
        assert_eq!(
            body["errors"][0]["message"], "the service is temporarily unavailable: retry shortly",
            "no driver text reaches the client"
        );
    }

    // Back: served again, and every project that exists has its event.
    proxy.refuse(false);
    let create = json!({ "query": CREATE, "variables": { "n": "after" } });
    let (status, _, body) = post(&app, &alice, &org, create).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body}");

    // Connections that die while idle in the pool (a restart between two requests) cost
    // no request: the pool hands a recently used connection out unchecked, and `BEGIN`,
    // finding it dead, begins on another.
    let warm = (0..8).map(|i| {
        let body = json!({ "query": CREATE, "variables": { "n": format!("warm-{i}") } });
        post(&app, &alice, &org, body)
    });
    futures::future::join_all(warm).await;
    let (open, idle) = app.server_db.pool_connections();
    assert!(idle >= 2, "{open} connections, {idle} idle");
    proxy.cut_all();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..6 {
        let create = json!({ "query": CREATE, "variables": { "n": format!("restarted-{i}") } });
        let (status, _, body) = post(&app, &alice, &org, create).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "{body}");
    }
    assert_one_event_per_project(&app, &alice, &org).await;
    assert_chain_verifies(&app, &alice, &org).await;
}

async fn post(
    app: &TestApp,
    user: &TestUser,
    org: &TestOrg,
    body: Value,
) -> (u16, Option<String>, Value) {
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&user.token)
        .header("X-Organization-Id", &org.id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap())
}

/// A TCP proxy in front of PostgreSQL that can cut every connection through it (as a
/// restart or `pg_terminate_backend` does) and refuse new ones (as a server that is down).
struct Proxy {
    refusing: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::broadcast::Sender<()>,
}

impl Proxy {
    /// Starts a proxy to the server of `database_url`; returns it and the URL through it.
    fn start(database_url: &str) -> (Proxy, String) {
        let mut url = reqwest::Url::parse(database_url).unwrap();
        let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        url.set_port(Some(listener.local_addr().unwrap().port()))
            .unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let refusing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut, _) = tokio::sync::broadcast::channel(16);
        let proxy = Proxy {
            refusing: refusing.clone(),
            cut: cut.clone(),
        };
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if refusing.load(Ordering::Relaxed) {
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = cut.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.recv() => {}
                    }
                });
            }
        });
        (proxy, url.to_string())
    }

    fn cut_all(&self) {
        let _ = self.cut.send(());
    }

    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::Relaxed);
    }
}

/// One `createProject` through the routes as they are (without the layer that runs a
/// request to its end), so that dropping the future stops it where it is.
fn call(
    routes: &axum::Router,
    owner: &TestUser,
    org: &TestOrg,
    name: &str,
) -> impl Future<Output = ()> + use<> {
    use tower::Service as _;
    let body = json!({ "query": CREATE, "variables": { "n": name } }).to_string();
    let mut request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", owner.token))
        .header("x-organization-id", &org.id)
        .body(Body::from(body))
        .unwrap();
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 9))));
    let mut routes = routes.clone();
    async move {
        let response = routes.call(request).await.unwrap();
        assert_eq!(response.status(), 200);
    }
}

/// Polls `future` until it has executed `statements` statements, then drops it at its
/// next suspension: mid-statement, mid-`BEGIN` or mid-`COMMIT`. Returns its output and
/// statement count if it ended first.
async fn drop_after<F: Future>(statements: u64, future: F) -> Option<(F::Output, u64)> {
    let counter = Arc::new(AtomicU64::new(0));
    let mut future = std::pin::pin!(kernel::count_statements(counter.clone(), future));
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some((output, counter.load(Ordering::Relaxed)))),
        Poll::Pending if counter.load(Ordering::Relaxed) >= statements => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    })
    .await
}

/// Waits for the work that outlives its callers (requests whose clients left, begun
/// transactions nobody took, connections going back to the pool) to end.
async fn app_settles(app: &TestApp) {
    let mut last = u64::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = app.server_db.statements_executed();
        let busy = on_postgres() && active_sessions(app).await > 0;
        if now == last && !busy {
            return;
        }
        last = now;
    }
}

async fn pg_count(app: &TestApp, sql: &str) -> i64 {
    let owner = app.owner_db().await;
    let row = owner
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    let count = row.try_get_by_index::<i64>(0).unwrap();
    owner.close().await.unwrap();
    count
}

/// Sessions of the application role inside a transaction that nobody is running.
async fn idle_in_transaction(app: &TestApp) -> i64 {
    pg_count(
        app,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND usename = 'platform_app' AND state LIKE 'idle in transaction%'",
    )
    .await
}

async fn active_sessions(app: &TestApp) -> i64 {
    pg_count(
        app,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND usename = 'platform_app' AND state = 'active'",
    )
    .await
}

/// Every project of `org` has exactly one `project.created` event, and every such event
/// names a project that exists.
async fn assert_one_event_per_project(app: &TestApp, owner: &TestUser, org: &TestOrg) {
    let projects: BTreeSet<String> = all_pages(
        app,
        owner,
        org,
        "query($a: String) { page: projects(first: 100, after: $a) { edges { node { id } } pageInfo { hasNextPage endCursor } } }",
    )
    .await
    .iter()
    .map(|node| record_uuid(node["id"].as_str().unwrap()))
    .collect();
    let mut events: BTreeMap<String, usize> = BTreeMap::new();
    for node in all_pages(
        app,
        owner,
        org,
        "query($a: String) { page: auditEvents(filter: {action: \"project.created\"}, first: 100, after: $a) { edges { node { targetId } } pageInfo { hasNextPage endCursor } } }",
    )
    .await
    {
        *events
            .entry(node["targetId"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let evented: BTreeSet<String> = events.keys().cloned().collect();
    assert_eq!(projects, evented, "projects and their events differ");
    assert!(events.values().all(|&n| n == 1), "{events:?}");
}

/// The record's own UUID inside an organization-scoped global id (`Kind:org:id`).
fn record_uuid(global_id: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(global_id)
        .unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let id = text.rsplit(':').next().unwrap();
    uuid::Uuid::try_parse(id).unwrap().to_string()
}

async fn all_pages(app: &TestApp, owner: &TestUser, org: &TestOrg, query: &str) -> Vec<Value> {
    let mut nodes = Vec::new();
    let mut after = Value::Null;
    loop {
        let response = app
            .gql(query)
            .vars(json!({ "a": after }))
            .as_user(owner)
            .in_org(org)
            .send()
            .await;
        let page = &response.data()["page"];
        nodes.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"].clone()),
        );
        if page["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
}

async fn assert_chain_verifies(app: &TestApp, owner: &TestUser, org: &TestOrg) {
    let report = app
        .gql("{ verifyAuditChain { valid checked } }")
        .as_user(owner)
        .in_org(org)
        .send()
        .await;
    assert_eq!(report.data()["verifyAuditChain"]["valid"], true);
    let here = app
        .state
        .tenancy
        .verify_audit_chain(org.org_id(), audit::Hashing::Here)
        .await
        .unwrap();
    assert!(here.broken.is_none(), "{:?}", here.broken);
}

/// The warnings this thread's tasks log: PostgreSQL's notices as sqlx reports them, and
/// the pool's.
#[derive(Clone, Default)]
struct CapturedLog {
    lines: Arc<Mutex<Vec<String>>>,
}

impl CapturedLog {
    fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + use<> {
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target("sqlx::postgres::notice", tracing::Level::TRACE)
            .with_target("kernel", tracing::Level::WARN);
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .without_time()
                .with_ansi(false)
                .with_writer(self.clone())
                .with_filter(targets),
        )
    }

    fn matching(&self, needle: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }
}

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lines
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
