//! The store conformance suite: every case runs against SQLite (in memory) and against Postgres
//! (a fresh database per test on the server named by `KEYLESS_TEST_DATABASE_URL`, which
//! `scripts/test` starts). Without that variable the Postgres cases are skipped locally and fail
//! under `CI=true`, so CI cannot pass without exercising Postgres.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed setup should abort loudly"
)]

use std::collections::BTreeMap;

use keyless_core::model::{
    Account, Entities, Guardrail, InlinePolicy, ManagedPolicy, OidcProvider, Origin, PolicyVersion,
    Role,
};
use keyless_core::ports::{Change, Store};
use keyless_core::revocation::{NewRevocation, Target};
use keyless_store::{DatabaseUrl, PgStore, SqliteStore};
use keyless_types::{AccountId, OffsetDateTime};
use sqlx::Connection as _;

/// The server URL for Postgres tests, or `None` to skip (panics under `CI=true`).
fn test_database_url() -> Option<DatabaseUrl> {
    match std::env::var("KEYLESS_TEST_DATABASE_URL") {
        Ok(u) if !u.trim().is_empty() => {
            Some(DatabaseUrl::parse(&u).expect("KEYLESS_TEST_DATABASE_URL"))
        }
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "KEYLESS_TEST_DATABASE_URL is not set and CI=true: the Postgres tests must run (scripts/test starts a server)"
            )
        }
        _ => {
            eprintln!("skipped: KEYLESS_TEST_DATABASE_URL is not set (scripts/test sets it)");
            None
        }
    }
}

/// A new, empty database on the test server; its URL.
async fn fresh_database() -> Option<DatabaseUrl> {
    let url = test_database_url()?;
    let name = format!("keyless_t_{}", hex_id());
    let mut conn = sqlx::PgConnection::connect_with(url.options())
        .await
        .expect("connect to the test server");
    // `name` is ours: a fixed prefix and hex digits.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    conn.close().await.ok();
    Some(url.with_database(&name))
}

fn hex_id() -> String {
    (0..12).map(|_| format!("{:x}", rand_nibble())).collect()
}

fn rand_nibble() -> u8 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mix = u64::from(nanos)
        ^ (u64::from(std::process::id()) << 20)
        ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((mix ^ (mix >> 17) ^ (mix >> 33)) & 0xf) as u8
}

async fn sqlite() -> Option<Box<dyn Store>> {
    Some(Box::new(SqliteStore::in_memory().await.unwrap()))
}

async fn postgres() -> Option<Box<dyn Store>> {
    let url = fresh_database().await?;
    Some(Box::new(PgStore::connect(&url).await.unwrap()))
}

macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = super::$backend().await else { return };
                    super::$case(store.as_ref()).await;
                }
            )*
        }
    };
}

macro_rules! both {
    ($($case:ident),* $(,)?) => {
        conformance!(sqlite: $($case),*);
        conformance!(postgres: $($case),*);
    };
}

both!(
    apply_config_round_trips_and_is_idempotent,
    removed_config_entities_disappear,
    role_names_are_unique_ignoring_case_and_ids_stay_stable,
    api_writes_round_trip_and_survive_apply_config,
    api_deletes_never_touch_config_entities,
    a_failed_write_changes_nothing,
    a_failed_apply_config_changes_nothing,
    revocations_round_trip_stamp_and_purge,
    revocations_are_marked_audited_once,
    revocations_after_an_id_come_in_id_order_and_bounded,
    the_directory_generation_advances_with_every_committed_write,
    a_write_decided_on_a_stale_generation_is_refused_whole,
    the_revocations_generation_advances_with_every_revocation_added_or_purged,
    trust_principal_ids_round_trip_and_config_re_binds_them,
    config_bindings_follow_the_role_ids_the_store_kept,
    role_use_keeps_the_latest_per_role_and_moves_no_generation,
    ping_answers,
);

// ---------------------------------------------------------------------------------------------
// Fixtures

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
        trust_principal_ids: Default::default(),
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

// ---------------------------------------------------------------------------------------------
// Cases

