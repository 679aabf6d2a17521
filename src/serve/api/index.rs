//! `GET /`: for a browser (its `Accept` prefers HTML) the daemon's page of datasets
//! (`pages`); for anybody else a small JSON index of the API — what this daemon is and where
//! to look — instead of an empty 404.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, AppState, pages};

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(get_index))
}

async fn get_index(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if pages::prefers_html(&headers) {
        return pages::index_page(&state).await;
    }
    let mut response = Json(json!({
        "name": "driftd",
        "version": env!("CARGO_PKG_VERSION"),
        "links": {
            "page": "/",
            "datasets": "/v1/datasets",
            "alerts": "/v1/alerts",
            "metrics": "/metrics",
            "health": "/healthz",
            "ready": "/readyz",
        },
    }))
    .into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}
