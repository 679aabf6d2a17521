//! The generic webhook: a versioned JSON document describing one notification, and the
//! HMAC-SHA256 signature that lets a receiver check it came from driftd and was not replayed.
//!
//! # Body (version 1)
//!
//! ```json
//! {
//!   "version": 1,
//!   "status": "firing",
//!   "fingerprint": "3f1c…",
//!   "rule": "input-drift",
//!   "dataset": "search_ranking_inputs",
//!   "severity": "warning",
//!   "since": "2023-11-14T22:13:20.000Z",
//!   "resolved_at": null,
//!   "features": [
//!     {
//!       "name": "latency_ms",
//!       "kind": "numeric",
//!       "method": "psi",
//!       "score": 0.93,
//!       "threshold": 0.2,
//!       "reason": "PSI 0.93 ≥ 0.2",
//!       "changes": ["p50 19.6 → 210.0"]
//!     }
//!   ],
//!   "findings": ["country: 12% nulls, allowed ≤ 1%"],
//!   "labels": {"team": "search"},
//!   "annotations": {"summary": "…"},
//!   "links": [{"label": "Grafana", "url": "https://grafana.example/d/…"}]
//! }
//! ```
//!
//! - `version` — the schema version, an integer. Fields may be added within a version;
//!   renaming, removing or changing the meaning of one bumps it, so receivers should ignore
//!   unknown fields and reject versions they do not know.
//! - `status` — `"firing"` or `"resolved"`.
//! - `fingerprint` — stable for one rule on one dataset, across evaluations and restarts: use it
//!   to pair a resolution with its alert and to deduplicate retried deliveries.
//! - `rule`, `dataset` — names from the configuration.
//! - `severity` — `"info"`, `"warning"` or `"critical"`.
//! - `since` — when the alert started firing, RFC 3339 in UTC with milliseconds.
//! - `resolved_at` — when it resolved, same format; `null` while firing.
//! - `features` — the drifted features: `score` is `null` when no score could be computed
//!   (or was not finite), `reason` is the verdict in words, `changes` the largest quantile or
//!   category changes in words, largest first.
//! - `findings` — data-invariant findings, in words.
//! - `labels`, `annotations` — string-to-string maps from the rule's configuration.
//! - `links` — dashboards and traces for this alert, in configured order.
//!
//! # Signature
//!
//! Each delivery carries two headers: [`TIMESTAMP_HEADER`] holds the time of sending in seconds
//! since the Unix epoch, and [`SIGNATURE_HEADER`] holds `v1=` followed by the lowercase hex
//! HMAC-SHA256, keyed with the shared secret, of the timestamp, a `.`, and the raw body bytes
//! (see [`signature`]). To verify, a receiver:
//!
//! 1. reads the body as raw bytes, before any JSON parsing (re-serialising changes the bytes);
//! 2. recomputes `v1=` + hex HMAC-SHA256(secret, `"<timestamp>.<body>"`) and compares it with
//!    the header in constant time (e.g. Python's `hmac.compare_digest`), since an ordinary
//!    comparison leaks through timing how much of a forged signature was right;
//! 3. rejects a timestamp more than a few minutes from its own clock: the signature binds the
//!    timestamp, so a captured request cannot be re-dated, and refusing old ones stops replays.
//!
//! The `v1=` prefix names the scheme, so a later scheme can be sent alongside during a migration.
//! [`verify`] does all three steps.
//!
//! # Idempotency key
//!
//! Each delivery carries [`IDEMPOTENCY_HEADER`] (`Idempotency-Key`), `driftd-<outbox id>-<fingerprint>`
//! (see [`idempotency_key`]): one notification (a firing, or its resolution) has one outbox
//! entry, and every attempt to deliver it — a retry after an error or a timeout, a resend after a
//! crash mid-send, from whichever replica — carries the same key; another notification carries
//! another. A receiver that keeps the keys it has acted on can drop repeats. The key is unique
//! within one driftd database. It is a header, outside the `v1` signature (which covers the
//! timestamp and the body); the body's `fingerprint` and `status` are signed.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use super::{AlertSeverity, FeatureLine, Notification, Status};

/// The version of the body document; see the module docs for what changes it.
pub const VERSION: u32 = 1;

/// The header carrying `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Driftd-Signature";

/// The header carrying the signing time, seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "X-Driftd-Timestamp";

const SCHEME_PREFIX: &str = "v1=";

/// The header carrying the delivery's idempotency key, the same on every attempt.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// `driftd-<outbox id>-<fingerprint>`: the value of [`IDEMPOTENCY_HEADER`] for every attempt to
/// deliver the outbox entry `outbox_id` of the alert `fingerprint`.
pub fn idempotency_key(outbox_id: i64, fingerprint: &str) -> String {
    format!("driftd-{outbox_id}-{fingerprint}")
}

