//! A PostgreSQL server of the test's own, for outages: initdb into a temporary directory, then
//! started, stopped, started again on the same port, paused (SIGSTOP) and resumed, as the test
//! says. Never the machine's shared server. Dropping the guard stops the server and deletes the
//! directory, also when the test fails.
//!
//! initdb refuses to run as root: as root, initdb and pg_ctl run as the `postgres` user
//! (`runuser`), owning the directory. Without initdb the test is skipped, saying so — except
//! under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::helpers::free_port;

const BIN: &str = "/usr/lib/postgresql/15/bin";

pub struct ThrowawayPg {
    dir: tempfile::TempDir,
    port: u16,
    /// The user initdb and pg_ctl run as, when the tests run as root.
    run_as: Option<&'static str>,
    paused: std::sync::atomic::AtomicBool,
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl ThrowawayPg {
    /// A fresh cluster, running. `None` (skip) when PostgreSQL's binaries are missing, except
    /// under `CI=true`.
    pub fn start() -> Option<ThrowawayPg> {
        let initdb = Path::new(BIN).join("initdb");
        if !initdb.exists() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{} is required under CI=true and is missing",
                    initdb.display()
                );
            }
            eprintln!("skipping: {} is missing", initdb.display());
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("driftd-pg-")
            .tempdir()
            .unwrap();
        let run_as = running_as_root().then_some("postgres");
        if let Some(user) = run_as {
            let chowned = Command::new("chown")
                .args(["-R", user])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chowned.success(), "chown {user} {}", dir.path().display());
        }
        let pg = ThrowawayPg {
            dir,
            port: free_port(),
            run_as,
            paused: std::sync::atomic::AtomicBool::new(false),
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        pg.start_again();
        // The role the tests connect as (any password passes: trust authentication).
        pg.sql("CREATE ROLE driftd LOGIN SUPERUSER");
        Some(pg)
    }

    /// Runs one SQL statement as `postgres` through the server's socket.
    fn sql(&self, statement: &str) {
        let socket_dir = self.dir.path().to_str().unwrap().to_owned();
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-h",
                &socket_dir,
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qc",
                statement,
            ],
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when root); panics with its output
    /// when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let path = Path::new(BIN).join(program);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        let out = command.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgres://user[:password]@127.0.0.1:PORT/postgres`; the roles are `postgres` and
    /// `driftd`. Trust authentication lets any password in, so a test can check that the one
    /// in the URL never shows.
    pub fn url(&self, user_and_password: &str) -> String {
        format!(
            "postgres://{user_and_password}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn start_again(&self) {
        let data = self.data();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
    }

    /// Stops the server: sessions end, connections are refused until `start_again`.
    pub fn stop(&self) {
        self.resume();
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
    }

    /// The postmaster and every process under it.
    fn pids(&self) -> Vec<u32> {
        let Ok(text) = std::fs::read_to_string(self.data().join("postmaster.pid")) else {
            return Vec::new();
        };
        let Some(postmaster) = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
        else {
            return Vec::new();
        };
        let mut pids = vec![postmaster];
        let mut i = 0;
        while i < pids.len() {
            let parent = pids[i];
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                    continue;
                };
                // "pid (comm) state ppid …": the command may hold spaces, so after the ')'.
                let ppid = stat
                    .rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                    .and_then(|p| p.parse::<u32>().ok());
                if ppid == Some(parent) && !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
            i += 1;
        }
        pids
    }

    /// Signals the postmaster and its children; a backend that ended meanwhile is skipped.
    fn signal(&self, signal: &str) {
        let pids = self.pids();
        assert!(!pids.is_empty(), "no PostgreSQL processes to signal");
        for (i, pid) in pids.iter().enumerate() {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(pid.to_string())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(
                status.success() || i > 0,
                "kill -{signal} {pid} (the postmaster)"
            );
        }
    }

    /// Freezes the server (SIGSTOP): connections open and statements are accepted by the
    /// kernel, and nothing answers — a database that hangs rather than refuses.
    pub fn pause(&self) {
        self.paused.store(true, std::sync::atomic::Ordering::SeqCst);
        self.signal("STOP");
    }

    /// Makes the server refuse writes, as a standby or a disk-full guard does: every session,
    /// open ones included, gets `default_transaction_read_only` on the configuration reload,
    /// and writes fail with SQLSTATE 25006.
    pub fn read_only(&self) {
        self.sql("ALTER SYSTEM SET default_transaction_read_only = on");
        self.sql("SELECT pg_reload_conf()");
    }

    pub fn resume(&self) {
        if self.paused.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.signal("CONT");
        }
    }
}

impl Drop for ThrowawayPg {
    fn drop(&mut self) {
        self.resume();
        if self.pids().is_empty() {
            return;
        }
        let data = self.data();
        let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
        }));
        if stopped.is_err() {
            let pids: Vec<String> = self.pids().iter().map(u32::to_string).collect();
            let _ = Command::new("kill").arg("-KILL").args(&pids).status();
        }
        // The temporary directory goes with `dir`.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_throwaway_server_stops_restarts_pauses_and_leaves_nothing_behind() {
    let Some(pg) = ThrowawayPg::start() else {
        return;
    };
    let dir = pg.dir.path().to_owned();
    let reachable = || std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_ok();
    assert!(reachable(), "listening on {}", pg.port());
    let processes = pg.pids();
    assert!(
        processes.len() >= 2,
        "postmaster and children: {processes:?}"
    );
    pg.pause();
    let state = std::fs::read_to_string(format!("/proc/{}/stat", processes[0])).unwrap();
    let state = state
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(state, "T", "the postmaster is stopped by SIGSTOP");
    pg.resume();
    pg.stop();
    assert!(!reachable(), "refused once stopped");
    pg.start_again();
    assert!(reachable(), "back on the same port");
    let pids = pg.pids();
    drop(pg);
    assert!(!dir.exists(), "{} is removed", dir.display());
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "process {pid} is gone"
        );
    }
}
