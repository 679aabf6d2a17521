//! Probes and the scrape: `GET /healthz` (alive), `GET /readyz` (database reachable,
//! migrations applied, windows being written) and `GET /metrics` (OpenMetrics text).
//!
//! `/readyz` answers from the database health check's latest finding (one a second, see
//! `serve::database`) without waiting on the database itself: an outage is answered at once,
//! `503` with the reason in a JSON body. Both answers tell who holds the leader lease
//! (`"leader": {"holder", "term", "this_replica"}`, see `serve::leader`).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tracing::warn;

use super::AppState;
use crate::store::health::{Down, Standing};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(get_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(get_ready))
}

async fn get_metrics(State(state): State<AppState>) -> Response {
    // The queue's gauges as of this scrape.
    state.admission.count_depth();
    state.admission.count_bytes();
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        warn!(error = %e, "Cannot encode metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn get_ready(State(state): State<AppState>) -> Response {
    let backend = match state.store.backend() {
        crate::store::Backend::Sqlite => "sqlite",
        crate::store::Backend::Postgres => "postgres",
    };
    let standing = state.leadership.standing();
    let leader = json!({
        "holder": standing.holder, "term": standing.term,
        "this_replica": state.leadership.leading(),
    });
    let not_ready = |state: &str, what: &str, down: Down| {
        let body = json!({
            "leader": leader,
            "error": format!("database {what}: {}", down.outage),
            "database": {
                "backend": backend, "state": state, "reason": down.outage.to_string(),
                "since_ms": down.since_ms,
            },
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    };
    match state.store.health().standing() {
        Standing::Ready => {
            let body =
                json!({"status": "ready", "database": {"backend": backend}, "leader": leader});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Standing::Unreachable(down) => not_ready("unreachable", "unreachable", down),
        Standing::Unwritable(down) => not_ready("unwritable", "cannot be written", down),
    }
}