async fn apply_config_round_trips_and_is_idempotent(store: &dyn Store) {
    let cfg = config();
    store.apply_config(&cfg).await.unwrap();
    assert_eq!(store.load().await.unwrap(), cfg);
    store.apply_config(&cfg).await.unwrap();
    assert_eq!(store.load().await.unwrap(), cfg);
}

async fn removed_config_entities_disappear(store: &dyn Store) {
    store.apply_config(&config()).await.unwrap();
    store.apply_config(&Entities::default()).await.unwrap();
    assert_eq!(store.load().await.unwrap(), Entities::default());
}

async fn role_names_are_unique_ignoring_case_and_ids_stay_stable(store: &dyn Store) {
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

async fn api_writes_round_trip_and_survive_apply_config(store: &dyn Store) {
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

async fn trust_principal_ids_round_trip_and_config_re_binds_them(store: &dyn Store) {
    let ci = "arn:aws:iam::123456789012:role/ci".to_owned();
    let mut cfg = config();
    cfg.roles[0].trust_principal_ids = BTreeMap::from([(ci.clone(), "AROAOLD".to_owned())]);
    store.apply_config(&cfg).await.unwrap();
    assert_eq!(store.load().await.unwrap(), cfg);
    // The config is the source of truth: the next apply's binding replaces the stored one.
    cfg.roles[0].trust_principal_ids = BTreeMap::from([(ci.clone(), "AROANEW".to_owned())]);
    store.apply_config(&cfg).await.unwrap();
    assert_eq!(store.load().await.unwrap().roles, cfg.roles);

    let mut api_role = role("builder", "AROACCCCCCCCCCCCCCCCC");
    api_role.origin = Origin::Api;
    api_role.trust_principal_ids = BTreeMap::from([(ci, "AROAAPI".to_owned())]);
    store
        .write(&Change::PutRole(api_role.clone()))
        .await
        .unwrap();
    store.apply_config(&cfg).await.unwrap();
    assert!(store.load().await.unwrap().roles.contains(&api_role));
    api_role.trust_principal_ids.clear();
    store
        .write(&Change::PutRole(api_role.clone()))
        .await
        .unwrap();
    assert!(store.load().await.unwrap().roles.contains(&api_role));
}

async fn config_bindings_follow_the_role_ids_the_store_kept(store: &dyn Store) {
    // Two replicas starting at once on an empty database: each proposes its own ids and binds
    // against them; the second apply must not leave bindings to ids no role holds.
    let ci = "arn:aws:iam::123456789012:role/ci".to_owned();
    let first = |ci_id: &str| {
        let mut cfg = config();
        let mut trusted = role("ci", ci_id);
        trusted.inline_policies.clear();
        cfg.roles[0].trust_principal_ids = BTreeMap::from([(ci.clone(), ci_id.to_owned())]);
        cfg.roles.push(trusted);
        cfg
    };
    store.apply_config(&first("AROAFIRST")).await.unwrap();
    store.apply_config(&first("AROASECOND")).await.unwrap();
    let loaded = store.load().await.unwrap();
    let deploy = loaded.roles.iter().find(|r| r.name == "deploy").unwrap();
    assert_eq!(
        deploy.trust_principal_ids,
        BTreeMap::from([(ci, "AROAFIRST".to_owned())])
    );
}

async fn api_deletes_never_touch_config_entities(store: &dyn Store) {
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

async fn a_failed_write_changes_nothing(store: &dyn Store) {
    store.apply_config(&config()).await.unwrap();
    let policy = api_policy();
    store
        .write(&Change::PutPolicy(policy.clone()))
        .await
        .unwrap();
    // The policy row is upserted and its versions deleted before the duplicate version id
    // fails: the transaction must take all of it back.
    let mut broken = policy.clone();
    broken.description = "changed".into();
    broken.versions.push(broken.versions[0].clone());
    assert!(store.write(&Change::PutPolicy(broken)).await.is_err());
    assert_eq!(store.load().await.unwrap().policies, vec![policy]);
    // A role whose id belongs to another role is refused and changes nothing either.
    let mut clash = role("builder", "AROAAAAAAAAAAAAAAAAAA");
    clash.origin = Origin::Api;
    assert!(store.write(&Change::PutRole(clash)).await.is_err());
    assert_eq!(store.load().await.unwrap().roles, config().roles);
}

async fn the_directory_generation_advances_with_every_committed_write(store: &dyn Store) {
    let start = store.directory_generation().await.unwrap();
    store.apply_config(&config()).await.unwrap();
    let after_config = store.directory_generation().await.unwrap();
    assert!(after_config > start);
    store.write(&Change::PutPolicy(api_policy())).await.unwrap();
    let after_write = store.directory_generation().await.unwrap();
    assert!(after_write > after_config);
    // Reads, revocations and failed writes leave it alone: nothing for a replica to reload.
    store.load().await.unwrap();
    store
        .add_revocation(&revocation(
            Target::Role {
                role_arn: "arn:aws:iam::123456789012:role/builder".into(),
            },
            1_900_000_000,
        ))
        .await
        .unwrap();
    let mut clash = role("other", "AROAAAAAAAAAAAAAAAAAA");
    clash.origin = Origin::Api;
    assert!(store.write(&Change::PutRole(clash)).await.is_err());
    assert_eq!(store.directory_generation().await.unwrap(), after_write);
}

async fn role_use_keeps_the_latest_per_role_and_moves_no_generation(store: &dyn Store) {
    let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
    assert!(store.role_last_used().await.unwrap().is_empty());
    let generations = (
        store.directory_generation().await.unwrap(),
        store.revocations_generation().await.unwrap(),
    );
    store
        .record_role_use(&[
            ("AROAONE".into(), at(1_900_000_100)),
            ("AROATWO".into(), at(1_900_000_050)),
        ])
        .await
        .unwrap();
    // Another server's older report does not move a role back; a newer one moves it on.
    store
        .record_role_use(&[
            ("AROAONE".into(), at(1_900_000_000)),
            ("AROATWO".into(), at(1_900_000_200)),
        ])
        .await
        .unwrap();
    store.record_role_use(&[]).await.unwrap();
    let mut used = store.role_last_used().await.unwrap();
    used.sort();
    assert_eq!(
        used,
        vec![
            ("AROAONE".into(), at(1_900_000_100)),
            ("AROATWO".into(), at(1_900_000_200)),
        ]
    );
    assert_eq!(
        (
            store.directory_generation().await.unwrap(),
            store.revocations_generation().await.unwrap(),
        ),
        generations
    );
}

async fn a_write_decided_on_a_stale_generation_is_refused_whole(store: &dyn Store) {
    store.apply_config(&config()).await.unwrap();
    let seen = store.directory_generation().await.unwrap();
    let mut policy = api_policy();
    assert!(
        store
            .write_if_current(&Change::PutPolicy(policy.clone()), seen)
            .await
            .unwrap()
    );
    let now = store.directory_generation().await.unwrap();
    assert!(now > seen);
    // Decided on the older snapshot: refused, nothing written, the generation left alone.
    policy.description = "stale".into();
    let before = store.load().await.unwrap();
    assert!(
        !store
            .write_if_current(&Change::PutPolicy(policy.clone()), seen)
            .await
            .unwrap()
    );
    assert_eq!(store.load().await.unwrap(), before);
    assert_eq!(store.directory_generation().await.unwrap(), now);
    assert!(
        store
            .write_if_current(&Change::PutPolicy(policy), now)
            .await
            .unwrap()
    );
}

async fn the_revocations_generation_advances_with_every_revocation_added_or_purged(
    store: &dyn Store,
) {
    let session = |n: u32, expires: i64| {
        revocation(
            Target::Session {
                access_key_id: format!("ASIAEXAMPLE{n:010}"),
            },
            expires,
        )
    };
    let start = store.revocations_generation().await.unwrap();
    let a = store
        .add_revocation(&session(1, 1_700_003_600))
        .await
        .unwrap();
    let after_add = store.revocations_generation().await.unwrap();
    assert!(after_add > start);
    store
        .add_revocation(&session(2, 1_700_007_200))
        .await
        .unwrap();
    let after_second = store.revocations_generation().await.unwrap();
    assert!(after_second > after_add);
    // Nothing in force changes: reads, an audit mark, a purge with nothing to delete, IAM writes.
    store.revocations().await.unwrap();
    store.revocations_stamp().await.unwrap();
    assert!(store.mark_revocation_audited(a.id, 3).await.unwrap());
    let before = OffsetDateTime::from_unix_timestamp(1_700_003_599).unwrap();
    assert_eq!(store.purge_revocations(before).await.unwrap(), 0);
    store.apply_config(&config()).await.unwrap();
    store.write(&Change::PutPolicy(api_policy())).await.unwrap();
    assert_eq!(store.revocations_generation().await.unwrap(), after_second);
    // A purge that deletes rows does.
    let at = OffsetDateTime::from_unix_timestamp(1_700_003_600).unwrap();
    assert_eq!(store.purge_revocations(at).await.unwrap(), 1);
    assert!(store.revocations_generation().await.unwrap() > after_second);
}

async fn a_failed_apply_config_changes_nothing(store: &dyn Store) {
    let cfg = config();
    store.apply_config(&cfg).await.unwrap();
    let mut bad = cfg.clone();
    bad.accounts[0].name = "renamed".into();
    bad.guardrails.clear();
    // Two roles with one id: the second insert fails after the first changes were made.
    bad.roles.push(role("other", "AROAAAAAAAAAAAAAAAAAA"));
    assert!(store.apply_config(&bad).await.is_err());
    assert_eq!(store.load().await.unwrap(), cfg);
}

fn revocation(target: Target, expires: i64) -> NewRevocation {
    NewRevocation {
        target,
        account: Some(acct()),
        issued_before: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000)
            .unwrap(),
        created_at: OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_456_000_000).unwrap(),
        expires_at: OffsetDateTime::from_unix_timestamp(expires).unwrap(),
        reason: "leaked in a log".into(),
        created_by: "operator".into(),
    }
}

async fn revocations_round_trip_stamp_and_purge(store: &dyn Store) {
    assert_eq!(store.revocations().await.unwrap(), vec![]);
    let empty = store.revocations_stamp().await.unwrap();
    let a = store
        .add_revocation(&revocation(
            Target::Session {
                access_key_id: "ASIAEXAMPLE0000000001".into(),
            },
            1_700_003_600,
        ))
        .await
        .unwrap();
    let mut everywhere = revocation(
        Target::Subject {
            issuer: "https://token.actions.githubusercontent.com".into(),
            subject: "repo:octo-org/demo:ref:refs/heads/main".into(),
        },
        1_700_007_200,
    );
    everywhere.account = None;
    let b = store.add_revocation(&everywhere).await.unwrap();
    assert!(b.id > a.id);
    assert_eq!(
        store.revocations().await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    let two = store.revocations_stamp().await.unwrap();
    assert_ne!(two, empty);

    // Nothing has expired yet at the first expiry minus one second.
    let before = OffsetDateTime::from_unix_timestamp(1_700_003_599).unwrap();
    assert_eq!(store.purge_revocations(before).await.unwrap(), 0);
    assert_eq!(store.revocations_stamp().await.unwrap(), two);
    let at = OffsetDateTime::from_unix_timestamp(1_700_003_600).unwrap();
    assert_eq!(store.purge_revocations(at).await.unwrap(), 1);
    assert_eq!(store.revocations().await.unwrap(), vec![b]);
    assert_ne!(store.revocations_stamp().await.unwrap(), two);
}

async fn revocations_after_an_id_come_in_id_order_and_bounded(store: &dyn Store) {
    let session = |n: u32, expires: i64| {
        revocation(
            Target::Session {
                access_key_id: format!("ASIAEXAMPLE{n:010}"),
            },
            expires,
        )
    };
    assert_eq!(store.revocations_after(0, 10).await.unwrap(), vec![]);
    let mut added = Vec::new();
    for n in 0..5 {
        added.push(
            store
                .add_revocation(&session(n, 1_700_003_600 + i64::from(n)))
                .await
                .unwrap(),
        );
    }
    assert_eq!(store.revocations_after(0, 10).await.unwrap(), added);
    // Strictly after the id given, at most `limit` rows, lowest ids first.
    assert_eq!(
        store.revocations_after(added[1].id, 10).await.unwrap(),
        added[2..].to_vec()
    );
    assert_eq!(
        store.revocations_after(added[0].id, 2).await.unwrap(),
        added[1..3].to_vec()
    );
    assert_eq!(
        store.revocations_after(added[4].id, 10).await.unwrap(),
        vec![]
    );
    assert_eq!(store.revocations_after(0, 0).await.unwrap(), vec![]);
    // Marks show; purged rows are gone.
    assert!(
        store
            .mark_revocation_audited(added[3].id, 11)
            .await
            .unwrap()
    );
    let at = OffsetDateTime::from_unix_timestamp(1_700_003_601).unwrap();
    assert_eq!(store.purge_revocations(at).await.unwrap(), 2);
    let after = store.revocations_after(0, 10).await.unwrap();
    assert_eq!(
        after.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![added[2].id, added[3].id, added[4].id]
    );
    assert_eq!(after[1].audited_seq, Some(11));
    assert_eq!(after, store.revocations().await.unwrap());
}

async fn revocations_are_marked_audited_once(store: &dyn Store) {
    let session = |n: u32| {
        revocation(
            Target::Session {
                access_key_id: format!("ASIAEXAMPLE{n:010}"),
            },
            1_700_003_600,
        )
    };
    let a = store.add_revocation(&session(1)).await.unwrap();
    let b = store.add_revocation(&session(2)).await.unwrap();
    assert_eq!((a.audited_seq, b.audited_seq), (None, None));
    assert_eq!(
        store.unaudited_revocations().await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    let stamp = store.revocations_stamp().await.unwrap();

    // The first mark sets the seq; a second one (a duplicate record) does not overwrite it.
    assert!(store.mark_revocation_audited(a.id, 7).await.unwrap());
    assert!(!store.mark_revocation_audited(a.id, 9).await.unwrap());
    let listed = store.revocations().await.unwrap();
    assert_eq!(listed[0].id, a.id);
    assert_eq!(listed[0].audited_seq, Some(7));
    assert_eq!(listed[0].spec, a.spec);
    assert_eq!(listed[1], b);
    assert_eq!(
        store.unaudited_revocations().await.unwrap(),
        vec![b.clone()]
    );
    // Marking is not a change of the revocations: pollers do not reload for it.
    assert_eq!(store.revocations_stamp().await.unwrap(), stamp);

    // Large seqs round-trip; a purged row cannot be marked.
    assert!(store.mark_revocation_audited(b.id, 1 << 40).await.unwrap());
    assert_eq!(
        store.revocations().await.unwrap()[1].audited_seq,
        Some(1 << 40)
    );
    assert_eq!(store.unaudited_revocations().await.unwrap(), vec![]);
    let c = store.add_revocation(&session(3)).await.unwrap();
    assert!(store.mark_revocation_audited(c.id, u64::MAX).await.is_err());
    assert_eq!(store.unaudited_revocations().await.unwrap(), vec![c]);
    let at = OffsetDateTime::from_unix_timestamp(1_700_003_600).unwrap();
    assert_eq!(store.purge_revocations(at).await.unwrap(), 3);
    assert!(!store.mark_revocation_audited(a.id, 10).await.unwrap());
}

async fn ping_answers(store: &dyn Store) {
    store.ping().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Backend-specific

/// A rolled-back insert on `$conn` and an insert whose second row fails leave `$store`'s
/// revocations generation at `$at`. (A macro: one body for both backends' connections.)
macro_rules! assert_failed_writes_leave_the_generation {
    ($conn:expr, $store:expr, $at:expr) => {{
        let mut tx = sqlx::Connection::begin(&mut *$conn).await.unwrap();
        sqlx::query(sqlx::AssertSqlSafe(insert_revocation_sql(7, "'rolled back'")))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        assert_eq!($store.revocations_generation().await.unwrap(), $at);
        let second_row_fails = insert_revocation_sql(8, "'first'").replace(
            "'operator')",
            "'operator'), ('session', 'ASIAEXAMPLE0000000009', NULL, 0, 0, 1700003600, NULL, 'operator')",
        );
        assert!(
            sqlx::query(sqlx::AssertSqlSafe(second_row_fails))
                .execute(&mut *$conn)
                .await
                .is_err()
        );
        assert_eq!($store.revocations_generation().await.unwrap(), $at);
    }};
}

/// Another writer's own SQL on the same file (the CLI, an older binary, an operator) advances
/// the revocations generation too, and only what it commits does.
#[tokio::test]
async fn sqlite_revocations_generation_follows_every_writer_and_only_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let start = store.revocations_generation().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(insert_revocation_sql(1, "'other'")))
        .execute(&mut other)
        .await
        .unwrap();
    let inserted = store.revocations_generation().await.unwrap();
    assert!(inserted > start);
    assert_failed_writes_leave_the_generation!(&mut other, store, inserted);
    sqlx::query("DELETE FROM revocations")
        .execute(&mut other)
        .await
        .unwrap();
    assert!(store.revocations_generation().await.unwrap() > inserted);
}

/// Postgres: the same, and a statement that deletes many rows advances it once.
#[tokio::test]
async fn postgres_revocations_generation_follows_every_writer_and_only_commits() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = PgStore::connect(&url).await.unwrap();
    let mut other = store.pool().acquire().await.unwrap();
    let start = store.revocations_generation().await.unwrap();
    for n in 1..=3 {
        sqlx::query(sqlx::AssertSqlSafe(insert_revocation_sql(n, "'other'")))
            .execute(&mut *other)
            .await
            .unwrap();
    }
    let inserted = store.revocations_generation().await.unwrap();
    assert_eq!(inserted, start + 3);
    assert_failed_writes_leave_the_generation!(&mut *other, store, inserted);
    sqlx::query("DELETE FROM revocations")
        .execute(&mut *other)
        .await
        .unwrap();
    assert_eq!(store.revocations_generation().await.unwrap(), inserted + 1);
    sqlx::query("TRUNCATE revocations")
        .execute(&mut *other)
        .await
        .unwrap();
    assert_eq!(store.revocations_generation().await.unwrap(), inserted + 2);
}

/// A plain-SQL insert of session revocation `n` with `reason` (an SQL expression).
fn insert_revocation_sql(n: u32, reason: &str) -> String {
    format!(
        "INSERT INTO revocations (kind, value, account, issued_before_ms, created_at_ms, expires_at, \
         reason, created_by) VALUES ('session', 'ASIAEXAMPLE{n:010}', NULL, 0, 0, 1700003600, {reason}, 'operator')"
    )
}

#[tokio::test]
async fn sqlite_file_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.apply_config(&config()).await.unwrap();
    drop(store);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.load().await.unwrap().roles.len(), 1);
    store.ping().await.unwrap();
}

