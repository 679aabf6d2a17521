//! SQLite is one process's: a second `driftd serve` on the same file exits 2 naming the fix,
//! and the first one goes on undisturbed; once the first stops, the file can be served again.

use std::time::Duration;

use tempfile::TempDir;

use crate::helpers::{Db, fresh_database, spawn_app, test_config};

/// `driftd serve` on `database`, with a deadline: its exit status and standard error.
async fn second_serve(database: &str) -> (Option<i32>, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("driftd starts");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the second driftd serve stops by itself")
        .expect("driftd runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_one_sqlite_file_exits_2_and_the_first_goes_on() {
    let dir = TempDir::new().unwrap();
    let url = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let first = spawn_app(test_config(&url)).await;

    let (code, stderr) = second_serve(&url).await;
    assert_eq!(code, Some(2), "{stderr}");
    let path = dir.path().join("driftd.db");
    assert!(
        stderr.contains(&format!(
            "another driftd serve is using the SQLite database {}",
            path.display()
        )) && stderr.contains("run replicas on PostgreSQL"),
        "{stderr}"
    );
    let ready = first.client.get(first.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "the first one is undisturbed");
    first.stop().await;

    // The lock went with the first process's server: the file can be served again.
    let again = spawn_app(test_config(&url)).await;
    let ready = again.client.get(again.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    again.stop().await;
}
