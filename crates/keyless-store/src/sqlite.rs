//! The SQLite store: one file in the data dir (WAL mode), the default.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use keyless_core::model::{
    Account, Entities, Guardrail, InlinePolicy, ManagedPolicy, OidcProvider, Origin, PolicyVersion,
    Role,
};
use keyless_core::ports::{Change, RevocationStamp, Store, StoreError};
use keyless_core::revocation::{NewRevocation, Revocation};
use keyless_core::trust_binding::rebind_to_kept_ids;
use keyless_types::OffsetDateTime;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::codec::{
    account_id, json_list, json_map, parse_list, parse_map, revocation_of_row, time_of,
    time_of_millis, unix_millis,
};

/// The SQLite store (one file, WAL mode).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn err(context: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| StoreError(format!("{context}: {e}"))
}

impl SqliteStore {
    /// Applies one IAM change; with `based_on`, only while the directory generation is still
    /// that (checked and advanced first, so the check holds the write lock until the commit).
    async fn write_change(
        &self,
        change: &Change,
        based_on: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(err("begin"))?;
        if let Some(generation) = based_on {
            let moved = sqlx::query(
                "UPDATE directory_generation SET generation = generation + 1 WHERE id = 1 AND generation = ?",
            )
            .bind(generation)
            .execute(&mut *tx)
            .await
            .map_err(err("directory generation"))?
            .rows_affected()
                == 0;
            if moved {
                tx.rollback().await.map_err(err("rollback"))?;
                return Ok(false);
            }
        }
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
                delete_api_named(
                    &mut tx,
                    "DELETE FROM roles WHERE account = ? AND name_folded = ? AND from_config = 0",
                    *account,
                    name,
                    "delete role",
                )
                .await?;
            }
            Change::PutPolicy(policy) => put_policy(&mut tx, policy).await?,
            Change::DeletePolicy { account, name } => {
                delete_api_named(
                    &mut tx,
                    "DELETE FROM managed_policies WHERE account = ? AND name_folded = ? AND from_config = 0",
                    *account,
                    name,
                    "delete policy",
                )
                .await?;
            }
        }
        if based_on.is_none() {
            bump_generation(&mut tx).await?;
        }
        tx.commit().await.map_err(err("commit"))?;
        Ok(true)
    }

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
        sqlx::migrate!("./migrations/sqlite")
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
                    created_at, trust_principal_ids
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
                trust_principal_ids: parse_map(r.get("trust_principal_ids"))?,
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
        self.write_change(change, None).await.map(|_| ())
    }

    async fn write_if_current(&self, change: &Change, based_on: i64) -> Result<bool, StoreError> {
        self.write_change(change, Some(based_on)).await
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
                    max_session_duration, description, tags, from_config, created_at, trust_principal_ids)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (account, name_folded) DO UPDATE SET name = excluded.name, path = excluded.path,
                    trust_policy = excluded.trust_policy, permissions_boundary = excluded.permissions_boundary,
                    max_session_duration = excluded.max_session_duration, description = excluded.description,
                    tags = excluded.tags, from_config = excluded.from_config,
                    trust_principal_ids = excluded.trust_principal_ids",
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
            .bind(json_map(&role.trust_principal_ids))
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

        rebind_config_trust(&mut tx, config).await?;

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
        bump_generation(&mut tx).await?;
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
            audited_seq: None,
        })
    }

    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, value, issuer, account, issued_before_ms, created_at_ms, expires_at, \
             reason, created_by, audited_seq FROM revocations ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load revocations"))?;
        rows.iter().map(revocation_of_row).collect()
    }

    async fn revocations_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, value, issuer, account, issued_before_ms, created_at_ms, expires_at, \
             reason, created_by, audited_seq FROM revocations WHERE id > ? ORDER BY id LIMIT ?",
        )
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(err("load new revocations"))?;
        rows.iter().map(revocation_of_row).collect()
    }

    async fn unaudited_revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, kind, value, issuer, account, issued_before_ms, created_at_ms, expires_at, \
             reason, created_by, audited_seq FROM revocations \
             WHERE audited_seq IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(err("load unaudited revocations"))?;
        rows.iter().map(revocation_of_row).collect()
    }

    async fn mark_revocation_audited(&self, id: i64, seq: u64) -> Result<bool, StoreError> {
        let seq = i64::try_from(seq)
            .map_err(|_| StoreError(format!("audit seq {seq} does not fit the column")))?;
        let done = sqlx::query(
            "UPDATE revocations SET audited_seq = ? WHERE id = ? AND audited_seq IS NULL",
        )
        .bind(seq)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(err("mark revocation audited"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn directory_generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT generation FROM directory_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(err("directory generation"))?;
        Ok(row.get(0))
    }

    async fn record_role_use(&self, uses: &[(String, OffsetDateTime)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(err("role use"))?;
        for (role_id, at) in uses {
            sqlx::query(
                "INSERT INTO role_last_used (role_id, used_at_ms) VALUES (?, ?)
                 ON CONFLICT (role_id) DO UPDATE SET used_at_ms = MAX(role_last_used.used_at_ms, excluded.used_at_ms)",
            )
            .bind(role_id)
            .bind(unix_millis(*at))
            .execute(&mut *tx)
            .await
            .map_err(err("role use"))?;
        }
        tx.commit().await.map_err(err("role use"))
    }

    async fn role_last_used(&self) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let rows = sqlx::query("SELECT role_id, used_at_ms FROM role_last_used")
            .fetch_all(&self.pool)
            .await
            .map_err(err("role last used"))?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<String, _>(0), time_of_millis(r.get(1))))
            .collect())
    }

    async fn revocations_generation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT generation FROM revocation_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(err("revocations generation"))?;
        Ok(row.get(0))
    }

    async fn revocations_stamp(&self) -> Result<RevocationStamp, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(id), 0), COUNT(*), COALESCE(SUM(id), 0) FROM revocations",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(err("revocation stamp"))?;
        Ok((row.get(0), row.get(1), row.get(2)))
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

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

