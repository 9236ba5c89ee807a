//! `TestApp`: the real server on a random port against a fresh database (a temporary
//! SQLite file, or a PostgreSQL database cloned from a template migrated once per run,
//! reached as the non-owner application role so Row-Level Security really applies), and
//! a small GraphQL client. Every response's errors are checked to carry an
//! `extensions.code`.
//!
//! Longer than 600 lines on purpose: the harness every test file uses (server, databases,
//! client, fixtures), kept in one place so a change to how tests talk to the server is
//! made once.

use chrono::Utc;
use gateway::config::LogFormat;
use gateway::{Application, Config};
use kernel::FakeClock;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub const PASSWORD: &str = "a-long-test-password";
const TEMPLATE_DB: &str = "platform_test_template";

/// Which database the tests run on: `TEST_BACKEND=postgres` picks PostgreSQL at
/// `TEST_DATABASE_URL`; anything else SQLite.
pub fn on_postgres() -> bool {
    std::env::var("TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `admin_url` with another user and database.
fn pg_url(user: &str, database: &str) -> String {
    let mut url = reqwest::Url::parse(&admin_url()).expect("TEST_DATABASE_URL is a URL");
    url.set_username(user).expect("settable user");
    url.set_password(None).expect("settable password");
    url.set_path(&format!("/{database}"));
    url.to_string()
}

static TEMPLATE: OnceCell<()> = OnceCell::const_new();

async fn migrated_template() {
    TEMPLATE
        .get_or_init(|| async {
            let admin = Database::connect(admin_url())
                .await
                .expect("connect as admin");
            admin
                .execute_unprepared(&format!(
                    "DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)"
                ))
                .await
                .expect("drop old template");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {TEMPLATE_DB}"))
                .await
                .expect("create template");
            let template = Database::connect(pg_url("postgres", TEMPLATE_DB))
                .await
                .expect("connect template");
            Migrator::up(&template, None)
                .await
                .expect("migrate template");
            template.close().await.expect("close template");
            admin.close().await.expect("close admin");
        })
        .await;
}

/// The database a test runs on, removed when the test ends.
enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(String),
    /// Another server's database: removed by that server's `TestApp`.
    Shared(Option<String>),
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres(name) = self {
            let name = name.clone();
            // Drop runs inside the test's runtime; drop the database from a thread of its own.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let admin = Database::connect(admin_url()).await?;
                    admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await?;
                    admin.close().await
                })?;
                Ok::<_, anyhow::Error>(())
            })
            .join();
        }
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    pub clock: FakeClock,
    pub http: reqwest::Client,
    /// URL of the test database as the application role (PostgreSQL) or the SQLite file.
    pub database_url: String,
    /// The server's database handle, whose statement count the N+1 tests read.
    pub server_db: kernel::Db,
    /// The server's services, for operator actions that have no API (the command line's).
    pub state: gateway::startup::AppState,
    _db: TestDb,
    _exports: Option<tempfile::TempDir>,
}

/// A logged-in person.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

impl TestUser {
    /// The person's UUID (as audit events name actors), decoded from the global id.
    pub fn id_uuid(&self) -> Option<String> {
        global_id_uuid(&self.id, "User").map(|u| u.to_string())
    }
}

/// The UUID inside a global id of `type_name`.
pub fn global_id_uuid(id: &str, type_name: &str) -> Option<uuid::Uuid> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(id)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let simple = text.strip_prefix(type_name)?.strip_prefix(':')?;
    uuid::Uuid::try_parse(simple).ok()
}

/// An organization created by a test.
#[derive(Debug, Clone)]
pub struct TestOrg {
    pub id: String,
}

impl TestOrg {
    /// The organization's id as the services know it.
    pub fn org_id(&self) -> kernel::OrgId {
        kernel::OrgId::from_uuid(global_id_uuid(&self.id, "Organization").expect("organization id"))
    }
}

