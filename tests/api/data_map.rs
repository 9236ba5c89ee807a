//! The data map in code agrees with the live database: every column of every table is
//! classified (personal or not, and why), and no classification names a column that is
//! gone. On both engines, after every migration.

use crate::helpers::{TestApp, on_postgres};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

#[tokio::test]
async fn every_column_of_the_live_database_is_classified_and_nothing_else() {
    let app = TestApp::spawn().await;
    let (db, backend, sql) = if on_postgres() {
        (
            // The owner sees every column (the application role not all of them).
            app.owner_db().await,
            DbBackend::Postgres,
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public'",
        )
    } else {
        (
            app.app_db().await,
            DbBackend::Sqlite,
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    let catalog: Vec<(String, String)> = rows
        .iter()
        .map(|row| {
            (
                row.try_get_by_index::<String>(0).unwrap(),
                row.try_get_by_index::<String>(1).unwrap(),
            )
        })
        .collect();
    assert!(
        catalog.len() > 100,
        "read the catalog: {} columns",
        catalog.len()
    );
    let problems = kernel::data_map::check(gateway::privacy::data_map(), &catalog);
    let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        problems.is_empty(),
        "classify each column in its crate's data_map.rs:\n{}",
        listed.join("\n")
    );
}
