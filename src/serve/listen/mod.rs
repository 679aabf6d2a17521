//! The listeners of `driftd serve`. Each runs an accept loop that caps its open connections
//! (`max_connections` for the API, [`limits::PROBE_CONNECTIONS`] for the probes): one over the
//! cap is closed at once and counted, so a flood of connections can never exhaust the process's
//! file descriptors, and the probe listener keeps answering while the API listener is full.
//! Connections speak HTTP/1.1, over TLS when `tls_cert` is set ([`tls`]), under deadlines a
//! stalled client cannot outlast ([`watch`]). On shutdown a listener stops accepting, lets the
//! requests in flight finish, and closes what is still open after `shutdown_grace`.

pub mod limits;
pub mod tls;
pub mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use self::tls::Tls;
use self::watch::{Activity, Expired, MinRate, Served, Timeouts, Tracked};
use super::api::{self, AppState};
use super::metrics::{DropReason, ListenerLabel, Metrics};
use crate::config::TlsListeners;

pub use self::watch::BodyTooSlow;

/// How often the "connection limit reached" warning is logged at most.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Serves the API on `api` until `shutdown` completes, and the probes on `probes` until `stop`
/// is cancelled (a task of `tasks`), reloading the certificate until then. Returns once the
/// API's connections are closed, its router (and so the queue's sender) dropped.
pub async fn serve(
    api: TcpListener,
    probes: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()>,
    (stop, tasks): (&CancellationToken, &TaskTracker),
) -> anyhow::Result<()> {
    let config = state.config.clone();
    let metrics = state.metrics.clone();
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => match Tls::load(cert, key) {
            Ok(tls) => {
                let (cert, listeners) = (tls.cert_path().display(), config.tls_listeners);
                info!(%cert, %listeners, "Serving HTTPS");
                tasks.spawn(tls.clone().watch(stop.clone()));
                Some(tls)
            }
            Err(e) => {
                // Nothing was served: the background tasks stop with the error.
                stop.cancel();
                return Err(e).context("cannot load the TLS certificate");
            }
        },
        _ => None,
    };
    let cap = limits::api_connection_cap(config.max_connections, probes.is_some());
    let listener = |kind, router, max, tls| {
        Arc::new(Listener {
            kind,
            router,
            max,
            tls,
            timeouts: Timeouts::of(&config),
            grace: config.shutdown_grace,
            metrics: metrics.clone(),
        })
    };
    if let Some(probes) = probes {
        let tls = tls
            .clone()
            .filter(|_| config.tls_listeners != TlsListeners::Api);
        let router = api::probe_router(state.clone());
        let served = listener(
            ListenerLabel::probes,
            router,
            limits::PROBE_CONNECTIONS,
            tls,
        );
        tasks.spawn(served.run(probes, stop.clone().cancelled_owned()));
    }
    let router = api::router(state);
    let tls = tls.filter(|_| config.tls_listeners != TlsListeners::Metrics);
    listener(ListenerLabel::api, router, cap, tls)
        .run(api, shutdown)
        .await;
    Ok(())
}

/// One listener: what it serves and how.
struct Listener {
    kind: ListenerLabel,
    router: Router,
    /// Open connections at most.
    max: usize,
    tls: Option<Tls>,
    timeouts: Timeouts,
    grace: Duration,
    metrics: Metrics,
}

/// The connections of a listener, for its shutdown: `closing` asks each to finish its request
/// and close; `abandon` drops them.
#[derive(Clone, Default)]
struct Closing {
    closing: CancellationToken,
    abandon: CancellationToken,
}

