//! Shared test helpers: exact reference computations, data writers, and running the binary.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray};
use driftd::profile::{FeatureProfile, Value};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// A value owned by the test, for generating data.
#[derive(Debug, Clone, PartialEq)]
pub enum Owned {
    Null,
    Num(f64),
    Bool(bool),
    Str(String),
}

impl Owned {
    pub fn as_value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Num(x) => Value::Number(*x),
            Owned::Bool(b) => Value::Bool(*b),
            Owned::Str(s) => Value::Str(s),
        }
    }
}

pub fn profile_of(values: &[Owned]) -> FeatureProfile {
    let mut f = FeatureProfile::default();
    values.iter().for_each(|v| f.observe(v.as_value()));
    f
}

/// Exact statistics of the finite numbers in `values`.
pub struct ExactNumeric {
    pub sorted: Vec<f64>,
    pub mean: f64,
    pub stddev: Option<f64>,
}

pub fn exact_numeric(values: &[Owned]) -> ExactNumeric {
    let mut sorted: Vec<f64> = values
        .iter()
        .filter_map(|v| match v {
            Owned::Num(x) if x.is_finite() => Some(*x),
            _ => None,
        })
        .collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    // Two-pass in a wider accumulator: the reference must be more exact than what it checks.
    let mean = sorted.iter().sum::<f64>() / n;
    let stddev = (sorted.len() > 1).then(|| {
        let ss: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / (n - 1.0)).sqrt()
    });
    ExactNumeric {
        sorted,
        mean,
        stddev,
    }
}

impl ExactNumeric {
    /// The normalised ranks just below and at `v`: (#x < v, #x <= v) / n.
    pub fn rank_interval(&self, v: f64) -> (f64, f64) {
        let n = self.sorted.len() as f64;
        let below = self.sorted.partition_point(|x| *x < v) as f64;
        let at_or_below = self.sorted.partition_point(|x| *x <= v) as f64;
        (below / n, at_or_below / n)
    }
}

/// Asserts that `v`, reported as the `q` quantile, lies within `eps` normalised rank of it.
pub fn assert_quantile(exact: &ExactNumeric, q: f64, v: f64, eps: f64, what: &str) {
    let (lo, hi) = exact.rank_interval(v);
    assert!(
        lo - eps <= q && q <= hi + eps,
        "{what}: quantile {q} reported as {v}, whose exact rank is {lo}..{hi} (allowed error {eps})"
    );
}

pub fn rel_close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
}

pub fn driftd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(args)
        .output()
        .expect("driftd runs")
}

pub fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "driftd failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A column for `write_parquet`.
pub enum Column {
    F64(Vec<Option<f64>>),
    I64(Vec<Option<i64>>),
    Bool(Vec<Option<bool>>),
    Str(Vec<Option<String>>),
}

pub fn write_parquet(path: &Path, columns: Vec<(&str, Column)>, row_group_rows: usize) {
    let arrays: Vec<(&str, ArrayRef)> = columns
        .into_iter()
        .map(|(name, c)| {
            let array: ArrayRef = match c {
                Column::F64(v) => Arc::new(Float64Array::from(v)),
                Column::I64(v) => Arc::new(Int64Array::from(v)),
                Column::Bool(v) => Arc::new(BooleanArray::from(v)),
                Column::Str(v) => Arc::new(StringArray::from(v)),
            };
            (name, array)
        })
        .collect();
    let batch = RecordBatch::try_from_iter(arrays).expect("columns of one length");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(row_group_rows))
        .build();
    let file = std::fs::File::create(path).expect("create parquet");
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
    writer.write(&batch).expect("write batch");
    writer.close().expect("close parquet");
}

/// Which database a server test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub const BOTH: [Db; 2] = [Db::Sqlite, Db::Postgres];

/// A fresh, empty database: a SQLite file in `dir` (removed with `dir`), or a new PostgreSQL
/// database on the local server (trust auth), dropped when the guard is dropped — also when the
/// test fails. PostgreSQL missing fails the test under `CI=true`; elsewhere the caller gets
/// `None` and skips that backend, saying so.
pub async fn fresh_database(db: Db, dir: &Path) -> Option<TestDb> {
    match db {
        Db::Sqlite => Some(TestDb {
            url: format!("sqlite://{}", dir.join("driftd.db").display()),
            postgres: None,
        }),
        Db::Postgres => {
            use sqlx::Connection;
            let admin = POSTGRES_ADMIN;
            let mut conn = match sqlx::PgConnection::connect(admin).await {
                Ok(c) => c,
                Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                    panic!(
                        "PostgreSQL is required under CI=true and is not reachable at {admin}: {e}"
                    )
                }
                Err(e) => {
                    eprintln!("skipping PostgreSQL: {e}");
                    return None;
                }
            };
            let name = format!("driftd_test_{}", uuid_like());
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            Some(TestDb {
                url: format!("postgres://postgres@127.0.0.1:5432/{name}"),
                postgres: Some(name),
            })
        }
    }
}

