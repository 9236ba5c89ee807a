//! Slow, idle and stalled clients cannot hold the server: headers and bodies have read
//! timeouts, connections are capped, and a shutdown ends within its grace period.

use crate::helpers::TestApp;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn port_of(app: &TestApp) -> u16 {
    app.address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0_u8; 4096];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

async fn app_with_short_timeouts() -> TestApp {
    TestApp::spawn_with(|config| {
        config.http.header_timeout = Duration::from_millis(500);
        config.http.body_timeout = Duration::from_millis(500);
    })
    .await
}

#[tokio::test]
async fn a_client_dripping_its_headers_is_disconnected() {
    let app = app_with_short_timeouts().await;
    let mut slow = TcpStream::connect(("127.0.0.1", port_of(&app)))
        .await
        .expect("connect");
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let drip = async {
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
        }
    };
    drip.await;
    let closed = closed_after(&mut slow, Duration::from_secs(3)).await;
    assert!(
        closed.is_some(),
        "a client dripping headers for 4 s was still connected"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let app = app_with_short_timeouts().await;
    let mut idle = TcpStream::connect(("127.0.0.1", port_of(&app)))
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buffer = [0_u8; 1024];
    let read = idle.read(&mut buffer).await.expect("answer");
    assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
    let closed = closed_after(&mut idle, Duration::from_secs(3)).await;
    assert!(
        closed.is_some(),
        "an idle kept-alive connection stayed open"
    );
}

#[tokio::test]
async fn a_stalled_body_is_refused() {
    let app = app_with_short_timeouts().await;
    let mut stalled = TcpStream::connect(("127.0.0.1", port_of(&app)))
        .await
        .expect("connect");
    stalled
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .expect("write");
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stalled.read_to_end(&mut answer)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the stalled body held the connection"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "{answer}"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_one() {
    let app = TestApp::spawn_with(|config| config.http.max_connections = 3).await;
    let port = port_of(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            TcpStream::connect(("127.0.0.1", port))
                .await
                .expect("connect"),
        );
    }
    // Give the server time to accept the three.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let health = format!("{}/healthz", app.address);
    let waiting =
        tokio::time::timeout(Duration::from_millis(500), app.http.get(&health).send()).await;
    assert!(
        waiting.is_err(),
        "a fourth connection was served beyond the limit"
    );
    held.pop();
    let served = tokio::time::timeout(Duration::from_secs(5), app.http.get(&health).send())
        .await
        .expect("served once a connection was free")
        .expect("answer");
    assert_eq!(served.status(), 200);
}

#[tokio::test]
async fn shutdown_ends_within_its_grace_period() {
    let app = TestApp::spawn().await;
    let router = gateway::http::router(
        app.state.clone(),
        gateway::startup::build_schema(app.state.clone()),
        &gateway::http::Surface::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let limits = gateway::server::HttpLimits {
        max_connections: 16,
        header_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(30),
        shutdown_grace: Duration::from_millis(500),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gateway::server::serve(listener, router, limits, async {
        let _ = stopped.await;
    }));
    // A client that stalls in the middle of its body.
    let mut stalled = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    stalled
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stopped")
        .expect("joined")
        .expect("served");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "shutdown took {:?}",
        started.elapsed()
    );
}
