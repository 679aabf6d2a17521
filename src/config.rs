//! Configuration of `driftd serve`, in layers: built-in defaults, then a YAML file
//! (`--config`), then `DRIFTD_*` environment variables, then command-line flags. Every problem
//! is reported at once, each with the layer it came from. Secrets (the database URL, which may
//! hold a password) are wrapped so that `Debug` and `Display` print `[redacted]`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A value that must never reach logs, errors, metrics or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub database_url: Secret,
    pub rules: Option<PathBuf>,
    /// Length of an online window.
    pub window: Duration,
    /// Length of the coarser windows closed windows are rolled up into.
    pub rollup: Duration,
    /// How long closed windows are kept; rollups are kept `rollup_retention`.
    pub retention: Duration,
    pub rollup_retention: Duration,
    pub eval_interval: Duration,
    /// How often open windows are written to the database: what a crash can lose at most.
    pub flush_interval: Duration,
    pub shutdown_grace: Duration,
    /// Largest request body, after decompression.
    pub max_body_bytes: usize,
    /// Record batches waiting to be profiled; beyond, ingest answers 429.
    pub queue_capacity: usize,
    /// Request bytes waiting to be profiled, all batches together; beyond, ingest answers 429.
    /// This bounds the queue's memory, whatever the batch sizes.
    pub queue_bytes: usize,
    pub max_datasets: usize,
    pub max_features: usize,
    /// Features per dataset that get their own metric series.
    pub metrics_max_features: usize,
    /// Counter names per dataset (both stages together).
    pub max_counters: usize,
    /// A counter seen on one side only for this long is reported as unmapped.
    pub counter_unmapped_after: Duration,
    /// Online counter totals and parity ratios cover this much recent time.
    pub parity_window: Duration,
    /// Share of ingested records (0 to 1) that become `record` events on the ingest span, with
    /// their feature values as attributes; 0 turns them off.
    pub trace_record_sample_rate: f64,
    /// Feature values per `record` event; further features are left out.
    pub trace_record_max_attributes: usize,
    /// Slack incoming webhook: with it alone, any drifted feature alerts there.
    pub slack_webhook_url: Option<Secret>,
    /// Generic webhook and the key its bodies are signed with (HMAC-SHA256).
    pub webhook_url: Option<Secret>,
    pub webhook_secret: Option<Secret>,
    /// Alertmanager's base URL; alerts go to `POST /api/v2/alerts`.
    pub alertmanager_url: Option<Secret>,
    /// The default `for:` of alert rules: how long a condition must hold before it fires.
    pub alert_for: Duration,
    /// Link templates for notifications; `{dataset}` is replaced by the dataset's name.
    pub grafana_url: Option<String>,
    pub honeycomb_url: Option<String>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8471)),
            database_url: Secret::new("sqlite://driftd.db"),
            rules: None,
            window: Duration::from_secs(60),
            rollup: Duration::from_secs(3600),
            retention: Duration::from_secs(2 * 86_400),
            rollup_retention: Duration::from_secs(30 * 86_400),
            eval_interval: Duration::from_secs(30),
            flush_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            max_body_bytes: 8 << 20,
            queue_capacity: 64,
            queue_bytes: 16 << 20,
            max_datasets: 100,
            max_features: 1000,
            metrics_max_features: 200,
            max_counters: 200,
            counter_unmapped_after: Duration::from_secs(86_400),
            parity_window: Duration::from_secs(3_600),
            trace_record_sample_rate: 0.0,
            trace_record_max_attributes: 64,
            slack_webhook_url: None,
            webhook_url: None,
            webhook_secret: None,
            alertmanager_url: None,
            alert_for: Duration::from_secs(300),
            grafana_url: None,
            honeycomb_url: None,
        }
    }
}

