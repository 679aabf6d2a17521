//! Replicas as real processes: three `driftd serve` processes of the built binary on one fresh
//! PostgreSQL database count every record once, answer one verdict and send one Slack message
//! for one drift; when the leader is killed (`kill -9`) or paused (SIGSTOP) another takes over
//! within the lease's bound in a higher term, the paused one's late writes are refused when it
//! resumes (SIGCONT), and no message is sent twice.
//!
//! Each process writes its JSON log to a file of its own, printed when a test fails; every
//! process is killed and waited for when its guard drops, also when the test panics.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use sqlx::Connection;
use tempfile::TempDir;

use crate::alerts::{SlackStandIn, drifted_records};
use crate::helpers::{Db, TestDb, fresh_database, reference_profile, series};

/// The shortest lease there is: a dead leader is replaced within 4 s.
const LEASE_TTL: Duration = Duration::from_secs(3);
const EVAL_INTERVAL: Duration = Duration::from_millis(250);
/// What a loaded 2-core machine may add to a bound: scheduling, a slow statement, polling.
const SLACK: Duration = Duration::from_secs(2);
/// A dead or stopped leader's lease lapses unrenewed within its time to live, and the others
/// try every third of it: another leads within this (ttl + ttl/3 + SLACK).
const TAKEOVER: Duration =
    Duration::from_secs(LEASE_TTL.as_secs() + LEASE_TTL.as_secs() / 3 + SLACK.as_secs());
const REPLICAS: usize = 3;
const BATCHES: usize = 60;
const BATCH: usize = 100;
const DATASET: &str = "search";
const SENT: &str = r#"driftd_notifications_total{notifier="slack",outcome="sent"} "#;
const REFUSED: &str = "driftd_leader_writes_refused_total ";

/// One `driftd serve` child process; killed (SIGKILL) and waited for on drop.
struct Replica {
    writer: String,
    address: String,
    child: Child,
    log: PathBuf,
    client: reqwest::Client,
}

impl Replica {
    /// Starts `driftd serve` on port 0 and waits for the address it logs.
    async fn start(dir: &Path, writer: &str, database: &str, slack: &str) -> Replica {
        let log = dir.join(format!("{writer}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_driftd"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        // Nothing of the test's own environment changes what is tested.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("DRIFTD_") || name.starts_with("OTEL_") {
                command.env_remove(&*name);
            }
        }
        command.envs([
            ("DRIFTD_WRITER_ID", writer),
            ("DRIFTD_LOG_FORMAT", "json"),
            ("DRIFTD_FLUSH_INTERVAL", "100ms"),
            ("DRIFTD_EVAL_INTERVAL", "250ms"),
            ("DRIFTD_LEADER_LEASE_TTL", "3s"),
            // One window holds every record of a test: the verdict is about all of them.
            ("DRIFTD_WINDOW", "60s"),
            ("DRIFTD_ALERT_FOR", "0s"),
            ("DRIFTD_SLACK_WEBHOOK_URL", slack),
            // A statement held up by a test's lock and a pause together stays well within it.
            ("DRIFTD_DATABASE_TIMEOUT", "60s"),
        ]);
        let child = command.spawn().expect("driftd starts");
        let mut replica = Replica {
            writer: writer.to_owned(),
            address: String::new(),
            child,
            log,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        replica.address = loop {
            let serving = replica.log_lines().into_iter().find_map(|line| {
                let listen = line["listen"].as_str()?.to_owned();
                (line["message"] == "driftd serving").then_some(listen)
            });
            if let Some(address) = serving {
                break address;
            }
            if let Some(status) = replica.child.try_wait().unwrap() {
                panic!("{writer} exited before serving: {status}");
            }
            assert!(Instant::now() < deadline, "{writer} is not serving");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        replica
    }

    fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).unwrap()
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child, which is not yet waited for (so its pid is not reused).
        let done = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(done, 0, "kill({}, {signal})", self.pid());
    }

