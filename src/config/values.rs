//! How each kind of setting is read from text and written back as YAML: one parser and one
//! printer per type, shared by every setting of that type.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Secret;

/// A setting as `--print-config` writes it.
pub enum Shown {
    Value(String),
    /// A secret that is set: written as a comment, so the output stays a valid config file.
    Redacted,
    Unset,
}

pub fn address(v: &str) -> Result<SocketAddr, String> {
    v.trim()
        .parse()
        .map_err(|_| "not an address such as 127.0.0.1:8471".to_owned())
}

pub fn database_url(v: &str) -> Result<Secret, String> {
    if v.starts_with("sqlite:") || v.starts_with("postgres://") || v.starts_with("postgresql://") {
        Ok(Secret::new(v))
    } else {
        Err("must start with sqlite:, postgres:// or postgresql://".into())
    }
}

pub fn path(v: &str) -> Result<Option<PathBuf>, String> {
    Ok(Some(PathBuf::from(v)))
}

/// A duration longer than zero: `30s`, `5m`, `1h`, `2d`.
pub fn duration(v: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(v.trim())
        .map_err(|e| format!("not a duration ({e}); e.g. 30s, 5m, 1h"))?;
    if d.is_zero() {
        Err("must be longer than 0".into())
    } else {
        Ok(d)
    }
}

/// A duration that may be zero (`for: 0s` fires at once).
pub fn duration_or_zero(v: &str) -> Result<Duration, String> {
    humantime::parse_duration(v.trim()).map_err(|e| format!("not a duration ({e}); e.g. 0s, 5m"))
}

/// The leader lease's time to live: 3 s to 5 min. Shorter would renew too often for a database
/// under load; longer would leave evaluation stopped too long after a leader dies.
pub fn lease_ttl(v: &str) -> Result<Duration, String> {
    let d = duration(v)?;
    if d < Duration::from_secs(3) || d > Duration::from_secs(300) {
        Err("must be between 3s and 5m".into())
    } else {
        Ok(d)
    }
}

pub fn count(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a positive whole number".into()),
    }
}

/// A byte budget held in a semaphore, whose permits are counted in `u32`.
pub fn byte_budget(v: &str) -> Result<usize, String> {
    Ok(count(v)?.min(u32::MAX as usize))
}

/// A record field's name: not empty, at most 256 bytes (the longest feature name).
pub fn field_name(v: &str) -> Result<String, String> {
    match v.len() {
        0 => Err("must not be empty".into()),
        n if n > 256 => Err(format!("is {n} bytes long; at most 256")),
        _ => Ok(v.to_owned()),
    }
}

pub fn share(v: &str) -> Result<f64, String> {
    match v.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err("must be a number from 0 to 1, e.g. 0.001".into()),
    }
}

pub fn record_attributes(v: &str) -> Result<usize, String> {
    match count(v)? {
        n if n <= crate::telemetry::MAX_RECORD_ATTRIBUTES => Ok(n),
        _ => Err(format!(
            "must be at most {}",
            crate::telemetry::MAX_RECORD_ATTRIBUTES
        )),
    }
}

pub fn http_url(v: &str) -> Result<Option<Secret>, String> {
    if v.starts_with("http://") || v.starts_with("https://") {
        Ok(Some(Secret::new(v.trim())))
    } else {
        Err("must be an http:// or https:// URL".into())
    }
}

/// A NATS server URL: `nats://`, `tls://` (or `nats+tls://`), possibly with credentials.
pub fn nats_url(v: &str) -> Result<Option<Secret>, String> {
    let v = v.trim();
    if ["nats://", "tls://", "nats+tls://"]
        .iter()
        .any(|scheme| v.starts_with(scheme))
    {
        Ok(Some(Secret::new(v)))
    } else {
        Err("must be a nats:// or tls:// URL, e.g. nats://127.0.0.1:4222".into())
    }
}

/// A JetStream stream name, also its subjects' first token: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn stream_name(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 64 {
        return Err("must be 1 to 64 characters long".into());
    }
    let allowed = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-');
    match v.chars().find(|c| !allowed(c)) {
        Some(c) => Err(format!("contains {c:?}; use letters, digits, '_' or '-'")),
        None => Ok(v.to_owned()),
    }
}

/// An optional address (`metrics_listen`); an empty value leaves it unset.
pub fn optional_address(v: &str) -> Result<Option<SocketAddr>, String> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    address(v).map(Some)
}

pub fn tls_listeners(v: &str) -> Result<super::TlsListeners, String> {
    use super::TlsListeners::{All, Api, Metrics};
    match v.trim().to_ascii_lowercase().as_str() {
        "all" => Ok(All),
        "api" => Ok(Api),
        "metrics" => Ok(Metrics),
        _ => Err("must be all, api or metrics".into()),
    }
}

