//! The outbox shared by replicas: any replica delivers, each entry claimed by one at a time
//! (a lapsed claim is taken over once, a live one never), outcomes recorded only under the
//! claim, one send slot per notifier across replicas; end to end, replicas that do not lead
//! send every notification once, and the generic webhook's `Idempotency-Key` is the same on
//! every attempt. On SQLite and PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use driftd::alert::{AlertSeverity, AlertState, Notification, Notifier, Status};
use driftd::config::{Secret, ServeConfig};
use driftd::store::{AlertRow, Claim, OutboxEntry, Store};
use tempfile::TempDir;

use crate::alerts::{Answer, SlackStandIn};
use crate::helpers::{BOTH, Db, TestApp, fresh_database, spawn_app, test_config};

fn claim(holder: &str, n: u32, until_ms: i64) -> Claim {
    Claim {
        token: format!("{holder}:{n}"),
        holder: holder.to_owned(),
        until_ms,
    }
}

fn notification(fingerprint: &str, dataset: &str) -> Notification {
    Notification {
        fingerprint: fingerprint.to_owned(),
        topic: Default::default(),
        rule: "input_drift".into(),
        dataset: dataset.to_owned(),
        severity: AlertSeverity::Warning,
        status: Status::Firing,
        since_ms: 1_700_000_000_000,
        resolved_ms: None,
        features: Vec::new(),
        findings: vec!["latency_ms: PSI 0.93 ≥ 0.2".into()],
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        links: Vec::new(),
    }
}

/// Stores a firing alert `fingerprint` and queues one notification of it per notifier in
/// `notifiers` (`per` of each), due at `due_ms` — as the leader's evaluation does.
async fn queue(store: &Store, fingerprint: &str, notifiers: &[Notifier], per: usize, due_ms: i64) {
    let n = notification(fingerprint, &format!("dataset_{fingerprint}"));
    let payload = serde_json::to_string(&n).unwrap();
    let alert = AlertRow {
        fingerprint: fingerprint.to_owned(),
        rule: n.rule.clone(),
        dataset: n.dataset.clone(),
        severity: n.severity,
        state: AlertState::Firing,
        active_since_ms: due_ms,
        firing_since_ms: due_ms,
        resolved_ms: 0,
        updated_ms: due_ms,
        silenced_until_ms: 0,
        acknowledged: false,
        last_delivery: String::new(),
        summary: payload.clone(),
    };
    let entries: Vec<OutboxEntry> = notifiers
        .iter()
        .flat_map(|notifier| {
            std::iter::repeat_n(
                OutboxEntry {
                    fingerprint: fingerprint.to_owned(),
                    notifier: *notifier,
                    event: Status::Firing,
                    payload: payload.clone(),
                    created_ms: due_ms,
                },
                per,
            )
        })
        .collect();
    store.save_alert(&alert, &entries).await.unwrap();
}

