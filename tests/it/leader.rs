//! One leader among replicas sharing a database: the holder of the `leader` lease alone
//! evaluates (every replica delivers, each notification once: see `outbox`); the others agree on who it is (`/readyz`), take over within one
//! renewal of its release, and a leader that loses its lease steps down within the lease's
//! time to live. SQLite's one process always leads.

use std::time::{Duration, Instant};

use driftd::config::ServeConfig;
use serde_json::Value as Json;
use tempfile::TempDir;

use crate::alerts::{SlackStandIn, alert_config, drifted_records, post, start};
use crate::helpers::{Db, TestApp, fresh_database, spawn_app, stderr, test_config};

fn replica(config: ServeConfig, writer: &str) -> ServeConfig {
    ServeConfig {
        writer_id: Some(writer.to_owned()),
        ..config
    }
}

async fn ready(app: &TestApp) -> Json {
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// Polls every replica's `/readyz` until they agree on one holder of one term and exactly one
/// of them leads; answers its index and the term. Fails after `seconds`.
async fn agreed(apps: &[&TestApp], seconds: u64) -> (usize, String, i64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let mut leaders = Vec::new();
        let mut views = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            let v = ready(app).await;
            if v["leader"]["this_replica"] == true {
                leaders.push(i);
            }
            views.push((v["leader"]["holder"].clone(), v["leader"]["term"].clone()));
        }
        let agree = views.windows(2).all(|w| w[0] == w[1]) && views[0].0.is_string();
        if leaders.len() == 1 && agree {
            let (holder, term) = &views[0];
            return (
                leaders[0],
                holder.as_str().unwrap().to_owned(),
                term.as_i64().unwrap(),
            );
        }
        assert!(
            Instant::now() < deadline,
            "no agreement on one leader in {seconds} s: leaders {leaders:?}, views {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_replicas_leads_and_another_takes_over_when_it_stops() {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let mut apps = Vec::new();
    for writer in ["replica-0", "replica-1", "replica-2"] {
        apps.push(spawn_app(replica(test_config(&url), writer)).await);
    }
    let (leader, holder, term) = agreed(&apps.iter().collect::<Vec<_>>(), 5).await;
    assert_eq!(holder, format!("replica-{leader}"));
    // The first replica to try took the lease free: term 1.
    assert_eq!(term, 1);
    for (i, app) in apps.iter().enumerate() {
        let m = app.metrics().await;
        let leading = if i == leader { 1.0 } else { 0.0 };
        assert_eq!(
            crate::helpers::series(&m, "driftd_leader "),
            Some(leading),
            "replica-{i}: {m}"
        );
        assert_eq!(
            crate::helpers::series(&m, "driftd_leader_term "),
            Some(1.0),
            "{m}"
        );
    }

    // Stopping releases the lease: another replica takes it at its next try (every ttl / 3).
    apps.remove(leader).stop().await;
    let stopped = Instant::now();
    let rest: Vec<&TestApp> = apps.iter().collect();
    let (next, next_holder, next_term) = agreed(&rest, 5).await;
    let took = stopped.elapsed();
    assert!(took < Duration::from_secs(2), "takeover took {took:?}");
    assert_ne!(next_holder, holder);
    assert_eq!(next_term, 2, "a new holder, a new term");
    eprintln!("replica {next_holder} took over term {next_term} in {took:?}");
    assert_eq!(rest[next].metric("driftd_leader ").await, Some(1.0));
    assert_eq!(rest[next].metric("driftd_leader_term ").await, Some(2.0));
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_lost_its_lease_steps_down_within_the_ttl() {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let apps = [
        spawn_app(replica(test_config(&url), "replica-0")).await,
        spawn_app(replica(test_config(&url), "replica-1")).await,
    ];
    let (leader, _, term) = agreed(&apps.iter().collect::<Vec<_>>(), 5).await;

    // Another process holds the lease now, as after a pause longer than the lease: the old
    // holder's next renewal finds it so and stops leading.
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let far = driftd::clock::now_ms() + 60_000;
    let changed = sqlx::query(
        "UPDATE leases SET holder = 'elsewhere', term = term + 1, expires_at_ms = $1
         WHERE name = 'leader'",
    )
    .bind(far)
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    let taken = Instant::now();
    loop {
        let v = ready(&apps[leader]).await;
        if v["leader"]["this_replica"] == false {
            assert_eq!(v["leader"]["holder"], "elsewhere", "{v}");
            assert_eq!(v["leader"]["term"], term + 1, "{v}");
            break;
        }
        assert!(
            taken.elapsed() < Duration::from_secs(3),
            "still leading {:?} after the lease was taken: {v}",
            taken.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "stepped down {:?} after the lease was taken",
        taken.elapsed()
    );
    // Nobody here leads while the lease is another's.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    for app in &apps {
        assert_eq!(ready(app).await["leader"]["this_replica"], false);
        assert_eq!(app.metric("driftd_leader ").await, Some(0.0));
    }
    // Once it lapses, one of them takes it, in a new term.
    sqlx::query("UPDATE leases SET expires_at_ms = 0 WHERE name = 'leader'")
        .execute(&mut conn)
        .await
        .unwrap();
    let (_, holder, next_term) = agreed(&apps.iter().collect::<Vec<_>>(), 5).await;
    assert!(holder.starts_with("replica-"), "{holder}");
    assert_eq!(next_term, term + 2);
    conn.close().await.unwrap();
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_send_one_slack_message_for_one_drift() {
    let dir = TempDir::new().unwrap();
    let Some(url) = fresh_database(Db::Postgres, dir.path()).await else {
        return;
    };
    let slack = SlackStandIn::start(&[]).await;
    let mut apps = Vec::new();
    for writer in ["replica-0", "replica-1", "replica-2"] {
        apps.push(spawn_app(replica(alert_config(&url, &slack.url), writer)).await);
    }
    let (leader, _, _) = agreed(&apps.iter().collect::<Vec<_>>(), 5).await;
    // Drifted records reach a replica that does not lead: its partial is merged on read.
    let follower = (leader + 1) % apps.len();
    start(&apps[follower], &dir, drifted_records()).await;
    let got = slack.wait_for(1, 15).await;
    assert!(
        got[0].1.to_string().contains("latency_ms"),
        "{:?}",
        got[0].1
    );
    // Every replica had several evaluation intervals to send a second one.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(slack.received().len(), 1, "{:?}", slack.received());
    // Sent by one replica, whichever claimed it first (any replica delivers).
    let sent = r#"driftd_notifications_total{notifier="slack",outcome="sent"} "#;
    let mut senders = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        if let Some(n) = app.metric(sent).await.filter(|n| *n > 0.0) {
            senders.push((i, n));
        }
    }
    assert!(
        matches!(senders[..], [(_, 1.0)]),
        "one replica sent one message: {senders:?}"
    );
    // The drift series come from the leader alone (fresh records: the first ones' windows
    // may have left the evaluated range by now).
    let drifted = r#"driftd_feature_drifted{dataset="search",feature="latency_ms"} "#;
    post(&apps[follower], drifted_records()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while apps[leader].metric(drifted).await != Some(1.0) {
        assert!(Instant::now() < deadline, "the leader exported no verdict");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (i, app) in apps.iter().enumerate() {
        let expected = (i == leader).then_some(1.0);
        assert_eq!(app.metric(drifted).await, expected, "replica-{i}");
    }

    // The next leader goes on from the stored alert: it judges the drift still there and
    // exports the verdict, but sends nothing again.
    apps.remove(leader).stop().await;
    post(&apps[0], drifted_records()).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let next = loop {
        let mut leading = Vec::new();
        for (i, app) in apps.iter().enumerate() {
            if app.metric(drifted).await == Some(1.0) {
                leading.push(i);
            }
        }
        if let [i] = leading[..] {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no new leader exported the verdict"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready(&apps[next]).await["leader"]["this_replica"], true);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(slack.received().len(), 1, "{:?}", slack.received());
    for app in apps {
        app.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlites_one_process_leads_also_after_another_id_held_the_lease() {
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let app = spawn_app(replica(test_config(&url), "first")).await;
    let v = ready(&app).await;
    assert_eq!(v["leader"]["holder"], "first", "{v}");
    assert_eq!(v["leader"]["term"], 1, "{v}");
    assert_eq!(v["leader"]["this_replica"], true, "{v}");
    assert_eq!(app.metric("driftd_leader ").await, Some(1.0));
    app.stop().await;
    // As if "first" had died holding it: SQLite's lock file says it is gone.
    let store = driftd::store::Store::connect(&driftd::config::Secret::new(&*url))
        .await
        .unwrap();
    let now = driftd::clock::now_ms();
    store
        .acquire_lease("leader", "first", now, now + 600_000)
        .await
        .unwrap();
    store.close().await;
    let app = spawn_app(replica(test_config(&url), "second")).await;
    let v = ready(&app).await;
    assert_eq!(v["leader"]["holder"], "second", "{v}");
    assert_eq!(v["leader"]["term"], 2, "{v}");
    assert_eq!(v["leader"]["this_replica"], true, "{v}");
    app.stop().await;
}

#[test]
fn a_lease_ttl_out_of_bounds_is_refused() {
    for (ttl, ok) in [("2s", false), ("3s", true), ("5m", true), ("301s", false)] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
            .args(["serve", "--print-config"])
            .env_remove("DRIFTD_API_TOKEN")
            .env_remove("DRIFTD_ALLOW_UNAUTHENTICATED")
            .env("DRIFTD_LEADER_LEASE_TTL", ttl)
            .output()
            .unwrap();
        if ok {
            assert!(out.status.success(), "{ttl}: {}", stderr(&out));
            let printed = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(printed.contains("leader_lease_ttl:"), "{printed}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{ttl}");
            let err = stderr(&out);
            assert!(
                err.contains(&format!(
                    "leader_lease_ttl (environment): {ttl:?}: must be between 3s and 5m"
                )),
                "{ttl}: {err}"
            );
        }
    }
}

/// A process that lost the lease without knowing it yet cannot overwrite its successor's
/// verdicts: a fenced store checks the lease in the write's own transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_under_a_lost_lease_are_refused() {
    for db in crate::helpers::BOTH {
        let dir = TempDir::new().unwrap();
        let Some(url) = fresh_database(db, dir.path()).await else {
            continue;
        };
        let store = driftd::store::Store::connect(&driftd::config::Secret::new(&*url))
            .await
            .unwrap();
        let now = driftd::clock::now_ms();
        let lease = store
            .acquire_lease("leader", "old", now, now + 60_000)
            .await
            .unwrap();
        assert_eq!((lease.holder.as_str(), lease.term), ("old", 1), "{db:?}");
        // Another holder cannot take a lease that has not lapsed.
        let lease = store
            .acquire_lease("leader", "new", now, now + 60_000)
            .await
            .unwrap();
        assert_eq!((lease.holder.as_str(), lease.term), ("old", 1), "{db:?}");
        let held = driftd::store::Held {
            name: "leader",
            holder: "old".into(),
            term: 1,
        };
        let (believed, fence) = tokio::sync::watch::channel(Some(held));
        let old = store.fenced(fence);
        old.put_verdict("d", r#"{"by":"old"}"#, 1).await.unwrap();

        // The lease lapses and "new" takes it; "old" still believes it leads.
        let lease = store
            .acquire_lease("leader", "new", now + 60_000, now + 120_000)
            .await
            .unwrap();
        assert_eq!((lease.holder.as_str(), lease.term), ("new", 2), "{db:?}");
        let refused = old.put_verdict("d", r#"{"by":"old"}"#, 2).await;
        assert!(
            matches!(refused, Err(driftd::store::StoreError::NotLeader)),
            "{db:?}: {refused:?}"
        );
        assert_eq!(
            store.verdict("d").await.unwrap(),
            Some((r#"{"by":"old"}"#.to_owned(), 1)),
            "{db:?}: the refused write left nothing"
        );
        // Not leading at all: refused without asking the database.
        believed.send_replace(None);
        assert!(matches!(
            old.put_verdict("d", "{}", 3).await,
            Err(driftd::store::StoreError::NotLeader)
        ));
        // The holder of term 2 writes.
        let (_, fence) = tokio::sync::watch::channel(Some(driftd::store::Held {
            name: "leader",
            holder: "new".into(),
            term: 2,
        }));
        store
            .fenced(fence)
            .put_verdict("d", r#"{"by":"new"}"#, 4)
            .await
            .unwrap();
        assert_eq!(store.verdict("d").await.unwrap().unwrap().1, 4);
        // Released: the lease lapses at once, and a renewal keeps the term.
        assert!(store.release_lease("leader", "new", now).await.unwrap());
        assert!(!store.release_lease("leader", "old", now).await.unwrap());
        let lease = store
            .acquire_lease("leader", "new", now, now + 60_000)
            .await
            .unwrap();
        assert_eq!((lease.holder.as_str(), lease.term), ("new", 2), "{db:?}");
        store.close().await;
    }
}
