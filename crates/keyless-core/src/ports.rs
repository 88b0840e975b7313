//! Ports: what the use cases need from the outside world, as traits the adapters implement.

use std::sync::Arc;

use keyless_types::AccountId;

use crate::model::{Entities, ManagedPolicy, OidcProvider, Role};

/// A storage failure. The message is for the operator's log, never for the caller.
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(pub String);

/// Durable state: accounts, providers, roles, guardrails (and, later, revocations).
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

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
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
