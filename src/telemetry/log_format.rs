//! JSON log lines with the trace and span ids of the span they were logged in.
//!
//! One JSON object per line, with stable keys: `timestamp`, `level`, `target`, `message` and
//! the event's own fields at the top level; `span` (the current span: its `name` and fields)
//! and `spans` (every open span, outermost first); and, inside a span, `trace_id` (32 hex
//! digits) and `span_id` (16 hex digits) — the ids that span has in exported traces, and the
//! caller's trace id when the request carried a W3C `traceparent`.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub struct JsonWithTraceIds {
    inner: Format<Json>,
}

impl JsonWithTraceIds {
    pub fn new() -> Self {
        JsonWithTraceIds {
            inner: Format::default().json().flatten_event(true),
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // The OpenTelemetry layer makes an entered span's context the current one.
        let ids = opentelemetry::Context::map_current(|cx| {
            let span = cx.span();
            let context = span.span_context();
            context
                .is_valid()
                .then(|| (context.trace_id(), context.span_id()))
        });
        let Some((trace_id, span_id)) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The JSON formatter writes one object and a newline: the ids go before its last brace.
        match line.trim_end().strip_suffix('}') {
            Some(object) => writeln!(
                writer,
                "{object},\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\"}}"
            ),
            None => writer.write_str(&line),
        }
    }
}
