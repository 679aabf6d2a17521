//! What a stalled client cannot hold: the deadlines of one connection (its request headers, the
//! wait for its next request, a response nobody reads) and the minimum rate of a request body.
//!
//! A connection's I/O ([`Tracked`]), its requests (the service) and its [`Activity`] watcher
//! all run on the connection's one task; the atomics only make `Activity` shareable.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::config::ServeConfig;
use crate::serve::metrics::{DropReason, IngestMetrics};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The deadlines of every connection of a listener.
#[derive(Debug, Clone)]
pub struct Timeouts {
    /// From a connection's start, or from the first byte of a later request, to the end of the
    /// request's headers (and of a TLS handshake).
    pub header: Duration,
    /// The wait for a kept-alive connection's next request, and for a blocked write to move.
    pub idle: Duration,
    /// A request body must deliver `body_min_bytes` (or its end) every `body`.
    pub body: Duration,
    pub body_min_bytes: u64,
}

impl Timeouts {
    pub fn of(config: &ServeConfig) -> Timeouts {
        Timeouts {
            header: config.header_timeout,
            idle: config.idle_timeout,
            body: config.body_timeout,
            body_min_bytes: config.body_min_bytes as u64,
        }
    }
}

/// Why a connection was closed by its deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A request's headers did not arrive within `header_timeout`.
    Header,
    /// No new request within `idle_timeout`.
    Idle,
    /// The client did not read the response for `idle_timeout`.
    Write,
}

const NEVER: u64 = u64::MAX;
/// `idle_since` while a request is being served.
const BUSY: u64 = u64::MAX;

