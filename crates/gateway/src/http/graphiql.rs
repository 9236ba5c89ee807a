//! GraphiQL at `/`, served from the binary.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};

/// GraphiQL's page: the editor built into the binary (`crates/gateway/graphiql`), nothing
/// loaded from elsewhere, which the Content-Security-Policy holds it to.
const GRAPHIQL_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Platform GraphiQL</title>
<link rel="stylesheet" href="/graphiql/graphiql.css">
<style>body { margin: 0; } #graphiql { height: 100dvh; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/graphiql/graphiql.js"></script>
</body>
</html>
"#;

/// Only the platform's own origin: scripts, styles, requests, images and fonts (the
/// editor's fonts are inline `data:`). Styles may also be inline: the editor inserts its
/// own style elements as it runs; scripts may not. No framing.
const GRAPHIQL_CSP: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; \
    font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub(super) async fn graphiql() -> impl IntoResponse {
    (
        [
            (header::CONTENT_SECURITY_POLICY, GRAPHIQL_CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(GRAPHIQL_PAGE),
    )
}

/// The GraphiQL bundle's files, as built by `crates/gateway/graphiql/build.sh`.
pub(super) async fn graphiql_asset(
    axum::extract::Path(file): axum::extract::Path<String>,
) -> axum::response::Response {
    let (body, media): (&'static [u8], &str) = match file.as_str() {
        "graphiql.js" => (
            include_bytes!("../../graphiql/assets/graphiql.js"),
            "text/javascript; charset=utf-8",
        ),
        "graphiql.css" => (
            include_bytes!("../../graphiql/assets/graphiql.css"),
            "text/css; charset=utf-8",
        ),
        "THIRD_PARTY_LICENSES.txt" => (
            include_bytes!("../../graphiql/assets/THIRD_PARTY_LICENSES.txt"),
            "text/plain; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
