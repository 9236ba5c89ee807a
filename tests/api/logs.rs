//! The log (issue 16, first part): one line per request with its id, method, path,
//! status, duration, operations and outcome codes, and no personal data in any line the
//! server writes (searched for the test's own people's emails and names).

use crate::helpers::TestApp;
use crate::observed::{log as captured, start as capture};
use serde_json::json;

#[tokio::test]
async fn each_request_is_one_line_of_ids_and_codes_and_no_line_names_a_person() {
    capture();
    let app = TestApp::spawn().await;
    let (email, name) = ("zoe.personal@example.com", "zoe.personal");
    let zoe = app.user(email).await;
    let org = app.org(&zoe, "Personal Org").await;
    // A success, a refusal, a failed log-in naming her, and variables and an operation
    // name carrying her address.
    app.gql("query Mine { viewer { user { email name } } }")
        .as_user(&zoe)
        .header("X-Request-Id", "log-test-ok")
        .send()
        .await
        .data();
    let refused = app
        .gql("{ projects { totalCount } }")
        .header("X-Request-Id", "log-test-refused")
        .org_header(&org.id)
        .send()
        .await;
    assert_eq!(refused.code(), "UNAUTHENTICATED");
    app.log_in(email, "not her password").await;
    app.gql_body(json!({
        "query": "mutation Invite($e: String!) { inviteMember(input: {email: $e, role: VIEWER}) { token } }",
        "operationName": email,
        "variables": {"e": email},
    }))
    .as_user(&zoe)
    .in_org(&org)
    .header("X-Request-Id", "log-test-named")
    .send()
    .await;

    // One in the caller's trace, one with a malformed trace (a new trace is started).
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    for (request_id, traceparent) in [
        ("log-test-traced", format!("00-{trace}-00f067aa0ba902b7-01")),
        (
            "log-test-untraced",
            format!("00-{trace}-0000000000000000-01"),
        ),
    ] {
        app.gql("{ __typename }")
            .header("X-Request-Id", request_id)
            .header("traceparent", &traceparent)
            .send()
            .await
            .data();
    }

    // A webhook endpoint whose URL and description name her, answered by a receiver
    // that echoes her address: the delivery's log line carries ids and codes only.
    let receiver = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(500).set_body_string(email))
        .mount(&receiver)
        .await;
    app.gql(
        "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }",
    )
    .vars(json!({ "i": {
            "url": format!("{}/in?who={email}", receiver.uri()),
            "eventTypes": ["project.created"],
            "description": name,
        } }))
    .as_user(&zoe)
    .in_org(&org)
    .send()
    .await
    .data();
    app.gql("mutation { createProject(input: {name: \"Hooked\"}) { project { id } } }")
        .as_user(&zoe)
        .in_org(&org)
        .send()
        .await
        .data();
    gateway::background::webhook_dispatch::run_once(&app.state)
        .await
        .unwrap();
    // The server's own worker may be the one that sends it.
    for _ in 0..200 {
        gateway::background::job_kinds::webhook_worker(app.state.clone())
            .run_until_idle()
            .await;
        if !receiver.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    // Its attempt is logged once recorded, just after the answer.
    for _ in 0..200 {
        if captured().contains("webhook delivery attempt") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }

    let log = captured();
    assert!(log.contains("webhook delivery attempt"));
    let line = |request_id: &str| {
        log.lines()
            .filter(|line| line.contains(request_id))
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["message"] == "request")
            .unwrap_or_else(|| panic!("no request line for {request_id}"))
    };
    let ok = line("log-test-ok");
    assert_eq!(ok["method"], "POST");
    assert_eq!(ok["path"], "/graphql");
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["operations"], "Mine");
    assert_eq!(ok["outcome"], "OK");
    assert!(ok["duration_ms"].is_u64());
    assert_eq!(line("log-test-refused")["outcome"], "UNAUTHENTICATED");
    assert_eq!(line("log-test-traced")["trace_id"], trace);
    let fresh = line("log-test-untraced")["trace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(fresh.len() == 32 && fresh != trace, "{fresh}");
    assert_eq!(ok["trace_id"].as_str().map(str::len), Some(32));
    // An operation name that is not a GraphQL name is not written down.
    assert_eq!(line("log-test-named")["operations"], "?");
    for personal in [email, name, "Personal Org"] {
        assert!(
            !log.contains(personal),
            "the log names {personal}: {}",
            log.lines()
                .find(|l| l.contains(personal))
                .unwrap_or_default()
        );
    }
}
