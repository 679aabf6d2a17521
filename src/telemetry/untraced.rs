//! Keeps the OpenTelemetry layer away from the crates that carry spans to the collector, so
//! the exporter never traces its own requests, and from the database driver's statements.
//!
//! A wrapper rather than a per-layer filter: per-layer filters keep their decisions in a
//! thread-local that a `tracing::enabled!` without a following event leaves stale, after which
//! unrelated events and spans are lost (tokio-rs/tracing#2704).

use std::any::TypeId;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Target prefixes never traced: the HTTP, gRPC and TLS stacks, OpenTelemetry itself, sqlx.
const NEVER_TRACED: [&str; 8] = [
    "hyper",
    "h2",
    "tonic",
    "tower",
    "reqwest",
    "rustls",
    "opentelemetry",
    "sqlx",
];

fn traced(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    !NEVER_TRACED.iter().any(|prefix| target.starts_with(prefix))
}

pub struct Untraced<L> {
    inner: L,
}

impl<L> Untraced<L> {
    pub fn new(inner: L) -> Self {
        Untraced { inner }
    }
}

fn span_traced<S>(id: &Id, ctx: &Context<'_, S>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.metadata(id).is_some_and(traced)
}

impl<S, L> Layer<S> for Untraced<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if traced(attrs.metadata()) {
            self.inner.on_new_span(attrs, id, ctx);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if span_traced(id, &ctx) {
            self.inner.on_record(id, values, ctx);
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        if span_traced(id, &ctx) {
            self.inner.on_follows_from(id, follows, ctx);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if traced(event.metadata()) {
            self.inner.on_event(event, ctx);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if span_traced(id, &ctx) {
            self.inner.on_enter(id, ctx);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if span_traced(id, &ctx) {
            self.inner.on_exit(id, ctx);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if span_traced(&id, &ctx) {
            self.inner.on_close(id, ctx);
        }
    }

    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        if span_traced(old, &ctx) {
            self.inner.on_id_change(old, new, ctx);
        }
    }

    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else {
            // SAFETY: forwarded unchanged; the inner layer answers for its own types (the
            // OpenTelemetry layer's context accessor, which `OpenTelemetrySpanExt` looks up).
            unsafe { self.inner.downcast_raw(id) }
        }
    }
}