/// What a connection is doing, in milliseconds since it opened.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    /// When the connection last became idle (its last response ended); `BUSY` while a request
    /// is served. 0 at the start.
    idle_since: AtomicU64,
    /// When the first byte of the next request arrived while idle; `NEVER` before that. 0 at
    /// the start: the first request's headers are due `header` after the connection opened.
    head_since: AtomicU64,
    /// Since when a write has waited for the socket; `NEVER` when none waits.
    write_blocked: AtomicU64,
    changed: Notify,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(0),
            write_blocked: AtomicU64::new(NEVER),
            changed: Notify::new(),
        })
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// A request's headers arrived: no header or idle deadline until its response ends.
    pub fn request_started(&self) {
        self.idle_since.store(BUSY, Relaxed);
        self.head_since.store(NEVER, Relaxed);
    }

    /// The response was handed over whole: the wait for the next request begins.
    pub fn response_ended(&self) {
        self.response_ended_at(self.now());
    }

    fn response_ended_at(&self, now: u64) {
        self.head_since.store(NEVER, Relaxed);
        self.idle_since.store(now, Relaxed);
        self.changed.notify_one();
    }

    fn read_some(&self) {
        self.read_some_at(self.now());
    }

    fn read_some_at(&self, now: u64) {
        if self.idle_since.load(Relaxed) != BUSY && self.head_since.load(Relaxed) == NEVER {
            self.head_since.store(now, Relaxed);
            self.changed.notify_one();
        }
    }

    fn write_pending(&self) {
        self.write_pending_at(self.now());
    }

    fn write_pending_at(&self, now: u64) {
        if self.write_blocked.load(Relaxed) == NEVER {
            self.write_blocked.store(now, Relaxed);
            self.changed.notify_one();
        }
    }

    fn write_done(&self) {
        self.write_blocked.store(NEVER, Relaxed);
    }

    /// The earliest deadline now in force, in milliseconds since the start, and what it is.
    fn deadline(&self, t: &Timeouts) -> Option<(u64, Expired)> {
        let ms = |d: Duration| d.as_millis() as u64;
        let write = self.write_blocked.load(Relaxed);
        let write = (write != NEVER).then(|| (write.saturating_add(ms(t.idle)), Expired::Write));
        let idle = self.idle_since.load(Relaxed);
        let waiting = (idle != BUSY).then(|| match self.head_since.load(Relaxed) {
            NEVER => (idle.saturating_add(ms(t.idle)), Expired::Idle),
            head => (head.saturating_add(ms(t.header)), Expired::Header),
        });
        [write, waiting]
            .into_iter()
            .flatten()
            .min_by_key(|(at, _)| *at)
    }

    /// Completes when a deadline passes, with which one.
    pub async fn expired(&self, t: &Timeouts) -> Expired {
        loop {
            // Created before the state is read, so a change after the read wakes it.
            let changed = self.changed.notified();
            match self.deadline(t) {
                Some((at, why)) if at <= self.now() => return why,
                Some((at, _)) => {
                    let at = self.start + Duration::from_millis(at);
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// A connection's socket, telling its [`Activity`] when bytes arrive and when writes block.
pub struct Tracked<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Tracked<I> {
    pub fn new(io: I, activity: Arc<Activity>) -> Tracked<I> {
        Tracked { io, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = ready!(Pin::new(&mut self.io).poll_read(cx, buf));
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        Poll::Ready(read)
    }
}

impl<I: AsyncWrite + Unpin> Tracked<I> {
    fn track<T>(&self, written: Poll<T>) -> Poll<T> {
        match written {
            Poll::Pending => self.activity.write_pending(),
            Poll::Ready(_) => self.activity.write_done(),
        }
        written
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.track(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.track(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        self.track(flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A request body that arrived slower than `body_min_bytes` per `body_timeout`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the request body arrived slower than {min_bytes} bytes in {}", humantime::format_duration(*.period))]
pub struct BodyTooSlow {
    pub min_bytes: u64,
    pub period: Duration,
}

/// A request body held to a minimum rate: `min_bytes` every `period`. Each byte that arrives
/// buys `period / min_bytes` more time, never more than `period` ahead of now; the body fails
/// with [`BodyTooSlow`], counted, when its time runs out. A body that stops for `period` is
/// always cut off; one that moves at the rate or faster, however long, is read to its end.
pub struct MinRate<B> {
    inner: B,
    deadline: Instant,
    /// Started at the first wait for data.
    timer: Option<Pin<Box<Sleep>>>,
    too_slow: BodyTooSlow,
    failed: bool,
    metrics: Option<IngestMetrics>,
}

impl<B> MinRate<B> {
    /// `metrics` counts the bodies cut off (`driftd_ingest_dropped_total{reason="body_timeout"}`).
    pub fn new(inner: B, t: &Timeouts, metrics: Option<IngestMetrics>) -> MinRate<B> {
        MinRate {
            inner,
            deadline: Instant::now() + t.body,
            timer: None,
            too_slow: BodyTooSlow {
                min_bytes: t.body_min_bytes.max(1),
                period: t.body,
            },
            failed: false,
            metrics,
        }
    }

    /// The time `bytes` buy: their share of `min_bytes` in `period`.
    fn credit(&self, bytes: u64) -> Duration {
        let nanos = self.too_slow.period.as_nanos() * u128::from(bytes)
            / u128::from(self.too_slow.min_bytes);
        Duration::from_nanos(nanos.min(u128::from(u64::MAX)) as u64)
    }

    fn arrived(&mut self, bytes: u64, now: Instant) {
        let cap = now + self.too_slow.period;
        self.deadline = (self.deadline + self.credit(bytes).min(self.too_slow.period)).min(cap);
        if let Some(timer) = &mut self.timer {
            timer.as_mut().reset(self.deadline);
        }
    }
}

impl<B> Body for MinRate<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Some(Err(this.too_slow.clone().into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.arrived(
                    frame.data_ref().map_or(0, |d| d.len() as u64),
                    Instant::now(),
                );
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(other) => return Poll::Ready(other.map(|r| r.map_err(Into::into))),
            Poll::Pending => {}
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        this.failed = true;
        if let Some(metrics) = &this.metrics {
            metrics.dropped(DropReason::body_timeout, 1);
        }
        tracing::debug!(error = %this.too_slow, "Request body cut off");
        Poll::Ready(Some(Err(this.too_slow.clone().into())))
    }

    fn is_end_stream(&self) -> bool {
        !self.failed && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that tells the connection's [`Activity`] when it was handed over whole
/// (dropped), so the wait for the next request begins.
pub struct Served<B> {
    inner: B,
    activity: Arc<Activity>,
}

impl<B> Served<B> {
    pub fn new(inner: B, activity: Arc<Activity>) -> Served<B> {
        Served { inner, activity }
    }
}

impl<B> Drop for Served<B> {
    fn drop(&mut self) {
        self.activity.response_ended();
    }
}

impl<B: Body + Unpin> Body for Served<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> Timeouts {
        Timeouts {
            header: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            body: Duration::from_secs(10),
            body_min_bytes: 1024,
        }
    }

    #[test]
    fn deadlines_follow_what_the_connection_does() {
        let t = timeouts();
        let a = Activity::new();
        // A new connection owes its first request's headers within `header`.
        assert_eq!(a.deadline(&t), Some((10_000, Expired::Header)));
        a.request_started();
        assert_eq!(a.deadline(&t), None);
        a.read_some_at(1_000);
        assert_eq!(a.deadline(&t), None, "body bytes start no header deadline");
        a.response_ended_at(3_000);
        assert_eq!(a.deadline(&t), Some((63_000, Expired::Idle)));
        a.read_some_at(23_000);
        assert_eq!(a.deadline(&t), Some((33_000, Expired::Header)));
        a.read_some_at(24_000);
        assert_eq!(
            a.deadline(&t),
            Some((33_000, Expired::Header)),
            "from the first byte"
        );
        a.request_started();
        a.write_pending_at(23_000);
        a.write_pending_at(30_000);
        assert_eq!(a.deadline(&t), Some((83_000, Expired::Write)));
        a.write_done();
        assert_eq!(a.deadline(&t), None);
        a.response_ended_at(40_000);
        a.write_pending_at(41_000);
        assert_eq!(a.deadline(&t), Some((100_000, Expired::Idle)));
    }

    #[tokio::test]
    async fn a_passed_deadline_is_reported_at_once() {
        let t = Timeouts {
            header: Duration::from_millis(1),
            ..timeouts()
        };
        let a = Activity::new();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(a.expired(&t).await, Expired::Header);
    }

    #[test]
    fn a_body_buys_time_with_its_bytes_at_most_one_period_ahead() {
        let t = timeouts();
        let mut body = MinRate::new(http_body_util::Empty::<Bytes>::new(), &t, None);
        let start = body.deadline - Duration::from_secs(10);
        let at = |s: u64| start + Duration::from_secs(s);
        // 512 bytes buy 5 s, but never more than 10 s ahead of now.
        body.arrived(512, at(0));
        assert_eq!(body.deadline, at(10));
        body.arrived(512, at(4));
        assert_eq!(body.deadline, at(14));
        // A burst buys no more than one period: a megabyte, then a stall, is cut off in 10 s.
        body.arrived(1 << 20, at(4));
        assert_eq!(body.deadline, at(14));
        body.arrived(256, at(5));
        assert_eq!(body.deadline, at(15));
        // Below the rate, the deadline comes closer: 100 bytes buy under 1 s.
        body.arrived(100, at(6));
        assert_eq!(body.deadline, at(15) + Duration::from_nanos(976_562_500));
        assert_eq!(body.credit(1024), Duration::from_secs(10));
        assert_eq!(body.credit(1), Duration::from_nanos(9_765_625));
    }

    #[test]
    fn a_too_slow_body_says_by_how_much() {
        let e = BodyTooSlow {
            min_bytes: 1024,
            period: Duration::from_secs(10),
        };
        assert_eq!(
            e.to_string(),
            "the request body arrived slower than 1024 bytes in 10s"
        );
    }
}
