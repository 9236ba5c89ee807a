//! Tracing (issue 16): a request joins the caller's W3C trace, its span has the request,
//! authorization and SQL spans beneath it, a caller that does not sample gets no spans,
//! the log line names the same trace as the spans, statements outside any request or job
//! start no trace, and no span names a person.

use crate::helpers::TestApp;
use crate::observed;
use opentelemetry::trace::{SpanId, SpanKind};
use opentelemetry_sdk::trace::SpanData;
use serde_json::json;
use std::time::Duration;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn new_trace() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The trace's spans once `requests` request spans of it have ended (bounded wait).
async fn spans_once_ended(trace: &str, requests: usize) -> Vec<SpanData> {
    for _ in 0..200 {
        let spans = observed::spans_of(trace);
        if spans.iter().filter(|s| s.name == "http.request").count() >= requests {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the trace {trace} has fewer than {requests} request spans");
}

#[tokio::test]
async fn a_request_joins_the_callers_trace_with_its_authorization_and_sql_spans_and_names_no_one() {
    observed::start();
    let app = TestApp::spawn().await;
    let (email, name) = ("yann.traced@example.com", "yann.traced");
    let yann = app.user(email).await;
    let org = app.org(&yann, "Traced Org").await;
    let project = app.project(&yann, &org, "Traced Project").await;
    let invited = "xena.invited@example.com";

    // A caller that does not sample: no span of ours is exported for it.
    let unsampled = new_trace();
    app.gql("query Unsampled($p: ID!) { node(id: $p) { id } }")
        .vars(json!({ "p": project }))
        .as_user(&yann)
        .in_org(&org)
        .header(
            "traceparent",
            &format!("00-{unsampled}-00f067aa0ba902b7-00"),
        )
        .send()
        .await
        .data();

    // A read and a write in the caller's sampled trace, both naming people in variables.
    let trace = new_trace();
    let caller = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{caller}-01");
    app.gql("query Traced($p: ID!) { node(id: $p) { id } }")
        .vars(json!({ "p": project }))
        .as_user(&yann)
        .in_org(&org)
        .header("traceparent", &traceparent)
        .header("X-Request-Id", "trace-test-read")
        .send()
        .await
        .data();
    app.gql(
        "mutation Invite($e: String!) { inviteMember(input: {email: $e, role: VIEWER}) { token } }",
    )
    .vars(json!({ "e": invited }))
    .as_user(&yann)
    .in_org(&org)
    .header("traceparent", &traceparent)
    .header("X-Request-Id", "trace-test-write")
    .send()
    .await
    .data();

    let spans = spans_once_ended(&trace, 2).await;
    let by_id = |id: SpanId| spans.iter().find(|s| s.span_context.span_id() == id);
    let read = spans
        .iter()
        .find(|s| {
            s.name == "http.request"
                && attribute(s, "request_id").as_deref() == Some("trace-test-read")
        })
        .expect("the read's request span");
    assert_eq!(
        read.parent_span_id.to_string(),
        caller,
        "a child of the caller's span"
    );
    assert!(read.parent_span_is_remote);
    assert_eq!(read.span_kind, SpanKind::Server);
    assert_eq!(attribute(read, "http.route").as_deref(), Some("/graphql"));
    assert_eq!(
        attribute(read, "http.request.method").as_deref(),
        Some("POST")
    );
    assert_eq!(
        attribute(read, "http.response.status_code").as_deref(),
        Some("200")
    );

    // Beneath it: the GraphQL span with the organization and the principal, an
    // authorization decision, and statements.
    let under_read = |span: &SpanData| {
        let mut parent = span.parent_span_id;
        while let Some(up) = by_id(parent) {
            if up.span_context.span_id() == read.span_context.span_id() {
                return true;
            }
            parent = up.parent_span_id;
        }
        false
    };
    let graphql = spans
        .iter()
        .find(|s| s.name == "http.graphql" && s.parent_span_id == read.span_context.span_id())
        .expect("the GraphQL span under the request's");
    assert_eq!(attribute(graphql, "org.id"), Some(org.org_id().to_string()));
    assert_eq!(
        attribute(graphql, "principal.id"),
        yann.id_uuid().map(|id| format!("user:{id}"))
    );
    let check = spans
        .iter()
        .find(|s| s.name == "authz.check" && under_read(s))
        .expect("an authorization decision under the read");
    assert_eq!(attribute(check, "action").as_deref(), Some("read"));
    let statements: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("sea_orm.") && under_read(s))
        .collect();
    assert!(!statements.is_empty(), "no statement span under the read");
    assert!(statements.iter().all(|s| s.span_kind == SpanKind::Client));
    assert!(
        statements
            .iter()
            .any(|s| attribute(s, "db.operation").as_deref() == Some("SELECT"))
    );
    // Statement texts are exported with their placeholders; values are bound, never
    // written into the text (the search for personal data below covers the texts too).
    assert!(statements.iter().any(|s| {
        attribute(s, "db.statement")
            .is_some_and(|sql| sql.contains("FROM") && (sql.contains('$') || sql.contains('?')))
    }));
    assert!(
        spans.iter().any(|s| s.name == "http.request"
            && attribute(s, "request_id").as_deref() == Some("trace-test-write")),
        "the write's request span"
    );

    // No span, attribute or event of the trace names anyone or their organization.
    for span in &spans {
        let mut text = format!("{} {:?}", span.name, span.attributes);
        for event in span.events.iter() {
            text.push_str(&format!(" {} {:?}", event.name, event.attributes));
        }
        for personal in [email, name, invited, "xena", "Traced Org", "Traced Project"] {
            assert!(!text.contains(personal), "a span names {personal}: {text}");
        }
    }
    assert!(
        observed::spans_of(&unsampled).is_empty(),
        "spans exported for a caller that does not sample"
    );
}

#[tokio::test]
async fn a_request_without_a_caller_starts_a_trace_that_its_log_line_names() {
    observed::start();
    let app = TestApp::spawn().await;
    app.gql("{ __typename }")
        .header("X-Request-Id", "trace-test-fresh")
        .send()
        .await
        .data();
    let mut line = None;
    for _ in 0..200 {
        line = observed::log()
            .lines()
            .filter(|line| line.contains("trace-test-fresh"))
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == "request");
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let line = line.expect("the request's log line");
    let trace = line["trace_id"].as_str().expect("a trace id").to_owned();
    let spans = spans_once_ended(&trace, 1).await;
    let request = spans
        .iter()
        .find(|s| s.name == "http.request")
        .expect("the request span");
    assert_eq!(
        attribute(request, "request_id").as_deref(),
        Some("trace-test-fresh")
    );
    assert_eq!(request.parent_span_id, SpanId::INVALID, "a root span");
    // Statements outside any request or job (the background loops' polls, a test's own
    // set-up) start no trace of their own: every statement span has a parent.
    let orphans: Vec<_> = observed::spans()
        .into_iter()
        .filter(|s| s.name.starts_with("sea_orm.") && s.parent_span_id == SpanId::INVALID)
        .map(|s| attribute(&s, "db.statement").unwrap_or_default())
        .collect();
    assert!(
        orphans.is_empty(),
        "statement spans without a parent: {orphans:?}"
    );
}
