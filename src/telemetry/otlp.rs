//! The OTLP span exporter, configured by the standard OpenTelemetry variables, and the tracer
//! provider that batches spans for it.
//!
//! The SDK's batch processor exports from a thread of its own, outside any async runtime, while
//! gRPC (tonic) and the HTTP client need one. The exporter therefore gets a one-thread runtime
//! of its own: export never competes with, nor depends on, the runtime that serves requests,
//! and it still works while that runtime shuts down.

use std::time::Duration;

use anyhow::{Context as _, bail};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::resource::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};

use super::spans::{MAX_EVENTS_PER_SPAN, MAX_RECORD_ATTRIBUTES};

/// The exporter's default timeout per request, as the OpenTelemetry specification has it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

fn var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// The exporter the environment asks for, or `None` when no OTLP endpoint is set (or
/// `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`).
pub fn exporter_from_env() -> anyhow::Result<Option<OnOwnRuntime>> {
    if var(&["OTEL_SDK_DISABLED"]).is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || var(&["OTEL_TRACES_EXPORTER"]).is_some_and(|v| v == "none")
    {
        return Ok(None);
    }
    let Some(endpoint) = var(&[
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]) else {
        return Ok(None);
    };
    let protocol = var(&[
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ])
    .unwrap_or_else(|| "http/protobuf".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("driftd-otlp")
        .enable_all()
        .build()
        .context("cannot start the exporter's runtime")?;
    let exporter = match protocol.as_str() {
        "grpc" => {
            // tonic starts its connection task on the runtime current when it is built.
            let _entered = runtime.enter();
            let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if endpoint.starts_with("https://") {
                builder = builder.with_tls_config(ClientTlsConfig::new().with_enabled_roots());
            }
            builder.build()?
        }
        "http/protobuf" => {
            let timeout = var(&[
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ])
            .and_then(|ms| ms.parse().ok())
            .map_or(DEFAULT_TIMEOUT, Duration::from_millis);
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .context("cannot build the exporter's HTTP client")?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_http_client(Reqwest(client))
                .build()?
        }
        other => bail!(
            "OTEL_EXPORTER_OTLP_PROTOCOL {other:?} is not supported; use grpc or http/protobuf"
        ),
    };
    Ok(Some(OnOwnRuntime { exporter, runtime }))
}

/// The tracer provider: spans batched for `exporter` through a bounded queue (the SDK's
/// defaults, or `OTEL_BSP_*`), or kept nowhere without one. The resource is what
/// `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` say, with `service.name` `driftd` and
/// driftd's `service.version` unless they say otherwise.
pub fn provider(exporter: Option<OnOwnRuntime>) -> SdkTracerProvider {
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource())
        .with_max_events_per_span(MAX_EVENTS_PER_SPAN as u32)
        .with_max_attributes_per_event(MAX_RECORD_ATTRIBUTES as u32 + 8)
        .with_max_attributes_per_span(256);
    if let Some(exporter) = exporter {
        // Queue size and delays come from OTEL_BSP_* (default: 2,048 spans, sent every 5 s);
        // a full queue drops spans instead of waiting.
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(BatchConfigBuilder::default().build())
            .build();
        builder = builder.with_span_processor(processor);
    }
    builder.build()
}

fn resource() -> Resource {
    let detected = Resource::builder().build();
    let mut resource = Resource::builder();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if !named {
        resource = resource.with_service_name("driftd");
    }
    if detected
        .get(&opentelemetry::Key::from_static_str("service.version"))
        .is_none()
    {
        resource = resource.with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ));
    }
    resource.build()
}

/// An exporter driven by a runtime of its own (see the module's notes).
#[derive(Debug)]
pub struct OnOwnRuntime {
    exporter: opentelemetry_otlp::SpanExporter,
    runtime: tokio::runtime::Runtime,
}

impl SpanExporter for OnOwnRuntime {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        // Called on the batch processor's thread, which is outside any runtime.
        let result = self.runtime.block_on(self.exporter.export(batch));
        std::future::ready(result)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.exporter.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.exporter.set_resource(resource);
    }
}

/// driftd's HTTP client (reqwest with rustls) carrying OTLP/HTTP requests.
#[derive(Debug)]
struct Reqwest(reqwest::Client);

#[async_trait::async_trait]
impl HttpClient for Reqwest {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let response = self.0.execute(request).await?;
        let mut answer = Response::builder().status(response.status());
        if let Some(headers) = answer.headers_mut() {
            *headers = response.headers().clone();
        }
        Ok(answer.body(response.bytes().await?)?)
    }
}
