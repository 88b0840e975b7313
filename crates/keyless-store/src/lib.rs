//! SQLite implementation of the keyless [`Store`] port.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keyless_core::ports::StoreError> {
//! use keyless_core::ports::Store;
//! let store = keyless_store::SqliteStore::open(std::path::Path::new("./keyless-data/keyless.db")).await?;
//! let entities = store.load().await?;
//! # let _ = entities; Ok(()) }
//! ```
//!
//! Every entity lives in one small table; policy documents are stored verbatim. The request
//! path never reads from here: the server keeps an in-memory directory rebuilt after each change.
//! Postgres will implement the same port and run the same conformance tests.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use keyless_core::model::{
    Account, Entities, Guardrail, InlinePolicy, ManagedPolicy, OidcProvider, Origin, PolicyVersion,
    Role,
};
use keyless_core::ports::{Change, Store, StoreError};
use keyless_core::revocation::{NewRevocation, Revocation, Target};
use keyless_types::{AccountId, OffsetDateTime};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// The SQLite store (one file, WAL mode).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn err(context: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError(format!("{context}: {e}"))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and runs migrations.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| StoreError(format!("cannot open database {}: {e}", path.display())))?;
        Self::migrate(pool).await
    }

    /// An in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")
            .map_err(err("in-memory options"))?
            .foreign_keys(true);
        // One connection: every connection to :memory: is a separate database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(err("open in-memory database"))?;
        Self::migrate(pool).await
    }

    async fn migrate(pool: SqlitePool) -> Result<Self, StoreError> {
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError(format!("database migration failed: {e}")))?;
        Ok(SqliteStore { pool })
    }
}

fn origin_flag(origin: Origin) -> i64 {
    match origin {
        Origin::Config => 1,
        Origin::Api => 0,
    }
}

fn origin_of(flag: i64) -> Origin {
    if flag == 1 {
        Origin::Config
    } else {
        Origin::Api
    }
}

fn json_list(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

fn json_map(m: &BTreeMap<String, String>) -> String {
    let obj: serde_json::Map<String, serde_json::Value> = m
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    serde_json::Value::Object(obj).to_string()
}

fn parse_list(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError(format!("corrupt JSON list in database: {e}")))
}

fn parse_map(s: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError(format!("corrupt JSON map in database: {e}")))
}

fn account_id(s: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(s).map_err(|e| StoreError(format!("corrupt account id in database: {e}")))
}

