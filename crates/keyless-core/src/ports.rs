//! Ports: what the use cases need from the outside world, as traits the adapters implement.

use std::sync::Arc;

use keyless_types::AccountId;

use crate::model::{Entities, ManagedPolicy, OidcProvider, Role};
use crate::revocation::{NewRevocation, Revocation};

/// A storage failure. The message is for the operator's log, never for the caller.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// The revocations table's change stamp: the largest id, the row count and the sum of the ids.
/// The sum is there for replicas sharing Postgres, where ids can commit out of order: a
/// revocation with a lower id committing while a purge removes one row leaves the largest id
/// and the count as they were, but not the sum.
pub type RevocationStamp = (i64, i64, i64);

/// Durable state: accounts, providers, roles, guardrails, revocations.
///
/// The request path never calls the store: use cases read an in-memory [`crate::Directory`]
/// built from [`Store::load`] and rebuilt after every change.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Loads every entity.
    async fn load(&self) -> Result<Entities, StoreError>;

    /// Makes the config-file entities exactly `config` (all with [`crate::model::Origin::Config`]):
    /// creates and updates what is listed, deletes config entities no longer listed, keeps role
    /// ids stable across restarts, and leaves API-created entities alone. Idempotent.
    async fn apply_config(&self, config: &Entities) -> Result<(), StoreError>;

    /// Applies one change made through the IAM API, atomically. Only entities with
    /// [`crate::model::Origin::Api`] are ever passed; the use cases refuse config entities first.
    async fn write(&self, change: &Change) -> Result<(), StoreError>;

    /// [`Store::write`], only if the [`Store::directory_generation`] is still `based_on`, the
    /// generation of the snapshot the change was decided on; `Ok(false)` and nothing written
    /// when another writer (another replica) moved it. IAM writes a role or a policy whole, so a
    /// change decided on a stale snapshot would put back what another writer just removed.
    async fn write_if_current(&self, change: &Change, based_on: i64) -> Result<bool, StoreError>;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Stores a revocation and returns it with its id.
    async fn add_revocation(&self, revocation: &NewRevocation) -> Result<Revocation, StoreError>;

    /// Every stored revocation, oldest first (expired ones included until purged).
    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError>;

    /// At most `limit` stored revocations with an id greater than `after_id`, in id order: what
    /// a poller that has read the table up to `after_id` has not seen yet (but see
    /// [`RevocationStamp`]: with Postgres a lower id can still commit later).
    async fn revocations_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<Revocation>, StoreError>;

    /// The stored revocations whose audit record is not known to be durable yet
    /// ([`Revocation::audited_seq`] is `None`), oldest first: the outbox of the audit log.
    async fn unaudited_revocations(&self) -> Result<Vec<Revocation>, StoreError>;

    /// Marks revocation `id` as recorded in the audit log at `seq`, only if it is not marked
    /// yet (a second mark never overwrites the first). `true` if this call marked it; `false`
    /// if it was marked already or is gone (purged).
    async fn mark_revocation_audited(&self, id: i64, seq: u64) -> Result<bool, StoreError>;

    /// A counter that every [`Store::write`] and [`Store::apply_config`] advances, cheap enough
    /// to poll so that IAM changes made through another replica reach this one's directory.
    async fn directory_generation(&self) -> Result<i64, StoreError>;

    /// A counter that every statement adding or deleting revocations advances in its own
    /// transaction (a trigger in the store, so every writer does, whichever binary), read from
    /// one row. While it stands still the revocations are as they were, so a poller reads it
    /// instead of [`Store::revocations_stamp`], an aggregate over the whole table. Audit marks
    /// ([`Store::mark_revocation_audited`]) leave it alone: they change nothing that is in force.
    async fn revocations_generation(&self) -> Result<i64, StoreError>;

    /// A value that changes whenever a revocation is added or purged, cheap enough to poll so
    /// that revocations written by another process (the CLI, another replica) reach every
    /// verifier within a second.
    async fn revocations_stamp(&self) -> Result<RevocationStamp, StoreError>;

    /// Records that sessions of these roles (by unique id) were issued at these instants,
    /// keeping the latest per role, for IAM's `RoleLastUsed`.
    async fn record_role_use(
        &self,
        uses: &[(String, keyless_types::OffsetDateTime)],
    ) -> Result<(), StoreError>;

    /// When each role (by unique id) last had a session issued, as every server recorded it.
    async fn role_last_used(
        &self,
    ) -> Result<Vec<(String, keyless_types::OffsetDateTime)>, StoreError>;

    /// Deletes revocations that can no longer match a live session at `now`; returns how many.
    async fn purge_revocations(
        &self,
        now: keyless_types::OffsetDateTime,
    ) -> Result<u64, StoreError>;
}

/// One write of the IAM API. `Put*` creates or replaces the entity whole (a role with its
/// inline policies and attachments, a managed policy with its versions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create or replace an OIDC provider.
    PutProvider(OidcProvider),
    /// Delete the provider of `account` with this issuer URL.
    DeleteProvider {
        /// The account.
        account: AccountId,
        /// The issuer URL.
        url: String,
    },
    /// Create or replace a role.
    PutRole(Role),
    /// Delete a role (name compared ignoring case) with its inline policies.
    DeleteRole {
        /// The account.
        account: AccountId,
        /// The role name.
        name: String,
    },
    /// Create or replace a managed policy.
    PutPolicy(ManagedPolicy),
    /// Delete a managed policy (name compared ignoring case) with its versions.
    DeletePolicy {
        /// The account.
        account: AccountId,
        /// The policy name.
        name: String,
    },
}

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;
