//! Logging: JSON lines when stderr is not a terminal (one event per line, stable field names),
//! readable text on a terminal. `DRIFTD_LOG` sets the filter (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    // sqlx logs every statement at info: keep it to warnings.
    let filter =
        EnvFilter::try_from_env("DRIFTD_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}