    /// `kill -9`, and waits for it to be gone.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
    }

    fn log_lines(&self) -> Vec<Json> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `GET path`: the status and the body as JSON (`null` when it is not).
    async fn get(&self, path: &str) -> (u16, Json) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Json::Null))
    }

    /// `/readyz`'s view of the lease, whatever its status: readiness is the database health
    /// check's, which a loaded machine or a pause (SIGSTOP) can time out for a moment.
    async fn lease_view(&self) -> Json {
        self.get("/readyz").await.1["leader"].clone()
    }

    /// Waits until this replica knows that `term` is another's (a renewal found it so): its
    /// view of the lease.
    async fn knows_another_leads(&self, term: i64) -> Json {
        poll("the old leader knows who leads", 10, || async move {
            let v = self.lease_view().await;
            (v["this_replica"] == false && v["term"] == term).then_some(v)
        })
        .await
    }

    /// Waits until `/readyz` answers 200 again.
    async fn ready_again(&self) {
        let what = format!("{} ready again", self.writer);
        poll(&what, 10, || async move {
            (self.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    }

    async fn metric(&self, name_and_labels: &str) -> Option<f64> {
        let r = self.client.get(self.url("/metrics")).send().await.unwrap();
        series(&r.text().await.unwrap(), name_and_labels)
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "---- log of {} ----\n{log}---- end of {} ----",
                self.writer, self.writer
            );
        }
    }
}

/// Three replicas on one fresh database, with a Slack stand-in. Fields drop in order: the
/// processes first, then the receiver, the database and the directory.
struct Cluster {
    replicas: Vec<Replica>,
    slack: SlackStandIn,
    db: TestDb,
    dir: TempDir,
}

impl Cluster {
    /// `None` without PostgreSQL outside CI (see `fresh_database`).
    async fn start() -> Option<Cluster> {
        let dir = TempDir::new().unwrap();
        let db = fresh_database(Db::Postgres, dir.path()).await?;
        let slack = SlackStandIn::start(&[]).await;
        let mut replicas = Vec::new();
        for i in 0..REPLICAS {
            let writer = format!("replica-{i}");
            replicas.push(Replica::start(dir.path(), &writer, &db, &slack.url).await);
        }
        Some(Cluster {
            replicas,
            slack,
            db,
            dir,
        })
    }

    /// Three replicas that counted the records of [`Cluster::feed`], judged them and sent the
    /// one alert; and who leads: its index, writer id and term.
    async fn alerted() -> Option<(Cluster, usize, String, i64)> {
        let cluster = Cluster::start().await?;
        cluster.feed().await;
        cluster.verdict(&cluster.replicas[0], 0).await;
        cluster.alert_sent(&[]).await;
        let (leader, holder, term) = cluster.leader(&[], 0, 10).await;
        Some((cluster, leader, holder, term))
    }

    /// Waits for a replica not in `gone` to lead in the term after `term`, and asserts it did
    /// within [`TAKEOVER`] of `since`: its index, writer id and term, and how long it took.
    async fn taken_over(
        &self,
        gone: &[usize],
        term: i64,
        since: Instant,
    ) -> (usize, String, i64, Duration) {
        let (next, holder, next_term) = self.leader(gone, term, TAKEOVER.as_secs() + 5).await;
        let took = since.elapsed();
        assert!(
            took <= TAKEOVER,
            "takeover took {took:?}, over {TAKEOVER:?}"
        );
        assert_eq!(next_term, term + 1, "one change of holder, one term");
        (next, holder, next_term, took)
    }

    /// Asserts that no replica but those in `gone` wrote without the lease.
    async fn none_refused_but(&self, gone: &[usize]) {
        for (i, replica) in self.alive(gone) {
            let refused = replica.metric(REFUSED).await;
            assert_eq!(
                refused,
                Some(0.0),
                "replica-{i} never wrote without the lease"
            );
        }
    }

    /// The replicas not in `gone`.
    fn alive(&self, gone: &[usize]) -> Vec<(usize, &Replica)> {
        let all = self.replicas.iter().enumerate();
        all.filter(|(i, _)| !gone.contains(i)).collect()
    }

