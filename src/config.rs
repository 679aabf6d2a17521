//! Configuration of `driftd serve`, in layers: built-in defaults, then a YAML file
//! (`--config`), then `DRIFTD_*` environment variables, then command-line flags. Every problem
//! is reported at once, each with the layer it came from. Secrets (the database URL, which may
//! hold a password) are wrapped so that `Debug` and `Display` print `[redacted]`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::Spanned;

use checks::cross_checks;
use values::FileValue;

mod checks;
mod values;

pub use crate::secret::Secret;

// Each setting is declared once: its field and type, its default, its environment variable,
// how it is read from text and written back, whether it is a secret, and its documentation.
// The resolved struct, the per-layer struct, the documentation table, reading a layer and
// `--print-config` are all generated from this list.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident: $ty:ty = $default:expr,
            env $env:literal, read $read:path, show $show:path, secret $secret:literal,
            help $help:literal;
    )*) => {
        /// The resolved configuration.
        #[derive(Debug, Clone)]
        pub struct ServeConfig {
            $( $(#[doc = $doc])* pub $name: $ty, )*
            /// Named, scoped tokens from the config file's `auth.tokens`.
            pub file_tokens: Vec<crate::auth::Token>,
        }

        impl Default for ServeConfig {
            fn default() -> Self {
                ServeConfig { $( $name: $default, )* file_tokens: Vec::new() }
            }
        }

        /// One layer: every setting optional, as text, so each layer is parsed the same way.
        #[derive(Debug, Default)]
        pub struct Layer {
            $( pub $name: Option<String>, )*
            /// Where each value of a config file stands (line, column), for its errors.
            pub locations: BTreeMap<&'static str, (usize, usize)>,
            /// A config file's `auth:` section, and where it stands.
            pub auth: Option<(crate::auth::AuthSection, (usize, usize))>,
        }

        /// Settings, their environment variables, and a line of documentation each.
        pub const SETTINGS: &[(&str, &str, &str)] = &[ $( (stringify!($name), $env, $help), )* ];

        /// Settings whose values never appear in errors, logs or `Debug` output.
        const SECRETS: &[&str] = &[ $( if $secret { stringify!($name) } else { "" }, )* ];

        impl Layer {
            fn slot(&mut self, setting: &str) -> Option<&mut Option<String>> {
                match setting {
                    $( stringify!($name) => Some(&mut self.$name), )*
                    _ => None,
                }
            }
        }

        fn apply(config: &mut ServeConfig, setting: &str, value: &str) -> Result<(), String> {
            match setting {
                $( stringify!($name) => config.$name = $read(value)?, )*
                other => unreachable!("unknown setting {other}"),
            }
            Ok(())
        }

        impl ServeConfig {
            /// The configuration as a YAML file `--config` reads back; secrets are left out.
            pub fn to_yaml(&self) -> String {
                let mut out = String::from(
                    "# driftd serve: the resolved configuration (secrets are not printed)\n",
                );
                $( values::yaml_line(&mut out, stringify!($name), $show(&self.$name)); )*
                values::auth_lines(&mut out, &self.file_tokens);
                out
            }
        }
    };
}

settings! {
    listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8471)),
        env "DRIFTD_LISTEN", read values::address, show values::show_display, secret false,
        help "address to listen on (default 127.0.0.1:8471, loopback)";
    /// A second listener for `/metrics`, `/healthz` and `/readyz` only, needing no token.
    metrics_listen: Option<SocketAddr> = None,
        env "DRIFTD_METRICS_LISTEN", read values::optional_address,
        show values::show_optional_address, secret false,
        help "address serving only /metrics, /healthz and /readyz, without a token (e.g. 0.0.0.0:9471)";
    /// A token with every scope; the config file's `auth.tokens` adds named, scoped ones.
    api_token: Option<Secret> = None,
        env "DRIFTD_API_TOKEN", read values::api_token, show values::show_optional_secret,
        secret true,
        help "bearer token with every scope (a secret, 16 characters or more)";
    /// Listening beyond loopback without any token: unsafe, refused unless set.
    allow_unauthenticated: bool = false,
        env "DRIFTD_ALLOW_UNAUTHENTICATED", read values::flag, show values::show_display,
        secret false,
        help "UNSAFE: serve beyond loopback with no token (default false)";
    /// TLS: the certificate chain (PEM, leaf first) and its key; reloaded on SIGHUP and change.
    tls_cert: Option<PathBuf> = None,
        env "DRIFTD_TLS_CERT", read values::path, show values::show_path, secret false,
        help "PEM certificate chain: serve HTTPS (reloaded on change and on SIGHUP)";
    tls_key: Option<PathBuf> = None,
        env "DRIFTD_TLS_KEY", read values::path, show values::show_path, secret false,
        help "PEM private key of tls_cert";
    tls_listeners: TlsListeners = TlsListeners::All,
        env "DRIFTD_TLS_LISTENERS", read values::tls_listeners, show values::show_display,
        secret false,
        help "which listeners serve HTTPS with tls_cert: all (default), api or metrics";
    max_connections: usize = 1024,
        env "DRIFTD_MAX_CONNECTIONS", read values::count, show values::show_display,
        secret false,
        help "open API connections; more are refused at once (default 1024, less if the open-file limit is lower)";
    /// Time for a request's headers to arrive, from the connection's start or their first byte.
    header_timeout: Duration = Duration::from_secs(10),
        env "DRIFTD_HEADER_TIMEOUT", read values::duration, show values::show_duration,
        secret false,
        help "time for a request's headers (and a TLS handshake) to arrive (default 10s)";
    idle_timeout: Duration = Duration::from_secs(60),
        env "DRIFTD_IDLE_TIMEOUT", read values::duration, show values::show_duration,
        secret false,
        help "a kept-alive connection with no request, or a response nobody reads, is closed after this (default 60s)";
    /// A request body must keep up `body_min_bytes` per `body_timeout` (see `serve::listen`).
    body_timeout: Duration = Duration::from_secs(10),
        env "DRIFTD_BODY_TIMEOUT", read values::duration, show values::show_duration,
        secret false,
        help "a request body slower than body_min_bytes per this time, or stopping this long, gets 408 (default 10s)";
    body_min_bytes: usize = 1024,
        env "DRIFTD_BODY_MIN_BYTES", read values::count, show values::show_display,
        secret false,
        help "bytes per body_timeout a request body must keep up (default 1024)";
    database_url: Secret = Secret::new("sqlite://driftd.db"),
        env "DRIFTD_DATABASE_URL", read values::database_url, show values::show_secret,
        secret true,
        help "sqlite://PATH (default sqlite://driftd.db) or postgres://…";
    /// Longest wait to open a database connection, or for a pooled one to come free.
    database_connect_timeout: Duration = Duration::from_secs(5),
        env "DRIFTD_DATABASE_CONNECT_TIMEOUT", read values::duration, show values::show_duration,
        secret false,
        help "longest wait to open a database connection (default 5s)";
    /// Longest wait for one database operation before it is abandoned as an outage.
    database_timeout: Duration = Duration::from_secs(10),
        env "DRIFTD_DATABASE_TIMEOUT", read values::duration, show values::show_duration,
        secret false,
        help "longest wait for one database statement or transaction (default 10s)";
    /// Connection attempts back off from 1 s, doubling, up to this (at start and in an outage).
    database_retry_max: Duration = Duration::from_secs(10),
        env "DRIFTD_DATABASE_RETRY_MAX", read values::duration, show values::show_duration,
        secret false,
        help "longest wait between database connection attempts (default 10s)";
    /// Which partial of every open window this process writes; random when unset.
    writer_id: Option<String> = None,
        env "DRIFTD_WRITER_ID", read values::writer_id, show values::show_text, secret false,
        help "this process's own partial of every open window, kept across restarts, e.g. the pod name (default: random at start)";
    /// How long the leader's lease lasts unrenewed; it is renewed every third of it.
    leader_lease_ttl: Duration = Duration::from_secs(15),
        env "DRIFTD_LEADER_LEASE_TTL", read values::lease_ttl, show values::show_duration,
        secret false,
        help "how long the leader lease lasts unrenewed, 3s to 5m: the longest evaluation stops after a leader dies (default 15s)";
    /// A NATS server with JetStream buffering ingest: a `202` then means the stream has the batch.
    nats_url: Option<Secret> = None,
        env "DRIFTD_NATS_URL", read values::nats_url, show values::show_optional_secret,
        secret true,
        help "nats://HOST:PORT of a NATS server with JetStream: ingest answers 202 once the stream holds the batch (a secret: it may carry credentials)";
    /// The JetStream stream of the ingest buffer, and its subjects' prefix.
    nats_stream: String = "driftd".to_owned(),
        env "DRIFTD_NATS_STREAM", read values::stream_name, show values::show_display,
        secret false,
        help "JetStream stream of the ingest buffer; its subjects are NAME.batches and NAME.records (default driftd)";
    /// How long a batch taken from the stream may go unacknowledged before it is redelivered.
    nats_ack_wait: Duration = Duration::from_secs(30),
        env "DRIFTD_NATS_ACK_WAIT", read values::duration, show values::show_duration,
        secret false,
        help "how long a replica may hold a batch from the stream unacknowledged before another gets it; over flush_interval + database_timeout (default 30s)";
    /// The stream's size limit when driftd creates it.
    nats_max_bytes: usize = 1 << 30,
        env "DRIFTD_NATS_MAX_BYTES", read values::count, show values::show_display,
        secret false,
        help "size limit of the stream driftd creates; when it is full ingest answers 429 (default 1073741824)";
    rules: Option<PathBuf> = None,
        env "DRIFTD_RULES", read values::path, show values::show_path, secret false,
        help "rule file or directory applied by continuous evaluation";
    /// Length of an online window.
    window: Duration = Duration::from_secs(60),
        env "DRIFTD_WINDOW", read values::duration, show values::show_duration, secret false,
        help "length of an online window (default 60s)";
    /// Length of the coarser windows closed windows are rolled up into.
    rollup: Duration = Duration::from_secs(3600),
        env "DRIFTD_ROLLUP", read values::duration, show values::show_duration, secret false,
        help "coarser windows closed windows are merged into (default 1h)";
    /// How long closed windows (and finished notifications) are kept; rollups are kept
    /// `rollup_retention`.
    retention: Duration = Duration::from_secs(2 * 86_400),
        env "DRIFTD_RETENTION", read values::duration, show values::show_duration,
        secret false,
        help "how long closed windows and finished notifications are kept (default 2d)";
    rollup_retention: Duration = Duration::from_secs(30 * 86_400),
        env "DRIFTD_ROLLUP_RETENTION", read values::duration, show values::show_duration,
        secret false,
        help "how long rollups are kept (default 30d)";
    eval_interval: Duration = Duration::from_secs(30),
        env "DRIFTD_EVAL_INTERVAL", read values::duration, show values::show_duration,
        secret false,
        help "how often drift is evaluated (default 30s)";
    /// How often open windows are written to the database: what a crash can lose at most.
    flush_interval: Duration = Duration::from_secs(5),
        env "DRIFTD_FLUSH_INTERVAL", read values::duration, show values::show_duration,
        secret false,
        help "how often open windows are saved: the most a crash loses (default 5s)";
    shutdown_grace: Duration = Duration::from_secs(10),
        env "DRIFTD_SHUTDOWN_GRACE", read values::duration, show values::show_duration,
        secret false,
        help "time allowed to flush on SIGTERM (default 10s)";
    /// Largest request body, after decompression.
    max_body_bytes: usize = 8 << 20,
        env "DRIFTD_MAX_BODY_BYTES", read values::count, show values::show_display,
        secret false,
        help "largest request body (default 8388608)";
    /// Record batches waiting to be profiled; beyond, ingest answers 429.
    queue_capacity: usize = 64,
        env "DRIFTD_QUEUE_CAPACITY", read values::count, show values::show_display,
        secret false,
        help "record batches waiting to be profiled before 429 (default 64)";
    /// Request bytes waiting to be profiled, all batches together; beyond, ingest answers 429.
    /// This bounds the queue's memory, whatever the batch sizes.
    queue_bytes: usize = 16 << 20,
        env "DRIFTD_QUEUE_BYTES", read values::byte_budget, show values::show_display,
        secret false,
        help "request bytes waiting to be profiled, all batches together, before 429 (default 16777216)";
    /// Memory the open windows of every dataset and the queued requests may hold together,
    /// estimated from their sketches; beyond, ingest answers 503 until windows close. Sized
    /// for a sidecar: a 100-feature window costs a few MiB (docs/performance.md).
    max_memory: usize = 256 << 20,
        env "DRIFTD_MAX_MEMORY", read values::count, show values::show_display,
        secret false,
        help "memory open windows and queued requests may hold before ingest answers 503 (default 268435456)";
    max_datasets: usize = 100,
        env "DRIFTD_MAX_DATASETS", read values::count, show values::show_display,
        secret false,
        help "datasets accepted (default 100)";
    max_features: usize = 1000,
        env "DRIFTD_MAX_FEATURES", read values::count, show values::show_display,
        secret false,
        help "features per dataset (default 1000)";
    /// Features per dataset that get their own metric series.
    metrics_max_features: usize = 200,
        env "DRIFTD_METRICS_MAX_FEATURES", read values::count, show values::show_display,
        secret false,
        help "features per dataset exported as metric series (default 200)";
    /// Counter names per dataset (both stages together).
    max_counters: usize = 200,
        env "DRIFTD_MAX_COUNTERS", read values::count, show values::show_display,
        secret false,
        help "counter names per dataset, offline and online together (default 200)";
    /// A counter seen on one side only for this long is reported as unmapped.
    counter_unmapped_after: Duration = Duration::from_secs(86_400),
        env "DRIFTD_COUNTER_UNMAPPED_AFTER", read values::duration, show values::show_duration,
        secret false,
        help "a counter seen on one side only this long is reported unmapped (default 1d)";
    /// Online counter totals and parity ratios cover this much recent time.
    parity_window: Duration = Duration::from_secs(3_600),
        env "DRIFTD_PARITY_WINDOW", read values::duration, show values::show_duration,
        secret false,
        help "recent online counters compared with the latest run (default 1h)";
    /// The record field holding the id that records are hash-sampled by for the training/serving
    /// skew join (docs/skew.md).
    skew_id_field: String = crate::profile::sample::DEFAULT_ID_FIELD.to_owned(),
        env "DRIFTD_SKEW_ID_FIELD", read values::field_name, show values::show_display,
        secret false,
        help "record field holding the id sampled for the skew join (default _id)";
    /// Share of ids (0 to 1) eligible for the skew sample; 0 turns sampling off.
    skew_sample_rate: f64 = 1.0,
        env "DRIFTD_SKEW_SAMPLE_RATE", read values::share, show values::show_display,
        secret false,
        help "share of ids sampled for the skew join, by hash (default 1; 0 turns it off)";
    /// Ids kept per online window and per offline run for the skew join: those with the
    /// smallest hashes.
    skew_sample_rows: usize = crate::profile::sample::DEFAULT_MAX_ROWS,
        env "DRIFTD_SKEW_SAMPLE_ROWS", read values::count, show values::show_display,
        secret false,
        help "ids sampled per window and per run for the skew join (default 20000)";
    /// Share of ingested records (0 to 1) that become `record` events on the ingest span, with
    /// their feature values as attributes; 0 turns them off.
    trace_record_sample_rate: f64 = 0.0,
        env "DRIFTD_TRACE_RECORD_SAMPLE_RATE", read values::share, show values::show_display,
        secret false,
        help "share of records (0 to 1) sent as span events with their values (default 0, off)";
    /// Feature values per `record` event; further features are left out.
    trace_record_max_attributes: usize = 64,
        env "DRIFTD_TRACE_RECORD_MAX_ATTRIBUTES", read values::record_attributes,
        show values::show_display, secret false,
        help "feature values per sampled record event (default 64, at most 1000)";
    /// Slack incoming webhook: with it alone, any drifted feature alerts there.
    slack_webhook_url: Option<Secret> = None,
        env "DRIFTD_SLACK_WEBHOOK_URL", read values::http_url,
        show values::show_optional_secret, secret true,
        help "Slack incoming webhook (a secret); alone, it alerts on any drift";
    /// Generic webhook and the key its bodies are signed with (HMAC-SHA256).
    webhook_url: Option<Secret> = None,
        env "DRIFTD_WEBHOOK_URL", read values::http_url, show values::show_optional_secret,
        secret true,
        help "generic webhook receiving alert JSON (a secret)";
    webhook_secret: Option<Secret> = None,
        env "DRIFTD_WEBHOOK_SECRET", read values::secret, show values::show_optional_secret,
        secret true,
        help "key for the webhook's HMAC-SHA256 signature header (a secret)";
    /// Alertmanager's base URL; alerts go to `POST /api/v2/alerts`.
    alertmanager_url: Option<Secret> = None,
        env "DRIFTD_ALERTMANAGER_URL", read values::http_url,
        show values::show_optional_secret, secret true,
        help "Alertmanager base URL, e.g. http://alertmanager:9093";
    /// The default `for:` of alert rules: how long a condition must hold before it fires.
    alert_for: Duration = Duration::from_secs(300),
        env "DRIFTD_ALERT_FOR", read values::duration_or_zero, show values::show_duration,
        secret false,
        help "how long a condition holds before its alert fires (default 5m)";
    /// Link templates for notifications; `{dataset}` is replaced by the dataset's name.
    grafana_url: Option<String> = None,
        env "DRIFTD_GRAFANA_URL", read values::text, show values::show_text, secret false,
        help "link template for notifications, {dataset} replaced";
    honeycomb_url: Option<String> = None,
        env "DRIFTD_HONEYCOMB_URL", read values::text, show values::show_text, secret false,
        help "link template for notifications, {dataset} replaced";
}

