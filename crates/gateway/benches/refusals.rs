//! What refusing a hostile document costs the server (issue 12), next to `{ __typename }`
//! (the cheapest answer there is), as a client sends them: over HTTP to the real server
//! (release build), from `CLIENTS` concurrent anonymous clients, each attack alternating
//! with `{ __typename }` over `ROUNDS` windows; medians compared. Target: refusing costs
//! at most 2× `{ __typename }`, and issues no SQL statement (checked with the server's
//! statement counter). Refusals touch no database, so this runs on SQLite only:
//! `cargo bench -p gateway --bench refusals` (`make bench`).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

// Shared with the other benchmarks; this one needs only the configuration.
#[allow(dead_code)]
mod server;
use server::config;

use gateway::Application;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_millis(1_500);
const ROUNDS: usize = 5;
const CLIENTS: usize = 8;

/// The attacks of issue 12, each with the code it must be refused with.
fn attacks() -> Vec<(&'static str, Value, &'static str)> {
    let nested = |open: &str, close: &str| {
        format!(
            "{{ __typename(x: {}1{}) }}",
            open.repeat(1_500),
            close.repeat(1_500)
        )
    };
    let mut doubling = String::from("fragment F0 on Query { __typename }\n");
    for i in 1..=30 {
        doubling.push_str(&format!(
            "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
            p = i - 1
        ));
    }
    doubling.push_str("{ ...F30 }");
    let aliases: String = (0..20_000).map(|i| format!("a{i}: __typename ")).collect();
    let lists: String = (0..500)
        .map(|i| format!("a{i}: projects(first: 100) {{ nodes {{ id name }} }} "))
        .collect();
    let nodes: String = (0..100)
        .map(|i| format!("a{i}: nodes(ids: $ids) {{ id }} "))
        .collect();
    let ids: Vec<String> = (0..100).map(|i| format!("id-{i}")).collect();
    let sign_ups: String = (0..330)
        .map(|i| format!("s{i}: signUp(input: {{email: \"m{i}@x.test\", password: \"a-long-password\", name: \"M\"}}) {{ user {{ id }} }} "))
        .collect();
    vec![
        (
            "lists nested 1,500 deep",
            json!({ "query": nested("[", "]") }),
            "QUERY_TOO_DEEP",
        ),
        (
            "objects nested 1,500 deep",
            json!({ "query": nested("{a: ", "}") }),
            "QUERY_TOO_DEEP",
        ),
        (
            "variable default nested 1,500 deep",
            json!({ "query": format!("query($v: [Int] = {}1{}) {{ __typename }}", "[".repeat(1_500), "]".repeat(1_500)) }),
            "QUERY_TOO_DEEP",
        ),
        (
            "fragments doubling to 2^30",
            json!({ "query": doubling }),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "20,000 aliases",
            json!({ "query": format!("{{ {aliases} }}") }),
            "QUERY_TOO_LARGE",
        ),
        (
            "500 aliases of a list",
            json!({ "query": format!("{{ {lists} }}") }),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "nodes: 100 aliases × 100 ids",
            json!({ "query": format!("query($ids: [ID!]!) {{ {nodes} }}"), "variables": { "ids": ids } }),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "330 aliases of signUp",
            json!({ "query": format!("mutation {{ {sign_ups} }}") }),
            "QUERY_TOO_COMPLEX",
        ),
        (
            "a NUL in a variable",
            json!({ "query": "query($t: String) { __typename }", "variables": { "t": "a\u{0}b" } }),
            "BAD_USER_INPUT",
        ),
    ]
}

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

/// Requests per second of `body` from `CLIENTS` clients over one window; each answer
/// must carry `code` (or, for `None`, no error).
async fn window(http: &reqwest::Client, url: &str, body: &Value, code: Option<&str>) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (http, url, body, done) =
                (http.clone(), url.to_owned(), body.clone(), done.clone());
            let code = code.map(str::to_owned);
            tokio::spawn(async move {
                while started.elapsed() < WINDOW {
                    let answer: Value = http
                        .post(&url)
                        .json(&body)
                        .send()
                        .await
                        .expect("send")
                        .json()
                        .await
                        .expect("json");
                    assert_eq!(
                        answer["errors"][0]["extensions"]["code"].as_str(),
                        code.as_deref(),
                        "{answer}"
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for client in clients {
        client.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn run() {
    let dir = std::env::temp_dir().join(format!("platform-refusals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let database = format!("sqlite://{}", dir.join("bench.db").display());
    let app = Application::build(&config(&database), Arc::new(kernel::SystemClock))
        .await
        .expect("build");
    let db = app.db();
    let url = format!("http://127.0.0.1:{}/graphql", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let typename = json!({ "query": "{ __typename }" });
    window(&http, &url, &typename, None).await;
    println!(
        "\n== refusing hostile documents (anonymous, {CLIENTS} clients, medians of {ROUNDS} \
         alternating rounds of {} ms)",
        WINDOW.as_millis()
    );
    println!(
        "{:<38} {:>12} {:>14} {:>8} {:>6}",
        "attack", "refused/s", "__typename/s", "cost ×", "SQL"
    );
    for (name, body, code) in attacks() {
        let (mut refused, mut baseline) = (Vec::new(), Vec::new());
        let statements = db.statements_executed();
        for _ in 0..ROUNDS {
            refused.push(window(&http, &url, &body, Some(code)).await);
            baseline.push(window(&http, &url, &typename, None).await);
        }
        let sql = db.statements_executed() - statements;
        let (refused, baseline) = (median(refused), median(baseline));
        println!(
            "{name:<38} {refused:>12.0} {baseline:>14.0} {:>8.2} {sql:>6}",
            baseline / refused
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
