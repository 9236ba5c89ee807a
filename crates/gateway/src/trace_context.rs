//! W3C Trace Context (`traceparent`): the trace a request belongs to, so the request's
//! log line can be joined with the caller's trace. A valid header's trace id is kept; a
//! missing or malformed one starts a new trace (a fresh random id), as the specification
//! asks of a participant that cannot use what it was sent.

use axum::http::HeaderMap;

/// The 32 lowercase hex digits of a trace id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceId(String);

impl TraceId {
    /// The id as written in `traceparent`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A new trace's id: 16 random bytes (never all zero).
    pub fn random() -> Self {
        loop {
            let bytes: [u8; 16] = rand::random();
            if bytes != [0; 16] {
                return Self(bytes.iter().map(|b| format!("{b:02x}")).collect());
            }
        }
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The request's trace: the `traceparent` header's when it is valid, else a new one.
pub fn trace_of(headers: &HeaderMap) -> TraceId {
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse)
        .unwrap_or_else(TraceId::random)
}

/// The trace id of a `traceparent` value, if the value is valid: `version-traceid-
/// parentid-flags`, lowercase hex of 2, 32, 16 and 2 digits; version `ff` and all-zero
/// ids are invalid; version `00` has nothing after the flags, later versions may add
/// `-`-separated fields.
fn parse(value: &str) -> Option<TraceId> {
    let value = value.trim();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = value.splitn(5, '-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.next();
    if !hex(version, 2) || version == "ff" || (version == "00" && rest.is_some()) {
        return None;
    }
    if !hex(trace, 32) || !hex(parent, 16) || !hex(flags, 2) {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(TraceId(trace.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn a_valid_traceparent_names_its_trace_and_anything_else_does_not() {
        let cases: &[(&str, bool)] = &[
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                true,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                true,
            ),
            (
                " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
                true,
            ),
            // A later version may carry more fields.
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                true,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                false,
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                false,
            ),
            (
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
                false,
            ),
            (
                "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                false,
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736\u{0}-00f067aa0ba902b7-01",
                false,
            ),
            ("", false),
        ];
        for (value, valid) in cases {
            assert_eq!(
                parse(value).map(|t| t.0),
                valid.then(|| TRACE.to_owned()),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_request_without_a_valid_one_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        let fresh = trace_of(&headers);
        assert_eq!(fresh.as_str().len(), 32);
        assert_ne!(fresh, trace_of(&headers));
        headers.insert("traceparent", "garbage".parse().unwrap());
        assert_ne!(trace_of(&headers).as_str(), TRACE);
        headers.insert(
            "traceparent",
            format!("00-{TRACE}-00f067aa0ba902b7-01").parse().unwrap(),
        );
        assert_eq!(trace_of(&headers).as_str(), TRACE);
    }
}
