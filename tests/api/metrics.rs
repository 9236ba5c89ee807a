//! `/metrics` (issue 16): Prometheus text that a Prometheus parser reads, moving with
//! traffic (operations by name and outcome, their latency, statements per request, the
//! pool), behind its token or on an address of its own, and naming no person.

use crate::helpers::TestApp;
use serde_json::json;

const TOKEN: &str = "metrics-token-that-is-long-enough-0123456789";

/// The scrape at `url`, parsed by a Prometheus text parser.
async fn scrape(
    app: &TestApp,
    url: &str,
    token: Option<&str>,
) -> (String, prometheus_parse::Scrape) {
    let mut request = app.http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text");
    (text, parsed)
}

/// The value of the sample `metric` with `labels` (0 when there is none yet).
fn value(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn metrics_move_with_traffic_behind_their_token_and_name_no_one() {
    let app =
        TestApp::spawn_with(|c| c.telemetry.metrics_token = Some(TOKEN.to_owned().into())).await;
    let url = format!("{}/metrics", app.address);
    for wrong in [None, Some("not-the-token"), Some(&TOKEN[1..])] {
        let mut request = app.http.get(&url);
        if let Some(token) = wrong {
            request = request.bearer_auth(token);
        }
        assert_eq!(request.send().await.expect("scrape").status(), 401);
    }
    let mine = [("operation", "Mine"), ("outcome", "OK")];
    let (_, before) = scrape(&app, &url, Some(TOKEN)).await;
    // The job queue, read at the scrape: a pending job due a minute ago.
    let due = [("kind", "test.waiting"), ("state", "pending")];
    assert_eq!(value(&before, "jobs", &due), 0.0);
    let mut job = jobs::NewJob::new("test.waiting", json!({}));
    job.run_at = Some(kernel::Clock::now(&app.clock) - chrono::Duration::seconds(60));
    app.state
        .jobs
        .enqueue(app.state.db.conn(), job)
        .await
        .unwrap();
    let (_, queued) = scrape(&app, &url, Some(TOKEN)).await;
    assert_eq!(value(&queued, "jobs", &due), 1.0);
    assert!(value(&queued, "jobs_oldest_age_seconds", &due) >= 60.0);
    assert_eq!(value(&before, "graphql_operations_total", &mine), 0.0);

    let email = "metrics.person@example.com";
    let zoe = app.user(email).await;
    let org = app.org(&zoe, "Metrics Org").await;
    for _ in 0..3 {
        app.gql("query Mine { viewer { user { id } } }")
            .as_user(&zoe)
            .send()
            .await
            .data();
    }
    let refused = app
        .gql("query Theirs { projects { totalCount } }")
        .org_header(&org.id)
        .send()
        .await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    // An operation name that is not a GraphQL name (her address) is never a label.
    app.gql_body(json!({"query": "query { viewer { user { id } } }", "operationName": email}))
        .as_user(&zoe)
        .send()
        .await;

    for _ in 0..2 {
        app.gql("{ projects { totalCount } }")
            .as_user(&zoe)
            .in_org(&org)
            .send()
            .await
            .data();
    }

    let (text, after) = scrape(&app, &url, Some(TOKEN)).await;
    assert_eq!(
        value(&after, "graphql_operations_total", &mine),
        3.0,
        "{text}"
    );
    assert_eq!(
        value(
            &after,
            "graphql_operations_total",
            &[("operation", "Theirs"), ("outcome", "UNAUTHENTICATED")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "graphql_request_duration_seconds_count", &mine),
        3.0,
        "{text}"
    );
    let graphql_ok = [("route", "/graphql"), ("status", "200")];
    assert!(
        value(&after, "http_responses_total", &graphql_ok)
            >= value(&before, "http_responses_total", &graphql_ok) + 4.0,
        "{text}"
    );
    assert!(
        value(&after, "db_statements_per_request_sum", &[])
            > value(&before, "db_statements_per_request_sum", &[]),
        "{text}"
    );
    let pool = value(&after, "db_pool_connections", &[("state", "idle")])
        + value(&after, "db_pool_connections", &[("state", "in_use")]);
    assert!(pool >= 1.0, "{text}");
    assert!(
        value(&after, "authz_enforcers_cached", &[]) >= 1.0,
        "{text}"
    );
    // Two reads in her organization: the second finds its enforcer kept and current.
    assert!(
        value(&after, "authz_enforcer_lookups", &[("result", "hit")])
            > value(&before, "authz_enforcer_lookups", &[("result", "hit")]),
        "{text}"
    );
    for personal in [email, "metrics.person", "Metrics Org"] {
        assert!(!text.contains(personal), "the scrape names {personal}");
    }
}

#[tokio::test]
async fn metrics_are_served_only_where_configured() {
    // Neither setting: no such route.
    let app = TestApp::spawn().await;
    assert_eq!(status_of_metrics_on_api_port(&app).await, 404);

    // An address of its own: served there without a token, and not on the API's port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("free port")
        .local_addr()
        .expect("address")
        .port();
    let app = TestApp::spawn_with(|c| {
        c.telemetry.metrics_bind_addr = Some(format!("127.0.0.1:{port}").parse().expect("address"));
    })
    .await;
    app.gql("query Ping { __typename }").send().await.data();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut served = None;
    for _ in 0..50 {
        if let Ok(response) = app.http.get(&url).send().await {
            served = Some(response.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(served, Some(reqwest::StatusCode::OK));
    let (_, scraped) = scrape(&app, &url, None).await;
    assert_eq!(
        value(
            &scraped,
            "graphql_operations_total",
            &[("operation", "Ping"), ("outcome", "OK")]
        ),
        1.0
    );
    assert_eq!(status_of_metrics_on_api_port(&app).await, 404);
}

async fn status_of_metrics_on_api_port(app: &TestApp) -> reqwest::StatusCode {
    app.http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .expect("request")
        .status()
}
