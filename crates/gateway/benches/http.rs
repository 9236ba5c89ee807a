//! The request path over HTTP against its database baseline (issue 19), PostgreSQL only:
//! the release server as `platform_app` (RLS on) with 8 pooled connections, a Rust load
//! generator of `CLIENTS` concurrent clients, and `pgbench` running the same work as bare
//! SQL transactions as `platform_app` with as many clients, in alternating rounds of
//! `WINDOW` each; medians. For each workload it prints requests per second, the ratio to
//! its baseline, the SQL statements per request the server executed (BEGIN and COMMIT
//! not counted), and the server's CPU time per request (its threads' time; the server
//! runs on a runtime of its own, apart from the load generator).
//!
//! Workloads: `{ __typename }` anonymous (also against the node read's transaction: the
//! ceiling any ratio can reach on this machine) and with a bearer token; `node(id:)` of a
//! project (baseline: `BEGIN; set_config; SELECT id, name; COMMIT`, the transaction any
//! RLS server must run); the same transaction behind a bare axum route with sqlx and
//! nothing else (no GraphQL, no credential, no ORM: the floor, the ratio this stack
//! reaches on this machine doing only the database's part); the first 50 documents
//! with project, author, approvals and versions (baseline: the same reads as hand-written
//! SQL in one transaction), and its two floors: the page's SQL and its answer's JSON
//! behind a bare route, and the same SQL with the page's GraphQL document executed by
//! async-graphql over plain structs (the floor of any GraphQL server on this stack);
//! `updateProject` (baseline: its membership and project reads and the update as SQL, no
//! audit event); and
//! `updateProject` in one hot organization against the same over eight.
//!
//! `cargo bench -p gateway --bench http` (`make bench`); needs `pgbench` and
//! `BENCH_DATABASE_URL` (default in the Makefile: the local server).
//!
//! Longer than 600 lines on purpose: each workload is its GraphQL request, its pgbench
//! script and its report row side by side, so one reads what is compared with what in one
//! place (the floors' servers are in `floor/`, the shared server set-up in `server/`).
//! `BENCH_HTTP_ONLY=<part of a name>` runs some workloads only.
//! `BENCH_AUDIT_DESIGN=chained` puts back, in the benchmark's own database, the audit
//! append of before migration m0033 (every append waits for the organization's chain
//! lock), to compare the hot organization with the design the server ships.
//!
//! Longer than 600 lines on purpose: the workloads, the load generator and the pgbench
//! baselines share one set-up and one report; split, each part would need the others'
//! state.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

#[path = "../../tenancy/benches/support/mod.rs"]
mod support;

mod floor;
mod server;
use server::{config, graphql, signed_up, update_throughput};

use gateway::Application;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long each throughput window lasts.
const WINDOW: Duration = Duration::from_secs(3);
/// Alternating rounds (each side gets one window per round).
const ROUNDS: usize = 5;
/// Concurrent clients, and the server's pool size.
const CLIENTS: usize = 8;
/// Documents on the page.
const DOCUMENTS: usize = 50;
/// The node read.
const NODE: &str = "query Node($id: ID!) { node(id: $id) { ... on Project { id name } } }";
/// The documents page.
const PAGE: &str = "{ documents(first: 50) { nodes { title status project { name } author { name } \
    approvals { reviewer { name } } versions(first: 1) { nodes { version } } } } }";

fn main() {
    // The baselines are pgbench's: PostgreSQL only (SQLite is passed over).
    support::block_on_each_engine(|label, owner, app| async move {
        if label.starts_with("PostgreSQL") {
            run(&label, &owner, &app).await;
        }
    });
}

/// One workload: a GraphQL request and the SQL transaction it is compared with.
struct Workload {
    name: &'static str,
    /// The request body (`query` or `documentId`, and `variables`).
    body: Value,
    /// The bearer credential: none, the person's token, or an API key.
    credential: Option<String>,
    /// A pgbench script (run with `-M prepared`), or none.
    baseline: Option<String>,
    /// The platform serves it (`None`), or the floor server under this path (see
    /// [`floor::start`]).
    floor: Option<&'static str>,
}

