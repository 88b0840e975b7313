//! Serving HTTPS: the `[tls]` table, loading and checking the certificate chain and its key, and
//! reloading both when their files change, so a renewed certificate takes effect without a
//! restart.
//!
//! rustls with the aws-lc-rs provider, TLS 1.2 and 1.3 with rustls's default (safe) suites,
//! ALPN `http/1.1`. A file that cannot be read or parsed, or a key that does not match its
//! certificate, stops start-up with the file's name; at a reload it leaves the previous
//! certificate serving and is logged, as does a renewal that is already expired or not yet
//! valid. The served certificate's `notAfter` is exported
//! (`keyless_tls_certificate_expiry_timestamp_seconds`), and one that expires within
//! [`EXPIRY_WARNING`] is warned about at load and once a day after.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use time::OffsetDateTime;
use tracing::{error, info, warn};

/// The largest certificate or key file read (a chain of a few certificates is a few KiB).
pub const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// How often the files are checked for a change.
const RELOAD_CHECK: Duration = Duration::from_secs(5);
/// A certificate expiring sooner than this is warned about.
pub const EXPIRY_WARNING: time::Duration = time::Duration::days(14);
/// How often the warning about an expiring certificate is repeated.
const EXPIRY_REMINDER: Duration = Duration::from_secs(24 * 3600);
/// A certificate whose `notBefore` is at most this far ahead counts as valid: the issuing CA's
/// clock and ours may differ a little.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(5);

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

/// When the served certificate (the chain's first) is valid, in Unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

impl Validity {
    /// What is wrong with the certificate at `now`, if anything.
    pub fn check(self, now: OffsetDateTime) -> Standing {
        let now = now.unix_timestamp();
        if now >= self.not_after {
            Standing::Expired
        } else if self.not_before > now.saturating_add(CLOCK_SKEW.whole_seconds()) {
            Standing::NotYetValid
        } else if self.not_after - now < EXPIRY_WARNING.whole_seconds() {
            Standing::ExpiresSoon
        } else {
            Standing::Valid
        }
    }

    /// `notAfter` as RFC 3339, for messages.
    fn not_after_text(self) -> String {
        rfc3339(self.not_after)
    }
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// A certificate's standing at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Valid, and for longer than [`EXPIRY_WARNING`].
    Valid,
    /// Valid, but for less than [`EXPIRY_WARNING`].
    ExpiresSoon,
    /// Past its `notAfter`: clients refuse it.
    Expired,
    /// Before its `notBefore` (beyond a little clock skew): clients refuse it.
    NotYetValid,
}

impl Standing {
    /// Whether clients accept the certificate.
    pub fn usable(self) -> bool {
        matches!(self, Standing::Valid | Standing::ExpiresSoon)
    }
}

fn validity_of(cert: &CertificateDer<'_>, path: &Path) -> Result<Validity, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|e| {
        format!(
            "the TLS certificate file {} does not start with a valid X.509 certificate: {e}",
            path.display()
        )
    })?;
    let validity = parsed.validity();
    Ok(Validity {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    })
}

/// A loaded certificate: the config to serve it with, and its validity.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The rustls server config.
    pub config: Arc<ServerConfig>,
    /// When the served certificate is valid.
    pub validity: Validity,
}

