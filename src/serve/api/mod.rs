//! The HTTP surface of `driftd serve`, one module per resource, each with its own `router()`,
//! merged here. Handlers parse the request, call the use case (admission, the offline runs,
//! the counters, the store) and shape the answer; errors are one [`ApiError`].

mod alerts;
pub mod auth;
mod counters;
mod drift;
pub mod error;
mod health;
mod profiles;
pub(crate) mod records;
mod reference;
mod runs;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use prometheus_client::registry::Registry;

pub use error::ApiError;

use super::admission::Admission;
use super::metrics::Metrics;
use super::offline::Offline;
use crate::config::ServeConfig;
use crate::profile::Stage;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    pub registry: Arc<Registry>,
    /// The bounded profiling queue and the dataset and feature limits.
    pub admission: Arc<Admission>,
    pub config: Arc<ServeConfig>,
    /// Offline runs: profile parts and counters stored, judged, one report at a time.
    pub offline: Arc<Offline>,
    /// The tokens accepted; empty when authentication is off.
    pub tokens: Arc<crate::auth::Tokens>,
}

/// The router, for the server and for in-process tests.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(records::router())
        .merge(profiles::router())
        .merge(reference::router())
        .merge(drift::router())
        .merge(counters::router())
        .merge(runs::router())
        .merge(alerts::router())
        .merge(health::router())
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::gate,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// The probe listener's router: `/metrics`, `/healthz` and `/readyz`, never behind a token.
pub fn probe_router(state: AppState) -> Router {
    health::router().with_state(state)
}

/// A dataset name from the path, checked.
fn dataset_name(name: &str) -> Result<(), ApiError> {
    name.parse::<crate::names::DatasetName>()
        .map(drop)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn stage_of(stage: Option<&str>, default: Stage) -> Result<Stage, ApiError> {
    match stage {
        None => Ok(default),
        Some(s) => s.parse().map_err(ApiError::BadRequest),
    }
}

/// Run ids and part names: printable, short.
fn identifier(what: &str, value: &str) -> Result<(), ApiError> {
    super::offline::check_identifier(what, value).map_err(ApiError::BadRequest)
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(limit))
}
