//! A schema mutation with and without its audit event (issue 4), as a client sends it:
//! `updateProject` (a rename, so every request does the same work however long the
//! benchmark runs) over HTTP to the real server, with a user's bearer token, across
//! `ORGS` organizations, from `CLIENTS` concurrent clients. The same server alternates
//! between recording and not recording (`AuditLog::set_recording_for_benchmarks`, which
//! exists only with the `bench-unrecorded` feature this benchmark requires) over `ROUNDS`
//! windows each, and the medians are compared (target: with ≥ 0.75 × without).
//!
//! `crates/tenancy/benches/audit.rs` measures the floor of that ratio: a transaction
//! that inserts one row and nothing else, where the event is the only other statement.
//!
//! Runs on SQLite and, when `BENCH_DATABASE_URL` names a PostgreSQL server, on PostgreSQL
//! as the application role: `cargo bench -p gateway --bench mutation --features
//! bench-unrecorded` (`make bench`).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

#[path = "../../tenancy/benches/support/mod.rs"]
mod support;

mod server;
use server::{config, graphql, signed_up, update_throughput};

use gateway::Application;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long each throughput window lasts.
const WINDOW: Duration = Duration::from_secs(2);
/// Alternating rounds (each side gets one window per round).
const ROUNDS: usize = 5;
/// Concurrent clients.
const CLIENTS: usize = 8;
/// Organizations the requests are spread over (one project each).
const ORGS: usize = 50;

fn main() {
    support::block_on_each_engine(|label, owner, app| async move {
        run(&label, &owner, &app).await;
    });
}

async fn run(label: &str, owner_url: &str, app_url: &str) {
    println!("\n== a mutation over HTTP on {label}");
    let db = support::migrated(owner_url, app_url, 4).await;
    db.conn().clone().close().await.ok();
    let app = Application::build(&config(app_url), Arc::new(kernel::SystemClock))
        .await
        .expect("build");
    let audit = app.state().audit.clone();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let token = signed_up(&http, &base).await;
    let mut targets = Vec::with_capacity(ORGS);
    for n in 0..ORGS {
        let org = graphql(
            &http,
            &base,
            Some((&token, "")),
            "mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }",
            json!({"i": {"name": format!("Bench {n}")}}),
        )
        .await["createOrganization"]["organization"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let project = graphql(
            &http,
            &base,
            Some((&token, &org)),
            "mutation { createProject(input: {name: \"Renamed 0\"}) { project { id } } }",
            json!({}),
        )
        .await["createProject"]["project"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        targets.push((org, project));
    }
    let targets = Arc::new(targets);

    let window = |recording: bool| {
        audit.set_recording_for_benchmarks(recording);
        update_throughput(
            http.clone(),
            base.clone(),
            token.clone(),
            targets.clone(),
            (CLIENTS, WINDOW),
        )
    };
    window(true).await; // warm-up: connections prepare their statements, caches fill
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        without.push(window(false).await);
        with.push(window(true).await);
    }
    audit.set_recording_for_benchmarks(true);
    let (without, with) = (median(without), median(with));
    println!(
        "updateProject over HTTP, {CLIENTS} clients over {ORGS} orgs, median of {ROUNDS} \
         alternating rounds: {without:.0}/s without its event, {with:.0}/s with it: ratio {:.2} \
         (target >= 0.75)",
        with / without
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
