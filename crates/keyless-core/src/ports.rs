//! Ports: what the use cases need from the outside world, as traits the adapters implement.

use std::sync::Arc;

use crate::model::Entities;

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

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// A shared store handle.
pub type SharedStore = Arc<dyn Store>;