impl Listener {
    async fn run(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.metrics.http.listening(self.kind);
        let cap = Arc::new(Semaphore::new(self.max));
        let connections = TaskTracker::new();
        let closing = Closing::default();
        let mut refusals = Refusals::default();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    refusals.accept_failed(self.kind, &error).await;
                    continue;
                }
            };
            match cap.clone().try_acquire_owned() {
                Ok(permit) => {
                    connections.spawn(self.clone().connection(stream, permit, closing.clone()));
                }
                Err(_) => self.refuse(stream, &mut refusals),
            }
        }
        drop(listener);
        closing.closing.cancel();
        connections.close();
        if tokio::time::timeout(self.grace, connections.wait())
            .await
            .is_err()
        {
            warn!(listener = ?self.kind, connections = connections.len(), grace = ?self.grace, "Shutdown grace period over; closing connections still open");
            closing.abandon.cancel();
            connections.wait().await;
        }
    }

    /// Closes a connection over the cap at once (over plain HTTP with a 503 first, if the
    /// socket takes it without waiting), counted.
    fn refuse(&self, stream: TcpStream, refusals: &mut Refusals) {
        self.metrics.http.refused(self.kind);
        if self.kind == ListenerLabel::api {
            self.metrics.ingest.dropped(DropReason::connection_limit, 1);
        }
        if self.tls.is_none() {
            let _ = stream.try_write(busy_response().as_bytes());
        }
        drop(stream);
        refusals.refused(self.kind, self.max);
    }

    async fn connection(
        self: Arc<Self>,
        stream: TcpStream,
        permit: OwnedSemaphorePermit,
        closing: Closing,
    ) {
        let _open = Open::new(&self.metrics, self.kind, permit);
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = Tracked::new(stream, activity.clone());
        let Some(tls) = &self.tls else {
            return self.http(io, activity, closing).await;
        };
        let handshake = tokio::select! {
            handshake = tokio::time::timeout(self.timeouts.header, tls.acceptor().accept(io)) => handshake,
            () = closing.closing.cancelled() => return,
        };
        match handshake {
            Ok(Ok(io)) => self.http(io, activity, closing).await,
            Ok(Err(error)) => debug!(%error, "TLS handshake failed"),
            Err(_) => {
                self.count(DropReason::header_timeout);
                debug!("TLS handshake timed out");
            }
        }
    }

    /// Serves HTTP/1.1 on `io` until the client closes, a deadline passes, or shutdown.
    async fn http<I>(&self, io: I, activity: Arc<Activity>, closing: Closing)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = TowerToHyperService::new(self.router.clone());
        let timeouts = self.timeouts.clone();
        let ingest = (self.kind == ListenerLabel::api).then(|| self.metrics.ingest.clone());
        let on_request = activity.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            on_request.request_started();
            let request = request.map(|body| MinRate::new(body, &timeouts, ingest.clone()));
            let served = hyper::service::Service::call(&router, request);
            let activity = on_request.clone();
            async move {
                let response = served.await?;
                Ok::<_, Infallible>(response.map(|body| Served::new(body, activity)))
            }
        });
        // driftd's own deadlines (`watch`) replace hyper's header timeout, which would also
        // close kept-alive connections after `header_timeout`.
        let connection = http1::Builder::new()
            .header_read_timeout(None)
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(connection);
        let mut closing_asked = false;
        loop {
            tokio::select! {
                served = connection.as_mut() => {
                    if let Err(error) = served {
                        debug!(%error, "Connection ended with an error");
                    }
                    return;
                }
                why = activity.expired(&self.timeouts) => {
                    if why == Expired::Header {
                        self.count(DropReason::header_timeout);
                    }
                    debug!(?why, "Connection closed by its deadline");
                    return;
                }
                () = closing.closing.cancelled(), if !closing_asked => {
                    closing_asked = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = closing.abandon.cancelled() => return,
            }
        }
    }

    /// Counts a refusal in `driftd_ingest_dropped_total` (the API listener's only).
    fn count(&self, reason: DropReason) {
        if self.kind == ListenerLabel::api {
            self.metrics.ingest.dropped(reason, 1);
        }
    }
}

/// What a connection over the cap is told before it is closed.
fn busy_response() -> String {
    let body = r#"{"error":"driftd has too many open connections; retry after 1 s"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An open connection: counted in the gauge, holding its place under the cap.
struct Open {
    metrics: Metrics,
    kind: ListenerLabel,
    _permit: OwnedSemaphorePermit,
}

impl Open {
    fn new(metrics: &Metrics, kind: ListenerLabel, permit: OwnedSemaphorePermit) -> Open {
        metrics.http.opened(kind);
        Open {
            metrics: metrics.clone(),
            kind,
            _permit: permit,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.metrics.http.closed(self.kind);
    }
}

/// Warnings about refused connections and failed accepts, at most one per interval each.
#[derive(Default)]
struct Refusals {
    refused_logged: Option<Instant>,
    refused: u64,
    accept_logged: Option<Instant>,
}

impl Refusals {
    fn refused(&mut self, kind: ListenerLabel, max: usize) {
        self.refused += 1;
        if due(&mut self.refused_logged) {
            warn!(listener = ?kind, max_connections = max, refused = self.refused, "Connection limit reached; refusing connections");
            self.refused = 0;
        }
    }

    /// A failed accept: a connection that went away is nothing; anything else (out of file
    /// descriptors) is logged and waited on briefly rather than retried in a tight loop.
    async fn accept_failed(&mut self, kind: ListenerLabel, error: &std::io::Error) {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
        if matches!(
            error.kind(),
            ConnectionAborted | ConnectionRefused | ConnectionReset
        ) {
            return;
        }
        if due(&mut self.accept_logged) {
            warn!(listener = ?kind, %error, "Cannot accept connections");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn due(logged: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if logged.is_some_and(|at| now.duration_since(at) < REFUSAL_LOG_INTERVAL) {
        return false;
    }
    *logged = Some(now);
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_is_one_whole_response() {
        let text = super::busy_response();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            json["error"]
                .as_str()
                .unwrap()
                .contains("too many open connections")
        );
    }
}
