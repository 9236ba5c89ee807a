//! What the server logs and the spans it exports, captured for the whole test process:
//! the subscriber is global, so the log test and the trace test share one, installed by
//! whichever starts first. The log is kept as the server writes it by default (JSON lines
//! under `RUST_LOG`'s default); spans go to an in-memory exporter where the server would
//! send them by OTLP.

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use std::sync::{Mutex, OnceLock};

/// Everything logged in this test process from the moment the capture starts.
static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Observed {
    spans: InMemorySpanExporter,
    // Kept so its processor keeps exporting.
    _provider: SdkTracerProvider,
}

fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let spans = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(spans.clone())
            .build();
        let installed = gateway::telemetry::init(
            "info,sqlx=warn,sea_orm=warn,async_graphql=warn",
            gateway::config::LogFormat::Json,
            || Capture,
            Some(&provider),
        );
        assert!(
            installed,
            "another subscriber was installed first (TEST_LOG?): nothing can be observed"
        );
        Observed {
            spans,
            _provider: provider,
        }
    })
}

/// Starts capturing (once per process).
pub fn start() {
    observed();
}

/// The log so far.
pub fn log() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

/// Every span exported so far, from every test running in this process.
pub fn spans() -> Vec<SpanData> {
    observed().spans.get_finished_spans().unwrap_or_default()
}

/// The spans of one trace exported so far (32 lowercase hex digits).
pub fn spans_of(trace: &str) -> Vec<SpanData> {
    spans()
        .into_iter()
        .filter(|span| span.span_context.trace_id().to_string() == trace)
        .collect()
}
