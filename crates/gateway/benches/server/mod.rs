//! What the gateway's benchmarks share: a server configuration and a GraphQL client call.

use gateway::Config;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A server on a free local port over `database_url`, quiet, with no background billing
/// run and a manual payment provider.
pub fn config(database_url: &str) -> Config {
    let mut config = Config::defaults().expect("defaults");
    config.database.url = database_url.to_owned();
    config.http.bind_addr = "127.0.0.1:0".parse().expect("address");
    config.auth.token_secret = Some("bench-secret-that-is-long-enough-0123456789".into());
    config.billing.run_interval_secs = 0;
    config.privacy.audit_retention_interval_secs = 0;
    config.privacy.data_export_dir = std::env::temp_dir().join("platform-exports-test");
    config.stripe.api_base = "http://127.0.0.1:9".into();
    config.limits.rate_limit_api_key_per_minute = 0;
    config.limits.rate_limit_user_per_minute = 0;
    // The benchmarks sign up hundreds of organizations' owners from one address.
    config.limits.sign_ups_per_address_per_hour = u64::MAX;
    config.telemetry.log_filter = "error".into();
    config
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

/// Successful `updateProject` requests (renames, so every request does the same work) per
/// second of `clients` concurrent clients over `window`; client `n` updates the targets
/// `(organization, project)` from `n` on in steps of `clients`.
// Not every bench binary that includes this module measures updates.
#[allow(dead_code)]
pub async fn update_throughput(
    http: reqwest::Client,
    base: String,
    token: String,
    targets: Arc<Vec<(String, String)>>,
    (clients, window): (usize, Duration),
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (http, base, token, targets, done) = (
            http.clone(),
            base.clone(),
            token.clone(),
            targets.clone(),
            done.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = client;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let (org, project) = &targets[i % targets.len()];
                i += clients;
                n += 1;
                graphql(
                    &http,
                    &base,
                    Some((&token, org)),
                    "mutation($i: UpdateProjectInput!) { updateProject(input: $i) { project { id } } }",
                    json!({"i": {"projectId": project, "name": format!("Renamed {client}-{n}")}}),
                )
                .await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.expect("client");
    }
    done.load(Ordering::Relaxed) as f64 / window.as_secs_f64()
}