async fn connect(url: &str) -> Store {
    Store::connect(&Secret::new(url)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_take_every_due_entry_once() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let setup = connect(&url).await;
        let now = driftd::clock::now_ms();
        queue(&setup, "fp", &[Notifier::Slack], 200, now - 1_000).await;
        // Not due yet: never claimed.
        queue(&setup, "later", &[Notifier::Slack], 5, now + 60_000).await;
        let mut claimers = Vec::new();
        for i in 0..4 {
            // A store of its own each: its own pool, as another replica has.
            let store = connect(&url).await;
            claimers.push(tokio::spawn(async move {
                let mut taken = Vec::new();
                let mut round = 0;
                loop {
                    round += 1;
                    let c = claim(&format!("claimer-{i}"), round, now + 60_000);
                    let due = store.claim_notifications(&c, now, 7, None).await.unwrap();
                    assert!(due.unreadable.is_empty());
                    if due.rows.is_empty() {
                        break;
                    }
                    for row in due.rows {
                        assert_eq!(row.claim_token, c.token);
                        taken.push(row.id);
                    }
                }
                store.close().await;
                taken
            }));
        }
        let mut all = Vec::new();
        for (i, claimer) in claimers.into_iter().enumerate() {
            let taken = claimer.await.unwrap();
            eprintln!("{db:?}: claimer-{i} took {}", taken.len());
            all.extend(taken);
        }
        let distinct: BTreeSet<i64> = all.iter().copied().collect();
        assert_eq!(all.len(), 200, "{db:?}: claims in all");
        assert_eq!(distinct.len(), 200, "{db:?}: an entry claimed twice");
        // Every one claimed: nothing left for a fifth claimer.
        let late = setup
            .claim_notifications(&claim("late", 1, now + 60_000), now, 500, None)
            .await
            .unwrap();
        assert!(late.rows.is_empty(), "{db:?}: {} left", late.rows.len());
        setup.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_claim_is_taken_over_once_and_its_holder_records_nothing() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let a = connect(&url).await;
        let now = driftd::clock::now_ms();
        queue(&a, "fp", &[Notifier::Slack], 1, now).await;
        let first = claim("replica-a", 1, now + 30_000);
        let held = a.claim_notifications(&first, now, 10, None).await.unwrap();
        assert_eq!(held.rows.len(), 1, "{db:?}");
        let row = held.rows[0].clone();
        assert_eq!((row.attempts, row.notifier), (0, Notifier::Slack));

        // Live: nobody else claims it, one ms before it lapses.
        let (b, c) = (connect(&url).await, connect(&url).await);
        let early = b
            .claim_notifications(&claim("replica-b", 1, now + 60_000), now + 29_999, 10, None)
            .await
            .unwrap();
        assert!(early.rows.is_empty(), "{db:?}: a live claim was taken");

        // Lapsed: of two claimers racing for it, exactly one gets it.
        let at = now + 30_000;
        let (cb, cc) = (
            claim("replica-b", 2, at + 30_000),
            claim("replica-c", 1, at + 30_000),
        );
        let (got_b, got_c) = tokio::join!(
            b.claim_notifications(&cb, at, 10, None),
            c.claim_notifications(&cc, at, 10, None),
        );
        let (got_b, got_c) = (got_b.unwrap().rows, got_c.unwrap().rows);
        assert_eq!(got_b.len() + got_c.len(), 1, "{db:?}: {got_b:?} {got_c:?}");
        let (winner, taken) = if got_b.is_empty() {
            (&c, got_c[0].clone())
        } else {
            (&b, got_b[0].clone())
        };
        assert_eq!(taken.id, row.id);

        // The first holder's outcome comes too late: nothing changes.
        let recorded = a
            .record_attempt(&row, "sent", now, "sent (HTTP 200)")
            .await
            .unwrap();
        assert!(!recorded, "{db:?}: a stale claim recorded an outcome");
        assert_eq!(a.outbox_count("pending").await.unwrap(), 1);
        assert_eq!(a.outbox_count("sent").await.unwrap(), 0);
        assert_eq!(a.alert("fp").await.unwrap().unwrap().last_delivery, "");
        assert!(
            !a.discard_notification(row.id, &row.claim_token, "x")
                .await
                .unwrap()
        );
        assert_eq!(a.outbox_count("failed").await.unwrap(), 0);
        // Nor can it let go of a claim that is no longer its own.
        assert_eq!(a.release_claim(&row.claim_token).await.unwrap(), 0);
        // The new holder's stands, and clears the claim.
        assert!(
            winner
                .record_attempt(&taken, "pending", at + 1_000, "retry (HTTP 500)")
                .await
                .unwrap()
        );
        assert_eq!(
            a.alert("fp").await.unwrap().unwrap().last_delivery,
            "slack: retry (HTTP 500)"
        );
        // Due again at its retry time, claimable at once (no claim left), one attempt made.
        let again = a
            .claim_notifications(&claim("replica-a", 2, at + 31_000), at + 1_000, 10, None)
            .await
            .unwrap();
        assert_eq!(again.rows.len(), 1, "{db:?}");
        assert_eq!(
            again.rows[0].attempts, 1,
            "{db:?}: the stale record counted"
        );
        // Released, it is anyone's at once.
        assert_eq!(
            a.release_claim(&again.rows[0].claim_token).await.unwrap(),
            1
        );
        let after = b
            .claim_notifications(&claim("replica-b", 3, at + 31_000), at + 1_000, 10, None)
            .await
            .unwrap();
        assert_eq!(after.rows.len(), 1, "{db:?}");
        for store in [a, b, c] {
            store.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_takes_back_its_own_claims_only() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let store = connect(&url).await;
        let now = driftd::clock::now_ms();
        queue(&store, "fp", &[Notifier::Slack], 3, now).await;
        let far = now + 60_000;
        for (holder, n) in [("pod-0", 1), ("pod-1", 2)] {
            let c = claim(holder, 1, far);
            let got = store.claim_notifications(&c, now, n, None).await.unwrap();
            assert_eq!(got.rows.len(), n as usize);
        }
        // pod-0 restarted: its one claim is free again, pod-1's two are not.
        assert_eq!(store.release_claims_of(Some("pod-0")).await.unwrap(), 1);
        let free = store
            .claim_notifications(&claim("pod-2", 1, far), now, 10, None)
            .await
            .unwrap();
        assert_eq!(free.rows.len(), 1, "{db:?}");
        // Every claim at once (SQLite's one process after a crash).
        assert_eq!(store.release_claims_of(None).await.unwrap(), 3);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_at_a_time_holds_a_notifiers_send_slot() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let (a, b) = (connect(&url).await, connect(&url).await);
        let mut now = driftd::clock::now_ms();
        let mut wins = [0; 2];
        for round in 0..20 {
            let (ta, tb) = (format!("a:{round}"), format!("b:{round}"));
            let (got_a, got_b) = tokio::join!(
                a.take_send_slot(Notifier::Slack, &ta, now, now + 6_000),
                b.take_send_slot(Notifier::Slack, &tb, now, now + 6_000),
            );
            let (got_a, got_b) = (got_a.unwrap(), got_b.unwrap());
            let winner = match (got_a, got_b) {
                (None, Some(free_at)) => {
                    assert_eq!(free_at, now + 6_000);
                    (0, &a, ta)
                }
                (Some(free_at), None) => {
                    assert_eq!(free_at, now + 6_000);
                    (1, &b, tb)
                }
                other => panic!("{db:?} round {round}: {other:?}"),
            };
            wins[winner.0] += 1;
            // Another notifier's slot is another's.
            let hook = a
                .take_send_slot(Notifier::Webhook, &format!("w:{round}"), now, now + 6_000)
                .await
                .unwrap();
            assert_eq!(hook, None, "{db:?}");
            let (_, holder, token) = winner;
            // Sent: handed back with the interval counted from the send's end.
            assert!(
                holder
                    .hand_back_send_slot(Notifier::Slack, &token, now + 1_000)
                    .await
                    .unwrap()
            );
            assert!(
                !holder
                    .hand_back_send_slot(Notifier::Slack, &token, now)
                    .await
                    .unwrap(),
                "handed back twice"
            );
            // Within the interval, nobody gets it.
            for (store, who) in [(&a, "a"), (&b, "b")] {
                let early = store
                    .take_send_slot(
                        Notifier::Slack,
                        &format!("{who}:{round}:early"),
                        now + 999,
                        now + 7_000,
                    )
                    .await
                    .unwrap();
                assert_eq!(early, Some(now + 1_000), "{db:?} round {round}");
            }
            a.hand_back_send_slot(Notifier::Webhook, &format!("w:{round}"), now)
                .await
                .unwrap();
            now += 1_000;
        }
        eprintln!("{db:?}: slot wins {wins:?}");
        a.close().await;
        b.close().await;
    }
}

fn replica(config: ServeConfig, writer: &str) -> ServeConfig {
    ServeConfig {
        writer_id: Some(writer.to_owned()),
        ..config
    }
}

/// Replicas that do not lead, delivering to `slack` (and `hook`): one on SQLite (its one
/// process leads), three on PostgreSQL, where the lease is held elsewhere throughout, so no
/// replica here evaluates and every one may deliver.
async fn followers(
    db: Db,
    url: &str,
    store: &Store,
    slack: &SlackStandIn,
    hook: Option<&SlackStandIn>,
) -> Vec<TestApp> {
    let replicas = match db {
        Db::Sqlite => 1,
        Db::Postgres => {
            let now = driftd::clock::now_ms();
            let lease = store
                .acquire_lease("leader", "elsewhere", now, now + 600_000)
                .await
                .unwrap();
            assert_eq!(lease.holder, "elsewhere");
            3
        }
    };
    let mut apps: Vec<TestApp> = Vec::new();
    for i in 0..replicas {
        let mut config = replica(test_config(url), &format!("replica-{i}"));
        config.slack_webhook_url = Some(Secret::new(&slack.url));
        config.webhook_url = hook.map(|h| Secret::new(&h.url));
        apps.push(spawn_app(config).await);
    }
    if db == Db::Postgres {
        for app in &apps {
            let v = app.get_json("/readyz").await;
            assert_eq!(v["leader"]["this_replica"], false, "{v}");
        }
    }
    apps
}

/// Replicas that do not lead (on PostgreSQL the lease is another's throughout; SQLite's one
/// process leads) deliver what the leader queued: each Slack message once, at least a second
/// apart across replicas, and the webhook's retry after a 500 with the same `Idempotency-Key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_deliver_each_notification_once_with_a_stable_idempotency_key() {
    for db in BOTH {
        replicas_deliver_each_notification_once(db).await;
    }
}

