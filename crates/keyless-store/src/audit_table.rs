//! The `audit_events` table (Postgres only): a queryable copy of the audit log, one row per
//! event with the fields people filter on in columns and the whole record as JSONB.
//!
//! The files stay the durable, verifiable source; this table is filled after the fact by the
//! server's table sink, in batches, and may lag behind them. Rows are keyed by
//! `(log_id, seq)`, so inserting a record twice (a retry, a catch-up after a restart) is a no-op.

use std::fmt;

use sqlx::{PgPool, Row};

/// One row of `audit_events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRow {
    /// `seq` of the record in its chain.
    pub seq: u64,
    /// Its chain hash (hex).
    pub hash: String,
    /// `eventTime` (RFC 3339).
    pub event_time: String,
    /// `eventSource`.
    pub event_source: String,
    /// `eventName`.
    pub event_name: String,
    /// The principal ARN.
    pub principal: Option<String>,
    /// The role the event concerns.
    pub role_arn: Option<String>,
    /// The token subject behind the call.
    pub subject: Option<String>,
    /// The `repository` claim behind the call.
    pub repository: Option<String>,
    /// The caller's access key id.
    pub access_key_id: Option<String>,
    /// The access key id the call issued.
    pub issued_access_key_id: Option<String>,
    /// `errorCode`.
    pub error_code: Option<String>,
    /// `allow`, `deny` or `error`.
    pub decision: String,
    /// The whole line as JSON text.
    pub record: String,
}

/// Why rows were not inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertError {
    /// The database could not be reached or failed; retry later.
    Unavailable(String),
    /// The database refused the rows themselves (retrying the same rows cannot help).
    Rejected(String),
}

impl fmt::Display for InsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InsertError::Unavailable(m) => write!(f, "audit table unavailable: {m}"),
            InsertError::Rejected(m) => write!(f, "audit table refused the rows: {m}"),
        }
    }
}

impl std::error::Error for InsertError {}

/// The `audit_events` table.
#[derive(Clone)]
pub struct AuditTable {
    pool: PgPool,
}

impl fmt::Debug for AuditTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditTable")
    }
}

/// Postgres text cannot hold NUL; records may (as `\u0000` in a user agent, say).
fn clean(s: &str) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s.to_owned()
    }
}

fn clean_opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(clean)
}

/// JSONB refuses `\u0000` escapes: replace NUL in every string of the record.
fn clean_record(record: &str) -> String {
    if !record.contains("\\u0000") {
        return record.to_owned();
    }
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = clean(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            serde_json::Value::Object(o) => {
                let entries: Vec<(String, serde_json::Value)> = std::mem::take(o)
                    .into_iter()
                    .map(|(k, mut v)| {
                        walk(&mut v);
                        (clean(&k), v)
                    })
                    .collect();
                o.extend(entries);
            }
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(record) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) => record.to_owned(),
    }
}

/// Only a data exception (SQLSTATE class 22: bad text, bad timestamp, bad JSON) or an integrity
/// violation (23) is about the rows; anything else (no connection, the database refusing
/// connections, a missing table) is the table being unavailable, and retrying is right.
fn classify(e: sqlx::Error) -> InsertError {
    match e {
        sqlx::Error::Database(d)
            if d.code()
                .is_some_and(|c| c.starts_with("22") || c.starts_with("23")) =>
        {
            InsertError::Rejected(d.to_string())
        }
        other => InsertError::Unavailable(crate::describe(&other)),
    }
}

impl AuditTable {
    /// The table behind `pool` (migrated by [`crate::PgStore::connect`]).
    pub fn new(pool: PgPool) -> AuditTable {
        AuditTable { pool }
    }

    /// The highest `seq` stored for `log_id` (0 when none).
    pub async fn last_seq(&self, log_id: &str) -> Result<u64, InsertError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM audit_events WHERE log_id = $1")
            .bind(log_id)
            .fetch_one(&self.pool)
            .await
            .map_err(classify)?;
        Ok(u64::try_from(row.get::<i64, _>(0)).unwrap_or(0))
    }

    /// The newest row of `log_id`: its `seq` and chain hash (hex), or `None` when there is none.
    pub async fn head(&self, log_id: &str) -> Result<Option<(u64, String)>, InsertError> {
        let row = sqlx::query(
            "SELECT seq, hash FROM audit_events WHERE log_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(log_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        Ok(row.map(|r| {
            (
                u64::try_from(r.get::<i64, _>(0)).unwrap_or(0),
                r.get::<String, _>(1),
            )
        }))
    }

    /// Inserts `rows` of `log_id` in one statement; rows already there are left alone. Returns
    /// how many were new.
    pub async fn insert(&self, log_id: &str, rows: &[AuditRow]) -> Result<u64, InsertError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let col = |f: fn(&AuditRow) -> &Option<String>| -> Vec<Option<String>> {
            rows.iter().map(|r| clean_opt(f(r))).collect()
        };
        let text = |f: fn(&AuditRow) -> &str| -> Vec<String> {
            rows.iter().map(|r| clean(f(r))).collect()
        };
        let seqs: Vec<i64> = rows
            .iter()
            .map(|r| i64::try_from(r.seq).unwrap_or(i64::MAX))
            .collect();
        let records: Vec<String> = rows.iter().map(|r| clean_record(&r.record)).collect();
        let done = sqlx::query(
            "INSERT INTO audit_events (log_id, seq, hash, event_time, event_source, event_name,
                principal, role_arn, subject, repository, access_key_id, issued_access_key_id,
                error_code, decision, record)
             SELECT $1, u.seq, u.hash, u.event_time::timestamptz, u.event_source, u.event_name,
                u.principal, u.role_arn, u.subject, u.repository, u.access_key_id,
                u.issued_access_key_id, u.error_code, u.decision, u.record::jsonb
             FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                $14::text[], $15::text[])
                AS u(seq, hash, event_time, event_source, event_name, principal, role_arn, subject,
                     repository, access_key_id, issued_access_key_id, error_code, decision, record)
             ON CONFLICT (log_id, seq) DO NOTHING",
        )
        .bind(log_id)
        .bind(seqs)
        .bind(text(|r| &r.hash))
        .bind(text(|r| &r.event_time))
        .bind(text(|r| &r.event_source))
        .bind(text(|r| &r.event_name))
        .bind(col(|r| &r.principal))
        .bind(col(|r| &r.role_arn))
        .bind(col(|r| &r.subject))
        .bind(col(|r| &r.repository))
        .bind(col(|r| &r.access_key_id))
        .bind(col(|r| &r.issued_access_key_id))
        .bind(col(|r| &r.error_code))
        .bind(text(|r| &r.decision))
        .bind(records)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced_for_postgres() {
        assert_eq!(clean("a\0b"), "a\u{FFFD}b");
        let rec = r#"{"userAgent":"x\u0000y","k":["\u0000"]}"#;
        let cleaned = clean_record(rec);
        assert!(!cleaned.contains("\\u0000"), "{cleaned}");
        assert!(cleaned.contains("x\u{FFFD}y"), "{cleaned}");
        // An escaped backslash followed by "u0000" is not a NUL and is kept as it is.
        let literal = r#"{"a":"\\u0000"}"#;
        let v: serde_json::Value = serde_json::from_str(&clean_record(literal)).unwrap();
        assert_eq!(v["a"], "\\u0000");
    }
}