    /// 6,000 drifted records, 60 batches of 100 round-robin across the replicas, before any
    /// reference exists (nothing is judged on part of them); waits until every replica reads
    /// 6,000 online rows, then uploads the reference run and pins it.
    async fn feed(&self) {
        let records = drifted_records();
        for batch in 0..BATCHES {
            let replica = &self.replicas[batch % REPLICAS];
            let start = (batch * BATCH) % records.len();
            let body = json!({"records": &records[start..start + BATCH]});
            let r = replica
                .client
                .post(replica.url(&format!("/v1/datasets/{DATASET}/records")))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202, "batch {batch}");
            let answer: Json = r.json().await.unwrap();
            assert_eq!(answer["accepted"], BATCH, "batch {batch}: {answer}");
        }
        let total = (BATCHES * BATCH) as u64;
        let started = Instant::now();
        for replica in &self.replicas {
            let path = &format!("/v1/datasets/{DATASET}");
            poll(
                &format!("{} reads {total} rows", replica.writer),
                20,
                || async move {
                    let (_, body) = replica.get(path).await;
                    let rows = body["records"]["online"].as_u64();
                    assert!(
                        rows <= Some(total),
                        "{}: counted twice: {body}",
                        replica.writer
                    );
                    (rows == Some(total)).then_some(())
                },
            )
            .await;
        }
        eprintln!(
            "every replica read {total} rows {:?} after the last batch",
            started.elapsed()
        );

