//! Hostile documents are refused with a code, cheaply, before authentication and without
//! a single SQL statement; the server stays healthy and keeps answering others meanwhile.

use crate::helpers::{TestApp, TestUser};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Server-side work that must stay far below a second, whatever the document (a liveness
/// bound, not a speed goal: `make bench` measures the cost of refusals).
const QUICKLY: Duration = Duration::from_secs(1);

async fn post_raw(app: &TestApp, body: Value, token: Option<&str>) -> (Value, Duration) {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let started = Instant::now();
    let response = request.send().await.expect("sent");
    let body: Value = response.json().await.expect("JSON");
    (body, started.elapsed())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {body}"))
}

/// The server answers its health check and a normal query.
async fn assert_healthy(app: &TestApp, user: &TestUser) {
    let health = app
        .http
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    app.gql("{ viewer { user { email } } }")
        .as_user(user)
        .send()
        .await
        .data();
}

/// Refused with `expected`, quickly, and without any SQL statement.
async fn assert_refused(app: &TestApp, body: Value, token: Option<&str>, expected: &str) -> Value {
    let before = app.server_db.statements_executed();
    let (answer, took) = post_raw(app, body, token).await;
    assert_eq!(code(&answer), expected, "{answer}");
    assert!(took < QUICKLY, "refusing took {took:?}");
    assert_eq!(
        app.server_db.statements_executed(),
        before,
        "a refused document issued SQL"
    );
    answer
}

fn nested(open: &str, inner: &str, close: &str, levels: usize) -> String {
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

#[tokio::test]
async fn deep_nesting_is_refused_before_parsing() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    let lists = format!("{{ __typename(x: {}) }}", nested("[", "1", "]", 1_500));
    let objects = format!("{{ __typename(x: {}) }}", nested("{a: ", "1", "}", 1_500));
    let default = format!(
        "query($v: [Int] = {}) {{ __typename }}",
        nested("[", "1", "]", 1_500)
    );
    for document in [&lists, &objects, &default] {
        for token in [None, Some(user.token.as_str())] {
            assert_refused(&app, json!({ "query": document }), token, "QUERY_TOO_DEEP").await;
        }
    }
    // In a batch, only the nested operation is refused.
    let (batch, _) = post_raw(
        &app,
        json!([{ "query": lists }, { "query": "{ __typename }" }]),
        None,
    )
    .await;
    assert_eq!(code(&batch[0]), "QUERY_TOO_DEEP", "{batch}");
    assert_eq!(batch[1]["data"]["__typename"], "Query", "{batch}");
    // Over GET, before deciding whether it is a mutation.
    let response = app
        .http
        .get(format!("{}/graphql", app.address))
        .query(&[("query", lists.as_str())])
        .send()
        .await
        .expect("GET");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body), "QUERY_TOO_DEEP", "{body}");
    assert_healthy(&app, &user).await;
}

/// `fragment Fi on Query { ...Fi-1 ...Fi-1 }` down to `__typename`: 2^30 fields from
/// 1.2 KB. Refused by its true cost, computed once per fragment.
#[tokio::test]
async fn doubling_fragments_are_refused_at_their_true_cost() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    let mut document = String::from("fragment F0 on Query { __typename }\n");
    for i in 1..=30 {
        document.push_str(&format!(
            "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
            p = i - 1
        ));
    }
    document.push_str("{ ...F30 }");
    // Two at once, and a well-behaved query meanwhile.
    let attack = || {
        assert_refused(
            &app,
            json!({ "query": document }),
            None,
            "QUERY_TOO_COMPLEX",
        )
    };
    let (first, _, ()) = futures::join!(attack(), attack(), assert_healthy(&app, &user));
    assert_eq!(first["errors"][0]["extensions"]["cost"], 1_u64 << 30);
    assert_eq!(first["errors"][0]["extensions"]["maxCost"], 10_000);
    // A fragment that spreads itself.
    let cycle = "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }";
    assert_refused(
        &app,
        json!({ "query": cycle }),
        None,
        "GRAPHQL_VALIDATION_FAILED",
    )
    .await;
    assert_healthy(&app, &user).await;
}