pub fn flag(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

/// A bearer token: long enough that guessing it is hopeless.
pub fn api_token(v: &str) -> Result<Option<Secret>, String> {
    let v = v.trim();
    if v.chars().count() < 16 {
        return Err("must be at least 16 characters (e.g. openssl rand -hex 32)".into());
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters".into());
    }
    Ok(Some(Secret::new(v)))
}

pub fn show_optional_address(v: &Option<SocketAddr>) -> Shown {
    v.map_or(Shown::Unset, |a| Shown::Value(a.to_string()))
}

pub fn secret(v: &str) -> Result<Option<Secret>, String> {
    Ok(Some(Secret::new(v)))
}

pub fn text(v: &str) -> Result<Option<String>, String> {
    Ok(Some(v.to_owned()))
}

/// A writer id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn writer_id(v: &str) -> Result<Option<String>, String> {
    if v.is_empty() || v.len() > 64 {
        return Err("must be 1 to 64 characters long".into());
    }
    let allowed = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    match v.chars().find(|c| !allowed(c)) {
        Some(c) => Err(format!(
            "contains {c:?}; use letters, digits, '.', '_' or '-'"
        )),
        None => Ok(Some(v.to_owned())),
    }
}

pub fn show_display(v: &impl std::fmt::Display) -> Shown {
    Shown::Value(v.to_string())
}

pub fn show_duration(v: &Duration) -> Shown {
    Shown::Value(humantime::format_duration(*v).to_string())
}

pub fn show_path(v: &Option<PathBuf>) -> Shown {
    v.as_ref()
        .map_or(Shown::Unset, |p| Shown::Value(p.display().to_string()))
}

pub fn show_text(v: &Option<String>) -> Shown {
    v.as_ref().map_or(Shown::Unset, |t| Shown::Value(t.clone()))
}

pub fn show_secret(_: &Secret) -> Shown {
    Shown::Redacted
}

pub fn show_optional_secret(v: &Option<Secret>) -> Shown {
    v.as_ref().map_or(Shown::Unset, |_| Shown::Redacted)
}

/// One `name: value` line; the value is always a quoted YAML string, which every setting
/// reads back.
pub fn yaml_line(out: &mut String, name: &str, shown: Shown) {
    use std::fmt::Write as _;
    match shown {
        Shown::Value(v) => {
            let _ = writeln!(out, "{name}: {}", serde_json::Value::String(v));
        }
        Shown::Redacted => {
            let _ = writeln!(
                out,
                "# {name}: [redacted] (a secret; set it again to use this file)"
            );
        }
        Shown::Unset => {
            let _ = writeln!(out, "# {name}: (not set)");
        }
    }
}

/// A config file's value as read: a scalar as text (each setting parses its own), or a list or
/// mapping, which only the `auth` section may be.
pub enum FileValue {
    Text(String),
    Nested,
}

impl<'de> serde::Deserialize<'de> for FileValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FileValue, D::Error> {
        struct Any;
        impl<'de> serde::de::Visitor<'de> for Any {
            type Value = FileValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a value")
            }
            fn visit_str<E>(self, v: &str) -> Result<FileValue, E> {
                Ok(FileValue::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<FileValue, E> {
                Ok(FileValue::Text(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<FileValue, E> {
                Ok(FileValue::Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FileValue, E> {
                Ok(FileValue::Text(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FileValue, E> {
                Ok(FileValue::Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<FileValue, E> {
                Ok(FileValue::Text(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<FileValue, E> {
                Ok(FileValue::Text(String::new()))
            }
            fn visit_none<E>(self) -> Result<FileValue, E> {
                Ok(FileValue::Text(String::new()))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<FileValue, D::Error> {
                <FileValue as serde::Deserialize>::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<FileValue, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FileValue::Nested)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FileValue, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(FileValue::Nested)
            }
        }
        d.deserialize_any(Any)
    }
}

/// The `auth:` section of a config file, read apart from the flat settings.
#[derive(serde::Deserialize)]
pub struct AuthOnly {
    #[serde(default)]
    pub auth: Option<crate::auth::AuthSection>,
}

/// `--print-config`'s account of the file's tokens: names and scopes only, as comments.
pub fn auth_lines(out: &mut String, tokens: &[crate::auth::Token]) {
    use std::fmt::Write as _;
    if tokens.is_empty() {
        let _ = writeln!(out, "# auth: (no tokens from a config file)");
        return;
    }
    let _ = writeln!(
        out,
        "# auth: {} tokens [redacted] (secrets; set them again to use this file)",
        tokens.len()
    );
    for t in tokens {
        let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
        let name = serde_json::Value::String(t.name.clone());
        let _ = writeln!(
            out,
            "#   - {{name: {name}, scopes: [{}]}}",
            scopes.join(", ")
        );
    }
}
