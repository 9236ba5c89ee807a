//! The floors of the HTTP benchmark: what this stack reaches on this machine doing only
//! the database's part of a workload, behind a server with none of the platform in it
//! (no credential, no organization entered, no permission, no ORM, no loader).
//!
//! - `/graphql`: the node read's transaction (`BEGIN`, `set_config`, the select,
//!   `COMMIT`), its answer's JSON built by hand.
//! - `/page/graphql`: the documents page's SQL, one prepared statement at a time in one
//!   transaction, and its answer's JSON built by hand.
//! - `/graphql-page/graphql`: the same SQL, its rows turned into plain structs, and the
//!   page's GraphQL document executed over them by async-graphql (parsed, validated and
//!   resolved field by field, as any server on this stack must): the floor of a GraphQL
//!   server on this stack.

use super::{CLIENTS, DOCUMENTS, Ids, page_script};
use async_graphql::{Context, EmptyMutation, EmptySubscription, Object, Schema, SimpleObject};
use sea_orm::sqlx;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::postgres::PgRow;
use std::collections::HashMap;
use uuid::Uuid;

/// Starts the floor server on `runtime` (the platform's, so that its CPU time is counted
/// the same way), with sqlx on a pool of `CLIENTS` connections as `platform_app` (no
/// check on checkout; sqlx's own on release stays, as it does under the platform). Its
/// base URL.
pub async fn start(runtime: &tokio::runtime::Runtime, app_url: &str, ids: &Ids) -> String {
    let page = PageSql {
        statements: page_script(ids)
            .lines()
            .map(|line| line.trim().trim_end_matches(';').to_owned())
            .filter(|sql| !matches!(sql.as_str(), "" | "BEGIN" | "COMMIT"))
            .collect(),
    };
    let (org, project) = (
        Uuid::parse_str(&ids.org).unwrap(),
        Uuid::parse_str(&ids.project).unwrap(),
    );
    let app_url = app_url.to_owned();
    let (started, ready) = tokio::sync::oneshot::channel();
    runtime.spawn(async move {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(CLIENTS as u32)
            .test_before_acquire(false)
            .connect(&app_url)
            .await
            .expect("floor pool");
        let node_pool = pool.clone();
        let node = move || {
            let pool = node_pool.clone();
            async move {
                let mut tx = pool.begin().await.expect("begin");
                sqlx::query("SELECT set_config('app.org_id', $1, true)")
                    .bind(org.to_string())
                    .execute(&mut *tx)
                    .await
                    .expect("set_config");
                let (id, name): (Uuid, String) = sqlx::query_as(
                    "SELECT id, name FROM projects WHERE organization_id = $1 AND id = $2",
                )
                .bind(org)
                .bind(project)
                .fetch_one(&mut *tx)
                .await
                .expect("select");
                tx.commit().await.expect("commit");
                axum::Json(json!({"data": {"node": {"id": id, "name": name}}}))
            }
        };
        let json_pool = pool.clone();
        let json_sql = page.clone();
        let page_json = move || {
            let (pool, sql) = (json_pool.clone(), json_sql.clone());
            async move {
                let documents = sql.read(&pool).await;
                let nodes: Vec<Value> = documents.iter().map(PageDocument::to_json).collect();
                axum::Json(json!({"data": {"documents": {"nodes": nodes}}}))
            }
        };
        let schema = Schema::build(PageQuery, EmptyMutation, EmptySubscription)
            .data(pool)
            .data(page)
            .finish();
        let page_graphql = move |axum::Json(request): axum::Json<async_graphql::Request>| {
            let schema = schema.clone();
            async move { axum::Json(schema.execute(request).await) }
        };
        let router = axum::Router::new()
            .route("/graphql", axum::routing::post(node))
            .route("/page/graphql", axum::routing::post(page_json))
            .route("/graphql-page/graphql", axum::routing::post(page_graphql));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        started.send(listener.local_addr().unwrap().port()).ok();
        axum::serve(listener, router).await.ok();
    });
    format!("http://127.0.0.1:{}", ready.await.expect("floor started"))
}

/// The page's SQL: set_config, membership, documents, projects, authors, reviews,
/// versions.
#[derive(Clone)]
struct PageSql {
    statements: Vec<String>,
}