const POSTGRES_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A test database's URL (derefs to `&str`); a PostgreSQL database is dropped on drop.
#[derive(Debug)]
pub struct TestDb {
    url: String,
    postgres: Option<String>,
}

impl std::ops::Deref for TestDb {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(name) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // with its own runtime. FORCE ends the connections a server under test still holds.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(POSTGRES_ADMIN)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| format!("drop {name}: {e}"))?;
                Ok::<_, String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database left behind: {e}"),
            Err(_) => eprintln!("test database left behind: the dropping thread panicked"),
        }
    }
}

/// A port free on 127.0.0.1 now (for a child process that cannot be handed a listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// 16 random lowercase letters, for names of test databases and streams.
pub fn uuid_like() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// A running `driftd serve` inside the test process.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `GET path`, its body as JSON.
    pub async fn get_json(&self, path: impl AsRef<str>) -> serde_json::Value {
        let r = self
            .client
            .get(self.url(path.as_ref()))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }

    /// The value of one series (`name{labels}`, as exposed) in `GET /metrics`.
    pub async fn metric(&self, name_and_labels: &str) -> Option<f64> {
        series(&self.metrics().await, name_and_labels)
    }

    /// `method path` with a JSON body.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: impl AsRef<str>,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .request(method, self.url(path.as_ref()))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server the way SIGTERM does and waits for it to flush.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle
                .await
                .expect("server task")
                .expect("server ends cleanly");
        }
    }
}

/// Test settings: short windows and intervals so tests see evaluations within a second or two.
pub fn test_config(database_url: &str) -> driftd::config::ServeConfig {
    use std::time::Duration;
    driftd::config::ServeConfig {
        database_url: driftd::config::Secret::new(database_url),
        window: Duration::from_millis(1500),
        rollup: Duration::from_secs(60),
        eval_interval: Duration::from_millis(200),
        flush_interval: Duration::from_millis(100),
        shutdown_grace: Duration::from_secs(5),
        // The shortest: a replica that died holding the lease is replaced within 3 s.
        leader_lease_ttl: Duration::from_secs(3),
        ..driftd::config::ServeConfig::default()
    }
}

/// Binds port 0 and serves `config` until `TestApp::stop`.
pub async fn spawn_app(config: driftd::config::ServeConfig) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(driftd::serve::run(listener, config, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    // Ready once the database answers.
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("http://{address}/readyz")).send().await
            && r.status().is_success()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    TestApp {
        address,
        client,
        stop: Some(stop),
        handle: Some(handle),
    }
}

/// Polls `url` until `done` accepts the JSON it returns, for up to `seconds`.
pub async fn wait_for_json(
    client: &reqwest::Client,
    url: &str,
    seconds: u64,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
            && let Ok(v) = r.json::<serde_json::Value>().await
            && done(&v)
        {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{url} did not reach the expected state in {seconds} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The sample file committed with driftd.
pub fn sample() -> String {
    format!(
        "{}/samples/search_ranking_inputs.csv",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The sample file's profile file, as a pipeline step would upload it.
pub fn reference_profile(dir: &tempfile::TempDir) -> Vec<u8> {
    let out = dir.path().join("ref.driftprof");
    let run = driftd(&["profile", &sample(), "--out", out.to_str().unwrap()]);
    assert!(run.status.success(), "{}", stderr(&run));
    std::fs::read(out).unwrap()
}

/// The value of one series (`name{labels}`, as exposed) in /metrics text; `None` when absent.
pub fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

/// Whether a database of that name exists on the local PostgreSQL server.
async fn postgres_has(name: &str) -> bool {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(POSTGRES_ADMIN).await.unwrap();
    sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_databases_are_dropped_with_their_guard_even_while_in_use() {
    let dir = tempfile::TempDir::new().unwrap();
    let Some(db) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let name = db.postgres.clone().unwrap();
    assert!(postgres_has(&name).await, "{name} was not created");
    // A connection still open (as a server under test holds) does not keep it alive.
    use sqlx::Connection;
    let open = sqlx::PgConnection::connect(&db).await.unwrap();
    drop(db);
    assert!(!postgres_has(&name).await, "{name} is still there");
    drop(open);
}
