//! The surface browsers and tools meet (issue 15): CORS for the configured origins only,
//! and introspection as the `INTROSPECTION` setting allows.

use crate::helpers::TestApp;
use gateway::config::{Environment, Introspection};
use reqwest::Method;

const APP_ORIGIN: &str = "https://app.example.com";

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, format!("{}/graphql", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-organization-id",
        )
        .send()
        .await
        .unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn only_the_configured_origins_may_call_from_a_browser() {
    let app = TestApp::spawn_with(|config| {
        config.http.cors_allowed_origins = vec![APP_ORIGIN.into(), "http://localhost:5173".into()];
    })
    .await;

    let allowed = preflight(&app, APP_ORIGIN).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        header(&allowed, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    let methods = header(&allowed, "access-control-allow-methods")
        .unwrap()
        .to_ascii_uppercase();
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    let headers = header(&allowed, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for needed in ["authorization", "content-type", "x-organization-id"] {
        assert!(headers.contains(needed), "{needed} in {headers}");
    }
    assert_eq!(header(&allowed, "access-control-max-age"), Some("600"));
    // Credentials travel in the Authorization header, never as cookies.
    assert_eq!(header(&allowed, "access-control-allow-credentials"), None);

    // Another origin (even one that only resembles an allowed one) gets no CORS header:
    // its browser withholds the answer.
    for other in [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "http://app.example.com",
    ] {
        let refused = preflight(&app, other).await;
        assert_eq!(
            header(&refused, "access-control-allow-origin"),
            None,
            "{other}"
        );
    }

    // The request itself: the answer names the origin and shows the request id.
    let answered = app
        .http
        .post(format!("{}/graphql", app.address))
        .header("origin", "http://localhost:5173")
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&answered, "access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    let exposed = header(&answered, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let vary = header(&answered, "vary")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(vary.contains("origin"), "vary: {vary}");

    // Without the setting no origin is allowed.
    let closed = TestApp::spawn().await;
    let refused = preflight(&closed, APP_ORIGIN).await;
    assert_eq!(header(&refused, "access-control-allow-origin"), None);
}

const SCHEMA: &str = "{ __schema { queryType { name } } }";
const TYPE_BY_FRAGMENT: &str = "query { ...Look } fragment Look on Query { ... on Query { __type(name: \"Project\") { name } } }";

#[tokio::test]
async fn introspection_is_for_whom_the_setting_allows() {
    // Development's default: anyone (GraphiQL before logging in).
    let open = TestApp::spawn().await;
    let answer = open.gql(SCHEMA).send().await;
    assert_eq!(
        answer.data()["__schema"]["queryType"]["name"],
        "Query",
        "{}",
        answer.body
    );

    // Production's default: callers with valid credentials.
    let app = TestApp::spawn_with(|config| config.environment = Environment::Production).await;
    let alice = app.user("alice@example.com").await;
    for query in [SCHEMA, TYPE_BY_FRAGMENT] {
        let refused = app.gql(query).send().await;
        assert_eq!(
            refused.code(),
            "UNAUTHENTICATED",
            "{query}: {}",
            refused.body
        );
        assert!(refused.body["data"].is_null(), "{}", refused.body);
        let bad_token = app.gql(query).bearer("not-a-token").send().await;
        assert_eq!(bad_token.code(), "UNAUTHENTICATED");
    }
    let answer = app.gql(SCHEMA).as_user(&alice).send().await;
    assert_eq!(answer.data()["__schema"]["queryType"]["name"], "Query");
    let answer = app.gql(TYPE_BY_FRAGMENT).as_user(&alice).send().await;
    assert_eq!(answer.data()["__type"]["name"], "Project");
    // `__typename` is not introspection: anyone gets it.
    assert_eq!(
        app.gql("{ __typename }").send().await.data()["__typename"],
        "Query"
    );
    // A session that ended no longer introspects.
    app.gql("mutation { logOut { ok } }")
        .as_user(&alice)
        .send()
        .await
        .data();
    assert_eq!(
        app.gql(SCHEMA).as_user(&alice).send().await.code(),
        "UNAUTHENTICATED"
    );

    // Off: no one, with a reason.
    let closed =
        TestApp::spawn_with(|config| config.http.introspection = Some(Introspection::Off)).await;
    let bob = closed.user("bob@example.com").await;
    for query in [SCHEMA, TYPE_BY_FRAGMENT] {
        let refused = closed.gql(query).as_user(&bob).send().await;
        assert_eq!(refused.code(), "FORBIDDEN", "{query}: {}", refused.body);
        assert_eq!(
            refused.error()["extensions"]["reason"],
            "INTROSPECTION_DISABLED"
        );
    }
    assert_eq!(
        closed
            .gql("{ viewer { user { email } } }")
            .as_user(&bob)
            .send()
            .await
            .data()["viewer"]["user"]["email"],
        "bob@example.com"
    );
}

/// Posts `query` with the `Accept` header `accept` (none: no header).
async fn post(
    app: &TestApp,
    query: &str,
    accept: Option<&str>,
) -> (u16, String, serde_json::Value) {
    let mut request = app
        .http
        .post(format!("{}/graphql", app.address))
        .json(&serde_json::json!({ "query": query }));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let media = header(&response, "content-type")
        .unwrap_or_default()
        .to_owned();
    (status, media, response.json().await.unwrap())
}

#[tokio::test]
async fn graphql_response_json_gives_request_errors_a_4xx_status() {
    let app = TestApp::spawn().await;
    let spec = Some("application/graphql-response+json, application/json;q=0.9");

    let (status, media, body) = post(&app, "{ __typename }", spec).await;
    assert_eq!(
        (status, body["data"]["__typename"].as_str()),
        (200, Some("Query"))
    );
    assert_eq!(media, "application/graphql-response+json; charset=utf-8");

    // Request errors: no `data` entry, and 400.
    for (query, code) in [
        ("{ node(", "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
    ] {
        let (status, media, body) = post(&app, query, spec).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            media.starts_with("application/graphql-response+json"),
            "{media}"
        );
        assert!(body.get("data").is_none(), "{query}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], code, "{body}");
    }

    // A field error is not a request error: `data` is there, and 200.
    let (status, _, body) = post(&app, "{ __typename viewer { user { email } } }", spec).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("data").is_some(), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    assert!(body["errors"][0]["path"].is_array(), "{body}");

    // Clients of `application/json` (or of nothing in particular) keep 200, and a request
    // error has no `data` entry for them either.
    for accept in [
        None,
        Some("application/json"),
        Some("application/graphql-response+json;q=0, application/json"),
    ] {
        let (status, media, body) = post(&app, "{ node(", accept).await;
        assert_eq!(
            (status, media.as_str()),
            (200, "application/json"),
            "{accept:?}"
        );
        assert!(body.get("data").is_none(), "{body}");
    }
}

/// Hostile shapes of asking: 700 aliases (as many as the token limit lets through), a long chain of fragments, a cycle.
/// Each is answered with its code, and nothing of the schema leaks where it is off.
#[tokio::test]
async fn hostile_introspection_documents_are_refused_with_a_code() {
    let app =
        TestApp::spawn_with(|config| config.http.introspection = Some(Introspection::Off)).await;
    let aliases: String = (0..700)
        .map(|i| format!("a{i}: __type(name: \"Query\") {{ name }} "))
        .collect();
    let chain: String = (0..500)
        .map(|i| format!("fragment F{i} on Query {{ ...F{} }} ", i + 1))
        .collect::<String>()
        + "fragment F500 on Query { __schema { queryType { name } } }";
    // Admission refuses each before anything else runs: too costly, too deep (fragment
    // spreads count as nesting), a cycle.
    let documents = [
        (format!("{{ {aliases} }}"), "QUERY_TOO_COMPLEX"),
        (format!("{{ ...F0 }} {chain}"), "QUERY_TOO_DEEP"),
        (
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A __schema { queryType { name } } }"
                .to_owned(),
            "GRAPHQL_VALIDATION_FAILED",
        ),
    ];
    for (document, code) in &documents {
        let refused = app.gql(document).send().await;
        assert_eq!(refused.code(), *code, "{document:.40}");
        assert!(
            !refused.body.to_string().contains("queryType\":{"),
            "schema leaked"
        );
    }
    // Within the limits, through fragments and aliases: the setting refuses it.
    let within = "{ ...F0 } fragment F0 on Query { ...F1 } fragment F1 on Query { \
        a: __type(name: \"Query\") { name } b: __schema { queryType { name } } }";
    let refused = app.gql(within).send().await;
    assert_eq!(refused.code(), "FORBIDDEN");
    assert_eq!(
        refused.error()["extensions"]["reason"],
        "INTROSPECTION_DISABLED"
    );
}