#[tokio::test]
async fn alias_storms_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    let aliases = |n: usize, field: &str| -> String {
        let fields: String = (0..n).map(|i| format!("a{i}: {field} ")).collect();
        format!("{{ {fields} }}")
    };
    // 20,000 aliases: longer than a document may be.
    assert_refused(
        &app,
        json!({ "query": aliases(20_000, "__typename") }),
        None,
        "QUERY_TOO_LARGE",
    )
    .await;
    // 500 aliases of a list field, as a signed-in user.
    assert_refused(
        &app,
        json!({ "query": aliases(500, "projects(first: 100) { nodes { id name } }") }),
        Some(&user.token),
        "QUERY_TOO_COMPLEX",
    )
    .await;
    // 100 aliases of nodes with the same 100 ids each, through a variable.
    let fields: String = (0..100)
        .map(|i| format!("a{i}: nodes(ids: $ids) {{ id }} "))
        .collect();
    let query = format!("query($ids: [ID!]!) {{ {fields} }}");
    let ids: Vec<String> = (0..100).map(|_| user.id.clone()).collect();
    assert_refused(
        &app,
        json!({ "query": query, "variables": { "ids": ids } }),
        Some(&user.token),
        "QUERY_TOO_COMPLEX",
    )
    .await;
    assert_healthy(&app, &user).await;
}

/// Hundreds of `signUp` in one request would hash a password each: refused before any.
#[tokio::test]
async fn password_hashing_aliases_are_refused() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    let signups: String = (0..330)
        .map(|i| {
            format!(
                "s{i}: signUp(input: {{email: \"m{i}@example.com\", password: \"a-long-password\", name: \"M\"}}) {{ user {{ id }} }} "
            )
        })
        .collect();
    assert_refused(
        &app,
        json!({ "query": format!("mutation {{ {signups} }}") }),
        None,
        "QUERY_TOO_COMPLEX",
    )
    .await;
    let logins: String = (0..3)
        .map(|i| format!("l{i}: logIn(input: {{email: \"alice@example.com\", password: \"wrong-password\"}}) {{ accessToken }} "))
        .collect();
    assert_refused(
        &app,
        json!({ "query": format!("mutation {{ {logins} }}") }),
        None,
        "QUERY_TOO_COMPLEX",
    )
    .await;
    assert_eq!(
        app.log_in("m0@example.com", "a-long-password").await.code(),
        "UNAUTHENTICATED",
        "no account was made"
    );
    assert_healthy(&app, &user).await;
}

/// A NUL character in any input string, however it is sent, is `BAD_USER_INPUT` naming
/// where it is (PostgreSQL cannot store it; it used to answer `INTERNAL` there).
#[tokio::test]
async fn nul_characters_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let user = app.user("alice@example.com").await;
    let org = app.org(&user, "Acme").await;
    let sign_up = app
        .gql("mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }")
        .vars(json!({ "i": { "email": "nul@example.com", "password": "a-long-password", "name": "Nul\u{0}Person" } }))
        .send()
        .await;
    assert_eq!(sign_up.code(), "BAD_USER_INPUT");
    assert_eq!(sign_up.error()["extensions"]["field"], "i.name");
    let create = app
        .gql("mutation { createProject(input: {name: \"a\\u0000b\"}) { project { id } } }")
        .as_user(&user)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(create.code(), "BAD_USER_INPUT");
    assert_eq!(create.error()["extensions"]["field"], "input.name");
    let filter = app
        .gql("query($t: String) { documents(first: 5, filter: {text: $t}) { edges { node { id } } } }")
        .vars(json!({ "t": "\u{0}" }))
        .as_user(&user)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(filter.code(), "BAD_USER_INPUT");
    assert_eq!(filter.error()["extensions"]["field"], "t");
    assert_healthy(&app, &user).await;
}

/// The most tenant transactions (each a connection) `app` has open at once while `work`
/// runs.
async fn peak_transactions<F: std::future::Future>(app: &TestApp, work: F) -> (F::Output, u64) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let sample = async {
        let mut peak = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            peak = peak.max(app.server_db.open_tenant_transactions());
            tokio::task::yield_now().await;
        }
        peak
    };
    let work = async {
        let output = work.await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        output
    };
    futures::join!(work, sample)
}

