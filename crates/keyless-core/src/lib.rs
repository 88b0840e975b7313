//! The use cases of keyless, independent of HTTP and storage.
//!
//! - [`model`]: accounts, OIDC providers, roles, guardrails as stored.
//! - [`ports`]: traits the adapters implement (store).

pub mod model;
pub mod ports;