#[tokio::test]
async fn postgres_reconnect_keeps_data_and_migrations_run_once() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = PgStore::connect(&url).await.unwrap();
    store.apply_config(&config()).await.unwrap();
    drop(store);
    let store = PgStore::connect(&url).await.unwrap();
    assert_eq!(store.load().await.unwrap(), config());
}

/// What the revocation poller must catch: a Postgres id taken from the sequence commits after a
/// higher one, so reading "after the last id seen" misses it, while the stamp's count and sum
/// (not its max) show it, and the revocations generation moves at its commit. (The slow writer
/// takes its id before it inserts: an insert holds the generation's row lock to commit, so the
/// other writer would wait for it. The window in which ids commit out of order is that between
/// an insert taking its id and its trigger taking the lock.)
#[tokio::test]
async fn postgres_a_lower_revocation_id_can_commit_after_a_higher_one() {
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = PgStore::connect(&url).await.unwrap();
    let mut slow = store.pool().begin().await.unwrap();
    let (low,): (i64,) =
        sqlx::query_as("SELECT nextval(pg_get_serial_sequence('revocations', 'id'))")
            .fetch_one(&mut *slow)
            .await
            .unwrap();
    let high = store
        .add_revocation(&revocation(
            Target::Session {
                access_key_id: "ASIAEXAMPLE0000000002".into(),
            },
            1_700_003_600,
        ))
        .await
        .unwrap();
    assert!(low < high.id);
    assert_eq!(
        store.revocations_after(0, 10).await.unwrap(),
        vec![high.clone()]
    );
    assert_eq!(
        store.revocations_stamp().await.unwrap(),
        (high.id, 1, high.id)
    );
    let before_commit = store.revocations_generation().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(
        insert_revocation_sql(1, "'slow'")
            .replace("(kind,", "(id, kind,")
            .replace("VALUES (", &format!("VALUES ({low}, ")),
    ))
    .execute(&mut *slow)
    .await
    .unwrap();
    assert_eq!(store.revocations_generation().await.unwrap(), before_commit);
    slow.commit().await.unwrap();
    assert!(store.revocations_generation().await.unwrap() > before_commit);
    assert_eq!(store.revocations_after(high.id, 10).await.unwrap(), vec![]);
    assert_eq!(
        store.revocations_stamp().await.unwrap(),
        (high.id, 2, low + high.id)
    );
    let late = store.revocations_after(0, 10).await.unwrap();
    assert_eq!(
        late.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![low, high.id]
    );
}