/// However many fields a request asks for at once, its tenant work takes one connection
/// of the shared pool at a time; whole-chain verifications wait for their turn before
/// taking any.
#[tokio::test]
async fn one_request_holds_one_connection() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@example.com").await;
    let org = app.org(&alice, "Acme").await;
    for i in 0..3 {
        app.gql("mutation($n: String!) { createProject(input: {name: $n}) { project { id } } }")
            .vars(json!({ "n": format!("p{i}") }))
            .as_user(&alice)
            .in_org(&org)
            .send()
            .await
            .data();
    }
    let fields: String = (0..100)
        .map(|i| format!("a{i}: projects(first: 5) {{ nodes {{ id name }} }} "))
        .collect();
    let begun = app.server_db.tenant_transactions_begun();
    let (answer, peak) = peak_transactions(
        &app,
        app.gql(&format!("{{ {fields} }}"))
            .as_user(&alice)
            .in_org(&org)
            .send(),
    )
    .await;
    assert_eq!(
        answer.data()["a99"]["nodes"].as_array().map(Vec::len),
        Some(3)
    );
    // Without turns: the whole pool (8). With the unit of work, the hundred fields share
    // one transaction (short enough that the sampler may not even see it open).
    assert!(peak <= 1, "100 fields at once took {peak} connections");
    assert_eq!(app.server_db.tenant_transactions_begun() - begun, 1);

    // Verifications: many requests at once, two each (the budget allows no more).
    let verify = "{ a: verifyAuditChain { valid } b: verifyAuditChain { valid } }";
    let requests = (0..6).map(|_| app.gql(verify).as_user(&alice).in_org(&org).send());
    let (answers, peak) = peak_transactions(&app, futures::future::join_all(requests)).await;
    for answer in answers {
        assert_eq!(answer.data()["b"]["valid"], true);
    }
    // At most two verifications at once, each with its own transaction and (on
    // PostgreSQL) one per core for its ranges.
    let per_verification = if crate::helpers::on_postgres() {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    } else {
        1
    };
    let most = (tenancy::CONCURRENT_VERIFICATIONS * per_verification) as u64;
    assert!(
        peak <= most,
        "verifications took {peak} connections (at most {most})"
    );
}

/// One address creates at most 20 accounts an hour; the 21st is `RATE_LIMITED` (HTTP 429
/// with `Retry-After`) before any password is hashed. An hour later it may again.
#[tokio::test]
async fn sign_ups_per_address_are_limited() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        app.user(&format!("u{i}@example.com")).await;
    }
    let response = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&json!({
            "query": "mutation($i: SignUpInput!) { signUp(input: $i) { user { id } } }",
            "variables": { "i": { "email": "one-more@example.com", "password": "a-long-password", "name": "M" } }
        }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(code(&body), "RATE_LIMITED", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["retryAfterSeconds"],
        retry_after
    );
    assert!((1..=3_600).contains(&retry_after), "{retry_after}");
    app.clock.advance(chrono::Duration::hours(1));
    app.user("one-more@example.com").await;
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("instant")
        .into()
}

/// A catalog whose metric allows values up to 10^18, priced so that one such event's
/// amount does not fit in an invoice.
const HUGE: &str = r#"{
  "metrics": [{"code": "bytes", "name": "Bytes", "aggregation": {"type": "sum"}, "max_value": "1000000000000000000"}],
  "plans": [{"code": "huge", "name": "Huge", "currency": "USD",
    "charges": [
      {"type": "fixed", "amount": "10.00"},
      {"type": "usage", "metric": "bytes", "price": {"model": "standard", "unit_price": "1000"}}]}]
}"#;