async fn run(label: &str, owner_url: &str, app_url: &str) {
    println!("\n== the request path over HTTP on {label}");
    if std::process::Command::new("pgbench")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("pgbench not found: skipped (it comes with the PostgreSQL packages)");
        return;
    }
    let db = support::migrated(owner_url, app_url, 2).await;
    db.conn().clone().close().await.ok();
    let mut settings = config(app_url);
    settings.database.max_connections = CLIENTS as u32;
    let server = ServerRuntime::new();
    let (server_db, port) = server.start(settings).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let token = signed_up(&http, &base).await;
    let org = graphql(
        &http,
        &base,
        Some((&token, "")),
        "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
        json!({"i": {"name": "Bench"}}),
    )
    .await["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = Some((token.as_str(), org.as_str()));
    let mut projects = Vec::new();
    for n in 0..2 {
        let created = graphql(
            &http,
            &base,
            auth,
            "mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }",
            json!({"n": format!("Project {n}")}),
        )
        .await;
        projects.push(
            created["createProject"]["project"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for n in 0..DOCUMENTS {
        graphql(
            &http,
            &base,
            auth,
            "mutation($p: ID!, $t: String!) { createDocument(input: {projectId: $p, title: $t, body: \"Text\"}) { document { id } } }",
            json!({"p": projects[n % 2], "t": format!("Document {n}")}),
        )
        .await;
    }

    // The raw ids the SQL baselines use, read as the owner; then statistics for the
    // planner (autovacuum is off on these machines).
    let owner = sea_orm::Database::connect(owner_url).await.expect("owner");
    let ids = raw_ids(&owner).await;
    use sea_orm::ConnectionTrait;
    owner.execute_unprepared("ANALYZE").await.expect("analyze");
    if std::env::var("BENCH_AUDIT_DESIGN").is_ok_and(|d| d == "chained") {
        // The design before migration m0033, in the benchmark's own database only.
        println!(
            "audit appends CHAINED IN PLACE, waiting for the lock (BENCH_AUDIT_DESIGN=chained)"
        );
        owner
            .execute_unprepared(&migration::chained_audit_append())
            .await
            .expect("chained audit_append");
    }
    owner.close().await.ok();

    // API keys: one that may send text, one restricted to trusted documents, and the
    // node read registered as one.
    let mut keys = Vec::new();
    for restricted in [false, true] {
        let made = graphql(
            &http,
            &base,
            auth,
            "mutation($r: Boolean!) { createApiKey(input: {name: \"bench\", role: VIEWER, trustedDocumentsOnly: $r}) { secret } }",
            json!({"r": restricted}),
        )
        .await;
        keys.push(made["createApiKey"]["secret"].as_str().unwrap().to_owned());
    }
    let (open_key, restricted_key) = (keys[0].clone(), keys[1].clone());
    let node_hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(NODE.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    graphql(
        &http,
        &base,
        auth,
        "mutation($m: JSON!) { registerTrustedDocuments(input: {manifest: $m}) { registeredCount } }",
        json!({"m": {"format": "apollo-persisted-query-manifest", "version": 1,
            "operations": [{"id": node_hash, "name": "Node", "type": "query", "body": NODE}]}}),
    )
    .await;
    let node_id = format!("sha256:{node_hash}");

    let node_baseline = format!(
        "BEGIN;\nSELECT set_config('app.org_id', '{org}', true);\n\
         SELECT id, name FROM projects WHERE organization_id = '{org}' AND id = '{project}';\nCOMMIT;\n",
        org = ids.org,
        project = ids.project,
    );
    let workloads = [
        // The ceiling on this machine: a request that touches no database at all,
        // against the node read's database transaction. No server reaches a ratio for
        // `node(id:)` above this one's here (same HTTP stack and load generator).
        Workload {
            name: "{ __typename } anonymous (ceiling vs the node transaction)",
            body: json!({"query": "{ __typename }"}),
            credential: None,
            baseline: Some(node_baseline.clone()),
            floor: None,
        },
        Workload {
            name: "{ __typename } with a bearer token",
            body: json!({"query": "{ __typename }"}),
            credential: Some(token.clone()),
            baseline: None,
            floor: None,
        },
        Workload {
            name: "node(id:) of a project",
            body: json!({"query": NODE, "variables": {"id": projects[0]}}),
            credential: Some(token.clone()),
            baseline: Some(node_baseline.clone()),
            floor: None,
        },
        // The floor under the node read on this machine: its transaction behind a bare
        // route (no GraphQL, no credential, no ORM), as fast as this stack serves it.
        Workload {
            name: "node transaction behind bare axum + sqlx (the floor)",
            body: json!({}),
            credential: None,
            baseline: Some(node_baseline.clone()),
            floor: Some(""),
        },
        // A partner's call: the same read with an API key (metered: a second
        // transaction), as text and as a trusted document by id (kept parsed).
        Workload {
            name: "node(id:) with an API key, document as text",
            body: json!({"query": NODE, "variables": {"id": projects[0]}}),
            credential: Some(open_key.clone()),
            baseline: Some(node_baseline.clone()),
            floor: None,
        },
        Workload {
            name: "node(id:) with an API key, trusted document by id",
            body: json!({"documentId": node_id, "variables": {"id": projects[0]}}),
            credential: Some(restricted_key.clone()),
            baseline: Some(node_baseline),
            floor: None,
        },
        Workload {
            name: "documents(first: 50) with project, author, approvals, versions",
            body: json!({ "query": PAGE }),
            credential: Some(token.clone()),
            baseline: Some(page_script(&ids)),
            floor: None,
        },
        // The page's floor: its SQL, one statement at a time, and its answer's JSON behind
        // a bare route (no GraphQL, no credential, no ORM).
        Workload {
            name: "documents page's SQL behind bare axum + sqlx (the floor)",
            body: json!({}),
            credential: None,
            baseline: Some(page_script(&ids)),
            floor: Some("/page"),
        },
        // The floor of any GraphQL server on this stack: the same SQL, and the page's
        // document executed by async-graphql over plain structs.
        Workload {
            name: "documents page's SQL + async-graphql over plain structs (floor)",
            body: json!({ "query": PAGE }),
            credential: None,
            baseline: Some(page_script(&ids)),
            floor: Some("/graphql-page"),
        },
        Workload {
            name: "updateProject",
            body: json!({
                "query": "mutation($i: UpdateProjectInput!) { updateProject(input: $i) { project { id } } }",
                "variables": {"i": {"projectId": projects[1], "name": "Renamed"}},
            }),
            credential: Some(token.clone()),
            baseline: Some(format!(
                "BEGIN;\nSELECT set_config('app.org_id', '{org}', true);\n\
                 SELECT role FROM memberships WHERE organization_id = '{org}' AND user_id = '{user}';\n\
                 SELECT * FROM projects WHERE organization_id = '{org}' AND id = '{project}';\n\
                 UPDATE projects SET name = 'Renamed', updated_at = now() WHERE organization_id = '{org}' AND id = '{project}';\n\
                 COMMIT;\n",
                org = ids.org,
                user = ids.user,
                project = ids.project2,
            )),
            floor: None,
        },
    ];

    println!(
        "{CLIENTS} clients, {CLIENTS} server connections, median of {ROUNDS} alternating rounds of {}s",
        WINDOW.as_secs()
    );
    let floor = floor::start(&server.runtime, app_url, &ids).await;
    // `BENCH_HTTP_ONLY=node` runs the workloads whose name contains it (for profiling).
    let only = std::env::var("BENCH_HTTP_ONLY").unwrap_or_default();
    for workload in workloads.iter().filter(|w| w.name.contains(only.as_str())) {
        let auth = workload.credential.clone().map(|c| (c, org.clone()));
        let floor_base;
        let base = match workload.floor {
            Some(path) => {
                floor_base = format!("{floor}{path}");
                &floor_base
            }
            None => &base,
        };
        let request = || measure(http.clone(), base.clone(), auth.clone(), &workload.body);
        request().await; // warm-up: prepared statements, caches
        let statements_before = server_db.statements_executed();
        let one = request_once(&http, base, auth.as_ref(), &workload.body).await;
        let statements = match workload.floor {
            // The floor's own (its server is not counted): what its script runs.
            Some(_) => "its script's".to_owned(),
            None => (server_db.statements_executed() - statements_before).to_string(),
        };
        assert!(one, "{} failed", workload.name);
        let (mut ours, mut theirs, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let before = server.cpu();
            let rate = request().await;
            cpu.push(per_request_us(server.cpu() - before, rate));
            ours.push(rate);
            if let Some(script) = &workload.baseline {
                theirs.push(pgbench(app_url, script));
            }
        }
        let (ours, cpu) = (median(ours), median(cpu));
        match workload.baseline {
            Some(_) => {
                let theirs = median(theirs);
                println!(
                    "{:<66} {ours:>7.0} req/s  baseline {theirs:>7.0} tx/s  ratio {:.2}  {statements} statements  {cpu:>5.0} µs server CPU",
                    workload.name,
                    ours / theirs
                );
            }
            None => println!(
                "{:<66} {ours:>7.0} req/s  {statements} statements  {cpu:>5.0} µs server CPU",
                workload.name
            ),
        }
    }
    hot_organization(
        &http,
        &base,
        &token,
        &server,
        (org.clone(), projects[1].clone()),
    )
    .await;
    server.runtime.shutdown_background();
}

/// The server on a runtime of its own (as in its own process: one worker thread per
/// core), so that the CPU time of its threads is the server's alone, apart from the load
/// generator's.
struct ServerRuntime {
    runtime: tokio::runtime::Runtime,
    /// The kernel's ids of the runtime's threads (workers and blocking threads).
    threads: Arc<std::sync::Mutex<Vec<u32>>>,
}

impl ServerRuntime {
    fn new() -> Self {
        let threads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = threads.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("server")
            .on_thread_start(move || {
                // `/proc/thread-self` links to `<pid>/task/<tid>`.
                let tid = std::fs::read_link("/proc/thread-self")
                    .ok()
                    .and_then(|link| link.file_name()?.to_str()?.parse().ok());
                if let Some(tid) = tid {
                    recorded.lock().unwrap().push(tid);
                }
            })
            .build()
            .expect("server runtime");
        Self { runtime, threads }
    }

    /// Builds and runs the server on this runtime: its database handle and port.
    async fn start(&self, settings: gateway::Config) -> (kernel::Db, u16) {
        let (started, ready) = tokio::sync::oneshot::channel();
        self.runtime.spawn(async move {
            let app = Application::build(&settings, Arc::new(kernel::SystemClock))
                .await
                .expect("build");
            started.send((app.db(), app.port())).ok();
            app.run_until_stopped().await
        });
        ready.await.expect("server started")
    }

    /// CPU time its threads have used so far (`schedstat`: nanoseconds on a CPU; a
    /// thread that has ended no longer counts).
    fn cpu(&self) -> Duration {
        let threads = self.threads.lock().unwrap().clone();
        let nanos: u64 = threads
            .iter()
            .filter_map(|tid| {
                std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
                    .ok()?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        Duration::from_nanos(nanos)
    }
}

/// Microseconds of server CPU per request, for `used` over a window served at `rate`.
fn per_request_us(used: Duration, rate: f64) -> f64 {
    used.as_secs_f64() * 1e6 / (rate * WINDOW.as_secs_f64()).max(1.0)
}

/// `updateProject` in one hot organization against the same spread over eight (target:
/// one ≥ 0.9× of eight): appends to one organization's audit chain serialize. Each
/// client renames a project of its own on both sides, so that the only thing the
/// clients of the hot organization share is its audit chain (clients renaming one row
/// wait for each other's row lock whatever the chain does).
async fn hot_organization(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    server: &ServerRuntime,
    first: (String, String),
) {
    if !"updateProject in one organization (8 projects)".contains(
        std::env::var("BENCH_HTTP_ONLY")
            .unwrap_or_default()
            .as_str(),
    ) {
        return;
    }
    let project_in = |org: String, name: String| async move {
        let project = graphql(
            http,
            base,
            Some((token, &org)),
            "mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }",
            json!({"n": name}),
        )
        .await["createProject"]["project"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        (org, project)
    };
    let mut hot = vec![first.clone()];
    for n in 1..CLIENTS {
        hot.push(project_in(first.0.clone(), format!("Hot {n}")).await);
    }
    let mut targets = vec![first];
    for n in 1..CLIENTS {
        let org = graphql(
            http,
            base,
            Some((token, "")),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({"i": {"name": format!("Hot {n}")}}),
        )
        .await["createOrganization"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        targets.push(project_in(org, "Hot".into()).await);
    }
    let one = Arc::new(hot);
    let eight = Arc::new(targets);
    let spread = |targets: Arc<Vec<(String, String)>>| {
        update_throughput(
            http.clone(),
            base.to_owned(),
            token.to_owned(),
            targets,
            (CLIENTS, WINDOW),
        )
    };
    spread(eight.clone()).await; // warm-up
    let (mut hot, mut wide, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let before = server.cpu();
        let rate = spread(eight.clone()).await;
        cpu.push(per_request_us(server.cpu() - before, rate));
        wide.push(rate);
        hot.push(spread(one.clone()).await);
    }
    let (hot, wide, cpu) = (median(hot), median(wide), median(cpu));
    println!(
        "{:<66} {hot:>7.0} req/s  over 8 organizations {wide:>7.0} req/s  ratio {:.2} (target >= 0.9)  {cpu:>5.0} µs server CPU over 8",
        "updateProject in one organization (8 projects)",
        hot / wide
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// One request, for counting its statements: whether it succeeded.
async fn request_once(
    http: &reqwest::Client,
    base: &str,
    auth: Option<&(String, String)>,
    body: &Value,
) -> bool {
    let mut request = http.post(format!("{base}/graphql")).json(body);
    if let Some((credential, org)) = auth {
        request = request
            .bearer_auth(credential)
            .header("X-Organization-Id", org);
    }
    let answer: Value = request
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON");
    answer.get("errors").is_none() && !answer["data"].is_null()
}

/// Successful requests per second of `CLIENTS` clients for `WINDOW`.
async fn measure(
    http: reqwest::Client,
    base: String,
    auth: Option<(String, String)>,
    body: &Value,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let body = Arc::new(body.to_string());
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, auth, done, body) = (
            http.clone(),
            base.clone(),
            auth.clone(),
            done.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut request = http
                    .post(format!("{base}/graphql"))
                    .header("content-type", "application/json")
                    .body(body.as_str().to_owned());
                if let Some((token, org)) = &auth {
                    request = request.bearer_auth(token).header("X-Organization-Id", org);
                }
                let response = request.send().await.expect("send");
                let text = response.text().await.expect("body");
                assert!(!text.contains("\"errors\""), "{text}");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64()
}

/// Transactions per second of `script` run by pgbench as `platform_app`.
fn pgbench(app_url: &str, script: &str) -> f64 {
    let file = std::env::temp_dir().join(format!("platform-bench-{}.sql", std::process::id()));
    std::fs::write(&file, script).expect("script");
    let output = std::process::Command::new("pgbench")
        .args([
            "--no-vacuum",
            "--protocol=prepared",
            "--client",
            &CLIENTS.to_string(),
            "--jobs",
            "2",
            "--time",
            &WINDOW.as_secs().to_string(),
            "--file",
        ])
        .arg(&file)
        .arg(app_url)
        // The server's pool speaks plain TCP to the database; so does the baseline (libpq
        // would otherwise negotiate TLS and pay for encryption the server does not).
        .env("PGSSLMODE", "disable")
        .output()
        .expect("pgbench");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .expect("pgbench reports tps")
}

/// Raw ids of the benchmark's rows.
struct Ids {
    org: String,
    user: String,
    project: String,
    project2: String,
    documents: Vec<String>,
    authors: Vec<String>,
}

async fn raw_ids(owner: &sea_orm::DatabaseConnection) -> Ids {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = |sql: &'static str| async move {
        owner
            .query_all_raw(Statement::from_string(owner.get_database_backend(), sql))
            .await
            .expect(sql)
            .into_iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("text"))
            .collect::<Vec<String>>()
    };
    let projects = rows("SELECT id::text FROM projects ORDER BY id").await;
    Ids {
        org: rows("SELECT id::text FROM organizations").await.remove(0),
        user: rows("SELECT id::text FROM users").await.remove(0),
        project: projects[0].clone(),
        project2: projects[1].clone(),
        documents: rows("SELECT id::text FROM documents ORDER BY id LIMIT 50").await,
        authors: rows("SELECT DISTINCT author_id::text FROM documents").await,
    }
}

/// The page's reads as one hand-written transaction: the caller's membership, the page,
/// its projects and authors, approvals of the current round and the newest version.
fn page_script(ids: &Ids) -> String {
    let list = |values: &[String]| {
        values
            .iter()
            .map(|v| format!("'{v}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let org = &ids.org;
    let documents = list(&ids.documents);
    format!(
        "BEGIN;\n\
         SELECT set_config('app.org_id', '{org}', true);\n\
         SELECT role, id FROM memberships WHERE organization_id = '{org}' AND user_id = '{user}';\n\
         SELECT * FROM documents WHERE organization_id = '{org}' ORDER BY id LIMIT 51;\n\
         SELECT * FROM projects WHERE organization_id = '{org}' AND id IN ({projects});\n\
         SELECT id, name FROM users WHERE id IN ({authors});\n\
         SELECT * FROM document_reviews WHERE organization_id = '{org}' AND document_id IN ({documents});\n\
         SELECT * FROM document_versions WHERE organization_id = '{org}' AND document_id IN ({documents}) ORDER BY version DESC LIMIT 50;\n\
         COMMIT;\n",
        user = ids.user,
        projects = list(&[ids.project.clone(), ids.project2.clone()]),
        authors = list(&ids.authors),
    )
}