impl TestApp {
    /// Starts the server on a fresh database.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the server on a fresh database, with its configuration changed by
    /// `configure` (plan limits, say).
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        if std::env::var("TEST_LOG").is_ok() {
            gateway::telemetry::init("info,sqlx=warn", LogFormat::Pretty, std::io::stdout, None);
        }
        let (db, database_url) = if on_postgres() {
            migrated_template().await;
            let name = format!("platform_test_{}", uuid::Uuid::now_v7().simple());
            let admin = Database::connect(admin_url())
                .await
                .expect("connect as admin");
            create_from_template(&admin, &name).await;
            admin.close().await.expect("close admin");
            (
                TestDb::Postgres(name.clone()),
                pg_url(migration::APP_ROLE, &name),
            )
        } else {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (TestDb::Sqlite(dir), url)
        };
        // Data export archives in a directory of this test's own, removed with it.
        let exports = tempfile::tempdir().expect("temp dir");
        let export_dir = exports.path().to_owned();
        let (address, clock, server_db, state) =
            start_server(&database_url, FakeClock::at(Utc::now()), |config| {
                config.privacy.data_export_dir = export_dir;
                configure(config)
            })
            .await;
        TestApp {
            address,
            clock,
            http: reqwest::Client::new(),
            database_url,
            server_db,
            state,
            _db: db,
            _exports: Some(exports),
        }
    }

    /// A second server process on the same database, sharing the clock: what another
    /// instance behind the load balancer sees.
    pub async fn spawn_twin(&self) -> TestApp {
        self.spawn_twin_with(|_| {}).await
    }

    /// [`TestApp::spawn_twin`] with its configuration changed by `configure`.
    pub async fn spawn_twin_with(&self, configure: impl FnOnce(&mut Config)) -> TestApp {
        // The twin shares the data export directory (instances share one).
        let export_dir = self.state.export_dir.clone();
        let (address, clock, server_db, state) =
            start_server(&self.database_url, self.clock.clone(), |config| {
                config.privacy.data_export_dir = export_dir;
                configure(config)
            })
            .await;
        let owner_db = match &self._db {
            TestDb::Postgres(name) => Some(name.clone()),
            TestDb::Shared(name) => name.clone(),
            TestDb::Sqlite(_) => None,
        };
        TestApp {
            address,
            clock,
            http: reqwest::Client::new(),
            database_url: self.database_url.clone(),
            server_db,
            state,
            _db: TestDb::Shared(owner_db),
            _exports: None,
        }
    }
}

/// The configuration test servers run with.
fn test_config(database_url: &str) -> Config {
    let mut config = Config::defaults().expect("defaults");
    config.database.url = database_url.to_owned();
    config.database.max_connections = 8;
    config.http.bind_addr = "127.0.0.1:0".parse().expect("address");
    config.auth.token_secret = Some("test-secret-that-is-long-enough-0123456789".into());
    // Tests move the clock and run billing and retention themselves.
    config.billing.run_interval_secs = 0;
    config.privacy.audit_retention_interval_secs = 0;
    // Replaced by a directory of each test's own (TestApp::spawn_with).
    config.privacy.data_export_dir = std::env::temp_dir().join("platform-exports-test");
    config.stripe.api_base = "http://127.0.0.1:9".into();
    config.limits.rate_limit_api_key_per_minute = 0;
    config.limits.rate_limit_user_per_minute = 0;
    config.telemetry.log_filter = "warn".into();
    config.webhooks.insecure_hosts = vec!["127.0.0.1".into()];
    config
}

async fn start_server(
    database_url: &str,
    clock: FakeClock,
    configure: impl FnOnce(&mut Config),
) -> (String, FakeClock, kernel::Db, gateway::startup::AppState) {
    {
        let mut config = test_config(database_url);
        configure(&mut config);
        let app = Application::build(&config, Arc::new(clock.clone()))
            .await
            .expect("build app");
        let address = format!("http://127.0.0.1:{}", app.port());
        let db = app.db();
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        (address, clock, db, state)
    }
}

