//! Encoding shared by both stores: JSON columns, account ids, instants.

use std::collections::BTreeMap;

use keyless_core::ports::StoreError;
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
