//! What a GraphQL request over HTTP carries: the document's text, or its id
//! (`documentId: "sha256:<hex>"`, the GraphQL-over-HTTP trusted documents form, or the
//! APQ extension `extensions.persistedQuery {version: 1, sha256Hash}`), or both (an APQ
//! client registering a text). Over POST as JSON (one or a batch), over GET as query
//! parameters (`variables` and `extensions` as JSON text).

use crate::error::request_error;
use async_graphql::{Request, ServerError, Variables};
use kernel::ErrorCode;
use serde::Deserialize;
use tenancy::DocumentHash;

/// One request as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireRequest {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Variables>,
    #[serde(default)]
    extensions: Option<WireExtensions>,
    #[serde(default)]
    document_id: Option<String>,
}

/// The request extensions this server reads (others are ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireExtensions {
    #[serde(default)]
    persisted_query: Option<PersistedQuery>,
}

/// The APQ extension.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PersistedQuery {
    version: u64,
    sha256_hash: String,
}

/// One request or a batch, as sent over POST.
pub enum WireBatch {
    /// One request.
    Single(WireRequest),
    /// Several.
    Batch(Vec<WireRequest>),
}

impl WireBatch {
    /// Reads a POST body: a JSON object, or an array of them.
    pub fn from_json(body: &[u8]) -> serde_json::Result<Self> {
        let is_batch = body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'[');
        if is_batch {
            serde_json::from_slice(body).map(Self::Batch)
        } else {
            serde_json::from_slice(body).map(Self::Single)
        }
    }
}

/// The query parameters of `GET /graphql`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParameters {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
    document_id: Option<String>,
}

impl WireRequest {
    /// Reads the query string of `GET /graphql`.
    pub fn from_query_string(query: &str) -> Result<Self, String> {
        let parameters: GetParameters =
            serde_urlencoded::from_str(query).map_err(|e| format!("bad query string: {e}"))?;
        fn json<T: serde::de::DeserializeOwned>(
            name: &str,
            text: Option<String>,
        ) -> Result<Option<T>, String> {
            match text.filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(text) => serde_json::from_str(&text)
                    .map(Some)
                    .map_err(|e| format!("`{name}` is not JSON of the right shape: {e}")),
            }
        }
        Ok(Self {
            query: parameters.query,
            operation_name: parameters.operation_name.filter(|n| !n.is_empty()),
            variables: json("variables", parameters.variables)?,
            extensions: json("extensions", parameters.extensions)?,
            document_id: parameters.document_id,
        })
    }

    /// What the request asks to run, its id (if any) checked for form and against its
    /// text.
    pub fn into_submitted(self) -> Result<Submitted, ServerError> {
        let bad = |message: &str| request_error(ErrorCode::BadRequest, message);
        let by_document_id = match &self.document_id {
            None => None,
            Some(id) => Some(
                id.strip_prefix("sha256:")
                    .and_then(DocumentHash::from_hex)
                    .ok_or_else(|| bad("documentId must be `sha256:` and 64 hexadecimal digits"))?,
            ),
        };
        let by_apq = match self.extensions.and_then(|e| e.persisted_query) {
            None => None,
            Some(apq) if apq.version != 1 => {
                return Err(bad("extensions.persistedQuery.version must be 1"));
            }
            Some(apq) => Some(DocumentHash::from_hex(&apq.sha256_hash).ok_or_else(|| {
                bad("extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits")
            })?),
        };
        let id = match (by_document_id, by_apq) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(
                    "documentId and extensions.persistedQuery name different documents",
                ));
            }
            (a, b) => a.or(b),
        };
        let form = match (&self.query, id) {
            (Some(_), None) => Form::Text,
            (None, None) => {
                return Err(bad(
                    "a request needs a `query` (the document's text) or a `documentId`",
                ));
            }
            (Some(text), Some(id)) => {
                if DocumentHash::of(text) != id {
                    return Err(bad("the document's SHA-256 is not the id it was sent with"));
                }
                Form::TextWithId(id)
            }
            (None, Some(id)) => Form::ById(id),
        };
        let mut request = Request::new(self.query.unwrap_or_default());
        if let Some(name) = self.operation_name {
            request = request.operation_name(name);
        }
        if let Some(variables) = self.variables {
            request = request.variables(variables);
        }
        Ok(Submitted { request, form })
    }
}

/// A request as this server will run it.
pub struct Submitted {
    /// The request (without its text when it came by id alone).
    pub request: Request,
    /// How the document came.
    pub form: Form,
}

/// How a request named its document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Text alone.
    Text,
    /// Text with its id (checked): an APQ client registering it, or a client that
    /// sends both.
    TextWithId(DocumentHash),
    /// An id alone: a trusted document, or a text registered by APQ.
    ById(DocumentHash),
    /// The server's own document (an HTTP route that runs a GraphQL operation for its
    /// caller, like usage ingestion): run by every caller who may call the route.
    Own,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn submitted(body: serde_json::Value) -> Result<Submitted, ServerError> {
        serde_json::from_value::<WireRequest>(body)
            .unwrap()
            .into_submitted()
    }

    #[test]
    fn each_form_is_read_with_its_id_checked() {
        let text = "query Q { __typename }";
        let hash = DocumentHash::of(text);
        let apq = json!({"persistedQuery": {"version": 1, "sha256Hash": hash.to_hex()}});
        let cases = [
            (json!({"query": text}), Form::Text),
            (json!({"documentId": hash.to_string()}), Form::ById(hash)),
            (json!({"extensions": apq}), Form::ById(hash)),
            (
                json!({"query": text, "extensions": apq}),
                Form::TextWithId(hash),
            ),
            (
                json!({"query": text, "documentId": hash.to_string()}),
                Form::TextWithId(hash),
            ),
        ];
        for (body, form) in cases {
            assert_eq!(submitted(body.clone()).unwrap().form, form, "{body}");
        }
    }

    #[test]
    fn a_bad_id_or_a_text_that_is_not_its_id_is_a_bad_request() {
        let text = "query Q { __typename }";
        let other = DocumentHash::of("query R { __typename }");
        for body in [
            json!({"query": text, "documentId": other.to_string()}),
            json!({"documentId": other.to_hex()}),
            json!({"documentId": "sha256:xyz"}),
            json!({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": other.to_hex()}}}),
            json!({"documentId": other.to_string(),
                   "extensions": {"persistedQuery": {"version": 1, "sha256Hash": DocumentHash::of(text).to_hex()}}}),
            json!({"variables": {}}),
        ] {
            let error = submitted(body.clone()).err().expect("refused");
            let code = error
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .cloned();
            assert_eq!(
                code,
                Some(async_graphql::Value::from("BAD_REQUEST")),
                "{body}"
            );
        }
    }

    #[test]
    fn get_parameters_carry_the_same_forms() {
        let hash = DocumentHash::of("query Q { __typename }");
        let query = format!(
            "documentId=sha256%3A{}&variables=%7B%22a%22%3A1%7D&operationName=Q",
            hash.to_hex()
        );
        let read = WireRequest::from_query_string(&query)
            .unwrap()
            .into_submitted()
            .unwrap();
        assert_eq!(read.form, Form::ById(hash));
        assert_eq!(read.request.operation_name.as_deref(), Some("Q"));
        assert!(WireRequest::from_query_string("variables=%7Bnot").is_err());
    }
}
