//! The keyless [`Store`] port, twice: SQLite (the default, [`SqliteStore`], one file in the data
//! dir) and Postgres ([`PgStore`], chosen by `database_url`), each with its own migrations and
//! the same semantics, checked by one conformance suite (`tests/conformance.rs`) run on both.
//! With Postgres, [`audit_table`] also keeps a queryable copy of the audit log.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keyless_core::ports::StoreError> {
//! use keyless_core::ports::Store;
//! let opened = keyless_store::open(None, std::path::Path::new("./keyless-data")).await?;
//! let entities = opened.store.load().await?;
//! # let _ = entities; Ok(()) }
//! ```
//!
//! Every entity lives in one small table; policy documents are stored verbatim. The request
//! path never reads from here: the server keeps an in-memory directory rebuilt after each change.
//! Passwords in a [`DatabaseUrl`] never reach a log line, an error or `Debug` output.

pub mod audit_table;
mod codec;
pub mod postgres;
pub mod sqlite;

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use keyless_core::ports::{SharedStore, StoreError};
use sqlx::postgres::PgConnectOptions;

pub use audit_table::AuditTable;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// The SQLite file in the data dir when no `database_url` is given.
pub const SQLITE_FILE: &str = "keyless.db";

/// A Postgres connection URL (`postgres://` or `postgresql://`), checked when the config is
/// read. `Debug` and [`DatabaseUrl::target`] show where it points, never the password.
#[derive(Clone)]
pub struct DatabaseUrl {
    options: PgConnectOptions,
    target: String,
}

impl DatabaseUrl {
    /// Parses a URL; the error says what is wrong without repeating the URL (it may hold a
    /// password).
    pub fn parse(url: &str) -> Result<DatabaseUrl, String> {
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let scheme = url.split_once("://").map_or("", |(s, _)| s);
            return Err(if scheme.is_empty() {
                "database_url must be a postgres:// or postgresql:// URL (leave it out to use SQLite in data_dir)".to_owned()
            } else {
                format!(
                    "database_url: unsupported scheme {scheme:?}; only postgres:// and postgresql:// are supported (leave it out to use SQLite in data_dir)"
                )
            });
        }
        check_tls_files(url)?;
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            // sqlx's message names the offending part (a bad port, an unknown parameter), not
            // the URL; strip anything after an '@' just in case.
            let text = e.to_string();
            let text = text.split('@').next().unwrap_or("").to_owned();
            format!("database_url is not a valid Postgres URL: {text}")
        })?;
        Ok(DatabaseUrl {
            target: target_of(&options),
            options,
        })
    }

    /// The same server and credentials, another database (the tests make one per test).
    pub fn with_database(&self, database: &str) -> DatabaseUrl {
        let options = self.options.clone().database(database);
        DatabaseUrl {
            target: target_of(&options),
            options,
        }
    }

    /// Where the URL points: `host:port (database D, user U)`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The connection options (they hold the password: never log or `Debug` them).
    pub fn options(&self) -> &PgConnectOptions {
        &self.options
    }
}

/// The certificate and key files a URL names (`sslrootcert`, `sslcert`, `sslkey`) must be
/// readable now: at connect time a missing one is only "No such file or directory", naming
/// neither the parameter nor the path.
fn check_tls_files(url: &str) -> Result<(), String> {
    let Some((_, query)) = url.split_once('?') else {
        return Ok(());
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if !matches!(key.as_ref(), "sslrootcert" | "sslcert" | "sslkey")
            || value.starts_with("-----BEGIN")
        {
            continue;
        }
        if let Err(e) = std::fs::File::open(value.as_ref()) {
            return Err(format!("database_url: {key} {value}: cannot read it: {e}"));
        }
    }
    Ok(())
}

fn target_of(options: &PgConnectOptions) -> String {
    format!(
        "{}:{} (database {}, user {})",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or(options.get_username()),
        options.get_username()
    )
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl(postgres {}, password hidden)", self.target)
    }
}

