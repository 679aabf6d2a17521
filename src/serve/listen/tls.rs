//! TLS for the listeners (rustls, with the *ring* provider reqwest already uses): the
//! certificate chain and key from PEM files (`tls_cert`, `tls_key`), served by a resolver whose
//! certificate is swapped whole when either file changes or on SIGHUP. A new pair that does not
//! load keeps the one being served, with a warning.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How often the files are checked for a change (SIGHUP reloads at once).
const POLL: Duration = Duration::from_secs(5);

/// Why a certificate and key could not be loaded. Never shows key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a PEM certificate chain ({reason})", .path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("{}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)", .path.display())]
    Key { path: PathBuf },
    #[error("{} is not the private key of the certificate in {}", .key.display(), .cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("{}: {reason}", .key.display())]
    Unusable { key: PathBuf, reason: String },
}

/// The certificate being served, swapped whole on reload.
struct Current(RwLock<Arc<CertifiedKey>>);

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Current([certificate])")
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.0
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// The TLS side of the listeners: what they hand connections to, and the files it reloads.
#[derive(Clone)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    acceptor: TlsAcceptor,
}

impl Tls {
    /// Loads the pair; an error here stops `driftd serve` from starting.
    pub fn load(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = certified_key(cert, key, &provider)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(certified))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Unusable {
                key: key.to_owned(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider,
            current,
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// Loads the files again and serves the new pair from the next handshake on.
    fn reload(&self) -> Result<(), TlsError> {
        let certified = certified_key(&self.cert, &self.key, &self.provider)?;
        *self
            .current
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
        Ok(())
    }

    /// Reloads on SIGHUP, and when either file changes (checked every few seconds), until
    /// `stop`.
    pub async fn watch(self, stop: CancellationToken) {
        let mut hangup = hangups();
        let mut seen = self.stamp();
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        poll.tick().await;
        loop {
            let signalled = tokio::select! {
                () = stop.cancelled() => return,
                () = next_hangup(&mut hangup) => true,
                _ = poll.tick() => false,
            };
            let now = self.stamp();
            if !signalled && now == seen {
                continue;
            }
            seen = now;
            match self.reload() {
                Ok(()) => info!(cert = %self.cert.display(), signalled, "TLS certificate reloaded"),
                Err(error) => warn!(
                    %error,
                    "Cannot load the new TLS certificate; still serving the previous one"
                ),
            }
        }
    }

    /// What tells that a file changed: its modification time, length and inode (a
    /// Kubernetes secret volume swaps a symbolic link; the target's metadata changes).
    fn stamp(&self) -> [Option<(SystemTime, u64, u64)>; 2] {
        use std::os::unix::fs::MetadataExt;
        [&self.cert, &self.key].map(|path| {
            let m = std::fs::metadata(path).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
    }
}

type Hangups = Option<tokio::signal::unix::Signal>;

fn hangups() -> Hangups {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(error) => {
            warn!(%error, "Cannot listen for SIGHUP; the TLS certificate reloads only on file changes");
            None
        }
    }
}

async fn next_hangup(hangups: &mut Hangups) {
    let received = match hangups {
        Some(s) => s.recv().await.is_some(),
        None => false,
    };
    if !received {
        // No signal stream (or it ended): file changes alone reload.
        *hangups = None;
        std::future::pending::<()>().await;
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certified_key(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let bad_cert = |reason: String| TlsError::Certificate {
        path: cert.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad_cert("no CERTIFICATE block".into()));
    }
    // The key's own parse errors are not shown: they could quote part of the file.
    let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|_| TlsError::Key {
        path: key.to_owned(),
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        },
        other => TlsError::Unusable {
            key: key.to_owned(),
            reason: other.to_string(),
        },
    })
}
