//! Problems of settings together, which no layer alone can see.

use super::{ConfigError, ServeConfig, TlsListeners};

pub(super) fn cross_checks(config: &ServeConfig) -> Vec<ConfigError> {
    let mut errors = Vec::new();
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
    if !config.listen.ip().is_loopback()
        && config.tokens().is_empty()
        && !config.allow_unauthenticated
    {
        errors.push(ConfigError {
            setting: "listen".into(),
            origin: "resolved configuration".into(),
            message: format!(
                "{} is reachable beyond this machine and no API token is configured: anyone \
                 reaching it could pin references, silence alerts and overwrite runs. Set \
                 DRIFTD_API_TOKEN (or auth.tokens in the config file), listen on 127.0.0.1, \
                 or set allow_unauthenticated: true (unsafe)",
                config.listen
            ),
        });
    }
    if config.nats_url.is_some()
        && config.nats_ack_wait <= config.flush_interval + config.database_timeout
    {
        errors.push(ConfigError {
            setting: "nats_ack_wait".into(),
            origin: "resolved configuration".into(),
            message: format!(
                "{} is not over flush_interval + database_timeout ({}): batches folded but not \
                 yet written would be redelivered to another replica and counted twice",
                humantime::format_duration(config.nats_ack_wait),
                humantime::format_duration(config.flush_interval + config.database_timeout)
            ),
        });
    }
    if config.tls_cert.is_some() != config.tls_key.is_some() {
        let (missing, given) = match config.tls_cert {
            Some(_) => ("tls_key", "tls_cert"),
            None => ("tls_cert", "tls_key"),
        };
        errors.push(ConfigError {
            setting: missing.into(),
            origin: "resolved configuration".into(),
            message: format!(
                "must be set with {given}: TLS needs both the certificate and its key"
            ),
        });
    }
    if config.tls_cert.is_some()
        && config.tls_listeners == TlsListeners::Metrics
        && config.metrics_listen.is_none()
    {
        errors.push(ConfigError {
            setting: "tls_listeners".into(),
            origin: "resolved configuration".into(),
            message: "is metrics, but metrics_listen is not set: nothing would serve HTTPS".into(),
        });
    }
    if config.window > config.rollup {
        errors.push(ConfigError {
            setting: "rollup".into(),
            origin: "resolved configuration".into(),
            message: "must be at least as long as window".into(),
        });
    }
    errors
}
