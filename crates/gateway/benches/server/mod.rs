//! What the gateway's benchmarks share: a server configuration and a GraphQL client call.

use gateway::Config;
use gateway::config::{Environment, LogFormat, PaymentProviderKind};
use serde_json::{Value, json};

/// A server on a free local port over `database_url`, quiet, with no background billing
/// run and a manual payment provider.
pub fn config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        migrate_database_url: None,
        bind_addr: "127.0.0.1:0".parse().expect("address"),
        token_secret: Some(
            "bench-secret-that-is-long-enough-0123456789"
                .to_owned()
                .into(),
        ),
        token_secret_file: ".unused".into(),
        environment: Environment::Development,
        log_format: LogFormat::Pretty,
        log_filter: "error".into(),
        database_max_connections: 16,
        plan_max_projects: 100,
        plan_max_documents_per_project: 1_000,
        plan_max_seats: 50,
        billing_run_interval_secs: 0,
        audit_retention_interval_secs: 0,
        payment_provider: PaymentProviderKind::Manual,
        stripe_api_base: "http://127.0.0.1:9".into(),
        stripe_secret_key: None,
        stripe_webhook_secret: None,
        dunning_retry_days: "3,5,7".into(),
        usage_grace_days: 3,
        request_timeout: std::time::Duration::from_secs(30),
        // The benchmarks sign up hundreds of organizations' owners from one address.
        sign_ups_per_address_per_hour: u64::MAX,
        http_max_connections: 1_024,
        http_header_timeout: std::time::Duration::from_secs(10),
        http_body_timeout: std::time::Duration::from_secs(10),
        shutdown_grace: std::time::Duration::from_secs(10),
    }
}

/// A GraphQL request that must succeed; its `data`. `auth`: a bearer token and, unless
/// empty, the organization header.
pub async fn graphql(
    http: &reqwest::Client,
    base: &str,
    auth: Option<(&str, &str)>,
    query: &str,
    vars: Value,
) -> Value {
    let mut request = http
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": vars }));
    if let Some((token, org)) = auth {
        request = request.bearer_auth(token);
        if !org.is_empty() {
            request = request.header("X-Organization-Id", org);
        }
    }
    let body: Value = request
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

/// Signs up the benchmark's user and logs in: a bearer token.
pub async fn signed_up(http: &reqwest::Client, base: &str) -> String {
    graphql(
        http,
        base,
        None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
        json!({"i": {"email": "bench@example.com", "password": "bench-password-123", "name": "Bench"}}),
    )
    .await;
    let login = graphql(
        http,
        base,
        None,
        "mutation($i: LogInInput!) { logIn(input: $i) { accessToken } }",
        json!({"i": {"email": "bench@example.com", "password": "bench-password-123"}}),
    )
    .await;
    login["logIn"]["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned()
}