impl PageSql {
    /// The page's documents, read in one transaction, each with what the page shows of
    /// it.
    async fn read(&self, pool: &sqlx::PgPool) -> Vec<PageDocument> {
        let mut tx = pool.begin().await.expect("begin");
        let mut results: Vec<Vec<PgRow>> = Vec::new();
        for sql in &self.statements {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_all(&mut *tx)
                .await
                .expect("page statement");
            results.push(rows);
        }
        tx.commit().await.expect("commit");
        let names = |rows: &[PgRow]| {
            rows.iter()
                .map(|r| (r.get::<Uuid, _>("id"), r.get::<String, _>("name")))
                .collect::<HashMap<_, _>>()
        };
        let (projects, users) = (names(&results[3]), names(&results[4]));
        results[2]
            .iter()
            .take(DOCUMENTS)
            .map(|doc| {
                let id: Uuid = doc.get("id");
                PageDocument {
                    title: doc.get("title"),
                    status: doc.get("status"),
                    project: projects
                        .get(&doc.get::<Uuid, _>("project_id"))
                        .map(|name| Named { name: name.clone() }),
                    author: users
                        .get(&doc.get::<Uuid, _>("author_id"))
                        .map(|name| Named { name: name.clone() }),
                    approvals: results[5]
                        .iter()
                        .filter(|r| r.get::<Uuid, _>("document_id") == id)
                        .map(|r| Approval {
                            reviewer: users
                                .get(&r.get::<Uuid, _>("reviewer_id"))
                                .map(|name| Named { name: name.clone() }),
                        })
                        .collect(),
                    newest_version: results[6]
                        .iter()
                        .find(|v| v.get::<Uuid, _>("document_id") == id)
                        .map(|v| v.get::<i32, _>("version")),
                }
            })
            .collect()
    }
}

/// What the page shows of a document.
struct PageDocument {
    title: String,
    status: String,
    project: Option<Named>,
    author: Option<Named>,
    approvals: Vec<Approval>,
    newest_version: Option<i32>,
}

impl PageDocument {
    fn to_json(&self) -> Value {
        let name = |named: &Option<Named>| named.as_ref().map(|n| json!({"name": n.name}));
        json!({
            "title": self.title,
            "status": self.status,
            "project": name(&self.project),
            "author": name(&self.author),
            "approvals": self.approvals.iter().map(|a| json!({"reviewer": name(&a.reviewer)})).collect::<Vec<_>>(),
            "versions": {"nodes": self.newest_version.iter().map(|v| json!({"version": v})).collect::<Vec<_>>()},
        })
    }
}

#[derive(SimpleObject)]
struct Named {
    name: String,
}

#[derive(SimpleObject)]
struct Approval {
    reviewer: Option<Named>,
}

#[derive(SimpleObject)]
struct Version {
    version: i32,
}

#[derive(SimpleObject)]
struct Versions {
    nodes: Vec<Version>,
}

#[derive(SimpleObject)]
struct Documents {
    nodes: Vec<PageDocument>,
}

#[Object]
impl PageDocument {
    async fn title(&self) -> &str {
        &self.title
    }

    async fn status(&self) -> &str {
        &self.status
    }

    async fn project(&self) -> Option<&Named> {
        self.project.as_ref()
    }

    async fn author(&self) -> Option<&Named> {
        self.author.as_ref()
    }

    async fn approvals(&self) -> &[Approval] {
        &self.approvals
    }

    async fn versions(&self, first: Option<i32>) -> Versions {
        let take = usize::try_from(first.unwrap_or(1)).unwrap_or(0);
        Versions {
            nodes: self
                .newest_version
                .iter()
                .take(take)
                .map(|&version| Version { version })
                .collect(),
        }
    }
}

struct PageQuery;

#[Object]
impl PageQuery {
    async fn documents(&self, ctx: &Context<'_>, first: Option<i32>) -> Documents {
        assert_eq!(first, Some(DOCUMENTS as i32), "the page's own document");
        let pool = ctx.data_unchecked::<sqlx::PgPool>();
        let page = ctx.data_unchecked::<PageSql>();
        Documents {
            nodes: page.read(pool).await,
        }
    }
}