#[derive(Serialize)]
struct Body<'a> {
    version: u32,
    status: Status,
    fingerprint: &'a str,
    rule: &'a str,
    dataset: &'a str,
    severity: AlertSeverity,
    since: String,
    resolved_at: Option<String>,
    features: &'a [FeatureLine],
    findings: &'a [String],
    labels: &'a BTreeMap<String, String>,
    annotations: &'a BTreeMap<String, String>,
    links: Vec<Link<'a>>,
}

#[derive(Serialize)]
struct Link<'a> {
    label: &'a str,
    url: &'a str,
}

/// The JSON body of a webhook delivery, in the version-1 schema of the module docs.
pub fn body(n: &Notification) -> Vec<u8> {
    let body = Body {
        version: VERSION,
        status: n.status,
        fingerprint: &n.fingerprint,
        rule: &n.rule,
        dataset: &n.dataset,
        severity: n.severity,
        since: rfc3339(n.since_ms),
        resolved_at: n.resolved_ms.map(rfc3339),
        features: &n.features,
        findings: &n.findings,
        labels: &n.labels,
        annotations: &n.annotations,
        links: n
            .links
            .iter()
            .map(|(label, url)| Link { label, url })
            .collect(),
    };
    // Strings, string-keyed maps and floats (non-finite ones become null): nothing here can fail
    // to serialise.
    serde_json::to_vec(&body).expect("a notification always serialises to JSON")
}

/// `v1=` + lowercase hex HMAC-SHA256(secret, `"<timestamp>.<body>"`), the value of
/// [`SIGNATURE_HEADER`] for a delivery sent at `timestamp` (seconds since the epoch).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(SCHEME_PREFIX.len() + tag.len() * 2);
    out.push_str(SCHEME_PREFIX);
    for byte in tag {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Why a delivery failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("signature is not of the form v1=<64 hex digits>")]
    Malformed,
    #[error("signature does not match the body and timestamp")]
    Mismatch,
    #[error("timestamp is {skew_s} s from now, more than the {tolerance_s} s allowed")]
    Stale { skew_s: i64, tolerance_s: i64 },
}

/// The receiver's check, for receivers written in Rust and for driftd's own tests: the
/// signature must match (compared in constant time) and `timestamp` must be within
/// `tolerance_s` seconds of `now_s` either way.
pub fn verify(
    secret: &[u8],
    timestamp: i64,
    body: &[u8],
    signature: &str,
    now_s: i64,
    tolerance_s: i64,
) -> Result<(), VerifyError> {
    let tag = signature
        .strip_prefix(SCHEME_PREFIX)
        .and_then(decode_hex)
        .ok_or(VerifyError::Malformed)?;
    // Checked before the timestamp so that a forged request learns nothing about the clock.
    mac(secret, timestamp, body)
        .verify_slice(&tag)
        .map_err(|_| VerifyError::Mismatch)?;
    let skew_s = now_s.saturating_sub(timestamp).saturating_abs();
    if skew_s > tolerance_s {
        return Err(VerifyError::Stale {
            skew_s,
            tolerance_s,
        });
    }
    Ok(())
}

