//! GraphiQL served by the binary itself (issue 15): the page loads nothing from outside
//! the platform's origin, under a Content-Security-Policy that allows only that origin,
//! and in headless Chromium with every outside request blocked the editor renders and a
//! query through it returns data.
//!
//! The browser half needs Chromium and ChromeDriver (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs). Without them it says so and stops, unless
//! `REQUIRE_BROWSER` is set (as `.ci/run` does), when it fails.

use crate::helpers::{PASSWORD, TestApp};
use fantoccini::{ClientBuilder, Locator};
use serde_json::json;
use std::time::Duration;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

#[tokio::test]
async fn the_page_and_its_assets_come_from_the_platform_alone() {
    let app = TestApp::spawn().await;
    let page = app
        .http
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for (file, media) in [
        ("graphiql.js", "text/javascript"),
        ("graphiql.css", "text/css"),
        ("THIRD_PARTY_LICENSES.txt", "text/plain"),
    ] {
        let asset = app
            .http
            .get(format!("{}/graphiql/{file}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), 200, "{file}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(media)
        );
        assert!(asset.bytes().await.unwrap().len() > 1_000, "{file}");
    }
    let missing = app
        .http
        .get(format!("{}/graphiql/../Cargo.toml", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn graphiql_renders_and_runs_a_query_with_every_outside_request_blocked() {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var_os("REQUIRE_BROWSER").is_none(),
            "REQUIRE_BROWSER is set but {CHROMIUM} or {CHROMEDRIVER} is missing"
        );
        eprintln!("no Chromium here: the browser test of GraphiQL did not run");
        return;
    }
    let app = TestApp::spawn().await;
    let user = app.user("grace@example.com").await;

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
        std::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                // Every request that is not to this machine goes to a proxy that is not
                // there, and no other name resolves: nothing from outside can load.
                "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut browser = None;
    for _ in 0..50 {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => {
                browser = Some(client);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let browser = browser.expect("a browser session");

    let run = async {
        let document = format!(
            "mutation LogIn {{ logIn(input: {{email: \"{}\", password: \"{PASSWORD}\"}}) {{ user {{ email }} }} }}",
            user.email
        );
        let url = format!("{}/?query={}", app.address, url_escape(&document));
        browser.goto(&url).await?;
        browser
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(".graphiql-container"))
            .await?;
        browser
            .find(Locator::Css(".graphiql-execute-button"))
            .await?
            .click()
            .await?;
        let mut answer = String::new();
        for _ in 0..100 {
            answer = browser
                .find(Locator::Css(".graphiql-response"))
                .await?
                .text()
                .await?;
            if answer.contains("grace@example.com") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let loaded = browser
            .execute(
                "return performance.getEntriesByType('resource').map(e => e.name)",
                vec![],
            )
            .await?;
        Ok::<_, fantoccini::error::CmdError>((answer, loaded))
    };
    let outcome = run.await;
    let _ = browser.close().await;
    let (answer, loaded) = outcome.expect("the browser session ran");
    assert!(
        answer.contains("grace@example.com"),
        "the response pane shows: {answer}"
    );
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    assert!(!loaded.is_empty());
    for resource in &loaded {
        assert!(
            resource.starts_with(&app.address),
            "{resource} is not the platform's"
        );
    }
}

/// ChromeDriver, stopped when the test ends however it ends.
struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `text` as a URL query value.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
