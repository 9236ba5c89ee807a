//! Billing benchmarks (issue 6), on SQLite and, when `BENCH_DATABASE_URL` names a
//! PostgreSQL server, on PostgreSQL as the application role:
//!
//! 1. usage ingestion over HTTP (`POST /usage/events`, the real server on a local port,
//!    an API key of the billing admin role, one organization): single events, then
//!    batches of 100 of which 10 % replay keys sent before; events/s over fixed windows,
//!    and a check that every key is stored exactly once (target: batches ≥ 30,000
//!    events/s);
//! 2. a billing run over `BILLING_BENCH_ORGS` organizations (default 1,000) holding
//!    `BILLING_BENCH_EVENTS` usage events (default 10,000,000 on PostgreSQL, 1,000,000 on
//!    SQLite) at the end of their
//!    period: time, invoices, and a SHA-256 of every invoice cut; the run is done twice
//!    on two identical copies of the data and the two outputs must be byte-identical.
//!
//! `BILLING_BENCH_PARTS` (default `ingest,run`) picks parts.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

#[path = "../../tenancy/benches/support/mod.rs"]
mod support;

mod server;
use server::{config, graphql, signed_up};

use chrono::{DateTime, Utc};
use gateway::{AppState, Application};
use kernel::FakeClock;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(3);
const CLIENTS: usize = 8;

fn main() {
    support::block_on_each_engine(|label, owner, app| async move {
        run(&label, &owner, &app).await;
    });
}

async fn run(label: &str, owner_url: &str, app_url: &str) {
    println!("\n== billing on {label}");
    let db = support::migrated(owner_url, app_url, 4).await;
    db.conn().clone().close().await.ok();
    let parts = std::env::var("BILLING_BENCH_PARTS").unwrap_or_else(|_| "ingest,run".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);
    if part("ingest") {
        ingest(owner_url, app_url).await;
    }
    if part("run") {
        billing_run(label, owner_url, app_url).await;
    }
}

