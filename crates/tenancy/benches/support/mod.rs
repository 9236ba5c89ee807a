//! Set-up shared by the database benchmarks: a fresh SQLite file, and a fresh PostgreSQL
//! database (migrated as the owner, used as the application role) when
//! `BENCH_DATABASE_URL` names a server.

// Shared by several bench binaries; each uses a part.
#![allow(dead_code)]

use chrono::Utc;
use kernel::{Db, OrgId, TenantOpener, TenantTx, TxMode};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, Statement};
use std::future::Future;

/// A benchmark's `main`: [`on_each_engine`] on a multi-threaded runtime.
pub fn block_on_each_engine<F, Fut>(bench: F)
where
    F: Fn(String, String, String) -> Fut,
    Fut: Future<Output = ()>,
{
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(on_each_engine(bench));
}

/// Runs `bench(label, owner_url, app_url)` on SQLite, then on PostgreSQL if configured;
/// each gets a fresh database that is removed afterwards. `BENCH_ENGINES` (default
/// `sqlite,postgres`) picks engines.
pub async fn on_each_engine<F, Fut>(bench: F)
where
    F: Fn(String, String, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let engines = std::env::var("BENCH_ENGINES").unwrap_or_else(|_| "sqlite,postgres".into());
    let wanted = |name: &str| engines.split(',').any(|e| e.trim() == name);
    if wanted("sqlite") {
        let dir = std::env::temp_dir().join(format!("platform-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let sqlite = format!("sqlite://{}", dir.join("bench.db").display());
        bench("SQLite".into(), sqlite.clone(), sqlite).await;
        std::fs::remove_dir_all(&dir).ok();
    }
    if !wanted("postgres") {
        return;
    }
    match std::env::var("BENCH_DATABASE_URL") {
        Ok(admin) if admin.starts_with("postgres") => {
            let name = format!("platform_bench_{}", std::process::id());
            let admin_db = Database::connect(&admin).await.expect("connect admin");
            admin_db
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create bench database");
            let owner = with_user_and_db(&admin, None, &name);
            let app = with_user_and_db(&admin, Some("platform_app"), &name);
            bench("PostgreSQL (as platform_app, RLS on)".into(), owner, app).await;
            admin_db
                .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .expect("drop bench database");
        }
        _ => println!("\nBENCH_DATABASE_URL not set: PostgreSQL figures skipped"),
    }
}

fn with_user_and_db(url: &str, user: Option<&str>, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL");
    let (credentials, host_and_path) = rest.split_once('@').unwrap_or(("", rest));
    let host = host_and_path.split('/').next().unwrap_or(host_and_path);
    let user = user.map_or(credentials.to_owned(), str::to_owned);
    format!("{scheme}://{user}@{host}/{database}")
}

/// Migrates as the owner and connects as the application.
pub async fn migrated(owner_url: &str, app_url: &str, connections: u32) -> Db {
    let owner = Db::connect(owner_url, 1).await.expect("connect owner");
    Migrator::up(owner.conn(), None).await.expect("migrate");
    owner.conn().clone().close().await.expect("close owner");
    Db::connect(app_url, connections)
        .await
        .expect("connect app")
}

/// The organization's transaction.
pub async fn open_tx(db: &Db, org: OrgId, mode: TxMode) -> TenantTx {
    TenantTx::open(db, org, mode, TenantOpener::issued_by_tenancy())
        .await
        .expect("open tenant transaction")
}

/// `count` organizations.
pub async fn create_organizations(db: &Db, count: usize) -> Vec<OrgId> {
    let orgs: Vec<OrgId> = (0..count).map(|_| OrgId::generate()).collect();
    let tx = db.begin(TxMode::Write).await.expect("begin");
    let backend = tx.get_database_backend();
    for org in &orgs {
        let sql = match backend {
            sea_orm::DbBackend::Postgres => {
                "INSERT INTO organizations (id, name, slug, created_at) VALUES ($1, $2, $3, $4)"
            }
            _ => "INSERT INTO organizations (id, name, slug, created_at) VALUES (?, ?, ?, ?)",
        };
        tx.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                org.as_uuid().into(),
                "Bench".into(),
                format!("bench-{}", org.as_uuid()).into(),
                Utc::now().into(),
            ],
        ))
        .await
        .expect("insert organization");
    }
    tx.commit().await.expect("commit organizations");
    orgs
}

/// `$1, $2, …` on PostgreSQL, `?` on SQLite, for `rows` rows of `columns` values.
pub fn placeholders(db: &Db, rows: usize, columns: usize) -> String {
    let mut n = 0;
    (0..rows)
        .map(|_| {
            let row: Vec<String> = (0..columns)
                .map(|_| {
                    n += 1;
                    match db.backend() {
                        kernel::Backend::Postgres => format!("${n}"),
                        kernel::Backend::Sqlite => "?".to_owned(),
                    }
                })
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
