//! The README's five-minute tour, run exactly as written: its `sh` blocks between
//! `<!-- tour:start -->` and `<!-- tour:end -->` are taken from README.md; the one marked
//! `<!-- tour:server -->` runs in the background as the first terminal, the others in order in
//! one bash as the second, with the built `driftd` first on `PATH` and a free port in
//! `DRIFTD_LISTEN` (which the tour reads). Everything started is killed, even on failure.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The tour's shell code: the daemon's block and the blocks run after it.
#[derive(Debug)]
struct Tour {
    server: String,
    steps: Vec<String>,
}

fn tour_of(readme: &str) -> Tour {
    let start = readme
        .find("<!-- tour:start -->")
        .expect("README.md marks its tour with <!-- tour:start -->");
    let end = readme[start..]
        .find("<!-- tour:end -->")
        .expect("the tour ends with <!-- tour:end -->");
    let mut server = Vec::new();
    let mut steps = Vec::new();
    let mut block: Option<String> = None;
    let mut marked_server = false;
    for line in readme[start..start + end].lines() {
        match (&mut block, line.trim_end()) {
            (None, "```sh") => block = Some(String::new()),
            (None, "<!-- tour:server -->") => marked_server = true,
            (None, "") => {}
            (None, _) => marked_server = false,
            (Some(_), "```") => {
                let code = block.take().expect("inside a block");
                if std::mem::take(&mut marked_server) {
                    server.push(code);
                } else {
                    steps.push(code);
                }
            }
            (Some(code), _) => {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    assert!(block.is_none(), "a tour block is not closed");
    assert_eq!(server.len(), 1, "the tour has one block marked tour:server");
    assert!(!steps.is_empty(), "the tour has steps after the server");
    Tour {
        server: server.remove(0),
        steps,
    }
}

/// A process in a process group of its own: dropping it kills the whole group (bash and
/// whatever it started), so nothing outlives the test.
struct Group(Child);

impl Group {
    fn spawn(command: &mut Command) -> Group {
        use std::os::unix::process::CommandExt;
        Group(command.process_group(0).spawn().expect("bash runs"))
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
    }

    /// Waits up to `limit` for the group's leader to exit.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.0.try_wait().expect("wait for bash") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.signal("-KILL");
        let _ = self.0.wait();
    }
}

/// `GET /readyz` answered 200, over a plain socket.
fn ready(address: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

/// bash running `script` in `dir`, with the built `driftd` first on `PATH`, scratch files
/// under `tmp`, driftd listening on `listen`, and none of the test runner's DRIFTD_* settings.
fn bash(script: &str, dir: &Path, tmp: &Path, listen: &str, out: &Path, err: &Path) -> Group {
    let bin = Path::new(env!("CARGO_BIN_EXE_driftd")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut command = Command::new("bash");
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("DRIFTD_")) {
        command.env_remove(name);
    }
    command
        .args(["-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("TMPDIR", tmp)
        .env("DRIFTD_LISTEN", listen)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(out).unwrap())
        .stderr(std::fs::File::create(err).unwrap());
    Group::spawn(&mut command)
}

#[test]
fn the_readme_tour_runs_as_written() {
    let clone = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tour = tour_of(&std::fs::read_to_string(clone.join("README.md")).unwrap());
    let curl = Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "the tour needs curl on PATH"
    );
    // Declared first, dropped last: the processes are gone before their files are.
    let tmp = TempDir::new().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let file = |name: &str| tmp.path().join(name);
    let log = |name: &str| std::fs::read_to_string(file(name)).unwrap_or_default();

    let mut server = bash(
        &tour.server,
        clone,
        tmp.path(),
        &listen,
        &file("server.out"),
        &file("server.err"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready(&listen) {
        assert!(
            Instant::now() < deadline && server.0.try_wait().unwrap().is_none(),
            "the tour's driftd serve did not become ready on {listen}:\n{}",
            log("server.err")
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut steps = bash(
        &tour.steps.join("\n"),
        clone,
        tmp.path(),
        &listen,
        &file("steps.out"),
        &file("steps.err"),
    );
    let status = steps.wait(Duration::from_secs(120));
    let (out, err) = (log("steps.out"), log("steps.err"));
    let context = format!(
        "stdout:\n{out}\nstderr:\n{err}\ndriftd serve:\n{}",
        log("server.err")
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the tour's steps did not finish with status 0 within 120 s ({status:?})\n{context}"
    );
    assert_eq!(err, "", "the tour's steps wrote to stderr\n{context}");

    assert_tour_printed(&out, &context);

    // Ctrl-C, as the tour says: driftd flushes and exits 0.
    server.signal("-INT");
    let stopped = server.wait(Duration::from_secs(15));
    assert!(
        stopped.is_some_and(|s| s.success()),
        "driftd serve did not exit 0 on SIGINT ({stopped:?}):\n{}",
        log("server.err")
    );
}

/// What the tour's steps print, step by step, as README.md shows it.
fn assert_tour_printed(out: &str, context: &str) {
    // 1. The profile's table and driftd's answer to the upload.
    assert!(
        out.contains("dataset search_ranking_inputs (offline) · 1,000 rows · 6 features"),
        "{context}"
    );
    let upload = json_line(out, "{\"dataset\":", context);
    assert_eq!(upload["run_id"], "train-1", "{context}");
    assert_eq!(upload["rows"], 1000, "{context}");
    assert_eq!(upload["features"], 6, "{context}");
    // 2. Both posts accepted in full.
    assert!(
        out.contains("{\"accepted\":500,\"rejected\":0}\n"),
        "{context}"
    );
    assert!(
        out.contains("{\"accepted\":1,\"rejected\":0}\n"),
        "{context}"
    );
    // 3. The daemon's verdict: the two drifted features and nothing missing.
    let verdict = json_line(out, "{\"age_seconds\":", context);
    let mut drifted: Vec<&str> = verdict["drifted"]
        .as_array()
        .expect("drifted is a list")
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    drifted.sort_unstable();
    assert_eq!(drifted, ["country", "latency_ms"], "{context}");
    assert_eq!(verdict["reference"]["run_id"], "train-1", "{context}");
    assert!(
        verdict["current"]["rows"]
            .as_u64()
            .is_some_and(|n| n >= 500),
        "{context}"
    );
    let checks: Vec<&str> = verdict["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap())
        .collect();
    assert!(!checks.contains(&"missing_feature"), "{context}");
    // 4. The same in /metrics.
    for line in [
        "driftd_records_total{dataset=\"search_ranking_inputs\",stage=\"online\"} 501",
        "driftd_records_total{dataset=\"search_ranking_inputs\",stage=\"offline\"} 1000",
        "driftd_feature_drifted{dataset=\"search_ranking_inputs\",feature=\"latency_ms\"} 1",
        "driftd_feature_drifted{dataset=\"search_ranking_inputs\",feature=\"country\"} 1",
        "driftd_feature_drifted{dataset=\"search_ranking_inputs\",feature=\"position\"} 0",
    ] {
        assert!(out.lines().any(|l| l == line), "no `{line}`\n{context}");
    }
    // 5. driftd compare on the two files, and its exit status.
    assert!(
        out.contains("2 of 6 features drifted · 0 invariant errors, 2 warnings"),
        "{context}"
    );
    assert!(out.contains("\nexit status 1\n"), "{context}");
}

/// The first line of `out` starting with `prefix`, as JSON.
fn json_line(out: &str, prefix: &str, context: &str) -> serde_json::Value {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix}\n{context}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}\n{context}"))
}

#[test]
fn the_tour_is_read_from_its_marked_blocks() {
    let readme = "intro\n```sh\nnot in the tour\n```\n<!-- tour:start -->\n<!-- tour:server -->\n\
                  ```sh\nserve\n```\ntext\n```sh\none\ntwo\n```\n```text\nan output\n```\n\
                  ```sh\nthree\n```\n<!-- tour:end -->\n```sh\nafter\n```\n";
    let tour = tour_of(readme);
    assert_eq!(tour.server, "serve\n");
    assert_eq!(tour.steps, ["one\ntwo\n", "three\n"]);
}