/// One layer: every setting optional, as text, so each layer is parsed the same way.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    pub rules: Option<String>,
    pub window: Option<String>,
    pub rollup: Option<String>,
    pub retention: Option<String>,
    pub rollup_retention: Option<String>,
    pub eval_interval: Option<String>,
    pub flush_interval: Option<String>,
    pub shutdown_grace: Option<String>,
    pub max_body_bytes: Option<String>,
    pub queue_capacity: Option<String>,
    pub queue_bytes: Option<String>,
    pub max_datasets: Option<String>,
    pub max_features: Option<String>,
    pub metrics_max_features: Option<String>,
    pub max_counters: Option<String>,
    pub counter_unmapped_after: Option<String>,
    pub parity_window: Option<String>,
    pub trace_record_sample_rate: Option<String>,
    pub trace_record_max_attributes: Option<String>,
    pub slack_webhook_url: Option<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub alertmanager_url: Option<String>,
    pub alert_for: Option<String>,
    pub grafana_url: Option<String>,
    pub honeycomb_url: Option<String>,
}

/// Settings, their environment variables, and a line of documentation each.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "listen",
        "DRIFTD_LISTEN",
        "address to listen on (default 127.0.0.1:8471, loopback)",
    ),
    (
        "database_url",
        "DRIFTD_DATABASE_URL",
        "sqlite://PATH (default sqlite://driftd.db) or postgres://…",
    ),
    (
        "rules",
        "DRIFTD_RULES",
        "rule file or directory applied by continuous evaluation",
    ),
    (
        "window",
        "DRIFTD_WINDOW",
        "length of an online window (default 60s)",
    ),
    (
        "rollup",
        "DRIFTD_ROLLUP",
        "coarser windows closed windows are merged into (default 1h)",
    ),
    (
        "retention",
        "DRIFTD_RETENTION",
        "how long closed windows are kept (default 2d)",
    ),
    (
        "rollup_retention",
        "DRIFTD_ROLLUP_RETENTION",
        "how long rollups are kept (default 30d)",
    ),
    (
        "eval_interval",
        "DRIFTD_EVAL_INTERVAL",
        "how often drift is evaluated (default 30s)",
    ),
    (
        "flush_interval",
        "DRIFTD_FLUSH_INTERVAL",
        "how often open windows are saved: the most a crash loses (default 5s)",
    ),
    (
        "shutdown_grace",
        "DRIFTD_SHUTDOWN_GRACE",
        "time allowed to flush on SIGTERM (default 10s)",
    ),
    (
        "max_body_bytes",
        "DRIFTD_MAX_BODY_BYTES",
        "largest request body (default 8388608)",
    ),
    (
        "queue_capacity",
        "DRIFTD_QUEUE_CAPACITY",
        "record batches waiting to be profiled before 429 (default 64)",
    ),
    (
        "queue_bytes",
        "DRIFTD_QUEUE_BYTES",
        "request bytes waiting to be profiled, all batches together, before 429 (default 16777216)",
    ),
    (
        "max_datasets",
        "DRIFTD_MAX_DATASETS",
        "datasets accepted (default 100)",
    ),
    (
        "max_features",
        "DRIFTD_MAX_FEATURES",
        "features per dataset (default 1000)",
    ),
    (
        "metrics_max_features",
        "DRIFTD_METRICS_MAX_FEATURES",
        "features per dataset exported as metric series (default 200)",
    ),
    (
        "max_counters",
        "DRIFTD_MAX_COUNTERS",
        "counter names per dataset, offline and online together (default 200)",
    ),
    (
        "counter_unmapped_after",
        "DRIFTD_COUNTER_UNMAPPED_AFTER",
        "a counter seen on one side only this long is reported unmapped (default 1d)",
    ),
    (
        "parity_window",
        "DRIFTD_PARITY_WINDOW",
        "recent online counters compared with the latest run (default 1h)",
    ),
    (
        "trace_record_sample_rate",
        "DRIFTD_TRACE_RECORD_SAMPLE_RATE",
        "share of records (0 to 1) sent as span events with their values (default 0, off)",
    ),
    (
        "trace_record_max_attributes",
        "DRIFTD_TRACE_RECORD_MAX_ATTRIBUTES",
        "feature values per sampled record event (default 64, at most 1000)",
    ),
    (
        "slack_webhook_url",
        "DRIFTD_SLACK_WEBHOOK_URL",
        "Slack incoming webhook (a secret); alone, it alerts on any drift",
    ),
    (
        "webhook_url",
        "DRIFTD_WEBHOOK_URL",
        "generic webhook receiving alert JSON (a secret)",
    ),
    (
        "webhook_secret",
        "DRIFTD_WEBHOOK_SECRET",
        "key for the webhook's HMAC-SHA256 signature header (a secret)",
    ),
    (
        "alertmanager_url",
        "DRIFTD_ALERTMANAGER_URL",
        "Alertmanager base URL, e.g. http://alertmanager:9093",
    ),
    (
        "alert_for",
        "DRIFTD_ALERT_FOR",
        "how long a condition holds before its alert fires (default 5m)",
    ),
    (
        "grafana_url",
        "DRIFTD_GRAFANA_URL",
        "link template for notifications, {dataset} replaced",
    ),
    (
        "honeycomb_url",
        "DRIFTD_HONEYCOMB_URL",
        "link template for notifications, {dataset} replaced",
    ),
];