impl TestApp {
    /// A GraphQL request.
    pub fn gql(&self, query: &str) -> Gql<'_> {
        Gql {
            app: self,
            body: json!({ "query": query }),
            token: None,
            org: None,
            source: None,
            headers: Vec::new(),
        }
    }

    /// A GraphQL request with this body as sent (`documentId`, APQ extensions, …).
    pub fn gql_body(&self, body: Value) -> Gql<'_> {
        Gql {
            app: self,
            body,
            token: None,
            org: None,
            source: None,
            headers: Vec::new(),
        }
    }

    /// Signs up and logs in a new person.
    pub async fn user(&self, email: &str) -> TestUser {
        let signed_up = self
            .gql("mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }")
            .vars(json!({ "i": { "email": email, "password": PASSWORD, "name": email.split('@').next() } }))
            .send()
            .await;
        let id = signed_up.data()["signUp"]["user"]["id"]
            .as_str()
            .expect("user id")
            .to_owned();
        let tokens = self.log_in(email, PASSWORD).await;
        let data = tokens.data();
        TestUser {
            id,
            email: email.to_owned(),
            token: data["logIn"]["accessToken"]
                .as_str()
                .expect("token")
                .to_owned(),
            refresh_token: data["logIn"]["refreshToken"]
                .as_str()
                .expect("refresh")
                .to_owned(),
        }
    }

    /// Imports the demo catalog (`catalog/demo.json`) as an operator would.
    pub async fn import_demo_catalog(&self) {
        let catalog =
            billing::CatalogFile::parse(gateway::dev::seed::DEMO_CATALOG).expect("catalog");
        gateway::catalog::import_catalog(&self.state, &catalog)
            .await
            .expect("import catalog");
    }

    /// One billing run, as the server's timer or `platform billing run` does it.
    pub async fn billing_run(&self) -> gateway::background::billing_run::RunReport {
        gateway::background::billing_run::run_once(&self.state)
            .await
            .expect("billing run")
    }

    /// One audit retention run over every organization, as the server's timer runs it.
    pub async fn retention_run(&self) -> gateway::background::retention_run::RetentionReport {
        gateway::background::retention_run::run_once(&self.state)
            .await
            .expect("retention run")
    }

    /// Sets an organization's tax rate, as an operator does.
    pub async fn set_tax_rate(&self, org: &TestOrg, rate: &str) {
        let tx = self
            .state
            .tenancy
            .system_tx(org.org_id())
            .await
            .expect("tx");
        self.state
            .subscriptions
            .set_tax_rate(&tx, rate.parse().expect("rate"))
            .await
            .expect("set tax rate");
        tx.commit().await.expect("commit");
    }

    /// Creates a project named `name` in `org` as `user`; its global id.
    pub async fn project(&self, user: &TestUser, org: &TestOrg, name: &str) -> String {
        self.gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
            .vars(json!({ "n": name }))
            .as_user(user)
            .in_org(org)
            .send()
            .await
            .data()["createProject"]["project"]["id"]
            .as_str()
            .expect("project id")
            .to_owned()
    }

    /// Logs `user` in again (after the clock moved past their access token's expiry).
    pub async fn relog(&self, user: &TestUser) -> TestUser {
        let response = self.log_in(&user.email, PASSWORD).await;
        TestUser {
            token: response.data()["logIn"]["accessToken"]
                .as_str()
                .expect("token")
                .to_owned(),
            refresh_token: response.data()["logIn"]["refreshToken"]
                .as_str()
                .expect("refresh")
                .to_owned(),
            ..user.clone()
        }
    }

    /// `logIn` as given.
    pub async fn log_in(&self, email: &str, password: &str) -> GqlResponse {
        self.gql("mutation($i: LogInInput!) { logIn(input: $i) { accessToken refreshToken expiresAt user { id email } } }")
            .vars(json!({ "i": { "email": email, "password": password } }))
            .send()
            .await
    }

    /// Logs in from another client address (a loopback address such as 127.0.0.2).
    pub async fn log_in_from(&self, source: &str, email: &str, password: &str) -> GqlResponse {
        self.gql("mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }")
            .vars(json!({ "i": { "email": email, "password": password } }))
            .sent_from(source)
            .send()
            .await
    }

    /// The services as an operator runs them from the command line: on PostgreSQL as
    /// the owner role (some operator actions are beyond the application role).
    pub async fn operator(&self) -> gateway::startup::AppState {
        let (TestDb::Postgres(name) | TestDb::Shared(Some(name))) = &self._db else {
            return self.state.clone();
        };
        let mut config = test_config(&self.database_url);
        config.database.migrate_url = Some(pg_url("postgres", name));
        gateway::cli::operator_services(&config)
            .await
            .expect("operator services")
    }

    /// A connection that sees every row and column of every table: the owner on
    /// PostgreSQL (the application role sees neither all rows nor all columns).
    pub async fn whole_database(&self) -> (DatabaseConnection, sea_orm::DbBackend) {
        if on_postgres() {
            (self.owner_db().await, sea_orm::DbBackend::Postgres)
        } else {
            (self.app_db().await, sea_orm::DbBackend::Sqlite)
        }
    }

    /// Every `(table, column)` of the live database, read from its catalog.
    pub async fn catalog(&self) -> Vec<(String, String)> {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        let (db, backend) = self.whole_database().await;
        let sql = if backend == DbBackend::Postgres {
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = 'public'"
        } else {
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'"
        };
        db.query_all_raw(Statement::from_string(backend, sql))
            .await
            .expect("read the catalog")
            .iter()
            .map(|row| {
                (
                    row.try_get_by_index::<String>(0).expect("table"),
                    row.try_get_by_index::<String>(1).expect("column"),
                )
            })
            .collect()
    }

    /// Creates an organization owned by `owner`.
    pub async fn org(&self, owner: &TestUser, name: &str) -> TestOrg {
        let response = self
            .gql("mutation($i: CreateOrganizationInput!) { createOrganization(input: $i) { organization { id } } }")
            .vars(json!({ "i": { "name": name } }))
            .as_user(owner)
            .send()
            .await;
        TestOrg {
            id: response.data()["createOrganization"]["organization"]["id"]
                .as_str()
                .expect("org id")
                .to_owned(),
        }
    }

    /// Invites `user` into `org` with `role` (as `inviter`) and accepts; returns the
    /// membership id.
    pub async fn add_member(
        &self,
        inviter: &TestUser,
        org: &TestOrg,
        user: &TestUser,
        role: &str,
    ) -> String {
        let token =
            self.invite(inviter, org, &user.email, role).await.data()["inviteMember"]["token"]
                .as_str()
                .expect("invitation token")
                .to_owned();
        let accepted = self
            .gql("mutation($t: String!) { acceptInvitation(input: {token: $t}) { membership { id } } }")
            .vars(json!({ "t": token }))
            .as_user(user)
            .send()
            .await;
        accepted.data()["acceptInvitation"]["membership"]["id"]
            .as_str()
            .expect("membership id")
            .to_owned()
    }

    /// `inviteMember` as given.
    pub async fn invite(
        &self,
        inviter: &TestUser,
        org: &TestOrg,
        email: &str,
        role: &str,
    ) -> GqlResponse {
        self.gql("mutation($e: String!, $r: Role!) { inviteMember(input: {email: $e, role: $r}) { token invitation { id status role } } }")
            .vars(json!({ "e": email, "r": role }))
            .as_user(inviter)
            .in_org(org)
            .send()
            .await
    }

    /// An API key of `org` with `role`, created by `admin`: (key id, secret).
    pub async fn api_key(&self, admin: &TestUser, org: &TestOrg, role: &str) -> (String, String) {
        let response = self
            .gql("mutation($r: Role!) { createApiKey(input: {trustedDocumentsOnly: false, name: \"ci\", role: $r}) { secret apiKey { id } } }")
            .vars(json!({ "r": role }))
            .as_user(admin)
            .in_org(org)
            .send()
            .await;
        let data = response.data();
        (
            data["createApiKey"]["apiKey"]["id"]
                .as_str()
                .expect("key id")
                .to_owned(),
            data["createApiKey"]["secret"]
                .as_str()
                .expect("secret")
                .to_owned(),
        )
    }

    /// A connection to the test database as the application role (PostgreSQL) or the file.
    pub async fn app_db(&self) -> DatabaseConnection {
        Database::connect(&self.database_url)
            .await
            .expect("connect to the test database")
    }

    /// A connection to the test database as the owner (PostgreSQL only).
    pub async fn owner_db(&self) -> DatabaseConnection {
        let (TestDb::Postgres(name) | TestDb::Shared(Some(name))) = &self._db else {
            panic!("owner_db is for PostgreSQL");
        };
        Database::connect(pg_url("postgres", name))
            .await
            .expect("connect as owner")
    }
}

