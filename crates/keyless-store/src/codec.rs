//! Encoding shared by both stores: JSON columns, account ids, instants.

use std::collections::BTreeMap;

use keyless_core::ports::StoreError;
use keyless_core::revocation::{NewRevocation, Revocation, Target};
use keyless_types::{AccountId, OffsetDateTime};

pub(crate) fn json_list(v: &[String]) -> String {
    serde_json::Value::from(v.to_vec()).to_string()
}

pub(crate) fn json_map(m: &BTreeMap<String, String>) -> String {
    let obj: serde_json::Map<String, serde_json::Value> = m
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    serde_json::Value::Object(obj).to_string()
}

pub(crate) fn parse_list(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError(format!("corrupt JSON list in database: {e}")))
}

pub(crate) fn parse_map(s: &str) -> Result<BTreeMap<String, String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError(format!("corrupt JSON map in database: {e}")))
}

pub(crate) fn account_id(s: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(s).map_err(|e| StoreError(format!("corrupt account id in database: {e}")))
}

pub(crate) fn time_of(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn unix_millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn time_of_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A revocation from a row (SQLite or Postgres) of `SELECT id, kind, value, issuer, account, issued_before_ms,
/// created_at_ms, expires_at, reason, created_by, audited_seq`.
pub(crate) fn revocation_of_row<'r, R>(row: &'r R) -> Result<Revocation, StoreError>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let kind: String = row.get(1);
    let value: String = row.get(2);
    let issuer: Option<String> = row.get(3);
    let target = Target::from_parts(&kind, &value, issuer.as_deref())
        .ok_or_else(|| StoreError(format!("corrupt revocation {kind} {value:?} in database")))?;
    let account: Option<String> = row.get(4);
    let audited_seq: Option<i64> = row.get(10);
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
        audited_seq: audited_seq
            .map(|s| {
                u64::try_from(s)
                    .map_err(|_| StoreError(format!("corrupt audited_seq {s} in database")))
            })
            .transpose()?,
    })
}
