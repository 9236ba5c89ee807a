//! W3C Trace Context (`traceparent`): the trace a request belongs to. A valid header
//! makes the request's span a child of the caller's (when spans are exported) and its
//! trace id goes on the request's log line; a missing or malformed one starts a new trace,
//! as the specification asks of a participant that cannot use what it was sent.
//! `tracestate` is not carried on (it is optional, and vendors' entries are theirs).

use axum::http::HeaderMap;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId as OtelTraceId, TraceState,
};

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

    /// The trace of an exported span, when there is one (an invalid id means the span is
    /// not traced: no exporter listens).
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let trace = span.context().span().span_context().trace_id();
        (trace != OtelTraceId::INVALID).then(|| Self(trace.to_string()))
    }
}

impl std::fmt::Display for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid `traceparent`: the caller's trace, its span, and whether it samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traceparent {
    pub trace: TraceId,
    parent: String,
    sampled: bool,
}

impl Traceparent {
    /// The request's `traceparent`, when valid.
    pub fn of(headers: &HeaderMap) -> Option<Self> {
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(parse)
    }

    /// The caller's span as a remote parent for ours; a caller that does not sample
    /// gets no exported spans from us either (the default sampler follows the parent).
    pub fn context(&self) -> opentelemetry::Context {
        let flags = if self.sampled {
            TraceFlags::SAMPLED
        } else {
            TraceFlags::default()
        };
        let span = SpanContext::new(
            OtelTraceId::from_hex(&self.trace.0).unwrap_or(OtelTraceId::INVALID),
            SpanId::from_hex(&self.parent).unwrap_or(SpanId::INVALID),
            flags,
            true,
            TraceState::default(),
        );
        opentelemetry::Context::new().with_remote_span_context(span)
    }
}

/// Makes `span` (the request's) a child of the caller's span when the request names a
/// valid one, and returns the request's trace: the exported span's, else the caller's,
/// else a new one (so the log line and the exported spans always agree).
pub fn join(span: &tracing::Span, headers: &HeaderMap) -> TraceId {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let caller = Traceparent::of(headers);
    if let Some(caller) = &caller {
        // Refused only when no exporter listens (nothing to parent) or the span already
        // started; the log line still names the caller's trace.
        let _ = span.set_parent(caller.context());
    }
    TraceId::of_span(span)
        .or(caller.map(|caller| caller.trace))
        .unwrap_or_else(TraceId::random)
}

/// A `traceparent` value, if valid: `version-traceid-parentid-flags`, lowercase hex of
/// 2, 32, 16 and 2 digits; version `ff` and all-zero ids are invalid; version `00` has
/// nothing after the flags, later versions may add `-`-separated fields.
fn parse(value: &str) -> Option<Traceparent> {
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
    let sampled = u8::from_str_radix(flags, 16).ok()? & 1 == 1;
    Some(Traceparent {
        trace: TraceId(trace.to_owned()),
        parent: parent.to_owned(),
        sampled,
    })
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
                parse(value).map(|t| t.trace.0),
                valid.then(|| TRACE.to_owned()),
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_caller_span_becomes_the_remote_parent_and_its_sampling_is_kept() {
        let sampled = parse(&format!("00-{TRACE}-00f067aa0ba902b7-01")).expect("valid");
        let context = sampled.context();
        let parent = context.span().span_context().clone();
        assert!(parent.is_valid() && parent.is_remote() && parent.is_sampled());
        assert_eq!(parent.trace_id().to_string(), TRACE);
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        let unsampled = parse(&format!("00-{TRACE}-00f067aa0ba902b7-00")).expect("valid");
        assert!(!unsampled.context().span().span_context().is_sampled());
        // Other flag bits do not mean sampled.
        let other = parse(&format!("00-{TRACE}-00f067aa0ba902b7-02")).expect("valid");
        assert!(!other.sampled);
    }

    #[test]
    fn a_request_without_a_valid_one_starts_a_new_trace() {
        let trace_of = |headers: &HeaderMap| join(&tracing::Span::none(), headers);
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