fn time_of(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
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

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn load(&self) -> Result<Entities, StoreError> {
        let mut out = Entities::default();
        let rows = sqlx::query("SELECT id, name, ou_path, from_config FROM accounts ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(err("load accounts"))?;
        for r in rows {
            out.accounts.push(Account {
                id: account_id(r.get("id"))?,
                name: r.get("name"),
                ou_path: r.get("ou_path"),
                origin: origin_of(r.get("from_config")),
            });
        }
        let rows = sqlx::query(
            "SELECT url, account, client_ids, thumbprints, allow_http, tags, from_config, created_at
             FROM providers ORDER BY account, url",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load providers"))?;
        for r in rows {
            out.providers.push(OidcProvider {
                account: account_id(r.get("account"))?,
                url: r.get("url"),
                client_ids: parse_list(r.get("client_ids"))?,
                thumbprints: parse_list(r.get("thumbprints"))?,
                allow_http: r.get::<i64, _>("allow_http") == 1,
                tags: parse_map(r.get("tags"))?,
                origin: origin_of(r.get("from_config")),
                created: time_of(r.get("created_at")),
            });
        }
        let policy_rows = sqlx::query(
            "SELECT account, role_folded, name, document FROM role_policies ORDER BY account, role_folded, name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load role policies"))?;
        let mut policies: BTreeMap<(String, String), Vec<InlinePolicy>> = BTreeMap::new();
        for r in policy_rows {
            policies
                .entry((r.get("account"), r.get("role_folded")))
                .or_default()
                .push(InlinePolicy {
                    name: r.get("name"),
                    document: r.get("document"),
                });
        }
        let attachment_rows = sqlx::query(
            "SELECT account, role_folded, policy_arn FROM role_attachments
             ORDER BY account, role_folded, position",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load role attachments"))?;
        let mut attachments: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for r in attachment_rows {
            attachments
                .entry((r.get("account"), r.get("role_folded")))
                .or_default()
                .push(r.get("policy_arn"));
        }
        let rows = sqlx::query(
            "SELECT account, name, name_folded, path, role_id, trust_policy, permissions_boundary,
                    permissions_boundary_arn, max_session_duration, description, tags, from_config,
                    created_at
             FROM roles ORDER BY account, name_folded",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load roles"))?;
        for r in rows {
            let account: String = r.get("account");
            let folded: String = r.get("name_folded");
            let attached_policies = attachments
                .remove(&(account.clone(), folded.clone()))
                .unwrap_or_default();
            let inline_policies = policies
                .remove(&(account.clone(), folded))
                .unwrap_or_default();
            out.roles.push(Role {
                account: account_id(&account)?,
                name: r.get("name"),
                path: r.get("path"),
                role_id: r.get("role_id"),
                trust_policy: r.get("trust_policy"),
                inline_policies,
                permissions_boundary: r.get("permissions_boundary"),
                permissions_boundary_arn: r.get("permissions_boundary_arn"),
                attached_policies,
                max_session_duration: u32::try_from(r.get::<i64, _>("max_session_duration"))
                    .map_err(|_| StoreError("corrupt max_session_duration".into()))?,
                description: r.get("description"),
                tags: parse_map(r.get("tags"))?,
                origin: origin_of(r.get("from_config")),
                created: time_of(r.get("created_at")),
            });
        }
        let rows = sqlx::query(
            "SELECT target, name, document, from_config FROM guardrails ORDER BY target, name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load guardrails"))?;
        for r in rows {
            out.guardrails.push(Guardrail {
                target: r.get("target"),
                name: r.get("name"),
                document: r.get("document"),
                origin: origin_of(r.get("from_config")),
            });
        }
        out.policies = load_policies(&self.pool).await?;
        Ok(out)
    }

    async fn write(&self, change: &Change) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(err("begin"))?;
        match change {
            Change::PutProvider(p) => {
                sqlx::query(
                    "INSERT INTO providers (url, account, client_ids, thumbprints, allow_http, tags, from_config, created_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (account, url) DO UPDATE SET client_ids = excluded.client_ids,
                     thumbprints = excluded.thumbprints, allow_http = excluded.allow_http, tags = excluded.tags",
                )
                .bind(&p.url)
                .bind(p.account.to_string())
                .bind(json_list(&p.client_ids))
                .bind(json_list(&p.thumbprints))
                .bind(i64::from(p.allow_http))
                .bind(json_map(&p.tags))
                .bind(origin_flag(p.origin))
                .bind(p.created.unix_timestamp())
                .execute(&mut *tx)
                .await
                .map_err(err("put provider"))?;
            }
            Change::DeleteProvider { account, url } => {
                sqlx::query(
                    "DELETE FROM providers WHERE account = ? AND url = ? AND from_config = 0",
                )
                .bind(account.to_string())
                .bind(url)
                .execute(&mut *tx)
                .await
                .map_err(err("delete provider"))?;
            }
            Change::PutRole(role) => put_role(&mut tx, role).await?,
            Change::DeleteRole { account, name } => {
                sqlx::query(
                    "DELETE FROM roles WHERE account = ? AND name_folded = ? AND from_config = 0",
                )
                .bind(account.to_string())
                .bind(name.to_lowercase())
                .execute(&mut *tx)
                .await
                .map_err(err("delete role"))?;
            }
            Change::PutPolicy(policy) => put_policy(&mut tx, policy).await?,
            Change::DeletePolicy { account, name } => {
                sqlx::query(
                    "DELETE FROM managed_policies WHERE account = ? AND name_folded = ? AND from_config = 0",
                )
                .bind(account.to_string())
                .bind(name.to_lowercase())
                .execute(&mut *tx)
                .await
                .map_err(err("delete policy"))?;
            }
        }
        tx.commit().await.map_err(err("commit"))
    }

    async fn apply_config(&self, config: &Entities) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(err("begin"))?;
        let cfg = origin_flag(Origin::Config);

        sqlx::query("DELETE FROM accounts WHERE from_config = 1")
            .execute(&mut *tx)
            .await
            .map_err(err("clear config accounts"))?;
        for a in &config.accounts {
            sqlx::query(
                "INSERT INTO accounts (id, name, ou_path, from_config) VALUES (?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, ou_path = excluded.ou_path,
                 from_config = excluded.from_config",
            )
            .bind(a.id.to_string())
            .bind(&a.name)
            .bind(&a.ou_path)
            .bind(cfg)
            .execute(&mut *tx)
            .await
            .map_err(err("upsert account"))?;
        }

        // Providers: delete config providers no longer listed, upsert the rest.
        let existing = sqlx::query("SELECT account, url FROM providers WHERE from_config = 1")
            .fetch_all(&mut *tx)
            .await
            .map_err(err("list config providers"))?;
        for r in existing {
            let (account, url): (String, String) = (r.get("account"), r.get("url"));
            let kept = config
                .providers
                .iter()
                .any(|p| p.account.to_string() == account && p.url == url);
            if !kept {
                sqlx::query("DELETE FROM providers WHERE account = ? AND url = ?")
                    .bind(&account)
                    .bind(&url)
                    .execute(&mut *tx)
                    .await
                    .map_err(err("delete provider"))?;
            }
        }
        for p in &config.providers {
            sqlx::query(
                "INSERT INTO providers (url, account, client_ids, thumbprints, allow_http, tags, from_config, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (account, url) DO UPDATE SET client_ids = excluded.client_ids,
                 thumbprints = excluded.thumbprints, allow_http = excluded.allow_http, tags = excluded.tags,
                 from_config = excluded.from_config",
            )
            .bind(&p.url)
            .bind(p.account.to_string())
            .bind(json_list(&p.client_ids))
            .bind(json_list(&p.thumbprints))
            .bind(i64::from(p.allow_http))
            .bind(json_map(&p.tags))
            .bind(cfg)
            .bind(p.created.unix_timestamp())
            .execute(&mut *tx)
            .await
            .map_err(err("upsert provider"))?;
        }

        // Roles: keep ids stable; replace inline policies wholesale.
        let existing = sqlx::query("SELECT account, name_folded FROM roles WHERE from_config = 1")
            .fetch_all(&mut *tx)
            .await
            .map_err(err("list config roles"))?;
        for r in existing {
            let (account, folded): (String, String) = (r.get("account"), r.get("name_folded"));
            let kept = config
                .roles
                .iter()
                .any(|x| x.account.to_string() == account && x.name.to_lowercase() == folded);
            if !kept {
                sqlx::query("DELETE FROM roles WHERE account = ? AND name_folded = ?")
                    .bind(&account)
                    .bind(&folded)
                    .execute(&mut *tx)
                    .await
                    .map_err(err("delete role"))?;
            }
        }
        for role in &config.roles {
            let account = role.account.to_string();
            let folded = role.name.to_lowercase();
            sqlx::query(
                "INSERT INTO roles (account, name, name_folded, path, role_id, trust_policy, permissions_boundary,
                    max_session_duration, description, tags, from_config, created_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (account, name_folded) DO UPDATE SET name = excluded.name, path = excluded.path,
                    trust_policy = excluded.trust_policy, permissions_boundary = excluded.permissions_boundary,
                    max_session_duration = excluded.max_session_duration, description = excluded.description,
                    tags = excluded.tags, from_config = excluded.from_config",
            )
            .bind(&account)
            .bind(&role.name)
            .bind(&folded)
            .bind(&role.path)
            .bind(&role.role_id)
            .bind(&role.trust_policy)
            .bind(&role.permissions_boundary)
            .bind(i64::from(role.max_session_duration))
            .bind(&role.description)
            .bind(json_map(&role.tags))
            .bind(cfg)
            .bind(role.created.unix_timestamp())
            .execute(&mut *tx)
            .await
            .map_err(err("upsert role"))?;
            sqlx::query("DELETE FROM role_policies WHERE account = ? AND role_folded = ?")
                .bind(&account)
                .bind(&folded)
                .execute(&mut *tx)
                .await
                .map_err(err("clear role policies"))?;
            for p in &role.inline_policies {
                sqlx::query("INSERT INTO role_policies (account, role_folded, name, document) VALUES (?, ?, ?, ?)")
                    .bind(&account)
                    .bind(&folded)
                    .bind(&p.name)
                    .bind(&p.document)
                    .execute(&mut *tx)
                    .await
                    .map_err(err("insert role policy"))?;
            }
        }

        sqlx::query("DELETE FROM guardrails WHERE from_config = 1")
            .execute(&mut *tx)
            .await
            .map_err(err("clear config guardrails"))?;
        for g in &config.guardrails {
            sqlx::query(
                "INSERT INTO guardrails (target, name, document, from_config) VALUES (?, ?, ?, ?)
                 ON CONFLICT (target, name) DO UPDATE SET document = excluded.document, from_config = excluded.from_config",
            )
            .bind(&g.target)
            .bind(&g.name)
            .bind(&g.document)
            .bind(cfg)
            .execute(&mut *tx)
            .await
            .map_err(err("upsert guardrail"))?;
        }
        tx.commit().await.map_err(err("commit"))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(err("ping"))?;
        Ok(())
    }

    async fn add_revocation(&self, r: &NewRevocation) -> Result<Revocation, StoreError> {
        let row = sqlx::query(
            "INSERT INTO revocations (kind, value, issuer, account, issued_before_ms, created_at_ms, \
             expires_at, reason, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(r.target.kind())
        .bind(r.target.value())
        .bind(r.target.issuer())
        .bind(r.account.map(|a| a.to_string()))
        .bind(unix_millis(r.issued_before))
        .bind(unix_millis(r.created_at))
        .bind(r.expires_at.unix_timestamp())
        .bind(&r.reason)
        .bind(&r.created_by)
        .fetch_one(&self.pool)
        .await
        .map_err(err("add revocation"))?;
        Ok(Revocation {
            id: row.get(0),
            spec: r.clone(),
        })
    }

    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, value, issuer, account, issued_before_ms, created_at_ms, expires_at, \
             reason, created_by FROM revocations ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load revocations"))?;
        rows.iter()
            .map(|row| {
                let kind: String = row.get(1);
                let value: String = row.get(2);
                let issuer: Option<String> = row.get(3);
                let target =
                    Target::from_parts(&kind, &value, issuer.as_deref()).ok_or_else(|| {
                        StoreError(format!("corrupt revocation {kind} {value:?} in database"))
                    })?;
                let account: Option<String> = row.get(4);
                Ok(Revocation {
                    id: row.get(0),
                    spec: NewRevocation {
                        target,
                        account: account.as_deref().map(account_id).transpose()?,
                        issued_before: time_of_millis(row.get(5)),
                        created_at: time_of_millis(row.get(6)),
                        expires_at: time_of(row.get(7)),
                        reason: row.get(8),
                        created_by: row.get(9),
                    },
                })
            })
            .collect()
    }

    async fn revocations_stamp(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0), COUNT(*) FROM revocations")
            .fetch_one(&self.pool)
            .await
            .map_err(err("revocation stamp"))?;
        Ok((row.get(0), row.get(1)))
    }

    async fn purge_revocations(&self, now: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM revocations WHERE expires_at <= ?")
            .bind(now.unix_timestamp())
            .execute(&self.pool)
            .await
            .map_err(err("purge revocations"))?;
        Ok(done.rows_affected())
    }
}

fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn time_of_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

async fn put_role(tx: &mut Tx<'_>, role: &Role) -> Result<(), StoreError> {
    let account = role.account.to_string();
    let folded = role.name.to_lowercase();
    sqlx::query(
        "INSERT INTO roles (account, name, name_folded, path, role_id, trust_policy, permissions_boundary,
            permissions_boundary_arn, max_session_duration, description, tags, from_config, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (account, name_folded) DO UPDATE SET name = excluded.name, path = excluded.path,
            role_id = excluded.role_id, trust_policy = excluded.trust_policy,
            permissions_boundary = excluded.permissions_boundary,
            permissions_boundary_arn = excluded.permissions_boundary_arn,
            max_session_duration = excluded.max_session_duration, description = excluded.description,
            tags = excluded.tags, from_config = excluded.from_config, created_at = excluded.created_at",
    )
    .bind(&account)
    .bind(&role.name)
    .bind(&folded)
    .bind(&role.path)
    .bind(&role.role_id)
    .bind(&role.trust_policy)
    .bind(&role.permissions_boundary)
    .bind(&role.permissions_boundary_arn)
    .bind(i64::from(role.max_session_duration))
    .bind(&role.description)
    .bind(json_map(&role.tags))
    .bind(origin_flag(role.origin))
    .bind(role.created.unix_timestamp())
    .execute(&mut **tx)
    .await
    .map_err(err("put role"))?;
    for statement in [
        "DELETE FROM role_policies WHERE account = ? AND role_folded = ?",
        "DELETE FROM role_attachments WHERE account = ? AND role_folded = ?",
    ] {
        sqlx::query(statement)
            .bind(&account)
            .bind(&folded)
            .execute(&mut **tx)
            .await
            .map_err(err("clear role children"))?;
    }
    for p in &role.inline_policies {
        sqlx::query(
            "INSERT INTO role_policies (account, role_folded, name, document) VALUES (?, ?, ?, ?)",
        )
        .bind(&account)
        .bind(&folded)
        .bind(&p.name)
        .bind(&p.document)
        .execute(&mut **tx)
        .await
        .map_err(err("insert role policy"))?;
    }
    for (i, arn) in role.attached_policies.iter().enumerate() {
        sqlx::query(
            "INSERT INTO role_attachments (account, role_folded, position, policy_arn) VALUES (?, ?, ?, ?)",
        )
        .bind(&account)
        .bind(&folded)
        .bind(i64::try_from(i).unwrap_or(i64::MAX))
        .bind(arn)
        .execute(&mut **tx)
        .await
        .map_err(err("insert role attachment"))?;
    }
    Ok(())
}