/// Where a setting came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Environment,
    Flags,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Environment => f.write_str("environment"),
            Source::Flags => f.write_str("command line"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting} ({origin}): {message}")]
pub struct ConfigError {
    pub setting: String,
    /// The layer the value came from.
    pub origin: String,
    pub message: String,
}

impl Layer {
    /// Reads a YAML config file.
    pub fn from_file(path: &Path) -> Result<Layer, Vec<ConfigError>> {
        let err = |message: String| {
            vec![ConfigError {
                setting: "config".into(),
                origin: Source::File(path.to_owned()).to_string(),
                message,
            }]
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        serde_saphyr::from_str::<Option<Layer>>(&text)
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                let at = e
                    .location()
                    .map(|l| format!("line {}: ", l.line()))
                    .unwrap_or_default();
                err(format!(
                    "{at}{}",
                    e.to_string().lines().next().unwrap_or_default()
                ))
            })
    }

    /// `DRIFTD_*` variables from `vars`; names it does not know are returned separately.
    pub fn from_env(vars: impl IntoIterator<Item = (String, String)>) -> (Layer, Vec<String>) {
        let mut layer = Layer::default();
        let mut unknown = Vec::new();
        for (name, value) in vars {
            if !name.starts_with("DRIFTD_") {
                continue;
            }
            match SETTINGS.iter().find(|(_, env, _)| *env == name) {
                Some((setting, _, _)) => *layer.slot(setting) = Some(value),
                None => unknown.push(name),
            }
        }
        (layer, unknown)
    }

    fn slot(&mut self, setting: &str) -> &mut Option<String> {
        match setting {
            "listen" => &mut self.listen,
            "database_url" => &mut self.database_url,
            "rules" => &mut self.rules,
            "window" => &mut self.window,
            "rollup" => &mut self.rollup,
            "retention" => &mut self.retention,
            "rollup_retention" => &mut self.rollup_retention,
            "eval_interval" => &mut self.eval_interval,
            "flush_interval" => &mut self.flush_interval,
            "shutdown_grace" => &mut self.shutdown_grace,
            "max_body_bytes" => &mut self.max_body_bytes,
            "queue_capacity" => &mut self.queue_capacity,
            "queue_bytes" => &mut self.queue_bytes,
            "max_datasets" => &mut self.max_datasets,
            "max_features" => &mut self.max_features,
            "metrics_max_features" => &mut self.metrics_max_features,
            "max_counters" => &mut self.max_counters,
            "counter_unmapped_after" => &mut self.counter_unmapped_after,
            "parity_window" => &mut self.parity_window,
            "trace_record_sample_rate" => &mut self.trace_record_sample_rate,
            "trace_record_max_attributes" => &mut self.trace_record_max_attributes,
            "slack_webhook_url" => &mut self.slack_webhook_url,
            "webhook_url" => &mut self.webhook_url,
            "webhook_secret" => &mut self.webhook_secret,
            "alertmanager_url" => &mut self.alertmanager_url,
            "alert_for" => &mut self.alert_for,
            "grafana_url" => &mut self.grafana_url,
            "honeycomb_url" => &mut self.honeycomb_url,
            other => unreachable!("unknown setting {other}"),
        }
    }
}