async fn replicas_deliver_each_notification_once(db: Db) {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(db, dir.path()).await else {
        return;
    };
    let slack = SlackStandIn::start(&[]).await;
    let hook = SlackStandIn::start(&[Answer::Status(500)]).await;
    let store = connect(&url).await;
    let apps = followers(db, &url, &store, &slack, Some(&hook)).await;
    let replicas = apps.len();
    let now = driftd::clock::now_ms();
    let alerts = ["fp-a", "fp-b", "fp-c"];
    for fp in alerts {
        queue(&store, fp, &[Notifier::Slack], 1, now).await;
    }
    queue(&store, "fp-hook", &[Notifier::Webhook], 1, now).await;

    let got = slack.wait_for(alerts.len(), 20).await;
    let hooked = hook.wait_for(2, 20).await;
    // Every replica had a few rounds to send anything twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages: Vec<String> = slack
        .received()
        .iter()
        .map(|(_, m)| m.to_string())
        .collect();
    assert_eq!(messages.len(), alerts.len(), "{db:?}: {messages:?}");
    for fp in alerts {
        let dataset = format!("dataset_{fp}");
        let n = messages.iter().filter(|m| m.contains(&dataset)).count();
        assert_eq!(n, 1, "{db:?}: {dataset} in {messages:?}");
    }
    for pair in got.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(1000),
            "{db:?}: two Slack messages {gap:?} apart"
        );
    }
    // The webhook: 500, then 200 a backoff later, with one key for both attempts.
    let requests = hook.requests();
    assert_eq!(requests.len(), 2, "{db:?}");
    assert_eq!(hooked[0].1, hooked[1].1, "{db:?}: the same body");
    let keys: Vec<&str> = requests
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap())
        .collect();
    assert_eq!(keys[0], keys[1], "{db:?}");
    assert!(
        keys[0].starts_with("driftd-") && keys[0].ends_with("-fp-hook"),
        "{db:?}: {}",
        keys[0]
    );
    // Slack requests carry none: Slack has no such header.
    assert!(
        slack
            .requests()
            .iter()
            .all(|r| r.headers.get("idempotency-key").is_none())
    );

    let mut sent = [0.0; 2];
    let mut claims_lost = 0.0;
    for app in &apps {
        let m = app.metrics().await;
        for (i, notifier) in ["slack", "webhook"].iter().enumerate() {
            sent[i] += crate::helpers::series(
                &m,
                &format!("driftd_notifications_total{{notifier=\"{notifier}\",outcome=\"sent\"}} "),
            )
            .unwrap_or(0.0);
        }
        claims_lost += crate::helpers::series(
            &m,
            "driftd_notification_claims_lost_total{notifier=\"slack\"} ",
        )
        .unwrap_or(0.0);
    }
    assert_eq!(sent, [alerts.len() as f64, 1.0], "{db:?}: sends counted");
    assert_eq!(
        claims_lost, 0.0,
        "{db:?}: no claim lapses when nothing stalls"
    );
    assert_eq!(store.outbox_count("sent").await.unwrap(), 4, "{db:?}");
    assert_eq!(store.outbox_count("pending").await.unwrap(), 0, "{db:?}");
    let started = Instant::now();
    for app in apps {
        app.stop().await;
    }
    eprintln!(
        "{db:?}: {replicas} replicas stopped in {:?}",
        started.elapsed()
    );
    store.close().await;
}