/// RFC 3339 in UTC with milliseconds, the one timestamp format of driftd's notifiers.
///
/// Clamped to 1970-01-01 … 9999-12-31: a negative or far-future time is a bug upstream, but
/// formatting must not panic inside delivery (humantime fails past year 9999).
pub(crate) fn rfc3339(ms: i64) -> String {
    const MAX_MS: u64 = 253_402_300_799_999;
    let ms = u64::try_from(ms).unwrap_or(0).min(MAX_MS);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_name_the_outbox_entry_and_the_alert() {
        assert_eq!(
            idempotency_key(42, "0ca87fb481665a70"),
            "driftd-42-0ca87fb481665a70"
        );
        // One entry, one key, attempt after attempt; another entry of the same alert (its
        // resolution), another key.
        assert_eq!(idempotency_key(42, "fp"), idempotency_key(42, "fp"));
        assert_ne!(idempotency_key(42, "fp"), idempotency_key(43, "fp"));
    }

    fn notification(status: Status) -> Notification {
        Notification {
            topic: Default::default(),
            fingerprint: "fp-1".into(),
            rule: "input-drift".into(),
            dataset: "search".into(),
            severity: AlertSeverity::Critical,
            status,
            since_ms: 1_700_000_000_123,
            resolved_ms: (status == Status::Resolved).then_some(1_700_000_600_000),
            features: vec![FeatureLine {
                name: "latency_ms".into(),
                kind: "numeric".into(),
                method: "psi".into(),
                score: Some(0.93),
                threshold: 0.2,
                reason: "PSI 0.93 ≥ 0.20".into(),
                changes: vec!["p50 19.6 → 210.0".into()],
            }],
            findings: vec!["country: 12% nulls".into()],
            labels: BTreeMap::from([("team".into(), "search".into())]),
            annotations: BTreeMap::from([("summary".into(), "inputs moved".into())]),
            links: vec![("Grafana".into(), "https://grafana.example/d/1".into())],
        }
    }

    #[test]
    fn signature_matches_an_independent_hmac() {
        // Computed with Python and with openssl:
        // python3 -c "import hmac,hashlib; print(hmac.new(b'key',
        //   b'1700000000.{\"a\":1}', hashlib.sha256).hexdigest())"
        assert_eq!(
            signature(b"key", 1_700_000_000, br#"{"a":1}"#),
            "v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn signature_binds_secret_timestamp_and_body() {
        let s = signature(b"key", 1_700_000_000, b"{}");
        assert_ne!(s, signature(b"kez", 1_700_000_000, b"{}"));
        assert_ne!(s, signature(b"key", 1_700_000_001, b"{}"));
        assert_ne!(s, signature(b"key", 1_700_000_000, b"{ }"));
        assert_eq!(s.len(), 3 + 64);
    }

    #[test]
    fn verify_accepts_fresh_and_rejects_tampered_or_stale() {
        let body = body(&notification(Status::Firing));
        let ts = 1_700_000_000;
        let sig = signature(b"secret", ts, &body);
        assert_eq!(verify(b"secret", ts, &body, &sig, ts + 30, 300), Ok(()));
        assert_eq!(
            verify(b"secret", ts, &body, &sig, ts + 301, 300),
            Err(VerifyError::Stale {
                skew_s: 301,
                tolerance_s: 300
            })
        );
        assert_eq!(
            verify(b"secret", ts + 1, &body, &sig, ts, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"other", ts, &body, &sig, ts, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"secret", ts, &body, "v1=zz", ts, 300),
            Err(VerifyError::Malformed)
        );
        let upper = sig.to_uppercase().replacen("V1=", "v1=", 1);
        assert_eq!(verify(b"secret", ts, &body, &upper, ts, 300), Ok(()));
    }

    #[test]
    fn body_round_trips_with_the_documented_keys() {
        let v: serde_json::Value =
            serde_json::from_slice(&body(&notification(Status::Firing))).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "version",
            "status",
            "fingerprint",
            "rule",
            "dataset",
            "severity",
            "since",
            "resolved_at",
            "features",
            "findings",
            "labels",
            "annotations",
            "links",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);

        assert_eq!(v["version"], 1);
        assert_eq!(v["status"], "firing");
        assert_eq!(v["fingerprint"], "fp-1");
        assert_eq!(v["rule"], "input-drift");
        assert_eq!(v["dataset"], "search");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["since"], "2023-11-14T22:13:20.123Z");
        assert!(v["resolved_at"].is_null());
        let feature = &v["features"][0];
        assert_eq!(feature["name"], "latency_ms");
        assert_eq!(feature["kind"], "numeric");
        assert_eq!(feature["method"], "psi");
        assert_eq!(feature["score"], 0.93);
        assert_eq!(feature["threshold"], 0.2);
        assert_eq!(feature["reason"], "PSI 0.93 ≥ 0.20");
        assert_eq!(feature["changes"][0], "p50 19.6 → 210.0");
        assert_eq!(v["findings"][0], "country: 12% nulls");
        assert_eq!(v["labels"]["team"], "search");
        assert_eq!(v["annotations"]["summary"], "inputs moved");
        assert_eq!(
            v["links"][0],
            serde_json::json!({"label": "Grafana", "url": "https://grafana.example/d/1"})
        );
    }

    #[test]
    fn resolved_body_carries_the_resolution_time() {
        let v: serde_json::Value =
            serde_json::from_slice(&body(&notification(Status::Resolved))).unwrap();
        assert_eq!(v["status"], "resolved");
        assert_eq!(v["resolved_at"], "2023-11-14T22:23:20.000Z");
    }

    #[test]
    fn missing_score_and_non_finite_numbers_are_null() {
        let mut n = notification(Status::Firing);
        n.features[0].score = None;
        n.features.push(FeatureLine {
            score: Some(f64::NAN),
            ..n.features[0].clone()
        });
        let v: serde_json::Value = serde_json::from_slice(&body(&n)).unwrap();
        assert!(v["features"][0]["score"].is_null());
        assert!(v["features"][1]["score"].is_null());
    }

    #[test]
    fn timestamps_out_of_range_are_clamped_not_panicking() {
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }
}
