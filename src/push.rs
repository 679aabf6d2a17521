//! `driftd push`: what a pipeline step runs — upload a profile (made locally) and the run's
//! counters to a driftd server, retrying transient failures (connection errors, timeouts,
//! 429 and 5xx, honouring `Retry-After`). The server's refusals (4xx) are final and carry its
//! reason.

use std::time::Duration;

use serde_json::{Value, json};

use crate::names::DatasetName;
use crate::secret::Secret;

/// Where and what to upload.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The server's base URL, e.g. `http://driftd:8471`.
    pub url: String,
    /// The API token, sent as `Authorization: Bearer …`.
    pub token: Option<Secret>,
    /// A PEM bundle of certificate authorities to trust besides the public web roots.
    pub ca_cert: Option<std::path::PathBuf>,
    pub dataset: DatasetName,
    /// `offline` or `online`.
    pub stage: &'static str,
    pub run_id: Option<String>,
    /// RFC 3339 (UTC) or seconds since the epoch, passed through.
    pub run_time: Option<String>,
    pub labels: Vec<(String, String)>,
    pub counters: Vec<(String, f64)>,
    /// Attempts per request, the first included.
    pub attempts: u32,
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// driftd answered, and refused: retrying would not help.
    #[error("driftd refused the {what} ({status}): {reason}")]
    Refused {
        what: &'static str,
        status: u16,
        reason: String,
    },
    #[error("driftd is unreachable or failing after {attempts} attempts ({what}): {last}")]
    GaveUp {
        what: &'static str,
        attempts: u32,
        last: String,
    },
    #[error("invalid URL {0:?}: expected http://host:port or https://…")]
    Url(String),
    #[error("the API token holds characters an HTTP header cannot carry")]
    Token,
    #[error("--ca-cert {path}: {reason}")]
    CaCert { path: String, reason: String },
}

/// The certificates of a PEM bundle, refused with the file's name when it holds none.
fn ca_certificates(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, PushError> {
    let refuse = |reason: String| PushError::CaCert {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|_| refuse("not a PEM certificate bundle".into()))?;
    if certificates.is_empty() {
        return Err(refuse("holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// Uploads `profile` (a profile file's bytes), then the counters; returns a summary for the
/// pipeline's logs.
pub async fn push(upload: &Upload, profile: Vec<u8>) -> Result<Value, PushError> {
    let base = upload.url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(PushError::Url(base.to_owned()));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = &upload.token {
        let mut value =
            reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| PushError::Token)?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let mut client = reqwest::Client::builder();
    if let Some(path) = &upload.ca_cert {
        for certificate in ca_certificates(path)? {
            client = client.add_root_certificate(certificate);
        }
    }
    let client = client
        .default_headers(headers)
        .timeout(upload.timeout)
        .user_agent(concat!("driftd-push/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| PushError::Url(e.to_string()))?;
    let mut query = vec![("stage", upload.stage.to_owned())];
    if let Some(run_id) = &upload.run_id {
        query.push(("run_id", run_id.clone()));
    }
    if let Some(t) = &upload.run_time {
        query.push(("run_time", t.clone()));
    }
    let profiles = format!("{base}/v1/datasets/{}/profiles", upload.dataset);
    let uploaded = send(upload, "profile", || {
        client
            .post(&profiles)
            .query(&query)
            .header("content-type", "application/octet-stream")
            .body(profile.clone())
    })
    .await?;
    let mut summary = json!({
        "dataset": upload.dataset,
        "stage": upload.stage,
        "run_id": upload.run_id,
        "rows": uploaded.get("rows").cloned().unwrap_or(Value::Null),
        "features": uploaded.get("features").cloned().unwrap_or(Value::Null),
    });
    // An offline run always reports its counters (perhaps none) and labels; online, only
    // counters are worth a request.
    if upload.stage == "offline" || !upload.counters.is_empty() {
        let mut body = json!({
            "stage": upload.stage,
            "counters": upload.counters.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        });
        if upload.stage == "offline" {
            body["run_id"] = json!(upload.run_id);
            body["labels"] = json!(
                upload
                    .labels
                    .iter()
                    .cloned()
                    .collect::<std::collections::BTreeMap<_, _>>()
            );
            if let Some(t) = &upload.run_time {
                body["run_time"] = match t.parse::<f64>() {
                    Ok(seconds) => json!(seconds),
                    Err(_) => json!(t),
                };
            }
        }
        let counters = format!("{base}/v1/datasets/{}/counters", upload.dataset);
        let answer = send(upload, "counters", || client.post(&counters).json(&body)).await?;
        summary["counters"] = json!(upload.counters.len());
        let judged = answer
            .get("judged")
            .or_else(|| uploaded.get("judged"))
            .cloned()
            .unwrap_or(Value::Null);
        let anomalous: Vec<Value> = judged
            .as_array()
            .into_iter()
            .flatten()
            .filter(|j| j["verdict"] == "anomalous")
            .map(|j| j["name"].clone())
            .collect();
        summary["anomalous"] = json!(anomalous);
    }
    Ok(summary)
}

/// Sends a request built by `request`, retrying what may pass later.
async fn send(
    upload: &Upload,
    what: &'static str,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<Value, PushError> {
    let attempts = upload.attempts.max(1);
    let mut last = String::new();
    for attempt in 1..=attempts {
        let mut wait = backoff(attempt);
        match request().send().await {
            Ok(r) if r.status().is_success() => {
                return Ok(r.json().await.unwrap_or(Value::Null));
            }
            Ok(r) => {
                let status = r.status().as_u16();
                if let Some(seconds) = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                {
                    wait = Duration::from_secs(seconds.min(60));
                }
                let reason = r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "no reason given".to_owned());
                if status != 429 && status < 500 {
                    return Err(PushError::Refused {
                        what,
                        status,
                        reason,
                    });
                }
                last = format!("HTTP {status}: {reason}");
            }
            // reqwest's errors never carry more than the URL, which holds no secret here.
            Err(e) => last = without_url(&e),
        }
        if attempt < attempts {
            tracing::warn!(what, attempt, error = %last, "Upload failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
    Err(PushError::GaveUp {
        what,
        attempts,
        last,
    })
}

/// 0.5 s, 1 s, 2 s … capped at 10 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << (attempt - 1).min(5)).min(10_000))
}

fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_ten_seconds() {
        let waits: Vec<u64> = (1..=7).map(|a| backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    }
}
