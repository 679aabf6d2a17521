//! Probes and the scrape: `GET /healthz` (alive), `GET /readyz` (database reachable,
//! migrations applied) and `GET /metrics` (OpenMetrics text).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tracing::warn;

use super::AppState;

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
    match state.store.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            warn!(error = %e, "Not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable or migrations not applied\n",
            )
                .into_response()
        }
    }
}
