//! The use cases of keyless, independent of HTTP and storage.
//!
//! - [`model`]: accounts, OIDC providers, roles, guardrails as stored.
//! - [`organization`]: the AWS Organizations ids an operator declares for the OU tree, and
//!   the `aws:PrincipalOrg…`/`aws:ResourceOrg…` keys they give.
//! - [`ports`]: traits the adapters implement (store).
//! - [`directory`]: the compiled in-memory snapshot every request reads.
//! - [`caller`]: authenticating a signed request into a [`caller::Caller`] proof.
//! - [`session_cache`]: opened session tokens and signing keys kept between a credential's
//!   requests.
//! - [`authorize`]: verify + authorize a request a gateway received (`/v1/authorize`).
//! - [`sts`]: AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity, GetAccessKeyInfo,
//!   DecodeAuthorizationMessage.
//! - [`iam`]: the IAM management API (providers, roles, managed policies, simulation) and the
//!   built-in `no-long-term-keys` guardrail.
//! - [`authz_message`]: the encoded authorization messages carried by every `AccessDenied`.
//! - [`revocation`]: revoking sessions by key id, role, subject, source identity, issuer or
//!   key version, and the in-memory set every verification checks.
//! - [`revocation_sync`]: merging the revocations another process stored into that set,
//!   checked against the store's stamp.
//! - [`trust_binding`]: a trust policy's role principals bound to the roles' unique ids when it
//!   is saved, so a role recreated under a trusted name is not trusted.
//! - [`role_usage`]: when each role last had a session issued (IAM's `RoleLastUsed`).
//! - [`error`]: [`error::ApiError`], an AWS wire code with its status and message.
//!
//! Nothing here does I/O or reads the clock: the edge passes `now`, the fetched JWKS and the
//! caller's address.

pub mod authorize;
pub mod authz_message;
pub mod caller;
pub mod directory;
pub mod error;
pub mod iam;
pub mod model;
pub mod organization;
pub mod ports;
pub mod revocation;
pub mod revocation_sync;
pub mod role_usage;
pub mod session_cache;
pub mod sts;
pub mod trust_binding;

/// The maps every verification reads (revocations, roles by ARN, guardrail levels). Their keys
/// come from the operator's configuration and revocations, not from requests, and lookups come
/// after a signature verified; a per-process seeded foldhash then serves them at a fraction of
/// SipHash's cost.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
