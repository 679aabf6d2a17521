//! TLS on the listeners: a certificate a client verifies against its CA, reloaded on SIGHUP
//! and on file changes, a bad new file keeping the old one; startup refusing files that do not
//! load, without showing key material.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::helpers::free_port;

use crate::helpers::{Db, fresh_database, test_config};

/// A certificate authority made for the test.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

/// A server certificate for `driftd.test`: PEM files' contents and the certificate's DER.
struct ServerCert {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn server(&self) -> ServerCert {
        self.server_named("driftd.test")
    }

    fn server_named(&self, name: &str) -> ServerCert {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// Writes `text` to `path` whole (a rename), as a secret volume or a deploy script would.
fn replace(path: &Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

fn install(dir: &Path, cert: &ServerCert) -> (PathBuf, PathBuf) {
    let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
    replace(&key_path, &cert.key);
    replace(&cert_path, &cert.cert);
    (cert_path, key_path)
}

/// A client that reaches `driftd.test` at 127.0.0.1, trusting `ca` only (or, without one, the
/// public roots). A new one for each check: a client resuming an earlier TLS session is not
/// shown the certificate again.
fn client(ca: Option<&TestCa>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .tls_info(true)
        .resolve("driftd.test", "127.0.0.1:0".parse().unwrap());
    if let Some(ca) = ca {
        builder = builder
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

/// `GET url`: the DER of the certificate the server presented, once it answered 200.
async fn served_certificate(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let r = client.get(url).send().await.map_err(|e| format!("{e:?}"))?;
    assert_eq!(r.status(), 200, "{url}");
    let info = r.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    Ok(info.peer_certificate().unwrap().to_vec())
}

async fn eventually(what: &str, seconds: u64, mut done: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(seconds),
            "{what}: not within {seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    started.elapsed()
}

fn hangup(child: &tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// The real binary over HTTPS on both listeners: verified against the CA, refused by clients
/// that do not trust it; a new pair served after SIGHUP, a bad one ignored with a warning, and
/// a change of the files picked up without a signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_a_verified_certificate_and_reloads_it() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let (first_ca, second_ca) = (
        TestCa::new("driftd test CA 1"),
        TestCa::new("driftd test CA 2"),
    );
    let first = first_ca.server();
    let (cert_path, key_path) = install(dir.path(), &first);
    let (port, probe_port) = (free_port(), free_port());
    let log_path = dir.path().join("driftd.log");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_driftd"));
    for (name, _) in std::env::vars().filter(|(k, _)| k.starts_with("DRIFTD_")) {
        command.env_remove(name);
    }
    let mut child = command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database", &db])
        .env("DRIFTD_TLS_CERT", &cert_path)
        .env("DRIFTD_TLS_KEY", &key_path)
        .env("DRIFTD_METRICS_LISTEN", format!("127.0.0.1:{probe_port}"))
        .stderr(std::fs::File::create(&log_path).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("https://driftd.test:{port}/healthz");
    let probe_url = format!("https://driftd.test:{probe_port}/readyz");
    let trusts_first = || client(Some(&first_ca));
    let trusts_second = || client(Some(&second_ca));
    eventually("ready over HTTPS", 15, async || {
        trusts_first().get(&probe_url).send().await.is_ok()
    })
    .await;

    assert_eq!(
        served_certificate(&trusts_first(), &url).await,
        Ok(first.der.clone())
    );
    assert_eq!(
        served_certificate(&trusts_first(), &probe_url).await,
        Ok(first.der.clone()),
        "the probe listener serves the same certificate"
    );
    let untrusted = served_certificate(&client(None), &url).await.unwrap_err();
    assert!(untrusted.contains("UnknownIssuer"), "{untrusted}");
    let other_ca = served_certificate(&trusts_second(), &url)
        .await
        .unwrap_err();
    assert!(other_ca.contains("UnknownIssuer"), "{other_ca}");
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    // A new pair from the other CA, then SIGHUP: served from the next handshake on.
    let second = second_ca.server();
    install(dir.path(), &second);
    hangup(&child);
    let took = eventually("the new certificate after SIGHUP", 5, async || {
        served_certificate(&trusts_second(), &url).await.as_ref() == Ok(&second.der)
    })
    .await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(served_certificate(&trusts_first(), &url).await.is_err());

    // A file that does not load keeps the certificate being served.
    replace(
        &cert_path,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    );
    hangup(&child);
    eventually("the warning", 5, async || {
        std::fs::read_to_string(&log_path)
            .unwrap()
            .contains("Cannot load the new TLS certificate; still serving the previous one")
    })
    .await;
    assert_eq!(
        served_certificate(&trusts_second(), &url).await,
        Ok(second.der.clone())
    );

    // Files replaced, no signal: noticed by the periodic check (every 5 s).
    let third = first_ca.server();
    install(dir.path(), &third);
    let took = eventually("the new certificate without a signal", 12, async || {
        served_certificate(&trusts_first(), &url).await.as_ref() == Ok(&third.der)
    })
    .await;
    assert!(took < Duration::from_secs(7), "{took:?}");

    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let logs = std::fs::read_to_string(&log_path).unwrap();
    assert!(logs.contains("TLS certificate reloaded"), "{logs}");
    assert!(!logs.contains("PRIVATE KEY"), "{logs}");
}

/// `tls_listeners: api` leaves the probe listener plain HTTP (for scrapers that speak only
/// that); `metrics` leaves the API plain (a sidecar's, on loopback) and serves the probes HTTPS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_can_be_on_one_listener_only() {
    use driftd::config::TlsListeners;
    for which in [TlsListeners::Api, TlsListeners::Metrics] {
        let dir = TempDir::new().unwrap();
        let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
        let ca = TestCa::new("driftd test CA");
        let (cert, key) = install(dir.path(), &ca.server());
        let mut config = test_config(&db);
        config.tls_cert = Some(cert);
        config.tls_key = Some(key);
        config.tls_listeners = which;
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let probes = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ports = (
            api.local_addr().unwrap().port(),
            probes.local_addr().unwrap().port(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(driftd::serve::run(
            driftd::serve::Listeners {
                api,
                probes: Some(probes),
            },
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        let (https_port, plain_port) = match which {
            TlsListeners::Api => (ports.0, ports.1),
            _ => (ports.1, ports.0),
        };
        let plain = reqwest::Client::new();
        let plain_url = format!("http://127.0.0.1:{plain_port}/healthz");
        eventually("ready", 10, async || {
            plain
                .get(&plain_url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        let https_url = format!("https://driftd.test:{https_port}/healthz");
        let served = served_certificate(&client(Some(&ca)), &https_url).await;
        assert!(served.is_ok(), "{which:?}: {served:?}");
        let url = format!("http://127.0.0.1:{https_port}/healthz");
        assert!(plain.get(&url).send().await.is_err(), "{which:?}");
        let url = format!("https://driftd.test:{plain_port}/healthz");
        assert!(
            client(Some(&ca)).get(&url).send().await.is_err(),
            "{which:?}"
        );
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}

/// Files that do not load stop `driftd serve` at startup, saying which and why, never quoting
/// the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_files_that_do_not_load_stop_the_start() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let ca = TestCa::new("driftd test CA");
    let good = ca.server();
    let other = ca.server();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("good.crt"), &good.cert).unwrap();
    std::fs::write(path("other.key"), &other.key).unwrap();
    std::fs::write(
        path("bad.key"),
        "-----BEGIN PRIVATE KEY-----\nhunter2hunter2!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let start = async |cert: &str, key: &str| {
        let mut config = test_config(&db);
        config.tls_cert = Some(path(cert));
        config.tls_key = Some(path(key));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let run = driftd::serve::run(listener, config, std::future::pending());
        let ended = tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .expect("stops at once");
        format!("{:#}", ended.unwrap_err())
    };
    let missing = start("none.crt", "other.key").await;
    assert!(
        missing.contains("cannot load the TLS certificate: cannot read ")
            && missing.contains("none.crt"),
        "{missing}"
    );
    let bad_key = start("good.crt", "bad.key").await;
    assert!(
        bad_key.contains("bad.key: no PEM private key in it"),
        "{bad_key}"
    );
    assert!(!bad_key.contains("hunter2"), "{bad_key}");
    let mismatch = start("good.crt", "other.key").await;
    assert!(
        mismatch.contains("other.key is not the private key of the certificate in"),
        "{mismatch}"
    );
}

/// `driftd push` to an HTTPS server whose certificate a private CA signed: refused without
/// `--ca-cert` (the public roots do not know the CA), uploaded with it; a file holding no
/// certificate is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_trusts_a_private_ca_given_with_ca_cert() {
    let dir = TempDir::new().unwrap();
    let db = fresh_database(Db::Sqlite, dir.path()).await.unwrap();
    let ca = TestCa::new("driftd private CA");
    let (cert, key) = install(dir.path(), &ca.server_named("localhost"));
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let mut config = test_config(&db);
    config.tls_cert = Some(cert);
    config.tls_key = Some(key.clone());
    let app = crate::helpers::spawn_app(config).await;
    let url = format!(
        "https://localhost:{}",
        app.address.rsplit(':').next().unwrap()
    );
    let push = |extra: Vec<String>| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_driftd"))
                .args(["push", &crate::helpers::sample(), "--url", &url])
                .args(["--dataset", "ranking", "--attempts", "1"])
                .args(extra)
                .env_remove("DRIFTD_CA_CERT")
                .output()
                .unwrap()
        })
    };
    let refused = push(vec![]).await.unwrap();
    let said = crate::helpers::stderr(&refused);
    assert_eq!(refused.status.code(), Some(2), "{said}");
    assert!(said.contains("certificate"), "{said}");
    let pushed = push(vec!["--ca-cert".into(), ca_file.display().to_string()])
        .await
        .unwrap();
    let said = crate::helpers::stderr(&pushed);
    assert_eq!(pushed.status.code(), Some(0), "{said}");
    let summary: serde_json::Value = serde_json::from_slice(&pushed.stdout).unwrap();
    assert_eq!(summary["dataset"], "ranking", "{summary}");
    assert!(summary["rows"].as_u64().unwrap() > 0, "{summary}");
    // The private key is not a certificate bundle: named, and its contents never shown.
    let wrong = push(vec!["--ca-cert".into(), key.display().to_string()])
        .await
        .unwrap();
    let said = crate::helpers::stderr(&wrong);
    assert_eq!(wrong.status.code(), Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "--ca-cert {}: holds no PEM certificate",
            key.display()
        )),
        "{said}"
    );
    assert!(!said.contains("PRIVATE KEY"), "{said}");
    app.stop().await;
}