impl ServeConfig {
    /// Every token the server accepts: `api_token` (named "api_token", every scope), then the
    /// config file's. Empty when none is configured.
    pub fn tokens(&self) -> crate::auth::Tokens {
        use crate::auth::{Scope, Token, Tokens};
        let mut tokens: Vec<Token> = self
            .api_token
            .iter()
            .map(|t| Token::from_secret("api_token", Scope::ALL.to_vec(), t.expose()))
            .collect();
        tokens.extend(self.file_tokens.iter().cloned());
        Tokens::new(tokens)
    }
}

/// Which listeners serve HTTPS when `tls_cert` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsListeners {
    All,
    /// `listen` only; the probe listener stays plain HTTP.
    Api,
    /// `metrics_listen` only, e.g. a sidecar whose API stays on loopback.
    Metrics,
}

impl fmt::Display for TlsListeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsListeners::All => "all",
            TlsListeners::Api => "api",
            TlsListeners::Metrics => "metrics",
        })
    }
}

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
    /// Reads a YAML config file: a map of setting names to values. Every unknown setting is
    /// reported, each with its line and column, beside the layer of the settings it knows (so
    /// their values are checked too, and every problem is reported at once).
    pub fn from_file(path: &Path) -> (Layer, Vec<ConfigError>) {
        match Self::read_file(path) {
            Ok(read) => read,
            Err(errors) => (Layer::default(), errors),
        }
    }

    fn read_file(path: &Path) -> Result<(Layer, Vec<ConfigError>), Vec<ConfigError>> {
        let origin = |at: Option<(usize, usize)>| {
            let file = Source::File(path.to_owned()).to_string();
            match at {
                Some((line, column)) => format!("{file}, line {line} column {column}"),
                None => file,
            }
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![ConfigError {
                setting: "config".into(),
                origin: origin(None),
                message: format!("cannot read: {e}"),
            }]
        })?;
        let parse_error = |e: serde_saphyr::Error| {
            let at = e
                .location()
                .map(|l| (l.line() as usize, l.column() as usize));
            vec![ConfigError {
                setting: "config".into(),
                origin: origin(at),
                message: first_line(&e.to_string()),
            }]
        };
        let map = serde_saphyr::from_str::<Option<BTreeMap<String, Spanned<FileValue>>>>(&text)
            .map_err(parse_error)?
            .unwrap_or_default();
        let mut layer = Layer::default();
        let mut errors = Vec::new();
        for (name, value) in map {
            let at = (
                value.referenced.line() as usize,
                value.referenced.column() as usize,
            );
            let problem = match (SETTINGS.iter().find(|(s, _, _)| *s == name), value.value) {
                (Some((setting, _, _)), FileValue::Text(text)) => {
                    *layer.slot(setting).expect("a declared setting") = Some(text);
                    layer.locations.insert(setting, at);
                    continue;
                }
                (Some(_), FileValue::Nested) => "expects one value, not a list or a mapping".into(),
                (None, FileValue::Nested) if name == "auth" => {
                    let section =
                        serde_saphyr::from_str::<values::AuthOnly>(&text).map_err(parse_error)?;
                    layer.auth = section.auth.map(|a| (a, at));
                    continue;
                }
                (None, FileValue::Text(_)) if name == "auth" => {
                    "must be a mapping, e.g. auth: {tokens: [{name: …, scopes: […], token: …}]}"
                        .into()
                }
                (None, _) => unknown_setting(&name),
            };
            errors.push((
                at,
                ConfigError {
                    message: problem,
                    setting: crate::format::truncate_chars(&name, 64),
                    origin: origin(Some(at)),
                },
            ));
        }
        errors.sort_by_key(|(at, _)| *at);
        Ok((layer, errors.into_iter().map(|(_, e)| e).collect()))
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
                Some((setting, _, _)) => {
                    *layer.slot(setting).expect("a declared setting") = Some(value)
                }
                None => unknown.push(name),
            }
        }
        (layer, unknown)
    }
}

