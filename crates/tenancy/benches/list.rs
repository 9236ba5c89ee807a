//! The list filter at scale (issue 3): a page of 50 projects out of 1,000,000 for a person
//! with 100 record grants and no organization-wide role, answered by the SQL semi-join
//! on `record_grants`. Reports the SQL statements one page costs (the policy-version
//! read, the page query; BEGIN and COMMIT not counted) and the median latency of the page
//! (transaction, filter compilation from the cached enforcer, query), on SQLite and, with
//! `BENCH_DATABASE_URL`, on PostgreSQL as the application role. `LIST_BENCH_RECORDS`
//! changes the million.

// A benchmark fails loudly when its set-up fails.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

mod support;

use audit::AuditLog;
use authz::{Action, Authorizer, ResourceType, Subject};
use chrono::Utc;
use core_domain::ProjectService;
use kernel::{ConfiguredLimits, PageRequest, SystemClock, TxMode, UserId};
use sea_orm::{ConnectionTrait, Statement, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{create_organizations, migrated, open_tx, placeholders};
use uuid::Uuid;

/// Rows per multi-row INSERT.
const BATCH: usize = 1_000;
/// Grants of the person listing.
const GRANTS: usize = 100;
/// Page size.
const PAGE: u64 = 50;
/// Timed pages.
const RUNS: usize = 51;

fn main() {
    support::block_on_each_engine(|label, owner, app| async move {
        run(&label, &owner, &app).await;
    });
}

async fn run(label: &str, owner_url: &str, app_url: &str) {
    println!("\n== list filter on {label}");
    let records: usize = std::env::var("LIST_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let db = migrated(owner_url, app_url, 4).await;
    let org = create_organizations(&db, 1).await[0];
    let owner = Uuid::now_v7();
    let person = UserId::from_uuid(Uuid::now_v7());

    // Fill: `records` projects; the person is granted `reader` on every 10,000th.
    let started = Instant::now();
    let mut granted = Vec::new();
    let tx = open_tx(&db, org, TxMode::Write).await;
    let now = Utc::now();
    let mut n = 0;
    while n < records {
        let rows = BATCH.min(records - n);
        let sql = format!(
            "INSERT INTO projects (organization_id, id, name, description, archived, required_approvals, created_by, created_at, updated_at) VALUES {}",
            placeholders(&db, rows, 9)
        );
        let mut values: Vec<Value> = Vec::with_capacity(rows * 9);
        for i in n..n + rows {
            let id = Uuid::now_v7();
            if granted.len() < GRANTS && i % (records / GRANTS).max(1) == 0 {
                granted.push(id);
            }
            values.extend([
                org.as_uuid().into(),
                id.into(),
                format!("Project {i}").into(),
                "".into(),
                false.into(),
                1i32.into(),
                owner.into(),
                now.into(),
                now.into(),
            ]);
        }
        tx.conn()
            .execute_raw(Statement::from_sql_and_values(
                tx.conn().get_database_backend(),
                sql,
                values,
            ))
            .await
            .expect("insert projects");
        n += rows;
    }
    let sql = format!(
        "INSERT INTO record_grants (organization_id, id, subject, resource_type, resource_id, relation, granted_by, created_at) VALUES {}",
        placeholders(&db, granted.len(), 8)
    );
    let mut values: Vec<Value> = Vec::new();
    for project in &granted {
        values.extend([
            org.as_uuid().into(),
            Uuid::now_v7().into(),
            format!("user:{person}").into(),
            "project".into(),
            (*project).into(),
            "reader".into(),
            format!("user:{owner}").into(),
            now.into(),
        ]);
    }
    tx.conn()
        .execute_raw(Statement::from_sql_and_values(
            tx.conn().get_database_backend(),
            sql,
            values,
        ))
        .await
        .expect("insert grants");
    tx.commit().await.expect("commit fill");
    if db.backend() == kernel::Backend::Postgres {
        db.conn()
            .execute_unprepared("ANALYZE projects; ANALYZE record_grants;")
            .await
            .ok();
    }
    println!(
        "filled {records} projects, {} grants in {:.1} s",
        granted.len(),
        started.elapsed().as_secs_f64()
    );

    let clock = Arc::new(SystemClock);
    let audit = AuditLog::new(clock.clone(), db.backend());
    let authz = Authorizer::new(64 << 20, audit.clone(), clock.clone())
        .await
        .expect("authorizer");
    let projects = ProjectService::new(audit, clock, Arc::new(ConfiguredLimits::default()));
    let page = PageRequest {
        limit: PAGE,
        ..PageRequest::first_page()
    };
    let subject = Subject::User(person);
    let mut latencies = Vec::with_capacity(RUNS);
    let mut statements = 0;
    let mut listed = 0;
    // One untimed page compiles the organization's enforcer into the cache.
    for run in 0..=RUNS {
        let before = db.statements_executed();
        let started = Instant::now();
        let tx = open_tx(&db, org, TxMode::Read).await;
        let filter = authz
            .list_filter(&tx, &subject, ResourceType::Project, Action::Read, None)
            .await
            .expect("filter");
        let found = projects
            .list(&tx, &filter, (&page, kernel::ListOrder::OldestFirst))
            .await
            .expect("page");
        tx.rollback().await.expect("end");
        if run > 0 {
            latencies.push(started.elapsed());
            statements = db.statements_executed() - before;
            listed = found.items.len();
        }
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let p90 = latencies[latencies.len() * 9 / 10];
    assert_eq!(
        listed, PAGE as usize,
        "the page holds granted projects only"
    );
    println!(
        "page of {PAGE} of {records} projects for a person with {} grants: {statements} SQL statements \
         (BEGIN and ROLLBACK not counted), median {:.2} ms, p90 {:.2} ms",
        granted.len(),
        ms(median),
        ms(p90)
    );
    db.conn().clone().close().await.ok();
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