/// Applies `layers` (lowest first) over the defaults.
pub fn resolve(layers: Vec<(Source, Layer)>) -> Result<ServeConfig, Vec<ConfigError>> {
    let mut config = ServeConfig::default();
    let mut errors = Vec::new();
    let mut layers = layers;
    for (source, layer) in &mut layers {
        for (setting, _, _) in SETTINGS {
            let Some(value) = layer.slot(setting).take() else {
                continue;
            };
            if let Err(message) = apply(&mut config, setting, &value) {
                errors.push(ConfigError {
                    setting: (*setting).to_owned(),
                    origin: source.to_string(),
                    // Secrets (the database URL may carry a password) are never echoed.
                    message: if SECRETS.contains(setting) {
                        message
                    } else {
                        format!("{value:?}: {message}")
                    },
                });
            }
        }
    }
    if config.max_body_bytes > config.queue_bytes {
        errors.push(ConfigError {
            setting: "max_body_bytes".into(),
            origin: "resolved configuration".into(),
            message: format!(
                "{} exceeds queue_bytes ({}): such a body could never be queued",
                config.max_body_bytes, config.queue_bytes
            ),
        });
    }
    if config.window > config.rollup {
        errors.push(ConfigError {
            setting: "rollup".into(),
            origin: "resolved configuration".into(),
            message: "must be at least as long as window".into(),
        });
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
}

/// Settings whose values never appear in errors, logs or `Debug` output.
const SECRETS: [&str; 5] = [
    "database_url",
    "slack_webhook_url",
    "webhook_url",
    "webhook_secret",
    "alertmanager_url",
];

fn apply(config: &mut ServeConfig, setting: &str, value: &str) -> Result<(), String> {
    let url = |v: &str| -> Result<Secret, String> {
        if v.starts_with("http://") || v.starts_with("https://") {
            Ok(Secret::new(v.trim()))
        } else {
            Err("must be an http:// or https:// URL".into())
        }
    };
    let duration = |v: &str| -> Result<Duration, String> {
        let d = humantime::parse_duration(v.trim())
            .map_err(|e| format!("not a duration ({e}); e.g. 30s, 5m, 1h"))?;
        if d.is_zero() {
            Err("must be longer than 0".into())
        } else {
            Ok(d)
        }
    };
    let count = |v: &str| -> Result<usize, String> {
        match v.trim().parse::<usize>() {
            Ok(0) => Err("must be at least 1".into()),
            Ok(n) => Ok(n),
            Err(_) => Err("not a positive whole number".into()),
        }
    };
    match setting {
        "listen" => {
            config.listen = value
                .trim()
                .parse()
                .map_err(|_| "not an address such as 127.0.0.1:8471".to_owned())?
        }
        "database_url" => {
            if !(value.starts_with("sqlite:")
                || value.starts_with("postgres://")
                || value.starts_with("postgresql://"))
            {
                return Err("must start with sqlite:, postgres:// or postgresql://".into());
            }
            config.database_url = Secret::new(value);
        }
        "rules" => config.rules = Some(PathBuf::from(value)),
        "window" => config.window = duration(value)?,
        "rollup" => config.rollup = duration(value)?,
        "retention" => config.retention = duration(value)?,
        "rollup_retention" => config.rollup_retention = duration(value)?,
        "eval_interval" => config.eval_interval = duration(value)?,
        "flush_interval" => config.flush_interval = duration(value)?,
        "shutdown_grace" => config.shutdown_grace = duration(value)?,
        "max_body_bytes" => config.max_body_bytes = count(value)?,
        "queue_capacity" => config.queue_capacity = count(value)?,
        "queue_bytes" => config.queue_bytes = count(value)?.min(u32::MAX as usize),
        "max_datasets" => config.max_datasets = count(value)?,
        "max_features" => config.max_features = count(value)?,
        "metrics_max_features" => config.metrics_max_features = count(value)?,
        "max_counters" => config.max_counters = count(value)?,
        "counter_unmapped_after" => config.counter_unmapped_after = duration(value)?,
        "parity_window" => config.parity_window = duration(value)?,
        "trace_record_sample_rate" => {
            config.trace_record_sample_rate = match value.trim().parse::<f64>() {
                Ok(rate) if (0.0..=1.0).contains(&rate) => rate,
                _ => return Err("must be a number from 0 to 1, e.g. 0.001".into()),
            }
        }
        "trace_record_max_attributes" => {
            config.trace_record_max_attributes = match count(value)? {
                n if n <= crate::telemetry::MAX_RECORD_ATTRIBUTES => n,
                _ => {
                    return Err(format!(
                        "must be at most {}",
                        crate::telemetry::MAX_RECORD_ATTRIBUTES
                    ));
                }
            }
        }
        "slack_webhook_url" => config.slack_webhook_url = Some(url(value)?),
        "webhook_url" => config.webhook_url = Some(url(value)?),
        "webhook_secret" => config.webhook_secret = Some(Secret::new(value)),
        "alertmanager_url" => config.alertmanager_url = Some(url(value)?),
        "alert_for" => {
            config.alert_for = humantime::parse_duration(value.trim())
                .map_err(|e| format!("not a duration ({e}); e.g. 0s, 5m"))?
        }
        "grafana_url" => config.grafana_url = Some(value.to_owned()),
        "honeycomb_url" => config.honeycomb_url = Some(value.to_owned()),
        other => unreachable!("unknown setting {other}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_and_errors_name_their_source() {
        let file = Layer {
            window: Some("2m".into()),
            listen: Some("127.0.0.1:9000".into()),
            ..Layer::default()
        };
        let (env, unknown) = Layer::from_env([
            ("DRIFTD_WINDOW".to_owned(), "30s".to_owned()),
            ("DRIFTD_NOPE".to_owned(), "1".to_owned()),
            ("PATH".to_owned(), "/bin".to_owned()),
        ]);
        assert_eq!(unknown, ["DRIFTD_NOPE"]);
        let flags = Layer {
            listen: Some("127.0.0.1:9001".into()),
            ..Layer::default()
        };
        let c = resolve(vec![
            (Source::File("a.yaml".into()), file),
            (Source::Environment, env),
            (Source::Flags, flags),
        ])
        .unwrap();
        assert_eq!(c.window, Duration::from_secs(30));
        assert_eq!(c.listen.port(), 9001);

        let bad = Layer {
            window: Some("5 parsecs".into()),
            max_features: Some("0".into()),
            database_url: Some("mysql://root:hunter2@db/x".into()),
            ..Layer::default()
        };
        let errors = resolve(vec![(Source::Environment, bad)]).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text.iter()
                .any(|e| e.starts_with("window (environment): \"5 parsecs\": not a duration"))
        );
        assert!(
            text.iter()
                .any(|e| e == "max_features (environment): \"0\": must be at least 1")
        );
        assert!(text.iter().all(|e| !e.contains("hunter2")), "{text:?}");
    }

    #[test]
    fn record_sampling_settings_are_bounded() {
        let (env, _) = Layer::from_env([
            (
                "DRIFTD_TRACE_RECORD_SAMPLE_RATE".to_owned(),
                "0.25".to_owned(),
            ),
            (
                "DRIFTD_TRACE_RECORD_MAX_ATTRIBUTES".to_owned(),
                "10".to_owned(),
            ),
        ]);
        let c = resolve(vec![(Source::Environment, env)]).unwrap();
        assert_eq!(c.trace_record_sample_rate, 0.25);
        assert_eq!(c.trace_record_max_attributes, 10);
        let bad = Layer {
            trace_record_sample_rate: Some("1.5".into()),
            trace_record_max_attributes: Some("100000".into()),
            ..Layer::default()
        };
        let errors = resolve(vec![(Source::Environment, bad)]).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "trace_record_sample_rate (environment): \"1.5\": must be a number from 0 to 1, e.g. 0.001",
                "trace_record_max_attributes (environment): \"100000\": must be at most 1000",
            ]
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let c = ServeConfig {
            database_url: Secret::new("postgres://u:hunter2@localhost/db"),
            slack_webhook_url: Some(Secret::new("https://hooks.slack.com/services/T/B/hunter3")),
            webhook_secret: Some(Secret::new("hunter4")),
            ..ServeConfig::default()
        };
        let dump = format!("{c:?}");
        assert!(
            !dump.contains("hunter2") && !dump.contains("hunter3") && !dump.contains("hunter4"),
            "{dump}"
        );
        let (env, _) = Layer::from_env([(
            "DRIFTD_SLACK_WEBHOOK_URL".to_owned(),
            "ftp://hunter5".to_owned(),
        )]);
        let errors = resolve(vec![(Source::Environment, env)]).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            "slack_webhook_url (environment): must be an http:// or https:// URL"
        );
        assert_eq!(format!("{}", c.database_url), "[redacted]");
    }
}
