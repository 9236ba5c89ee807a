//! Audit benchmarks (issue 4), on SQLite and, when `BENCH_DATABASE_URL` names a
//! PostgreSQL server, on PostgreSQL as the application role:
//!
//! 1. the same mutation (open the organization's transaction, insert a project row,
//!    commit) with and without its audit event: throughput and ratio (target ≥ 0.75).
//!    This is the floor of the ratio, a transaction with nothing else in it; the same
//!    for a schema mutation sent over HTTP is `crates/gateway/benches/mutation.rs`;
//! 2. audit appends spread over 1,000 organizations versus all in one hot organization,
//!    from concurrent writers (target: hot organization ≥ 2,000 appends/s);
//! 3. verification of one organization's chain of `AUDIT_BENCH_EVENTS` events (default
//!    1,000,000; target ≤ 10 s).
//!
//! `AUDIT_BENCH_PARTS` (default `mutation,appends,verify`) picks parts.
//!
//! Throughput is measured over fixed wall-clock windows, so figures vary with the load
//! of the machine (and a checkpoint landing in one window); each comparison therefore
//! alternates its two sides over several short rounds and reports the medians. Figures go
//! into issue notes.

// A benchmark fails loudly when its set-up fails.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

mod support;

use audit::{AuditLog, NewEvent};
use chrono::Utc;
use kernel::{Backend, Db, OrgId, SystemClock, TxMode};
use sea_orm::{ConnectionTrait, Statement, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use support::{create_organizations, migrated, open_tx};
use uuid::Uuid;

/// How long each throughput window lasts.
const WINDOW: Duration = Duration::from_secs(2);
/// Alternating rounds per comparison (each side gets one window per round).
const ROUNDS: usize = 5;
/// Concurrent writers (the server's request tasks).
const WRITERS: usize = 8;
/// Organizations the spread appends are distributed over.
const ORGS: usize = 1_000;

fn main() {
    support::block_on_each_engine(|label, owner, app| async move {
        run(&label, &owner, &app).await;
    });
}

async fn run(label: &str, owner_url: &str, app_url: &str) {
    println!("\n== audit on {label}");
    let db = migrated(owner_url, app_url, WRITERS as u32 + 2).await;
    let backend = db.backend();
    let orgs = create_organizations(&db, ORGS + 1).await;
    let audit = Arc::new(AuditLog::new(Arc::new(SystemClock), backend));

    let parts =
        std::env::var("AUDIT_BENCH_PARTS").unwrap_or_else(|_| "mutation,appends,verify".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);

    // 1. The same mutation with and without its event.
    if part("mutation") {
        let (without, with) = compare(
            &db,
            (&orgs[..ORGS], Work::Mutation { audited: false }),
            (&orgs[..ORGS], Work::Mutation { audited: true }),
            &audit,
        )
        .await;
        println!(
            "create project, {WRITERS} writers over {ORGS} orgs, median of {ROUNDS} alternating \
             rounds: {without:.0}/s without its event, {with:.0}/s with it: ratio {:.2} (target >= 0.75)",
            with / without
        );
    }

    // 2. Appends spread over many organizations versus one hot organization.
    if part("appends") {
        let (spread, hot) = compare(
            &db,
            (&orgs[..ORGS], Work::Append),
            (&orgs[..1], Work::Append),
            &audit,
        )
        .await;
        println!(
            "audit appends, {WRITERS} writers, median of {ROUNDS} alternating rounds: {spread:.0}/s \
             over {ORGS} orgs, {hot:.0}/s in one hot org (target >= 2000/s)"
        );
    }

    // 3. Verification of one long chain.
    if part("verify") {
        let events: u64 = std::env::var("AUDIT_BENCH_EVENTS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let org = orgs[ORGS];
        let started = Instant::now();
        let tx = open_tx(&db, org, TxMode::Write).await;
        audit::bench_support::append_synthetic(&tx, events, Utc::now())
            .await
            .expect("fill chain");
        tx.commit().await.expect("commit chain");
        let filled = started.elapsed();
        // As the server verifies: on PostgreSQL in ranges, one read transaction per core (at
        // most 4); SQLite in one pass (its readers contend; the one-pass figure below shows it).
        let parts = match backend {
            Backend::Postgres => std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            Backend::Sqlite => 1,
        };
        let verify_timed = |hashing: audit::Hashing| {
            let (db, audit) = (&db, &audit);
            async move {
                let started = Instant::now();
                let main = open_tx(db, org, TxMode::Read).await;
                let mut others = Vec::new();
                for _ in 1..parts {
                    others.push(open_tx(db, org, TxMode::Read).await);
                }
                let report = audit
                    .verify_in_parts(&main, &others, hashing)
                    .await
                    .expect("verify");
                let took = started.elapsed();
                for tx in others {
                    tx.rollback().await.expect("end verify");
                }
                main.rollback().await.expect("end verify");
                (report, took)
            }
        };
        let (report, verify) = verify_timed(audit.default_hashing()).await;
        assert!(report.broken.is_none(), "a synthetic chain verifies");
        assert_eq!(report.checked, events);
        // The independent recomputation (hashed in this process); on SQLite it is the same.
        let (here, verify_here) = verify_timed(audit::Hashing::Here).await;
        assert_eq!(here, report);
        // One pass in one transaction, as before verification was split.
        let started = Instant::now();
        let tx = open_tx(&db, org, TxMode::Read).await;
        let one_pass = audit.verify(&tx).await.expect("verify");
        let verify_one_pass = started.elapsed();
        tx.rollback().await.expect("end verify");
        assert_eq!(one_pass, report);
        let started = Instant::now();
        let tx = open_tx(&db, org, TxMode::Read).await;
        let fetched = audit::bench_support::fetch_only(&tx).await.expect("fetch");
        let fetching = started.elapsed();
        tx.rollback().await.expect("end fetch");
        assert_eq!(fetched, events);
        println!(
            "verify {events} events in {parts} ranges: {:.2} s ({:.0} events/s; target <= 10 s \
             for 1M); hashed in this process from the rows the database serializes: {:.2} s; in \
             one pass: {:.2} s, of which reading the rows alone {:.2} s; filled in {:.1} s",
            verify.as_secs_f64(),
            events as f64 / verify.as_secs_f64(),
            verify_here.as_secs_f64(),
            verify_one_pass.as_secs_f64(),
            fetching.as_secs_f64(),
            filled.as_secs_f64()
        );
    }
    db.conn().clone().close().await.ok();
}

#[derive(Clone, Copy)]
enum Work {
    /// Insert a project in its organization's transaction, with or without its event.
    Mutation { audited: bool },
    /// Append one event in its own transaction.
    Append,
}

/// Medians of `ROUNDS` alternating windows of side `a` and side `b` (operations/s).
async fn compare(
    db: &Db,
    a: (&[OrgId], Work),
    b: (&[OrgId], Work),
    audit: &Arc<AuditLog>,
) -> (f64, f64) {
    // A warm-up window: connections prepare their statements, caches fill.
    throughput(db, a.0, audit, a.1).await;
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        first.push(throughput(db, a.0, audit, a.1).await);
        second.push(throughput(db, b.0, audit, b.1).await);
    }
    (median(first), median(second))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Operations per second of `WRITERS` tasks cycling through `orgs` for `WINDOW`.
async fn throughput(db: &Db, orgs: &[OrgId], audit: &Arc<AuditLog>, work: Work) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + WINDOW;
    let orgs: Arc<Vec<OrgId>> = Arc::new(orgs.to_vec());
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let (db, audit, done, orgs) = (db.clone(), audit.clone(), done.clone(), orgs.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = writer;
            while Instant::now() < deadline {
                let org = orgs[i % orgs.len()];
                i += WRITERS;
                one(&db, org, &audit, work).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    done.load(Ordering::Relaxed) as f64 / WINDOW.as_secs_f64()
}

async fn one(db: &Db, org: OrgId, audit: &AuditLog, work: Work) {
    let tx = open_tx(db, org, TxMode::Write).await;
    let id = Uuid::now_v7();
    match work {
        Work::Mutation { audited } => {
            let backend = tx.conn().get_database_backend();
            let sql = match db.backend() {
                Backend::Postgres => {
                    "INSERT INTO projects (organization_id, id, name, description, archived, \
                     created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
                }
                Backend::Sqlite => {
                    "INSERT INTO projects (organization_id, id, name, description, archived, \
                     created_by, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)"
                }
            };
            let values: [Value; 7] = [
                org.as_uuid().into(),
                id.into(),
                format!("Project {id}").into(),
                "".into(),
                false.into(),
                Uuid::nil().into(),
                Utc::now().into(),
            ];
            tx.conn()
                .execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await
                .expect("insert project");
            if audited {
                audit
                    .record(
                        &tx,
                        NewEvent::new("project.created", "project", Some(id)).change(
                            "name",
                            None::<serde_json::Value>,
                            Some(serde_json::json!(format!("Project {id}"))),
                        ),
                    )
                    .await
                    .expect("record");
            }
        }
        Work::Append => {
            audit
                .record(&tx, NewEvent::new("bench.appended", "project", Some(id)))
                .await
                .expect("record");
        }
    }
    tx.commit().await.expect("commit");
}