/// Values no metric allows are refused; whatever an organization reports, its
/// invoices (and everyone else's) keep being cut.
#[tokio::test]
async fn bad_usage_is_refused_and_billing_carries_on() {
    let app = TestApp::spawn().await;
    app.clock.set(at("2027-01-10T09:00:00Z"));
    app.import_demo_catalog().await;
    gateway::catalog::import_catalog(
        &app.state,
        &billing::CatalogFile::parse(HUGE).expect("catalog"),
    )
    .await
    .expect("import");
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    app.gql("mutation { changePlan(input: {plan: \"huge\", timeZone: \"UTC\"}) { effective } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
    let record = |event: Value| {
        app.gql("mutation($e: [UsageEventInput!]!) { recordUsage(input: {events: $e}) { stored } }")
            .vars(json!({ "e": [event] }))
            .as_user(&owner)
            .in_org(&org)
            .send()
    };
    let long_name = "p".repeat(50_000);
    let refusals = [
        (
            json!({"metric": "api_calls", "key": "a", "value": "79228162514264337593543950335"}),
            "value",
        ),
        (
            json!({"metric": "api_calls", "key": "b", "value": "1000000000001"}),
            "value",
        ),
        (
            json!({"metric": "api_calls", "key": "c", "occurredAt": "9999-12-31T00:00:00Z"}),
            "occurredAt",
        ),
        (
            json!({"metric": "api_calls", "key": "d", "occurredAt": "2099-01-01T00:00:00Z"}),
            "occurredAt",
        ),
        (json!({"metric": "no_such_metric", "key": "e"}), "metric"),
        (
            json!({"metric": "api_calls", "key": "f", "properties": [{"name": long_name, "value": "x"}]}),
            "properties.name",
        ),
        (
            json!({"metric": "api_calls", "key": "g", "properties": [{"name": "user", "value": "x".repeat(300)}]}),
            "properties.value",
        ),
        (
            json!({"metric": "api_calls", "key": "h", "properties": [{"name": "user", "value": "a\u{0}b"}]}),
            "e.0.properties.0.value",
        ),
    ];
    for (event, field) in refusals {
        let refused = record(event).await;
        assert_eq!(refused.code(), "BAD_USER_INPUT", "{:?}", refused.body);
        assert_eq!(
            refused.error()["extensions"]["field"],
            field,
            "{:?}",
            refused.body
        );
    }
    // The most the metric allows, priced beyond what an invoice can hold.
    record(json!({"metric": "bytes", "key": "big", "value": "1000000000000000000"}))
        .await
        .data();
    let upcoming = app
        .gql("{ upcomingInvoice { lines { kind } total { amount } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        upcoming.data()["upcomingInvoice"]["lines"],
        json!([{"kind": "fixed"}]),
        "the unpriceable usage is left off, the rest is billed"
    );
    // Two periods later, both invoices were cut.
    for month in ["2027-02-10T00:00:01Z", "2027-03-10T00:00:01Z"] {
        app.clock.set(at(month));
        let report = app.billing_run().await;
        assert_eq!(report.failed, 0, "{report:?}");
    }
    let owner = app.relog(&owner).await;
    let invoices = app
        .gql("{ invoices { nodes { number lines { kind } } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    assert_eq!(
        invoices.data()["invoices"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{:?}",
        invoices.body
    );
    app.gql("mutation { cancelSubscription { subscription { status } } }")
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await
        .data();
}

#[tokio::test]
async fn custom_roles_are_capped_and_permission_lists_deduplicated() {
    let app = TestApp::spawn().await;
    let owner = app.user("owner@example.com").await;
    let org = app.org(&owner, "Acme").await;
    // 51 creations in one request (mutations run one after the other): the fifty-first
    // is refused.
    let cap = 50;
    let aliases: String = (0..=cap)
        .map(|n| {
            format!(
                "r{n}: createRole(input: {{name: \"role{n}\", permissions: \
                 [{{resourceType: MEMBER, action: READ}}]}}) {{ role {{ name }} }} "
            )
        })
        .collect();
    let created = app
        .gql(&format!("mutation {{ {aliases} }}"))
        .as_user(&owner)
        .in_org(&org)
        .send()
        .await;
    for n in 0..cap {
        assert_eq!(
            created.body["data"][format!("r{n}")]["role"]["name"],
            format!("role{n}"),
            "{}",
            created.body
        );
    }
    assert!(created.body["data"][format!("r{cap}")].is_null());
    let refused = &created.body["errors"][0];
    assert_eq!(refused["path"][0], format!("r{cap}"));
    assert_eq!(refused["extensions"]["code"], "LIMIT_EXCEEDED");
    assert_eq!(refused["extensions"]["limit"], "custom_roles");
    assert_eq!(refused["extensions"]["max"], cap);

    // Another organization's roles do not count against this one's cap; a long list of
    // the same permission makes one rule.
    let other = app.org(&owner, "Other").await;
    let same = vec![json!({ "resourceType": "MEMBER", "action": "READ" }); 500];
    let role = app
        .gql("mutation($p: [PermissionInput!]!) { createRole(input: {name: \"looker\", permissions: $p}) { role { permissions { resourceType action } } } }")
        .vars(json!({ "p": same }))
        .as_user(&owner)
        .in_org(&other)
        .send()
        .await;
    assert_eq!(
        role.data()["createRole"]["role"]["permissions"],
        json!([{ "resourceType": "member", "action": "read" }])
    );
}

/// A limit set to "unlimited" (the largest number) is a limit never reached, not an
/// overflow in the statement that counts against it.
#[tokio::test]
async fn an_unlimited_sign_up_setting_signs_people_up() {
    let app =
        TestApp::spawn_with(|config| config.limits.sign_ups_per_address_per_hour = u64::MAX).await;
    let user = app.user("someone@example.com").await;
    let org = app.org(&user, "Acme").await;
    assert!(!org.id.is_empty());
}
