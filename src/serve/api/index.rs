//! `GET /`: a small JSON index of the API — what this daemon is and where to look — instead of
//! an empty 404.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(get_index))
}

async fn get_index() -> Json<Value> {
    Json(json!({
        "name": "driftd",
        "version": env!("CARGO_PKG_VERSION"),
        "links": {
            "datasets": "/v1/datasets",
            "alerts": "/v1/alerts",
            "metrics": "/metrics",
            "health": "/healthz",
            "ready": "/readyz",
        },
    }))
}