async fn put_policy(tx: &mut Tx<'_>, policy: &ManagedPolicy) -> Result<(), StoreError> {
    let account = policy.account.to_string();
    let folded = policy.name.to_lowercase();
    sqlx::query(
        "INSERT INTO managed_policies (account, name, name_folded, path, policy_id, description,
            default_version, next_version, tags, from_config, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (account, name_folded) DO UPDATE SET name = excluded.name, path = excluded.path,
            policy_id = excluded.policy_id, description = excluded.description,
            default_version = excluded.default_version, next_version = excluded.next_version,
            tags = excluded.tags, from_config = excluded.from_config,
            created_at = excluded.created_at, updated_at = excluded.updated_at",
    )
    .bind(&account)
    .bind(&policy.name)
    .bind(&folded)
    .bind(&policy.path)
    .bind(&policy.policy_id)
    .bind(&policy.description)
    .bind(&policy.default_version)
    .bind(i64::from(policy.next_version))
    .bind(json_map(&policy.tags))
    .bind(origin_flag(policy.origin))
    .bind(policy.created.unix_timestamp())
    .bind(policy.updated.unix_timestamp())
    .execute(&mut **tx)
    .await
    .map_err(err("put policy"))?;
    sqlx::query("DELETE FROM policy_versions WHERE account = ? AND policy_folded = ?")
        .bind(&account)
        .bind(&folded)
        .execute(&mut **tx)
        .await
        .map_err(err("clear policy versions"))?;
    for (i, v) in policy.versions.iter().enumerate() {
        sqlx::query(
            "INSERT INTO policy_versions (account, policy_folded, version_id, position, document, created_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&account)
        .bind(&folded)
        .bind(&v.version_id)
        .bind(i64::try_from(i).unwrap_or(i64::MAX))
        .bind(&v.document)
        .bind(v.created.unix_timestamp())
        .execute(&mut **tx)
        .await
        .map_err(err("insert policy version"))?;
    }
    Ok(())
}

async fn load_policies(pool: &SqlitePool) -> Result<Vec<ManagedPolicy>, StoreError> {
    let version_rows = sqlx::query(
        "SELECT account, policy_folded, version_id, document, created_at FROM policy_versions
         ORDER BY account, policy_folded, position",
    )
    .fetch_all(pool)
    .await
    .map_err(err("load policy versions"))?;
    let mut versions: BTreeMap<(String, String), Vec<PolicyVersion>> = BTreeMap::new();
    for r in version_rows {
        versions
            .entry((r.get("account"), r.get("policy_folded")))
            .or_default()
            .push(PolicyVersion {
                version_id: r.get("version_id"),
                document: r.get("document"),
                created: time_of(r.get("created_at")),
            });
    }
    let rows = sqlx::query(
        "SELECT account, name, name_folded, path, policy_id, description, default_version,
                next_version, tags, from_config, created_at, updated_at
         FROM managed_policies ORDER BY account, name_folded",
    )
    .fetch_all(pool)
    .await
    .map_err(err("load managed policies"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let account: String = r.get("account");
        let folded: String = r.get("name_folded");
        out.push(ManagedPolicy {
            account: account_id(&account)?,
            versions: versions.remove(&(account, folded)).unwrap_or_default(),
            name: r.get("name"),
            path: r.get("path"),
            policy_id: r.get("policy_id"),
            description: r.get("description"),
            default_version: r.get("default_version"),
            next_version: u32::try_from(r.get::<i64, _>("next_version"))
                .map_err(|_| StoreError("corrupt next_version".into()))?,
            tags: parse_map(r.get("tags"))?,
            origin: origin_of(r.get("from_config")),
            created: time_of(r.get("created_at")),
            updated: time_of(r.get("updated_at")),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct() -> AccountId {
        AccountId::parse("123456789012").unwrap()
    }

    fn role(name: &str, id: &str) -> Role {
        Role {
            account: acct(),
            name: name.into(),
            path: "/".into(),
            role_id: id.into(),
            trust_policy: "{}".into(),
            inline_policies: vec![InlinePolicy {
                name: "p".into(),
                document: "{\"a\":1}".into(),
            }],
            permissions_boundary: None,
            permissions_boundary_arn: None,
            attached_policies: vec![],
            max_session_duration: 3600,
            description: String::new(),
            tags: BTreeMap::from([("team".into(), "ci".into())]),
            origin: Origin::Config,
            created: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        }
    }

    fn config() -> Entities {
        Entities {
            accounts: vec![Account {
                id: acct(),
                name: "dev".into(),
                ou_path: "/w".into(),
                origin: Origin::Config,
            }],
            providers: vec![OidcProvider {
                account: acct(),
                url: "https://issuer.example".into(),
                client_ids: vec!["sts.amazonaws.com".into()],
                thumbprints: vec![],
                allow_http: false,
                tags: BTreeMap::new(),
                origin: Origin::Config,
                created: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            }],
            roles: vec![role("deploy", "AROAAAAAAAAAAAAAAAAAA")],
            guardrails: vec![Guardrail {
                target: "/".into(),
                name: "g".into(),
                document: "{}".into(),
                origin: Origin::Config,
            }],
            policies: vec![],
        }
    }

    #[tokio::test]
    async fn apply_config_round_trips_and_is_idempotent() {
        let store = SqliteStore::in_memory().await.unwrap();
        let cfg = config();
        store.apply_config(&cfg).await.unwrap();
        assert_eq!(store.load().await.unwrap(), cfg);
        store.apply_config(&cfg).await.unwrap();
        assert_eq!(store.load().await.unwrap(), cfg);
    }

    #[tokio::test]
    async fn removed_config_entities_disappear() {
        let store = SqliteStore::in_memory().await.unwrap();
        store.apply_config(&config()).await.unwrap();
        store.apply_config(&Entities::default()).await.unwrap();
        assert_eq!(store.load().await.unwrap(), Entities::default());
    }

    #[tokio::test]
    async fn role_names_are_unique_ignoring_case_and_ids_stay_stable() {
        let store = SqliteStore::in_memory().await.unwrap();
        let mut cfg = config();
        store.apply_config(&cfg).await.unwrap();
        // Same role, different case and a new id proposal: the stored id is kept.
        cfg.roles = vec![role("DEPLOY", "AROABBBBBBBBBBBBBBBBB")];
        store.apply_config(&cfg).await.unwrap();
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.roles.len(), 1);
        assert_eq!(loaded.roles[0].name, "DEPLOY");
        assert_eq!(loaded.roles[0].role_id, "AROAAAAAAAAAAAAAAAAAA");
    }

    #[tokio::test]
    async fn file_database_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store.apply_config(&config()).await.unwrap();
        drop(store);
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.load().await.unwrap().roles.len(), 1);
        store.ping().await.unwrap();
    }

    fn api_policy() -> ManagedPolicy {
        ManagedPolicy {
            account: acct(),
            name: "Uploads".into(),
            path: "/ci/".into(),
            policy_id: "ANPAAAAAAAAAAAAAAAAAA".into(),
            description: "d".into(),
            versions: vec![
                PolicyVersion {
                    version_id: "v1".into(),
                    document: "{\"v\":1}".into(),
                    created: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
                },
                PolicyVersion {
                    version_id: "v3".into(),
                    document: "{\"v\":3}".into(),
                    created: OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap(),
                },
            ],
            default_version: "v3".into(),
            next_version: 4,
            tags: BTreeMap::from([("k".into(), "v".into())]),
            origin: Origin::Api,
            created: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            updated: OffsetDateTime::from_unix_timestamp(1_700_000_100).unwrap(),
        }
    }

    #[tokio::test]
    async fn api_writes_round_trip_and_survive_apply_config() {
        let store = SqliteStore::in_memory().await.unwrap();
        store.apply_config(&config()).await.unwrap();
        let policy = api_policy();
        store
            .write(&Change::PutPolicy(policy.clone()))
            .await
            .unwrap();
        let mut api_role = role("builder", "AROACCCCCCCCCCCCCCCCC");
        api_role.origin = Origin::Api;
        api_role.attached_policies = vec![policy.arn()];
        api_role.permissions_boundary_arn = Some(policy.arn());
        store
            .write(&Change::PutRole(api_role.clone()))
            .await
            .unwrap();
        let mut provider = config().providers[0].clone();
        provider.url = "https://api.example".into();
        provider.origin = Origin::Api;
        store
            .write(&Change::PutProvider(provider.clone()))
            .await
            .unwrap();

        // A restart applies the config again: API entities stay as they are.
        store.apply_config(&config()).await.unwrap();
        let loaded = store.load().await.unwrap();
        assert_eq!(loaded.policies, vec![policy.clone()]);
        assert!(loaded.roles.contains(&api_role));
        assert!(loaded.providers.contains(&provider));
        assert_eq!(loaded.roles.len(), 2);

        // Replacing a role replaces its children; deleting removes them.
        api_role.attached_policies.clear();
        api_role.inline_policies.clear();
        store
            .write(&Change::PutRole(api_role.clone()))
            .await
            .unwrap();
        assert!(store.load().await.unwrap().roles.contains(&api_role));
        store
            .write(&Change::DeleteRole {
                account: acct(),
                name: "BUILDER".into(),
            })
            .await
            .unwrap();
        store
            .write(&Change::DeletePolicy {
                account: acct(),
                name: "uploads".into(),
            })
            .await
            .unwrap();
        store
            .write(&Change::DeleteProvider {
                account: acct(),
                url: provider.url.clone(),
            })
            .await
            .unwrap();
        assert_eq!(store.load().await.unwrap(), config());
    }

    #[tokio::test]
    async fn api_deletes_never_touch_config_entities() {
        let store = SqliteStore::in_memory().await.unwrap();
        store.apply_config(&config()).await.unwrap();
        store
            .write(&Change::DeleteRole {
                account: acct(),
                name: "deploy".into(),
            })
            .await
            .unwrap();
        store
            .write(&Change::DeleteProvider {
                account: acct(),
                url: "https://issuer.example".into(),
            })
            .await
            .unwrap();
        assert_eq!(store.load().await.unwrap(), config());
    }

    #[test]
    fn role_ids_look_like_aws() {
        let id = new_role_id();
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AROA"));
    }
}
