//! Logs and traces. Logs are JSON lines when stderr is not a terminal (or with
//! `DRIFTD_LOG_FORMAT=json`), readable text on a terminal; `DRIFTD_LOG` sets the filter (default
//! `info`). A JSON line logged inside a span carries that span's `trace_id` and `span_id`.
//!
//! Spans go to an OpenTelemetry collector over OTLP when the standard variables say so
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, …); with no endpoint nothing is exported. Export runs on its own
//! thread through a bounded queue: a slow or dead collector costs dropped spans, never a slower
//! ingest. The HTTP and gRPC clients that carry spans are filtered out of tracing, so the
//! exporter never traces itself. What each span carries is in [`spans`].

mod log_format;
mod otlp;
pub mod spans;
mod untraced;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer as _, fmt};

pub use spans::MAX_RECORD_ATTRIBUTES;

/// driftd's own variables read here rather than by the configuration.
pub const VARIABLES: [&str; 2] = ["DRIFTD_LOG", "DRIFTD_LOG_FORMAT"];

/// How long the exporter gets to send what is still queued when driftd stops.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The target of driftd's spans (`ingest`, `evaluate`, `notify`): enabled whatever
/// `DRIFTD_LOG` says, so that traces do not depend on the log level. Spans are not log lines;
/// the events logged inside them still follow `DRIFTD_LOG`.
pub const SPAN_TARGET: &str = "driftd::span";

/// Keeps span export running. Dropping it sends the spans still queued (for at most five
/// seconds, or what [`Telemetry::finish_within`] allows) and stops the exporter, so `driftd
/// serve` holds it until it exits.
#[must_use = "dropping the guard stops span export"]
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
    timeout: Duration,
}

impl Telemetry {
    /// Sends what is queued within `time` at most (what is left of the shutdown's grace).
    pub fn finish_within(mut self, time: Duration) {
        self.timeout = self.timeout.min(time);
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if !self.exporting {
            return;
        }
        // The SDK refuses a zero timeout; a millisecond gives up just as surely.
        let timeout = self.timeout.max(Duration::from_millis(1));
        if let Err(error) = self.provider.shutdown_with_timeout(timeout) {
            tracing::warn!(%error, "Spans still queued at exit may be lost");
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Json,
    Text,
}

fn log_format() -> anyhow::Result<LogFormat> {
    match std::env::var("DRIFTD_LOG_FORMAT").as_deref().map(str::trim) {
        Err(_) | Ok("" | "auto") if std::io::stderr().is_terminal() => Ok(LogFormat::Text),
        Err(_) | Ok("" | "auto") => Ok(LogFormat::Json),
        Ok("json") => Ok(LogFormat::Json),
        Ok("text") => Ok(LogFormat::Text),
        Ok(other) => anyhow::bail!("DRIFTD_LOG_FORMAT {other:?} is not one of json, text, auto"),
    }
}

/// Sets up logging and, when an OTLP endpoint is configured, span export. Call once, before
/// anything logs; keep the guard until exit.
pub fn init() -> anyhow::Result<Telemetry> {
    let format = log_format()?;
    let exporter = otlp::exporter_from_env().context("cannot set up span export")?;
    let exporting = exporter.is_some();
    let provider = otlp::provider(exporter);
    // A tracer even without export: spans still get ids (the caller's trace id, with a
    // traceparent), so log lines can be matched with the caller's traces.
    let tracer = provider.tracer("driftd");
    let otel = untraced::Untraced::new(tracing_opentelemetry::layer().with_tracer(tracer));

    // sqlx logs every statement at info, and OpenTelemetry's own notes are only worth a line
    // when something fails. One global filter: per-layer filters lose events when a library
    // asks `tracing::enabled!` without logging (sqlx does), tokio-rs/tracing#2704.
    let filter = EnvFilter::try_from_env("DRIFTD_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,opentelemetry=warn"))
        .add_directive(
            format!("{SPAN_TARGET}=info")
                .parse()
                .expect("a valid directive"),
        );
    let logs = match format {
        LogFormat::Text => fmt::layer().with_writer(std::io::stderr).boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(std::io::stderr)
            .event_format(log_format::JsonWithTraceIds::new())
            .fmt_fields(fmt::format::JsonFields::new())
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(otel)
        .try_init();
    Ok(Telemetry {
        provider,
        exporting,
        timeout: SHUTDOWN_TIMEOUT,
    })
}
