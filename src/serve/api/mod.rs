//! The HTTP surface of `driftd serve`, one module per resource, each with its own `router()`,
//! merged here. Handlers parse the request, call the use case (admission, the offline runs,
//! the counters, the store) and shape the answer; errors are one [`ApiError`].

mod alerts;
pub mod auth;
mod body;
mod counters;
mod datasets;
mod drift;
pub mod error;
mod health;
mod index;
mod inference_logs;
mod pages;
mod profiles;
pub(crate) mod records;
mod reference;
mod runs;
mod skew;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use prometheus_client::registry::Registry;
use serde::de::DeserializeOwned;
use tokio::sync::OwnedSemaphorePermit;

pub use error::ApiError;

use super::admission::Admission;
use super::listen::BodyTooSlow;
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
    /// Whether this process holds the leader lease (`serve::leader`).
    pub leadership: crate::serve::leader::Leadership,
}

/// The router, for the server and for in-process tests.
pub fn router(state: AppState) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(records::router())
        .merge(inference_logs::router())
        .merge(profiles::router())
        .merge(reference::router())
        .merge(drift::router())
        .merge(skew::router())
        .merge(datasets::router())
        .merge(index::router())
        .merge(pages::router())
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

/// `axum::extract::Path` whose refusal is an [`ApiError`]: `Path<DatasetName>` refuses a bad
/// name with the 400 and the wording of `DatasetName` itself, in the API's JSON error body.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => match e.into_kind() {
                ErrorKind::Message(message) => Err(ApiError::BadRequest(message)),
                kind => Err(ApiError::BadRequest(kind.to_string())),
            },
            Err(other) => Err(ApiError::Internal(other.body_text())),
        }
    }
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

/// An upload's body, decoded (`Content-Encoding: gzip` or `zstd`, else as sent), to at most
/// `limit` bytes: every upload route reads its body here or in [`read_body_holding`], so every
/// one takes compressed bodies and bounds what they decode to. `415` for another coding, `413`
/// past the limit (decoded or on the wire), `400` for a corrupt or truncated compressed body.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    body::read(body, body::Encoding::of(headers)?, limit, |_| Ok(())).await
}

/// Reads a body as [`read_body`] does, holding the queue's byte budget for what it holds as it
/// arrives ([`Admission::hold_bytes`]): the decoded bytes of a compressed body; returns the
/// body and what it holds.
async fn read_body_holding(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    admission: &Admission,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), ApiError> {
    let encoding = body::Encoding::of(headers)?;
    let mut held = None;
    let bytes = body::read(body, encoding, limit, |n| {
        admission.hold_bytes(&mut held, n).map_err(ApiError::from)
    })
    .await?;
    Ok((bytes, held))
}

/// Why a body could not be read: over the limit (413), slower than the minimum rate (408), or
/// cut short by the client (400).
fn body_error(error: &axum::Error, limit: usize) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(slow) = e.downcast_ref::<BodyTooSlow>() {
            return ApiError::BodyTimeout(slow.to_string());
        }
        if e.is::<http_body_util::LengthLimitError>() {
            return ApiError::TooLarge(limit);
        }
        cause = e.source();
    }
    ApiError::BadRequest(format!("the request body could not be read: {error}"))
}