/// `driftd_notifier_failing` is read from the outbox, so every replica tells the same: Slack
/// answering 404 to whichever replica sent makes it 1 on all of them, and the next message
/// sent makes it 0 on all of them again (also on the replica that saw the 404).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_tells_whether_a_notifier_is_failing() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let slack = SlackStandIn::start(&[Answer::Status(404)]).await;
        let store = connect(&url).await;
        let apps = followers(db, &url, &store, &slack, None).await;
        let replicas = apps.len();
        let failing = r#"driftd_notifier_failing{notifier="slack"}"#;
        let all_say = |value: f64| {
            let apps = &apps;
            async move {
                let deadline = Instant::now() + Duration::from_secs(15);
                loop {
                    let mut said = Vec::new();
                    for app in apps {
                        said.push(app.metric(failing).await);
                    }
                    if said.iter().all(|v| *v == Some(value)) {
                        return;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{db:?}: not every replica says {value}: {said:?}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        // Before any delivery, a configured notifier is not failing.
        all_say(0.0).await;
        let now = driftd::clock::now_ms();
        queue(&store, "fp-revoked", &[Notifier::Slack], 1, now).await;
        slack.wait_for(1, 20).await;
        let refused = Instant::now();
        all_say(1.0).await;
        let told = refused.elapsed();
        queue(
            &store,
            "fp-back",
            &[Notifier::Slack],
            1,
            driftd::clock::now_ms(),
        )
        .await;
        slack.wait_for(2, 20).await;
        let sent = Instant::now();
        all_say(0.0).await;
        println!(
            "{db:?}, {replicas} replicas: failing on every replica {told:?} after the 404, not \
             failing {:?} after the next message sent",
            sent.elapsed()
        );
        for app in apps {
            app.stop().await;
        }
    }
}

/// Notifications sent or given up before the window retention's cutoff are removed by the
/// expiry that removes old windows; pending ones and recent ones stay. On both databases.
#[tokio::test]
async fn finished_notifications_expire_with_the_windows_and_pending_ones_stay() {
    for db in BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let store = connect(&url).await;
        let now = driftd::clock::now_ms();
        let day = 86_400_000;
        let old = now - 10 * day;
        // Four due ten days ago, claimed, and finished: sent and failed then, sent now, and
        // one still to be retried.
        queue(&store, "fp-old", &[Notifier::Slack], 4, old).await;
        let due = store
            .claim_notifications(&claim("r", 0, now + 30_000), now, 10, None)
            .await
            .unwrap();
        assert_eq!(due.rows.len(), 4, "{db:?}");
        let outcomes = [
            ("sent", old),
            ("failed", old),
            ("sent", now),
            ("pending", now + 60_000),
        ];
        for (row, (state, at)) in due.rows.iter().zip(outcomes) {
            assert!(store.record_attempt(row, state, at, state).await.unwrap());
        }
        let removed = store.expire(now - 2 * day, now - 30 * day).await.unwrap();
        assert_eq!(
            removed, 2,
            "{db:?}: the sent and the failed entry of ten days ago"
        );
        assert_eq!(store.outbox_count("sent").await.unwrap(), 1, "{db:?}");
        assert_eq!(store.outbox_count("failed").await.unwrap(), 0, "{db:?}");
        assert_eq!(store.outbox_count("pending").await.unwrap(), 1, "{db:?}");
        // The alert keeps its last delivery.
        let alert = store.alert("fp-old").await.unwrap().unwrap();
        assert!(
            alert.last_delivery.starts_with("slack: "),
            "{db:?}: {alert:?}"
        );
    }
}