/// Reads and checks the files into a server config.
pub fn load(settings: &TlsSettings) -> Result<Loaded, String> {
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
    let validity = certs
        .first()
        .map(|leaf| validity_of(leaf, &settings.cert_file))
        .transpose()?;
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
    let validity = validity.ok_or_else(|| {
        format!(
            "the TLS certificate file {} has no CERTIFICATE block",
            settings.cert_file.display()
        )
    })?;
    Ok(Loaded {
        config: Arc::new(config),
        validity,
    })
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

/// The metrics the certificate keeps current.
#[derive(Debug, Clone, Default)]
pub struct TlsMetrics {
    /// `notAfter` of the certificate being served, Unix seconds.
    pub expiry: Gauge,
    /// Changed files that were not taken: unreadable, not matching, expired or not yet valid.
    pub reload_failures: Counter,
}

/// The certificate being served, replaced when its files change.
#[derive(Debug)]
pub struct Certificates {
    settings: TlsSettings,
    current: ArcSwap<ServerConfig>,
    validity: std::sync::Mutex<Validity>,
    metrics: TlsMetrics,
}

impl Certificates {
    /// Loads the files (start-up fails on an error). An expired or not yet valid certificate
    /// is served all the same, with an error logged: refusing to start would not make it valid,
    /// and a renewal written next is picked up within seconds.
    pub fn open(
        settings: TlsSettings,
        metrics: TlsMetrics,
        now: OffsetDateTime,
    ) -> Result<Arc<Certificates>, String> {
        let loaded = load(&settings)?;
        let certs = Certificates {
            settings,
            current: ArcSwap::new(loaded.config),
            validity: std::sync::Mutex::new(loaded.validity),
            metrics,
        };
        certs.metrics.expiry.set(loaded.validity.not_after);
        certs.report(loaded.validity, now);
        Ok(Arc::new(certs))
    }

    /// The config new connections are handshaken with.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.current.load_full()
    }

    /// When the certificate being served is valid.
    pub fn validity(&self) -> Validity {
        *self
            .validity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Logs what is wrong with `validity` at `now`, if anything.
    fn report(&self, validity: Validity, now: OffsetDateTime) {
        let cert = self.settings.cert_file.display();
        let until = validity.not_after_text();
        match validity.check(now) {
            Standing::Valid => {}
            Standing::ExpiresSoon => {
                let days = (validity.not_after - now.unix_timestamp()) / 86_400;
                warn!(
                    "the TLS certificate {cert} expires at {until} (in {days} days); renew it, keyless picks up the new files within seconds"
                );
            }
            Standing::Expired => error!(
                "the TLS certificate {cert} expired at {until}; clients refuse it until it is renewed"
            ),
            Standing::NotYetValid => error!(
                "the TLS certificate {cert} is not valid before {}; check this host's clock or the certificate",
                rfc3339(validity.not_before)
            ),
        }
    }

    /// Loads the files again if either changed since `last`; returns what it saw. A renewal
    /// that clients would refuse (expired, not yet valid) does not replace a certificate they
    /// accept.
    pub fn reload_if_changed(
        &self,
        last: (Option<SystemTime>, Option<SystemTime>),
        now: OffsetDateTime,
    ) -> (Option<SystemTime>, Option<SystemTime>) {
        let seen = modified(&self.settings);
        if seen == last {
            return seen;
        }
        let loaded = match load(&self.settings) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.metrics.reload_failures.inc();
                error!("TLS certificate not reloaded, still serving the previous one: {e}");
                return seen;
            }
        };
        let standing = loaded.validity.check(now);
        if !standing.usable() && self.validity().check(now).usable() {
            self.metrics.reload_failures.inc();
            let why = match standing {
                Standing::Expired => format!("expired at {}", loaded.validity.not_after_text()),
                _ => format!("not valid before {}", rfc3339(loaded.validity.not_before)),
            };
            error!(
                cert = %self.settings.cert_file.display(),
                "TLS certificate not reloaded, still serving the previous one: the new one is {why}"
            );
            return seen;
        }
        self.current.store(loaded.config);
        *self
            .validity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded.validity;
        self.metrics.expiry.set(loaded.validity.not_after);
        info!(
            cert = %self.settings.cert_file.display(),
            not_after = loaded.validity.not_after_text(),
            "TLS certificate reloaded"
        );
        self.report(loaded.validity, now);
        seen
    }

    /// Checks the files every few seconds for as long as the server runs, and repeats the
    /// warning about an expiring certificate once a day.
    pub async fn watch(self: Arc<Self>) {
        let mut last = modified(&self.settings);
        let mut reminded = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(RELOAD_CHECK).await;
            let now = OffsetDateTime::now_utc();
            last = self.reload_if_changed(last, now);
            if reminded.elapsed() >= EXPIRY_REMINDER {
                reminded = tokio::time::Instant::now();
                self.report(self.validity(), now);
            }
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
        let defaults = rcgen::CertificateParams::default();
        test_pki_valid(defaults.not_before, defaults.not_after)
    }

    /// [`test_pki`] with the server certificate valid from `not_before` to `not_after`.
    pub(crate) fn test_pki_valid(not_before: OffsetDateTime, not_after: OffsetDateTime) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "keyless test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.not_before = not_before;
        params.not_after = not_after;
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
        let loaded = load(&settings).unwrap();
        assert_eq!(loaded.config.alpn_protocols, vec![b"http/1.1".to_vec()]);

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

        // A PEM block whose contents are not a certificate.
        std::fs::write(
            &settings.cert_file,
            "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load(&settings).unwrap_err();
        assert!(
            e.contains("does not start with a valid X.509 certificate") && e.contains("tls.crt"),
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

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn a_changed_pair_is_reloaded_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let settings = write_pki(dir.path(), &test_pki());
        let metrics = TlsMetrics::default();
        let certs = Certificates::open(settings.clone(), metrics.clone(), now()).unwrap();
        let first = certs.current();
        let seen = modified(&settings);
        assert!(Arc::ptr_eq(&first, &certs.current()));
        // Unchanged files: nothing is loaded.
        assert_eq!(certs.reload_if_changed(seen, now()), seen);
        assert!(Arc::ptr_eq(&first, &certs.current()));
        assert_eq!(metrics.reload_failures.get(), 0);
        // A broken pair keeps the previous certificate.
        std::fs::write(&settings.cert_file, "garbage").unwrap();
        let seen = certs.reload_if_changed((None, None), now());
        assert!(Arc::ptr_eq(&first, &certs.current()));
        assert_eq!(metrics.reload_failures.get(), 1);
        // A renewed pair replaces it.
        write_pki(dir.path(), &test_pki());
        certs.reload_if_changed((None, seen.1), now());
        assert!(!Arc::ptr_eq(&first, &certs.current()));
        assert_eq!(metrics.reload_failures.get(), 1);
    }

    #[test]
    fn the_served_certificate_s_expiry_is_exported_and_checked() {
        let day = time::Duration::days(1);
        let days = time::Duration::days;
        let valid = Validity {
            not_before: (now() - day).unix_timestamp(),
            not_after: (now() + days(90)).unix_timestamp(),
        };
        assert_eq!(valid.check(now()), Standing::Valid);
        assert_eq!(
            valid.check(now() + days(80)),
            Standing::ExpiresSoon,
            "10 days left"
        );
        assert_eq!(valid.check(now() + days(90)), Standing::Expired);
        assert_eq!(valid.check(now() - days(2)), Standing::NotYetValid);
        // A CA's clock a little ahead of ours is tolerated.
        assert_eq!(
            valid.check(now() - day - time::Duration::minutes(4)),
            Standing::Valid
        );
        assert!(Standing::ExpiresSoon.usable() && !Standing::Expired.usable());

        let dir = tempfile::tempdir().unwrap();
        let pki = test_pki_valid(now() - day, now() + days(90));
        let settings = write_pki(dir.path(), &pki);
        let loaded = load(&settings).unwrap();
        assert_eq!(loaded.validity, valid);
        let metrics = TlsMetrics::default();
        let certs = Certificates::open(settings.clone(), metrics.clone(), now()).unwrap();
        assert_eq!(metrics.expiry.get(), valid.not_after);
        assert_eq!(certs.validity(), valid);
        let served = certs.current();

        // A renewal that is already expired, or not valid yet, does not replace a good one.
        let expired = test_pki_valid(now() - days(10), now() - day);
        write_pki(dir.path(), &expired);
        let seen = certs.reload_if_changed((None, None), now());
        assert!(Arc::ptr_eq(&served, &certs.current()));
        assert_eq!(metrics.reload_failures.get(), 1);
        assert_eq!(metrics.expiry.get(), valid.not_after);
        write_pki(
            dir.path(),
            &test_pki_valid(now() + days(2), now() + days(90)),
        );
        let seen = certs.reload_if_changed((None, seen.1), now());
        assert!(Arc::ptr_eq(&served, &certs.current()));
        assert_eq!(metrics.reload_failures.get(), 2);

        // A good renewal replaces it and moves the exported expiry.
        write_pki(dir.path(), &test_pki_valid(now() - day, now() + days(180)));
        certs.reload_if_changed((None, seen.1), now());
        assert!(!Arc::ptr_eq(&served, &certs.current()));
        assert_eq!(metrics.expiry.get(), (now() + days(180)).unix_timestamp());

        // Once the served one has expired, any loadable renewal is better than nothing.
        let late = now() + days(200);
        let served = certs.current();
        write_pki(dir.path(), &test_pki_valid(late + day, late + days(90)));
        certs.reload_if_changed((None, None), late);
        assert!(!Arc::ptr_eq(&served, &certs.current()));

        // An expired certificate at start-up is served, with its expiry exported.
        let old = test_pki_valid(now() - days(10), now() - day);
        let settings = write_pki(dir.path(), &old);
        let metrics = TlsMetrics::default();
        Certificates::open(settings, metrics.clone(), now()).unwrap();
        assert_eq!(metrics.expiry.get(), (now() - day).unix_timestamp());
    }
}