impl PartialEq for DatabaseUrl {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
    }
}

/// A database error for an operator: sqlx's text, which names neither the URL nor the password.
pub(crate) fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => {
            "no connection within the timeout (is the server up and reachable?)".to_owned()
        }
        other => other.to_string(),
    }
}

/// What [`open`] returns: the store, and with Postgres the audit table.
pub struct Opened {
    /// The store.
    pub store: SharedStore,
    /// The `audit_events` table (Postgres only).
    pub audit_table: Option<AuditTable>,
    /// `SQLite data_dir/keyless.db` or `Postgres host:port (…)`, for the start-up log.
    pub description: String,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Opens the store of a server: Postgres at `database_url` when given, else SQLite in
/// `data_dir` (created if missing). Runs the migrations.
pub async fn open(
    database_url: Option<&DatabaseUrl>,
    data_dir: &Path,
) -> Result<Opened, StoreError> {
    match database_url {
        Some(url) => {
            let store = PgStore::connect(url).await?;
            let audit_table = AuditTable::new(store.pool().clone());
            Ok(Opened {
                store: Arc::new(store),
                audit_table: Some(audit_table),
                description: format!("Postgres {}", url.target()),
            })
        }
        None => {
            let path = data_dir.join(SQLITE_FILE);
            let store = SqliteStore::open(&path).await?;
            Ok(Opened {
                store: Arc::new(store),
                audit_table: None,
                description: format!("SQLite {}", path.display()),
            })
        }
    }
}

/// A fresh `AROA…` role id: 21 characters, like AWS's unique ids.
pub fn new_role_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    use rand::Rng;
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("AROA{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_look_like_aws() {
        let id = new_role_id();
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AROA"));
    }

    #[test]
    fn database_urls_hide_the_password() {
        let url = DatabaseUrl::parse("postgres://app:s3cr3t-pw@db.internal:5433/keyless").unwrap();
        assert_eq!(
            url.target(),
            "db.internal:5433 (database keyless, user app)"
        );
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cr3t-pw"), "{shown}");
        assert!(shown.contains("db.internal:5433"), "{shown}");
        assert!(DatabaseUrl::parse("postgresql://app@localhost/k").is_ok());
    }

    #[test]
    fn tls_files_named_in_the_url_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let ok = format!(
            "postgres://app:s3cr3t-pw@db/k?sslmode=verify-full&sslrootcert={}",
            ca.display()
        );
        assert!(DatabaseUrl::parse(&ok).is_ok());
        let missing = dir.path().join("absent.pem");
        for key in ["sslrootcert", "sslcert", "sslkey"] {
            let url = format!(
                "postgres://app:s3cr3t-pw@db/k?sslmode=verify-full&{key}={}",
                missing.display()
            );
            let e = DatabaseUrl::parse(&url).unwrap_err();
            assert!(e.starts_with(&format!("database_url: {key} ")), "{e}");
            assert!(
                e.contains("absent.pem") && e.contains("cannot read it"),
                "{e}"
            );
            assert!(!e.contains("s3cr3t-pw"), "{e}");
        }
    }

    #[test]
    fn other_schemes_are_refused_without_echoing_the_url() {
        let e = DatabaseUrl::parse("mysql://app:s3cr3t-pw@db/k").unwrap_err();
        assert_eq!(
            e,
            "database_url: unsupported scheme \"mysql\"; only postgres:// and postgresql:// are supported (leave it out to use SQLite in data_dir)"
        );
        let e = DatabaseUrl::parse("keyless.db").unwrap_err();
        assert!(e.starts_with("database_url must be a postgres://"), "{e}");
        let e = DatabaseUrl::parse("postgres://app:s3cr3t-pw@db:notaport/k").unwrap_err();
        assert!(!e.contains("s3cr3t-pw"), "{e}");
        assert!(
            e.starts_with("database_url is not a valid Postgres URL"),
            "{e}"
        );
    }
}
