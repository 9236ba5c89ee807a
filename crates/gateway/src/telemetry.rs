//! Logging and tracing set-up. The log writer is a parameter so tests stay quiet unless
//! `TEST_LOG` is set; the span exporter is one too, so a test can read the spans a
//! request produced (an in-memory exporter) where the server sends them by OTLP.

use crate::config::LogFormat;
use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, fmt};

/// What becomes an exported span: our own spans (the request, authorization decisions,
/// the services' operations, jobs) and SeaORM's one per statement, which carries the
/// statement's text with its placeholders (values are always bound, never written into
/// the text: the trace test searches the texts for the people it created). Library internals stay
/// out: async-graphql's spans carry the query document, and the exporter's own HTTP
/// client must not trace itself.
const SPAN_FILTER: &str = "info,async_graphql=off,sqlx=off,h2=off,hyper=off,hyper_util=off,\
                           reqwest=off,tower=off,opentelemetry=off,opentelemetry_sdk=off,\
                           opentelemetry_otlp=off,opentelemetry_http=off";

/// The name spans are exported under when `OTEL_SERVICE_NAME` does not say otherwise.
const SERVICE_NAME: &str = "platform";

/// Installs the global subscriber: log lines through `writer` filtered by `filter`, and,
/// given a tracer provider, spans through it. A second call (another test) is a no-op
/// and says so (`false`).
pub fn init<W>(
    filter: &str,
    format: LogFormat,
    writer: W,
    traces: Option<&SdkTracerProvider>,
) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let log = match format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => fmt::layer().compact().with_writer(writer).boxed(),
    };
    // Each layer has its own filter: SeaORM's statement spans go to the exporter but are
    // not even created when only the log is listening.
    let spans = traces.map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(EnvFilter::new(SPAN_FILTER).and(statements_within_work()))
    });
    tracing_subscriber::registry()
        .with(log.with_filter(filter))
        .with(spans)
        .try_init()
        .is_ok()
}

/// A statement's span is exported only beneath another span (a request's, a job's): the
/// background loops' polls every second would otherwise each start a trace of their own.
fn statements_within_work<S>() -> impl tracing_subscriber::layer::Filter<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_subscriber::filter::dynamic_filter_fn(|metadata, cx| {
        !(metadata.is_span() && metadata.target().starts_with("sea_orm"))
            || cx.lookup_current().is_some()
    })
}

/// A tracer provider sending spans in batches to the OTLP collector at `endpoint` (its
/// base URL; `/v1/traces` is appended unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` names
/// the traces URL itself). Call [`SdkTracerProvider::shutdown`] before exiting so the last
/// batch is sent. Build it outside the async runtime: the exporter's blocking client
/// refuses to start inside one.
pub fn otlp_provider(endpoint: &str) -> anyhow::Result<SdkTracerProvider> {
    use opentelemetry_otlp::WithExportConfig as _;
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
    if std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none() {
        exporter = exporter.with_endpoint(traces_url(endpoint));
    }
    let exporter = exporter
        .build()
        .context("setting up the OTLP span exporter (OTEL_EXPORTER_OTLP_ENDPOINT)")?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build())
}

/// The traces URL of a collector's base URL, as the specification builds it from
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_is_the_base_and_the_signal_path() {
        assert_eq!(
            traces_url("http://collector:4318"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/prefix"),
            "https://otel.example/prefix/v1/traces"
        );
    }

    #[test]
    fn an_unusable_endpoint_is_refused_at_start_with_its_setting_named() {
        let refused = otlp_provider("not a url").expect_err("refused").to_string();
        assert!(refused.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{refused}");
    }

    #[test]
    fn the_span_filter_parses_and_keeps_library_internals_out() {
        let filter = EnvFilter::try_new(SPAN_FILTER).expect("a valid filter");
        let text = filter.to_string();
        for quiet in ["async_graphql=off", "reqwest=off", "opentelemetry_otlp=off"] {
            assert!(text.contains(quiet), "{text}");
        }
    }
}
