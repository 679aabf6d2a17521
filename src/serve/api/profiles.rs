//! `POST /v1/datasets/{dataset}/profiles`: a profile file. Offline, a part of a run — stored
//! before the `201`, then the run is judged; online, merged into the current window (`202`).

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::Access;
use super::{ApiError, AppState, Path, identifier, read_body, stage_of};
use crate::names::DatasetName;
use crate::profile::{DatasetProfile, Stage, file};
use crate::serve::aggregate::Batch;
use crate::serve::buffer::{Carried, Head};
use crate::serve::counters::parse_run_time;
use crate::serve::metrics::DropReason;
use crate::serve::offline::Part;
use crate::telemetry::spans;

pub(super) fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/datasets/{dataset}/profiles",
        post(post_profile).layer(from_fn(spans::ingest_profile)),
    )
}

#[derive(Deserialize)]
struct ProfileQuery {
    stage: Option<String>,
    run_id: Option<String>,
    part: Option<String>,
    /// The run's logical time: RFC 3339 (UTC) or seconds since the epoch.
    run_time: Option<String>,
}

async fn post_profile(
    State(state): State<AppState>,
    Path(dataset): Path<DatasetName>,
    Query(query): Query<ProfileQuery>,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let stage = stage_of(query.stage.as_deref(), Stage::Offline)?;
    access.require_stage(stage)?;
    let bytes = read_body(&headers, body, state.config.max_body_bytes).await?;
    let mut profile = file::decode(bytes.as_ref())
        .map_err(|e| ApiError::BadRequest(format!("not a readable profile file: {e}")))?;
    // The URL names the dataset and the query the stage, whatever the file says.
    profile.dataset = dataset.to_string();
    profile.stage = stage;
    let dropped = state.admission.admit(&dataset, &mut profile)?;
    spans::record_profile(&profile.labels, profile.rows, dropped.values);
    if dropped.values > 0 {
        let ingest = &state.metrics.ingest;
        ingest.dropped(DropReason::feature_limit, dropped.values);
    }
    match stage {
        Stage::Offline => post_run_part(&state, dataset, query, profile).await,
        Stage::Online => {
            let key = super::records::idempotency_key(&headers)?;
            post_online(&state, dataset, profile, bytes.len(), key).await
        }
    }
}

/// The part of an offline run named by the query.
fn part_of(query: ProfileQuery) -> Result<Part, ApiError> {
    let run_id = query
        .run_id
        .ok_or_else(|| ApiError::BadRequest("an offline profile needs a run_id".into()))?;
    identifier("run_id", &run_id)?;
    let part = query.part.unwrap_or_default();
    if !part.is_empty() {
        identifier("part", &part)?;
    }
    let run_ms = query
        .run_time
        .as_deref()
        .map(parse_run_time)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    Ok(Part {
        run_id,
        part,
        run_ms,
    })
}

async fn post_run_part(
    state: &AppState,
    dataset: DatasetName,
    query: ProfileQuery,
    profile: DatasetProfile,
) -> Result<Response, ApiError> {
    let part = part_of(query)?;
    let stored = state
        .offline
        .store_part(&state.store, &state.metrics, &dataset, &part, &profile)
        .await?;
    let answer = json!({
        "dataset": dataset, "stage": "offline", "run_id": part.run_id, "part": part.part,
        "rows": profile.rows, "features": profile.features.len(), "run_rows": stored.run_rows,
        "judged": stored.judged,
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn post_online(
    state: &AppState,
    dataset: DatasetName,
    profile: DatasetProfile,
    body_bytes: usize,
    key: Option<String>,
) -> Result<Response, ApiError> {
    let (rows, features) = (profile.rows, profile.features.len());
    if let Some(buffer) = state.admission.buffer() {
        let head = Head {
            dataset: &dataset,
            stage: Stage::Online,
            run_id: None,
            carried: Carried::Profile,
        };
        let id = buffer.message_id(&dataset, key.as_deref());
        buffer.publish(&head, &profile, &id).await.map_err(|e| {
            state.admission.count_buffer_refusal(&e);
            ApiError::from(e)
        })?;
    } else {
        let mut budget = None;
        state.admission.hold_bytes(&mut budget, body_bytes)?;
        state.admission.enqueue(Batch::Profile {
            dataset: dataset.as_str().into(),
            profile: Box::new(profile),
            budget,
            delivered: None,
        })?;
    }
    state
        .metrics
        .ingest
        .records_accepted(&dataset, Stage::Online, rows);
    let answer = json!({"dataset": dataset, "stage": "online", "rows": rows, "features": features});
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}
