//! What the pool's guards cost a transaction on PostgreSQL (`BENCH_DATABASE_URL`): a
//! `BEGIN` run on its own task, and the check that a released connection is outside any
//! transaction (in place of the ping on every acquire). The same short tenant-shaped
//! transaction (`BEGIN; set_config; SELECT; COMMIT`) runs from 8 tasks over 8 connections
//! through [`kernel::Db`] and through a plain SeaORM pool with its defaults, alternating
//! rounds; medians are compared.

// A benchmark fails loudly: a panic with a message is the report.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use kernel::{Db, TxMode};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, TransactionTrait};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TASKS: usize = 8;
const ROUNDS: usize = 5;
const ROUND: Duration = Duration::from_secs(2);

#[derive(Clone)]
enum Side {
    Guarded(Db),
    Plain(DatabaseConnection),
}

impl Side {
    async fn transaction(&self) {
        let txn = match self {
            Side::Guarded(db) => db.begin(TxMode::Read).await,
            Side::Plain(conn) => conn.begin().await,
        }
        .expect("begin");
        txn.execute_unprepared(
            "SELECT set_config('app.org_id', '00000000-0000-0000-0000-000000000001', true)",
        )
        .await
        .expect("set_config");
        txn.execute_unprepared("SELECT 1").await.expect("select");
        txn.commit().await.expect("commit");
    }
}

async fn round(side: &Side) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (side, done, stop) = (side.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    side.transaction().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(ROUND).await;
    stop.store(true, Ordering::Relaxed);
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for task in tasks {
        task.await.expect("task");
    }
    count as f64 / elapsed
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let Ok(url) = std::env::var("BENCH_DATABASE_URL") else {
        println!("pool: BENCH_DATABASE_URL is not set; nothing to measure");
        return;
    };
    if !url.starts_with("postgres") {
        println!("pool: PostgreSQL only");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let guarded = Side::Guarded(Db::connect(&url, TASKS as u32).await.expect("connect"));
            let mut options = ConnectOptions::new(url.clone());
            options
                .max_connections(TASKS as u32)
                .min_connections(1)
                .sqlx_logging(false);
            let plain = Side::Plain(Database::connect(options).await.expect("connect"));
            // Warm both pools.
            round(&guarded).await;
            round(&plain).await;
            let (mut with, mut without) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                with.push(round(&guarded).await);
                without.push(round(&plain).await);
            }
            let (with, without) = (median(with), median(without));
            println!(
                "pool guards, {TASKS} tasks, medians of {ROUNDS} alternating rounds of {} s:",
                ROUND.as_secs()
            );
            println!("  kernel::Db (BEGIN on its own task, release check): {with:>8.0} tx/s");
            println!("  plain SeaORM pool (ping on every acquire):          {without:>8.0} tx/s");
            println!(
                "  ratio {:.3}; {:+.1} µs per transaction",
                with / without,
                1e6 / with - 1e6 / without
            );
        });
}