async fn create_from_template(admin: &DatabaseConnection, name: &str) {
    // Two clones of one template at the same instant can collide on its lock; retry.
    for attempt in 0..20 {
        match admin
            .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
            .await
        {
            Ok(_) => return,
            Err(e) if attempt < 19 && e.to_string().contains("being accessed by other users") => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * (attempt + 1))).await;
            }
            Err(e) => panic!("create test database: {e}"),
        }
    }
}

/// A GraphQL request under construction.
pub struct Gql<'a> {
    app: &'a TestApp,
    body: Value,
    token: Option<String>,
    org: Option<String>,
    source: Option<std::net::IpAddr>,
    headers: Vec<(String, String)>,
}

impl Gql<'_> {
    /// Sends from another loopback address (127.0.0.2, …): another client address.
    pub fn sent_from(mut self, source: &str) -> Self {
        self.source = Some(source.parse().expect("an IP address"));
        self
    }

    pub fn vars(mut self, variables: Value) -> Self {
        self.body["variables"] = variables;
        self
    }

    #[expect(
        clippy::wrong_self_convention,
        reason = "reads as a sentence: gql(q).as_user(&u).send()"
    )]
    pub fn as_user(self, user: &TestUser) -> Self {
        self.bearer(&user.token)
    }

    pub fn bearer(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    pub fn in_org(self, org: &TestOrg) -> Self {
        self.org_header(&org.id)
    }

    pub fn org_header(mut self, id: &str) -> Self {
        self.org = Some(id.to_owned());
        self
    }

    /// Sends a header of its own (`Idempotency-Key`, …).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Posts the request; every error in the answer must have a code.
    pub async fn send(self) -> GqlResponse {
        let client = match self.source {
            None => self.app.http.clone(),
            Some(source) => reqwest::Client::builder()
                .local_address(source)
                .build()
                .expect("client"),
        };
        let mut request = client
            .post(format!("{}/graphql", self.app.address))
            .json(&self.body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(org) = &self.org {
            request = request.header("X-Organization-Id", org);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = response.headers().clone();
        let body: Value = response.json().await.expect("JSON body");
        assert_every_error_has_a_code(&body);
        GqlResponse {
            body,
            status,
            retry_after,
            headers,
        }
    }
}

/// Fails the test when any error lacks `extensions.code`.
pub fn assert_every_error_has_a_code(body: &Value) {
    let responses = match body {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    };
    for response in responses {
        for error in response["errors"].as_array().into_iter().flatten() {
            assert!(
                error["extensions"]["code"].is_string(),
                "error without extensions.code: {error}"
            );
        }
    }
}

/// A GraphQL answer.
#[derive(Debug)]
pub struct GqlResponse {
    pub body: Value,
    /// The HTTP status.
    pub status: u16,
    /// The `Retry-After` header.
    pub retry_after: Option<String>,
    /// Every header of the answer.
    pub headers: reqwest::header::HeaderMap,
}

impl GqlResponse {
    /// The data; fails the test when there are errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The first error's code; fails the test when there is none.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.body))
    }

    /// The first error.
    pub fn error(&self) -> &Value {
        &self.body["errors"][0]
    }
}

/// Runs `sql` on `db` inside `org`'s tenant scope (on PostgreSQL, a transaction with
/// `app.org_id` set, as the application does; rolled back afterwards).
pub async fn in_org_tx(
    db: &DatabaseConnection,
    org: &TestOrg,
    sql: &str,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::TransactionTrait;
    let tx = db.begin().await?;
    if on_postgres() {
        tx.execute_unprepared(&format!(
            "SELECT set_config('app.org_id', '{}', true)",
            org.org_id()
        ))
        .await?;
    }
    let result = tx.execute_unprepared(sql).await.map(|_| ());
    tx.rollback().await?;
    result
}