/// Advances the directory generation inside the write's transaction (see
/// [`Store::directory_generation`]).
async fn bump_generation(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    sqlx::query("UPDATE directory_generation SET generation = generation + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(err("directory generation"))?;
    Ok(())
}

/// Re-points the config roles' trust bindings at the ids this store kept for config roles, in
/// the apply's transaction (see [`keyless_core::trust_binding::rebind_to_kept_ids`]).
async fn rebind_config_trust(tx: &mut Tx<'_>, config: &Entities) -> Result<(), StoreError> {
    let rows = sqlx::query("SELECT account, name_folded, role_id FROM roles WHERE from_config = 1")
        .fetch_all(&mut **tx)
        .await
        .map_err(err("read config role ids"))?;
    let mut kept = BTreeMap::new();
    for r in rows {
        let account: String = r.get("account");
        kept.insert(
            (account_id(&account)?, r.get("name_folded")),
            r.get("role_id"),
        );
    }
    for (account, folded, ids) in rebind_to_kept_ids(&config.roles, &kept) {
        sqlx::query(
            "UPDATE roles SET trust_principal_ids = ? WHERE account = ? AND name_folded = ?",
        )
        .bind(json_map(&ids))
        .bind(account.to_string())
        .bind(folded)
        .execute(&mut **tx)
        .await
        .map_err(err("rebind trust principals"))?;
    }
    Ok(())
}

/// Runs `sql`, a delete of an API-created entity by account and name (found ignoring case).
async fn delete_api_named(
    tx: &mut Tx<'_>,
    sql: &'static str,
    account: keyless_types::AccountId,
    name: &str,
    what: &'static str,
) -> Result<(), StoreError> {
    sqlx::query(sql)
        .bind(account.to_string())
        .bind(name.to_lowercase())
        .execute(&mut **tx)
        .await
        .map_err(err(what))?;
    Ok(())
}

async fn put_role(tx: &mut Tx<'_>, role: &Role) -> Result<(), StoreError> {
    let account = role.account.to_string();
    let folded = role.name.to_lowercase();
    sqlx::query(
        "INSERT INTO roles (account, name, name_folded, path, role_id, trust_policy, permissions_boundary,
            permissions_boundary_arn, max_session_duration, description, tags, from_config, created_at,
            trust_principal_ids)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (account, name_folded) DO UPDATE SET name = excluded.name, path = excluded.path,
            role_id = excluded.role_id, trust_policy = excluded.trust_policy,
            permissions_boundary = excluded.permissions_boundary,
            permissions_boundary_arn = excluded.permissions_boundary_arn,
            max_session_duration = excluded.max_session_duration, description = excluded.description,
            tags = excluded.tags, from_config = excluded.from_config, created_at = excluded.created_at,
            trust_principal_ids = excluded.trust_principal_ids",
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
    .bind(json_map(&role.trust_principal_ids))
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