/// "unknown setting; did you mean `window`?" when a known name is one or two edits away.
fn unknown_setting(name: &str) -> String {
    match crate::format::did_you_mean(name, SETTINGS.iter().map(|(setting, _, _)| *setting)) {
        Some(hint) => format!("unknown setting; {hint}"),
        None => "unknown setting".to_owned(),
    }
}

/// serde-saphyr's message without the snippet under it, its "error: " prefix and its own copy
/// of the location (reported once, in the origin).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.split_once(": ") {
        Some((at, rest)) if at.starts_with("line ") => rest.to_owned(),
        _ => line.to_owned(),
    }
}

/// Applies `layers` (lowest first) over the defaults.
pub fn resolve(layers: Vec<(Source, Layer)>) -> Result<ServeConfig, Vec<ConfigError>> {
    let mut config = ServeConfig::default();
    let mut errors = Vec::new();
    let mut layers = layers;
    for (source, layer) in &mut layers {
        if let Some((section, (line, column))) = layer.auth.take() {
            match section.tokens() {
                Ok(tokens) => config.file_tokens = tokens,
                Err(problems) => errors.extend(problems.into_iter().map(|message| ConfigError {
                    setting: "auth".into(),
                    origin: format!("{source}, line {line} column {column}"),
                    message,
                })),
            }
        }
        for (setting, _, _) in SETTINGS {
            let Some(value) = layer.slot(setting).and_then(Option::take) else {
                continue;
            };
            if let Err(message) = apply(&mut config, setting, &value) {
                let origin = match (&*source, layer.locations.get(setting)) {
                    (Source::File(_), Some((line, column))) => {
                        format!("{source}, line {line} column {column}")
                    }
                    _ => source.to_string(),
                };
                errors.push(ConfigError {
                    setting: (*setting).to_owned(),
                    origin,
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
    errors.extend(cross_checks(&config));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(errors)
    }
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
    fn skew_sampling_settings_are_read_and_bounded() {
        let (env, _) = Layer::from_env([
            ("DRIFTD_SKEW_ID_FIELD".to_owned(), "request_id".to_owned()),
            ("DRIFTD_SKEW_SAMPLE_RATE".to_owned(), "0.5".to_owned()),
            ("DRIFTD_SKEW_SAMPLE_ROWS".to_owned(), "500".to_owned()),
        ]);
        let c = resolve(vec![(Source::Environment, env)]).unwrap();
        assert_eq!(
            (
                c.skew_id_field.as_str(),
                c.skew_sample_rate,
                c.skew_sample_rows
            ),
            ("request_id", 0.5, 500)
        );
        let bad = Layer {
            skew_id_field: Some(String::new()),
            skew_sample_rate: Some("2".into()),
            skew_sample_rows: Some("0".into()),
            ..Layer::default()
        };
        let errors = resolve(vec![(Source::Environment, bad)]).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "skew_id_field (environment): \"\": must not be empty",
                "skew_sample_rate (environment): \"2\": must be a number from 0 to 1, e.g. 0.001",
                "skew_sample_rows (environment): \"0\": must be at least 1",
            ]
        );
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
    fn tls_needs_both_files_and_deadlines_are_read() {
        let (env, _) = Layer::from_env([
            (
                "DRIFTD_TLS_CERT".to_owned(),
                "/etc/driftd/tls.crt".to_owned(),
            ),
            ("DRIFTD_HEADER_TIMEOUT".to_owned(), "5s".to_owned()),
            ("DRIFTD_BODY_MIN_BYTES".to_owned(), "0".to_owned()),
        ]);
        let errors = resolve(vec![(Source::Environment, env)]).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "body_min_bytes (environment): \"0\": must be at least 1",
                "tls_key (resolved configuration): must be set with tls_cert: TLS needs both the certificate and its key",
            ]
        );
        let (env, _) = Layer::from_env([
            (
                "DRIFTD_TLS_CERT".to_owned(),
                "/etc/driftd/tls.crt".to_owned(),
            ),
            (
                "DRIFTD_TLS_KEY".to_owned(),
                "/etc/driftd/tls.key".to_owned(),
            ),
            ("DRIFTD_TLS_LISTENERS".to_owned(), "api".to_owned()),
            ("DRIFTD_IDLE_TIMEOUT".to_owned(), "2m".to_owned()),
            ("DRIFTD_MAX_CONNECTIONS".to_owned(), "300".to_owned()),
        ]);
        let c = resolve(vec![(Source::Environment, env)]).unwrap();
        assert_eq!(c.tls_key, Some(PathBuf::from("/etc/driftd/tls.key")));
        let metrics_only = ServeConfig {
            tls_listeners: TlsListeners::Metrics,
            ..c.clone()
        };
        assert_eq!(
            cross_checks(&metrics_only)[0].to_string(),
            "tls_listeners (resolved configuration): is metrics, but metrics_listen is not set: \
             nothing would serve HTTPS"
        );
        assert_eq!(c.tls_listeners, TlsListeners::Api);
        assert_eq!(c.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.max_connections, 300);
        let d = ServeConfig::default();
        assert_eq!(
            (
                d.header_timeout,
                d.idle_timeout,
                d.body_timeout,
                d.body_min_bytes
            ),
            (
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(10),
                1024
            )
        );
        assert_eq!(
            (d.max_connections, d.tls_listeners, d.tls_cert),
            (1024, TlsListeners::All, None)
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let c = ServeConfig {
            database_url: Secret::new("postgres://u:hunter2@localhost/db"),
            slack_webhook_url: Some(Secret::new("https://hooks.slack.com/services/T/B/hunter3")),
            webhook_secret: Some(Secret::new("hunter4")),
            nats_url: Some(Secret::new("nats://u:hunter6@nats:4222")),
            ..ServeConfig::default()
        };
        let dump = format!("{c:?}");
        assert!(!dump.contains("hunter"), "{dump}");
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

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("driftd.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn every_unknown_setting_of_a_file_is_reported_once_with_its_place() {
        let (_dir, path) =
            file("listen: 127.0.0.1:9000\nwindw: 30s\nretention: 2d\nfoo: 1\nmax_featurs: 10\n");
        let (_, errors) = Layer::from_file(&path);
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let at = |line: usize| format!("config file {}, line {line} column", path.display());
        assert_eq!(text.len(), 3, "{text:?}");
        assert!(
            text[0].starts_with(&format!(
                "windw ({} 8): unknown setting; did you mean `window`?",
                at(2)
            )),
            "{}",
            text[0]
        );
        assert!(
            text[1].starts_with(&format!("foo ({} 6): unknown setting", at(4))),
            "{}",
            text[1]
        );
        assert!(!text[1].contains("did you mean"), "{}", text[1]);
        assert!(
            text[2].contains("did you mean `max_features`?"),
            "{}",
            text[2]
        );
        for line in &text {
            assert_eq!(line.matches("line ").count(), 1, "one location: {line}");
        }
    }

    #[test]
    fn a_bad_value_in_a_file_names_its_line() {
        let (_dir, path) = file("window: 30s\nmax_features: none\n");
        let (layer, errors) = Layer::from_file(&path);
        assert!(errors.is_empty(), "{errors:?}");
        let errors = resolve(vec![(Source::File(path.clone()), layer)]).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            format!(
                "max_features (config file {}, line 2 column 15): \"none\": not a positive whole number",
                path.display()
            )
        );
    }

    #[test]
    fn printed_config_reads_back_to_the_same_settings() {
        let config = ServeConfig {
            window: Duration::from_secs(90),
            rules: Some(PathBuf::from("rules dir/ünïcode")),
            grafana_url: Some("https://grafana/d/x?var-dataset={dataset}&a=\"b\"".into()),
            trace_record_sample_rate: 0.125,
            slack_webhook_url: Some(Secret::new("https://hooks.slack.com/services/T/B/hunter3")),
            database_url: Secret::new("postgres://u:hunter2@db/x"),
            nats_url: Some(Secret::new("nats://u:hunter6@nats:4222")),
            nats_stream: "ingest_b".into(),
            ..ServeConfig::default()
        };
        let yaml = config.to_yaml();
        assert!(!yaml.contains("hunter"), "{yaml}");
        assert!(yaml.contains("# nats_url: [redacted]"), "{yaml}");
        assert!(yaml.contains("# slack_webhook_url: [redacted]"), "{yaml}");
        let (_dir, path) = file(&yaml);
        let (layer, errors) = Layer::from_file(&path);
        assert!(errors.is_empty(), "{errors:?}");
        let back = resolve(vec![(Source::File(path), layer)]).unwrap();
        // Secrets are not printed, so they come back as defaults; everything else is equal.
        let expected = ServeConfig {
            slack_webhook_url: None,
            nats_url: None,
            database_url: ServeConfig::default().database_url,
            ..config
        };
        assert_eq!(format!("{back:?}"), format!("{expected:?}"));
        assert_eq!(back.rules, expected.rules);
        assert_eq!(back.grafana_url, expected.grafana_url);
        assert_eq!(back.window, Duration::from_secs(90));
    }
}