#[tokio::test]
async fn postgres_unreachable_names_the_host_not_the_password() {
    let Some(url) = test_database_url() else {
        return;
    };
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bad = DatabaseUrl::parse(&format!(
        "postgres://keyless:hunter2-secret@127.0.0.1:{port}/x"
    ))
    .unwrap();
    let e = PgStore::connect(&bad).await.unwrap_err().to_string();
    assert!(
        e.contains(&format!(
            "cannot connect to Postgres at 127.0.0.1:{port} (database x, user keyless)"
        )),
        "{e}"
    );
    assert!(e.contains("Connection refused"), "the reason is kept: {e}");
    assert!(!e.contains("hunter2-secret"), "{e}");
    // A wrong password for the real server: refused by the server, password not repeated.
    let wrong = DatabaseUrl::parse(&format!(
        "postgres://keyless:hunter2-secret@{}:{}/postgres",
        url.options().get_host(),
        url.options().get_port()
    ))
    .unwrap();
    let e = PgStore::connect(&wrong).await.unwrap_err().to_string();
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(!e.contains("hunter2-secret"), "{e}");
}

#[tokio::test]
async fn postgres_audit_table_inserts_once_per_seq_and_keeps_logs_apart() {
    use keyless_store::audit_table::AuditRow;
    let Some(url) = fresh_database().await else {
        return;
    };
    let store = PgStore::connect(&url).await.unwrap();
    let table = keyless_store::AuditTable::new(store.pool().clone());
    assert_eq!(table.last_seq("log-a").await.unwrap(), 0);
    let row = |seq: u64| AuditRow {
        seq,
        hash: format!("{seq:064x}"),
        event_time: "2026-12-02T06:00:00.123456Z".into(),
        event_source: "sts.amazonaws.com".into(),
        event_name: "AssumeRoleWithWebIdentity".into(),
        subject: Some("repo:octo-org/demo:ref:refs/heads/main".into()),
        // NUL cannot be stored in Postgres text; it is replaced, the row is kept.
        principal: Some("arn\0x".into()),
        decision: "allow".into(),
        record: format!(r#"{{"seq":{seq},"userAgent":"a\u0000b"}}"#),
        ..AuditRow::default()
    };
    assert_eq!(table.insert("log-a", &[row(1), row(2)]).await.unwrap(), 2);
    // A retry of the same records (after an outage, a restart) adds nothing.
    assert_eq!(table.insert("log-a", &[row(2), row(3)]).await.unwrap(), 1);
    assert_eq!(table.insert("log-b", &[row(1)]).await.unwrap(), 1);
    assert_eq!(table.last_seq("log-a").await.unwrap(), 3);
    assert_eq!(table.last_seq("log-b").await.unwrap(), 1);
    let (principal, agent, micros): (String, String, i64) = sqlx::query_as(
        "SELECT principal, record->>'userAgent', \
         (EXTRACT(MICROSECONDS FROM event_time))::bigint FROM audit_events WHERE log_id = 'log-a' AND seq = 1",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(principal, "arn\u{FFFD}x");
    assert_eq!(agent, "a\u{FFFD}b");
    assert_eq!(micros, 123_456);
    // A row the table cannot take (a malformed time) is refused as such, not as an outage.
    let mut bad = row(4);
    bad.event_time = "not a time".into();
    assert!(matches!(
        table.insert("log-a", &[bad]).await,
        Err(keyless_store::audit_table::InsertError::Rejected(_))
    ));
}