/// Part 1: ingestion over HTTP.
async fn ingest(owner_url: &str, app_url: &str) {
    let app = Application::build(&config(app_url), Arc::new(kernel::SystemClock))
        .await
        .expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let token = signed_up(&http, &base).await;
    let org = graphql(
        &http,
        &base,
        Some((&token, "")),
        "mutation { createOrganization(input: {name: \"Bench\"}) { organization { id } } }",
        json!({}),
    )
    .await;
    let org = org["createOrganization"]["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = graphql(
        &http,
        &base,
        Some((&token, &org)),
        "mutation { createApiKey(input: {trustedDocumentsOnly: false, name: \"ingest\", role: BILLING_ADMIN}) { secret } }",
        json!({}),
    )
    .await;
    let key = key["createApiKey"]["secret"].as_str().unwrap().to_owned();

    let sent_unique = Arc::new(AtomicU64::new(0));
    // A warm-up window, then statistics, as a running database has them (a table the
    // planner has never analyzed gets plans for an empty table).
    for (batch, label, measured) in [
        (100usize, "warm-up", false),
        (1, "single events", true),
        (100, "batches of 100 (10 % replays)", true),
    ] {
        if measured && batch == 1 {
            let owner = Database::connect(owner_url).await.expect("owner");
            owner.execute_unprepared("ANALYZE").await.expect("analyze");
            owner.close().await.ok();
        }
        let events = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + WINDOW;
        let mut tasks = Vec::new();
        for client in 0..CLIENTS {
            let (http, base, key, org) = (http.clone(), base.clone(), key.clone(), org.clone());
            let (events, failures, sent_unique) =
                (events.clone(), failures.clone(), sent_unique.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    // A tenth of each batch of 100 repeats keys this client sent before, with
                    // the same payload: replays that must not count again.
                    let replays = if batch >= 10 && n >= 10 {
                        batch / 10
                    } else {
                        0
                    };
                    let tag = if measured { batch } else { 0 };
                    let mut body = Vec::with_capacity(batch);
                    for r in 0..replays {
                        let old = n - 1 - (r as u64 % n.min(1_000));
                        body.push(event(tag, client, old));
                    }
                    for _ in replays..batch {
                        body.push(event(tag, client, n));
                        n += 1;
                    }
                    let response = http
                        .post(format!("{base}/usage/events"))
                        .bearer_auth(&key)
                        .header("X-Organization-Id", &org)
                        .json(&json!({ "events": body }))
                        .send()
                        .await;
                    let ok = match response {
                        Ok(r) => r
                            .json::<Value>()
                            .await
                            .map(|v| v.get("errors").is_none())
                            .unwrap_or(false),
                        Err(_) => false,
                    };
                    if ok {
                        events.fetch_add(batch as u64, Ordering::Relaxed);
                        sent_unique.fetch_add((batch - replays) as u64, Ordering::Relaxed);
                    } else {
                        // All or nothing: a failed batch stored none of its events.
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("client");
        }
        if !measured {
            continue;
        }
        println!(
            "ingest {label}, {CLIENTS} clients over HTTP: {:.0} events/s ({} failed requests){}",
            events.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64(),
            failures.load(Ordering::Relaxed),
            if batch == 100 {
                " (target >= 30000/s)"
            } else {
                ""
            }
        );
        assert_eq!(failures.load(Ordering::Relaxed), 0, "no request may fail");
    }
    let stored = graphql(&http, &base, Some((&token, &org)),
        "{ usage(metric: \"ingested\", from: \"2000-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\", aggregation: COUNT) }",
        json!({})).await;
    let stored: u64 = stored["usage"].as_str().unwrap().parse().unwrap();
    let acknowledged = sent_unique.load(Ordering::Relaxed);
    println!(
        "stored events: {stored}; distinct keys acknowledged: {acknowledged} (zero double counts: {})",
        stored == acknowledged
    );
    assert_eq!(stored, acknowledged, "every key stored exactly once");
}

fn event(batch: usize, client: usize, n: u64) -> Value {
    json!({
        "metric": "ingested",
        "key": format!("b{batch}-c{client}-{n}"),
        "occurredAt": "2027-01-05T10:00:00Z",
        "value": "1",
    })
}

/// Part 2: a billing run over many organizations with many events, twice.
async fn billing_run(label: &str, owner_url: &str, app_url: &str) {
    let orgs: u64 = env("BILLING_BENCH_ORGS", 1_000);
    // SQLite writes 10M rows with their three indexes in over 15 minutes on these
    // machines, so by default it gets a tenth; BILLING_BENCH_EVENTS sets both.
    let default_events = if label.starts_with("SQLite") {
        1_000_000
    } else {
        10_000_000
    };
    let events: u64 = env("BILLING_BENCH_EVENTS", default_events);
    let period_end: DateTime<Utc> = "2027-02-01T00:00:00Z".parse().unwrap();
    let clock = FakeClock::at("2027-01-01T00:00:00Z".parse().unwrap());
    let state = AppState::new(
        kernel::Db::connect(app_url, 4).await.expect("connect"),
        Arc::new(clock.clone()),
        gateway::startup::ServiceSettings::from_config(&config(app_url)).expect("settings"),
    )
    .await
    .expect("state");
    let catalog = billing::CatalogFile::parse(
        r#"{"metrics": [{"code": "api_calls", "name": "API calls", "aggregation": {"type": "count"}}],
            "plans": [{"code": "bench", "name": "Bench", "currency": "USD", "charges": [
              {"type": "fixed", "amount": "10.00"},
              {"type": "usage", "metric": "api_calls", "price": {"model": "graduated", "tiers": [
                {"up_to": "1000", "unit_price": "0"}, {"up_to": null, "unit_price": "0.001"}]}}]}]}"#,
    )
    .unwrap();
    gateway::catalog::import_catalog(&state, &catalog)
        .await
        .expect("catalog");
    let plan = state
        .catalog
        .latest(state.db.conn(), "bench")
        .await
        .expect("plan")
        .id;
    let started = Instant::now();
    seed(owner_url, orgs, events, plan).await;
    println!(
        "seeded {orgs} organizations with {events} usage events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // A second, identical copy of the data.
    let second_url = copy_database(label, owner_url, app_url).await;

    clock.set(period_end + chrono::Duration::seconds(1));
    let mut outputs = Vec::new();
    for url in [app_url.to_owned(), second_url.clone()] {
        let state = AppState::new(
            kernel::Db::connect(&url, 4).await.expect("connect"),
            Arc::new(clock.clone()),
            gateway::startup::ServiceSettings::from_config(&config(&url)).expect("settings"),
        )
        .await
        .expect("state");
        let started = Instant::now();
        let report = gateway::background::billing_run::run_once(&state)
            .await
            .expect("run");
        let took = started.elapsed();
        let (invoices, digest, total) = dump(&url).await;
        println!(
            "billing run: {} organizations advanced, {invoices} invoices in {:.2} s \
             ({:.0} invoices/s); sum of totals {total} minor units; output sha256 {digest}",
            report.advanced,
            took.as_secs_f64(),
            invoices as f64 / took.as_secs_f64()
        );
        assert_eq!(report.failed, 0);
        outputs.push(digest);
        state.db.conn().clone().close().await.ok();
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the same input must give byte-identical invoices"
    );
    println!("two runs over identical data: byte-identical output");
    drop_copy(label, owner_url, &second_url).await;
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Organizations with an active subscription to `plan` for January 2027 and `events`
/// usage events spread over them, written as the owner (deterministic ids).
async fn seed(owner_url: &str, orgs: u64, events: u64, plan: uuid::Uuid) {
    let db = Database::connect(owner_url).await.expect("owner");
    let backend = db.get_database_backend();
    let org_id =
        |i: u64| uuid::Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0000 | u128::from(i));
    let start = "2027-01-01T00:00:00+00:00";
    let end = "2027-02-01T00:00:00+00:00";
    let exec = |sql: String, values: Vec<sea_orm::Value>| {
        let db = &db;
        async move {
            db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await
                .expect("seed");
        }
    };
    let pg = backend == sea_orm::DbBackend::Postgres;
    for i in 0..orgs {
        let (org, sub) = (org_id(i), uuid::Uuid::from_u128(u128::from(i) + 1));
        let t: DateTime<Utc> = start.parse().unwrap();
        let e: DateTime<Utc> = end.parse().unwrap();
        let anchor = t.date_naive();
        let (sql_org, sql_sub) = if pg {
            (
                "INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)",
                "INSERT INTO subscriptions (organization_id, id, plan_version_id, status, time_zone, billing_anchor, trial_ends_at, current_period_start, current_period_end, scheduled_plan_version_id, cancel_at_period_end, canceled_at, tax_rate, created_at, updated_at) VALUES ($1, $2, $3, 'active', 'UTC', $4, NULL, $5, $6, NULL, false, NULL, '0.19', $5, $5)",
            )
        } else {
            (
                "INSERT INTO organizations (id, name, slug, created_at) VALUES (?1, ?2, ?3, ?4)",
                "INSERT INTO subscriptions (organization_id, id, plan_version_id, status, time_zone, billing_anchor, trial_ends_at, current_period_start, current_period_end, scheduled_plan_version_id, cancel_at_period_end, canceled_at, tax_rate, created_at, updated_at) VALUES (?1, ?2, ?3, 'active', 'UTC', ?4, NULL, ?5, ?6, NULL, false, NULL, '0.19', ?5, ?5)",
            )
        };
        exec(
            sql_org.into(),
            vec![
                org.into(),
                format!("Bench {i}").into(),
                format!("bench-{i}").into(),
                t.into(),
            ],
        )
        .await;
        exec(
            sql_sub.into(),
            vec![
                org.into(),
                sub.into(),
                plan.into(),
                anchor.into(),
                t.into(),
                e.into(),
            ],
        )
        .await;
    }
    if pg {
        // Organization of event g: g mod orgs; spread over the month.
        exec(format!(
            "INSERT INTO usage_events (organization_id, id, metric, idempotency_key, occurred_at, received_at, value, properties) \
             SELECT ('01920000-0000-7000-8000-' || lpad(to_hex(g % {orgs}), 12, '0'))::uuid, \
                    ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'api_calls', 'k' || g, \
                    timestamptz '2027-01-01 00:00:00+00' + (g % 2678000) * interval '1 second', \
                    timestamptz '2027-01-01 00:00:00+00' + (g % 2678000) * interval '1 second', '1', '{{}}' \
             FROM generate_series(0, {}) g", events.saturating_sub(1)), vec![]).await;
    } else {
        // SQLite: bound multi-row inserts in one transaction.
        use sea_orm::TransactionTrait;
        const ROWS: u64 = 500;
        let txn = db.begin().await.expect("begin");
        let mut g = 0;
        while g < events {
            let n = ROWS.min(events - g);
            let placeholders = (0..n)
                .map(|_| "(?, ?, 'api_calls', ?, ?, ?, '1', '{}')")
                .collect::<Vec<_>>()
                .join(", ");
            let mut values: Vec<sea_orm::Value> = Vec::with_capacity(n as usize * 5);
            for k in g..g + n {
                // 2027-01-01T00:00:00Z plus up to 31 days.
                let at = DateTime::<Utc>::from_timestamp(1_798_761_600 + (k % 2_678_000) as i64, 0)
                    .unwrap();
                values.push(org_id(k % orgs).into());
                values.push(uuid::Uuid::from_u128(u128::from(k)).into());
                values.push(format!("k{k}").into());
                values.push(at.into());
                values.push(at.into());
            }
            txn.execute_raw(Statement::from_sql_and_values(
                backend,
                format!("INSERT INTO usage_events (organization_id, id, metric, idempotency_key, occurred_at, received_at, value, properties) VALUES {placeholders}"),
                values,
            ))
            .await
            .expect("seed events");
            g += n;
        }
        txn.commit().await.expect("commit events");
    }
    exec("ANALYZE".into(), vec![]).await;
    db.close().await.ok();
}

/// A second database with the same content: a template copy on PostgreSQL, a file copy on
/// SQLite. Returns its application URL.
async fn copy_database(label: &str, owner_url: &str, app_url: &str) -> String {
    if label.starts_with("SQLite") {
        let path = app_url.trim_start_matches("sqlite://");
        let copy = format!("{path}.copy");
        std::fs::copy(path, &copy).expect("copy file");
        return format!("sqlite://{copy}");
    }
    let (base, name) = owner_url.rsplit_once('/').unwrap();
    let copy = format!("{name}_copy");
    let admin = Database::connect(format!("{base}/postgres"))
        .await
        .expect("admin");
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .ok();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {copy} TEMPLATE {name}"))
        .await
        .expect("copy database");
    admin.close().await.ok();
    let (app_base, _) = app_url.rsplit_once('/').unwrap();
    format!("{app_base}/{copy}")
}

async fn drop_copy(label: &str, owner_url: &str, second_url: &str) {
    if label.starts_with("SQLite") {
        std::fs::remove_file(second_url.trim_start_matches("sqlite://")).ok();
        return;
    }
    let (base, _) = owner_url.rsplit_once('/').unwrap();
    let (_, copy) = second_url.rsplit_once('/').unwrap();
    let admin = Database::connect(format!("{base}/postgres"))
        .await
        .expect("admin");
    admin
        .execute_unprepared(&format!("DROP DATABASE {copy} WITH (FORCE)"))
        .await
        .ok();
    admin.close().await.ok();
}

/// Every invoice cut, in number order, as text (no generated ids): (count, sha256, sum
/// of totals).
async fn dump(app_url: &str) -> (usize, String, i64) {
    // The owner reads across organizations (the application role sees one at a time).
    let url = if app_url.starts_with("postgres") {
        app_url.replacen("platform_app@", "postgres@", 1)
    } else {
        app_url.to_owned()
    };
    let db = Database::connect(&url).await.expect("connect");
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT i.number, i.organization_id, i.period_start, i.period_end, i.subtotal_minor, \
                    i.tax_minor, i.total_minor, i.status, l.position, l.kind, l.description, \
                    l.quantity, l.amount_minor \
             FROM invoices i JOIN invoice_lines l ON l.organization_id = i.organization_id AND l.invoice_id = i.id \
             ORDER BY i.number, l.position",
        ))
        .await
        .expect("dump");
    let mut hasher = Sha256::new();
    let mut numbers = std::collections::BTreeSet::new();
    let mut total = 0i64;
    for row in &rows {
        let number: String = row.try_get_by_index(0).unwrap();
        let org: uuid::Uuid = row.try_get_by_index(1).unwrap();
        let start: DateTime<Utc> = row.try_get_by_index(2).unwrap();
        let end: DateTime<Utc> = row.try_get_by_index(3).unwrap();
        let amounts: [i64; 3] = [4, 5, 6].map(|i| row.try_get_by_index(i).unwrap());
        let status: String = row.try_get_by_index(7).unwrap();
        let position: i32 = row.try_get_by_index(8).unwrap();
        let kind: String = row.try_get_by_index(9).unwrap();
        let description: String = row.try_get_by_index(10).unwrap();
        let quantity: String = row.try_get_by_index(11).unwrap();
        let amount: i64 = row.try_get_by_index(12).unwrap();
        if numbers.insert(number.clone()) {
            total += amounts[2];
        }
        hasher.update(format!(
            "{number}|{org}|{start}|{end}|{amounts:?}|{status}|{position}|{kind}|{description}|{quantity}|{amount}\n"
        ));
    }
    db.close().await.ok();
    let digest = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    (numbers.len(), digest, total)
}