        let first = &self.replicas[0];
        let r = first
            .client
            .post(first.url(&format!("/v1/datasets/{DATASET}/profiles?run_id=train")))
            .body(reference_profile(&self.dir))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let r = first
            .client
            .put(first.url(&format!("/v1/datasets/{DATASET}/reference")))
            .json(&json!({"run_id": "train"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Polls the replicas not in `gone` until they agree on one holder and term and exactly
    /// one of them leads, in a term above `above`: its index, its writer id and the term.
    async fn leader(&self, gone: &[usize], above: i64, seconds: u64) -> (usize, String, i64) {
        poll("one agreed leader", seconds, || async move {
            let mut leading = Vec::new();
            let mut views = Vec::new();
            for (i, replica) in self.alive(gone) {
                let v = replica.lease_view().await;
                if v["this_replica"] == true {
                    leading.push(i);
                }
                views.push((v["holder"].clone(), v["term"].clone()));
            }
            let agree = views.windows(2).all(|w| w[0] == w[1]);
            let term = views[0].1.as_i64().unwrap_or(0);
            let [leader] = leading[..] else { return None };
            let holder = views[0].0.as_str()?.to_owned();
            (agree && term > above && holder == self.replicas[leader].writer)
                .then_some((leader, holder, term))
        })
        .await
    }

    /// The stored verdict, once it judges every record against the pinned reference.
    async fn verdict(&self, replica: &Replica, newer_than_ms: i64) -> Json {
        let path = &format!("/v1/datasets/{DATASET}/drift");
        let what = format!("{}: a verdict on every record", replica.writer);
        poll(&what, 20, || async move {
            let (status, v) = replica.get(path).await;
            let evaluated = v["evaluated_at_ms"].as_i64().unwrap_or(0);
            let pinned = v["reference"]["pinned"] == true;
            let all = v["current"]["rows"] == BATCHES * BATCH;
            (status == 200 && evaluated > newer_than_ms && pinned && all).then_some(v)
        })
        .await
    }

    /// Waits for the Slack message of the one alert, and until the alert says it was sent
    /// (stored after the receiver's 200, in the same transaction as the outbox entry).
    async fn alert_sent(&self, gone: &[usize]) -> Json {
        let got = self.slack.wait_for(1, 20).await;
        let text = got[0].1.to_string();
        assert!(
            text.contains("latency_ms") && text.contains(DATASET),
            "{text}"
        );
        for (_, replica) in self.alive(gone) {
            let what = format!("{}: the alert, sent", replica.writer);
            poll(&what, 20, || async move {
                let (_, body) = replica.get("/v1/alerts").await;
                let alerts = body["alerts"].as_array()?.clone();
                let [alert] = &alerts[..] else { return None };
                let sent = alert["last_delivery"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("slack: sent"));
                (sent && alert["state"] == "firing").then(|| alert.clone())
            })
            .await;
        }
        self.alive(gone)[0].1.get("/v1/alerts").await.1["alerts"][0].clone()
    }

    /// Lets two evaluations and a lease's time to live pass (any replica that was going to
    /// send again had its chance), then asserts the receiver still has one message.
    async fn one_message_still(&self, gone: &[usize]) {
        let quiet = Instant::now();
        let since = driftd::clock::now_ms();
        let (_, judge) = self.alive(gone)[0];
        // Two evaluations after now, read from the stored verdict: polled, not slept.
        let twice = since + 2 * EVAL_INTERVAL.as_millis() as i64;
        self.verdict(judge, twice).await;
        // Then a lease's time to live: nothing to poll for, the absence of a message is waited out.
        tokio::time::sleep(LEASE_TTL).await;
        eprintln!("quiet for {:?}", quiet.elapsed());
        let got = self.slack.received();
        assert_eq!(got.len(), 1, "one message for one alert: {got:?}");
        let (_, body) = judge.get("/v1/alerts").await;
        assert_eq!(body["alerts"].as_array().map(Vec::len), Some(1), "{body}");
    }
}

/// A transaction of the test's own holding `table` in ACCESS EXCLUSIVE mode, returned once one
/// backend (the leader's: no other replica runs such a statement) waits on it in a statement
/// like `waiting`; with that backend's pid. `COMMIT` on the connection releases it.
async fn lock_until_waiting(db: &str, table: &str, waiting: &str) -> (sqlx::PgConnection, i32) {
    let mut locker = sqlx::PgConnection::connect(db).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut locker)
        .await
        .unwrap();
    let mut watcher = sqlx::PgConnection::connect(db).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()
             AND wait_event_type = 'Lock' AND query LIKE $1",
        )
        .bind(waiting)
        .fetch_all(&mut watcher)
        .await
        .unwrap();
        if let [pid] = pids[..] {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the leader does not wait on {table}: {pids:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    watcher.close().await.unwrap();
    (locker, pid)
}

/// Polls `check` every 50 ms until it answers `Some`, for up to `seconds`.
async fn poll<T, F, Fut>(what: &str, seconds: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(done) = check().await {
            return done;
        }
        assert!(Instant::now() < deadline, "not within {seconds} s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The verdict without what changes from one read to the next (its age).
fn stable(mut verdict: Json) -> Json {
    verdict.as_object_mut().unwrap().remove("age_seconds");
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_count_every_record_once_and_send_one_message() {
    let Some(cluster) = Cluster::start().await else {
        return;
    };
    let cluster = &cluster;
    let started = Instant::now();
    cluster.feed().await;
    for replica in &cluster.replicas {
        let v = cluster.verdict(replica, 0).await;
        assert_eq!(
            v["drifted"],
            json!(["latency_ms"]),
            "{}: {v}",
            replica.writer
        );
        assert_eq!(v["reference"]["run_id"], "train", "{v}");
        assert_eq!(v["reference"]["pinned"], true, "{v}");
        assert_eq!(v["reference"]["rows"], 1000, "{v}");
    }
    // The same stored verdict from every replica: read until one evaluation is seen by all.
    let same = poll(
        "one evaluation read from every replica",
        10,
        || async move {
            let mut verdicts = Vec::new();
            for replica in &cluster.replicas {
                let (_, v) = replica.get(&format!("/v1/datasets/{DATASET}/drift")).await;
                verdicts.push(stable(v));
            }
            let at = |v: &Json| v["evaluated_at_ms"].clone();
            verdicts
                .iter()
                .all(|v| at(v) == at(&verdicts[0]))
                .then_some(verdicts)
        },
    )
    .await;
    assert_eq!(same[1], same[0], "replica-1 and replica-0");
    assert_eq!(same[2], same[0], "replica-2 and replica-0");
    let score = same[0]["features"]["latency_ms"]["score"].as_f64().unwrap();
    assert!(
        same[0]["features"]["latency_ms"]["drift"] == true && score > 0.2,
        "{}",
        same[0]
    );

    let alert = cluster.alert_sent(&[]).await;
    assert_eq!(alert["dataset"], DATASET, "{alert}");
    cluster.one_message_still(&[]).await;
    // Sent by one process (whichever delivered it), counted by that one alone.
    let mut sent = 0.0;
    for replica in &cluster.replicas {
        sent += replica.metric(SENT).await.unwrap_or(0.0);
    }
    assert_eq!(sent, 1.0);
    eprintln!(
        "three processes: 6,000 records counted once, one verdict (latency_ms score {score:.2}), \
         one message; {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_leads_within_the_lease_after_kill_9_of_the_leader() {
    let Some((mut cluster, leader, holder, term)) = Cluster::alerted().await else {
        return;
    };
    let killed_ms = driftd::clock::now_ms();
    let killed = Instant::now();
    cluster.replicas[leader].kill();
    let gone = [leader];
    let (next, next_holder, next_term, took) = cluster.taken_over(&gone, term, killed).await;
    eprintln!(
        "kill -9 of {holder} (term {term}): {next_holder} leads in term {next_term} after \
         {took:?} (bound {TAKEOVER:?}: ttl {LEASE_TTL:?} + ttl/3 + {SLACK:?})"
    );
    assert_ne!(next, leader);
    let leading = &cluster.replicas[next];
    assert_eq!(leading.metric("driftd_leader ").await, Some(1.0));
    assert_eq!(
        leading.metric("driftd_leader_term ").await,
        Some(next_term as f64)
    );

    // The new leader evaluates, finds the alert already firing and sent, and sends nothing.
    let v = cluster.verdict(leading, killed_ms).await;
    assert_eq!(v["drifted"], json!(["latency_ms"]), "{v}");
    cluster.one_message_still(&gone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_is_replaced_and_its_late_verdict_refused() {
    let Some((cluster, leader, holder, term)) = Cluster::alerted().await else {
        return;
    };
    let old = &cluster.replicas[leader];

    // Catch the leader in the middle of an evaluation, as a pause would: reading the pinned
    // reference waits on a lock this test holds (no lease lock is held meanwhile), and the
    // leader is stopped while it waits. Only the leader reads it: the test asks nothing else.
    let (mut locker, _) =
        lock_until_waiting(&cluster.db, "reference_pins", "%FROM reference_pins%").await;
    old.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    let gone = [leader];
    let (next, next_holder, next_term, took) = cluster.taken_over(&gone, term, stopped).await;
    eprintln!(
        "SIGSTOP of {holder} (term {term}): {next_holder} leads in term {next_term} after \
         {took:?} (bound {TAKEOVER:?})"
    );

    // The new leader's evaluation goes on past the reference once the lock is gone.
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    let unlocked_ms = driftd::clock::now_ms();
    let leading = &cluster.replicas[next];
    cluster.verdict(leading, unlocked_ms).await;

    // The old leader resumes mid-evaluation, believing it still leads, with its renewal held
    // up: this test holds the lease row FOR SHARE, which renewals wait for and fence checks do
    // not. So it learns of its successor from the database alone, in its verdict's own
    // transaction, which is refused.
    let mut sharer = sqlx::PgConnection::connect(&cluster.db).await.unwrap();
    let mut share = sharer.begin().await.unwrap();
    sqlx::query("SELECT term FROM leases WHERE name = 'leader' FOR SHARE")
        .execute(&mut *share)
        .await
        .unwrap();
    old.signal(libc::SIGCONT);
    let resumed = Instant::now();
    // By its own clock the lease it last renewed has lapsed: it stops claiming to lead at once.
    poll("the old leader stops claiming to lead", 10, || async move {
        (old.lease_view().await["this_replica"] == false).then_some(())
    })
    .await;
    let not_leading = resumed.elapsed();
    let refused = poll("the old leader's verdict refused", 10, || async move {
        old.metric(REFUSED).await.filter(|n| *n > 0.0)
    })
    .await;
    let refused_after = resumed.elapsed();
    share.commit().await.unwrap();
    // Its renewal goes through now, and finds the lease another's.
    let view = old.knows_another_leads(next_term).await;
    let stepped_down = resumed.elapsed();
    old.ready_again().await;
    eprintln!(
        "SIGCONT of {holder}: not leading after {not_leading:?}; {refused} verdict refused by \
         the fence after {refused_after:?}; knows term {next_term} is {next_holder}'s after \
         {stepped_down:?}"
    );
    assert_eq!(view["holder"], next_holder.as_str(), "{view}");
    assert!(
        not_leading <= SLACK,
        "{holder} claimed to lead for {not_leading:?}"
    );
    assert!(
        stepped_down <= LEASE_TTL / 3 + SLACK,
        "{holder} took {stepped_down:?} to step down"
    );
    assert_eq!(
        refused, 1.0,
        "one evaluation was under way, refused at its first write"
    );
    assert_eq!(old.metric("driftd_leader ").await, Some(0.0));
    let logged = old
        .log_lines()
        .iter()
        .any(|l| l["message"] == "Verdict refused: the leader lease is another's now");
    assert!(logged, "{holder} logged no refusal");
    cluster.none_refused_but(&gone).await;
    // The old one stays a follower; the new leader's verdicts stand; nothing was sent twice.
    let (still, _, still_term) = cluster.leader(&[], term, 5).await;
    assert_eq!((still, still_term), (next, next_term));
    cluster.one_message_still(&[]).await;
    for conn in [locker, sharer] {
        conn.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_inside_its_fenced_write_is_replaced_within_the_lease() {
    let Some((cluster, leader, holder, term)) = Cluster::alerted().await else {
        return;
    };
    let old = &cluster.replicas[leader];

    // The leader's next verdict waits on a lock this test holds on `verdicts`, inside the
    // fenced transaction that holds the lease row FOR SHARE, and is stopped there. Released,
    // its INSERT goes through and the transaction sits idle on the server, its process stopped.
    let (mut locker, backend) =
        lock_until_waiting(&cluster.db, "verdicts", "%INSERT INTO verdicts%").await;
    old.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    sqlx::query("COMMIT").execute(&mut locker).await.unwrap();
    // The locker's connection watches for the stopped leader's backend to be gone.
    let stalled = loop {
        let present: Option<i32> =
            sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE pid = $1")
                .bind(backend)
                .fetch_optional(&mut locker)
                .await
                .unwrap();
        if present.is_none() {
            break stopped.elapsed();
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the server keeps the stalled transaction"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let gone = [leader];
    let (next, next_holder, next_term, took) = cluster.taken_over(&gone, term, stopped).await;
    eprintln!(
        "SIGSTOP of {holder} (term {term}) inside its fenced write: its session ended after \
         {stalled:?}; {next_holder} leads in term {next_term} after {took:?} (bound {TAKEOVER:?})"
    );
    assert!(
        stalled <= driftd::store::FENCE_HOLD + SLACK,
        "the stalled session lasted {stalled:?}"
    );
    let stopped_ms = driftd::clock::now_ms();
    cluster.verdict(&cluster.replicas[next], stopped_ms).await;

    // Resumed, the old leader finds its transaction ended: that write is refused, once.
    old.signal(libc::SIGCONT);
    let resumed = Instant::now();
    let refused = poll("the stalled write refused", 10, || async move {
        old.metric(REFUSED).await.filter(|n| *n > 0.0)
    })
    .await;
    let refused_after = resumed.elapsed();
    let view = old.knows_another_leads(next_term).await;
    let stepped_down = resumed.elapsed();
    old.ready_again().await;
    eprintln!(
        "SIGCONT of {holder}: {refused} write refused after {refused_after:?}; knows term \
         {next_term} is {next_holder}'s after {stepped_down:?}"
    );
    assert_eq!(view["holder"], next_holder.as_str(), "{view}");
    assert_eq!(refused, 1.0, "one write was under way");
    let logged = old
        .log_lines()
        .iter()
        .any(|l| l["message"] == "Verdict refused: this process stalled inside its fenced write");
    assert!(logged, "{holder} logged no refusal");
    cluster.none_refused_but(&gone).await;
    let (still, _, still_term) = cluster.leader(&[], term, 5).await;
    assert_eq!((still, still_term), (next, next_term));
    cluster.one_message_still(&[]).await;
    locker.close().await.unwrap();
}
