//! Serving HTTPS: the `[tls]` table, loading and checking the certificate chain and its key, and
//! reloading both when their files change, so a renewed certificate takes effect without a
//! restart.
//!
//! rustls with the aws-lc-rs provider, TLS 1.2 and 1.3 with rustls's default (safe) suites,
//! ALPN `http/1.1`. A file that cannot be read or parsed, or a key that does not match its
//! certificate, stops start-up with the file's name; at a reload it leaves the previous
//! certificate serving and is logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use tracing::{error, info};

/// The largest certificate or key file read (a chain of a few certificates is a few KiB).
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// How often the files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// The `[tls]` table of the config file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

fn read_bounded(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(format!(
            "the TLS {what} {} is larger than {MAX_PEM_BYTES} bytes; is it the right file?",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("cannot read the TLS {what} {}: {e}", path.display()))
}

/// Reads and checks the files into a server config.
pub fn load(settings: &TlsSettings) -> Result<Arc<ServerConfig>, String> {
    let cert_pem = read_bounded(&settings.cert_file, "certificate file")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            format!(
                "the TLS certificate file {} is not valid PEM: {e}",
                settings.cert_file.display()
            )
        })?;
    if certs.is_empty() {
        return Err(format!(
            "the TLS certificate file {} has no CERTIFICATE block",
            settings.cert_file.display()
        ));
    }
    let key_pem = read_bounded(&settings.key_file, "key file")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "the TLS key file {} has no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}",
            settings.key_file.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "the TLS key {} does not fit the certificate {}: {e}",
                settings.key_file.display(),
                settings.cert_file.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A warning when the key file can be read by others than its owner.
pub fn key_permissions_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "the TLS key file {} is readable by others than its owner (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

fn modified(settings: &TlsSettings) -> (Option<SystemTime>, Option<SystemTime>) {
    let at = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (at(&settings.cert_file), at(&settings.key_file))
}

/// The certificate being served, replaced when its files change.
#[derive(Debug)]
pub struct Certificates {
    settings: TlsSettings,
    current: ArcSwap<ServerConfig>,
}

impl Certificates {
    /// Loads the files (start-up fails on an error).
    pub fn open(settings: TlsSettings) -> Result<Arc<Certificates>, String> {
        let config = load(&settings)?;
        Ok(Arc::new(Certificates {
            settings,
            current: ArcSwap::new(config),
        }))
    }

    /// The config new connections are handshaken with.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// Loads the files again if either changed since `last`; returns what it saw.
    pub fn reload_if_changed(
        &self,
        last: (Option<SystemTime>, Option<SystemTime>),
    ) -> (Option<SystemTime>, Option<SystemTime>) {
        let now = modified(&self.settings);
        if now == last {
            return now;
        }
        match load(&self.settings) {
            Ok(config) => {
                self.current.store(config);
                info!(cert = %self.settings.cert_file.display(), "TLS certificate reloaded");
            }
            Err(e) => error!("TLS certificate not reloaded, still serving the previous one: {e}"),
        }
        now
    }

    /// Checks the files every few seconds for as long as the server runs.
    pub async fn watch(self: Arc<Self>) {
        let mut last = modified(&self.settings);
        loop {
            tokio::time::sleep(RELOAD_CHECK).await;
            last = self.reload_if_changed(last);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A CA, and a certificate it signed for `localhost` and 127.0.0.1, as PEM.
    pub(crate) struct TestPki {
        pub ca_pem: String,
        pub cert_pem: String,
        pub key_pem: String,
    }

    pub(crate) fn test_pki() -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "keyless test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        TestPki {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub(crate) fn write_pki(dir: &Path, pki: &TestPki) -> TlsSettings {
        let settings = TlsSettings {
            cert_file: dir.join("tls.crt"),
            key_file: dir.join("tls.key"),
        };
        std::fs::write(&settings.cert_file, &pki.cert_pem).unwrap();
        std::fs::write(&settings.key_file, &pki.key_pem).unwrap();
        settings
    }

    #[test]
    fn a_good_pair_loads_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let pki = test_pki();
        let settings = write_pki(dir.path(), &pki);
        let config = load(&settings).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);

        let other = test_pki();
        std::fs::write(&settings.key_file, &other.key_pem).unwrap();
        let e = load(&settings).unwrap_err();
        assert!(e.contains("does not fit the certificate"), "{e}");

        std::fs::write(&settings.key_file, &pki.key_pem).unwrap();
        std::fs::write(&settings.cert_file, "not a certificate\n").unwrap();
        let e = load(&settings).unwrap_err();
        assert!(
            e.contains("has no CERTIFICATE block") && e.contains("tls.crt"),
            "{e}"
        );

        std::fs::write(&settings.cert_file, &pki.cert_pem).unwrap();
        std::fs::write(&settings.key_file, &pki.cert_pem).unwrap();
        let e = load(&settings).unwrap_err();
        assert!(
            e.contains("has no usable private key") && e.contains("tls.key"),
            "{e}"
        );

        let missing = TlsSettings {
            cert_file: dir.path().join("absent.crt"),
            key_file: settings.key_file.clone(),
        };
        let e = load(&missing).unwrap_err();
        assert!(e.contains("cannot read") && e.contains("absent.crt"), "{e}");

        let huge = dir.path().join("huge.crt");
        std::fs::write(&huge, vec![b'A'; MAX_PEM_BYTES as usize + 1]).unwrap();
        let e = load(&TlsSettings {
            cert_file: huge,
            key_file: settings.key_file.clone(),
        })
        .unwrap_err();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn an_open_key_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let settings = write_pki(dir.path(), &test_pki());
        std::fs::set_permissions(&settings.key_file, std::fs::Permissions::from_mode(0o600))
            .unwrap();
        assert_eq!(key_permissions_warning(&settings.key_file), None);
        std::fs::set_permissions(&settings.key_file, std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let w = key_permissions_warning(&settings.key_file).unwrap();
        assert!(w.contains("chmod 600") && w.contains("644"), "{w}");
    }

    #[test]
    fn a_changed_pair_is_reloaded_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let settings = write_pki(dir.path(), &test_pki());
        let certs = Certificates::open(settings.clone()).unwrap();
        let first = certs.current();
        let seen = modified(&settings);
        assert!(Arc::ptr_eq(&first, &certs.current()));
        // Unchanged files: nothing is loaded.
        assert_eq!(certs.reload_if_changed(seen), seen);
        assert!(Arc::ptr_eq(&first, &certs.current()));
        // A broken pair keeps the previous certificate.
        std::fs::write(&settings.cert_file, "garbage").unwrap();
        let seen = certs.reload_if_changed((None, None));
        assert!(Arc::ptr_eq(&first, &certs.current()));
        // A renewed pair replaces it.
        write_pki(dir.path(), &test_pki());
        certs.reload_if_changed((None, seen.1));
        assert!(!Arc::ptr_eq(&first, &certs.current()));
    }
}
