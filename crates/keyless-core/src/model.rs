//! The stored entities: accounts, OIDC providers, roles, managed policies, guardrails.
//!
//! These are plain data. Policy documents are kept as the JSON text the owner wrote (AWS returns
//! them verbatim, URL-encoded); [`crate::Directory`] compiles them for evaluation.

use std::collections::BTreeMap;

use keyless_types::{AccountId, OffsetDateTime};

/// Where an entity came from: the config file (read-only through the API) or the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Declared in the config file; the API refuses changes with `UnmodifiableEntity`.
    Config,
    /// Created through the IAM API.
    Api,
}

/// An account, placed in an organizational unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The 12-digit id.
    pub id: AccountId,
    /// A display name.
    pub name: String,
    /// OU path from the root, `/` for the root itself, e.g. `/workloads/dev`.
    pub ou_path: String,
    /// Config file or API.
    pub origin: Origin,
}

/// An OIDC identity provider registered in an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcProvider {
    /// The owning account.
    pub account: AccountId,
    /// The issuer URL exactly as tokens carry it in `iss`, e.g. `https://token.actions.githubusercontent.com`.
    pub url: String,
    /// Allowed audiences (`aud`/`azp`).
    pub client_ids: Vec<String>,
    /// Optional SHA-1 thumbprints (40 hex), kept for API compatibility.
    pub thumbprints: Vec<String>,
    /// Accept `http://` for a loopback issuer (local test issuers only).
    pub allow_http: bool,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Config file or API.
    pub origin: Origin,
    /// When it was created.
    pub created: OffsetDateTime,
}

impl OidcProvider {
    /// The issuer without its scheme: the provider ARN suffix and condition-key prefix.
    pub fn key_prefix(&self) -> &str {
        issuer_key_prefix(&self.url)
    }

    /// `arn:aws:iam::<acct>:oidc-provider/<issuer without scheme>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:oidc-provider/{}",
            self.account,
            self.key_prefix()
        )
    }
}

/// The issuer URL without `https://` or `http://`, as AWS names condition keys.
pub fn issuer_key_prefix(url: &str) -> &str {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url)
}

/// An inline policy attached to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePolicy {
    /// Name, unique per role.
    pub name: String,
    /// The policy JSON as written.
    pub document: String,
}

/// A role that sessions assume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The owning account.
    pub account: AccountId,
    /// Name (1-64 of `[\w+=,.@-]`), unique per account ignoring case.
    pub name: String,
    /// Path, `/` by default, always starting and ending with `/`.
    pub path: String,
    /// `AROA…`, 21 characters.
    pub role_id: String,
    /// The trust (assume-role) policy JSON, as written.
    pub trust_policy: String,
    /// The role ARNs of the trust policy's `Principal.AWS` (as written) bound to the unique id
    /// of the role each named when the policy was saved, as IAM binds them: a role recreated
    /// under a bound name is not trusted. Empty for rows saved before bindings existed
    /// (migration 0006/0007), whose principals still match by ARN until the policy is saved
    /// again; config roles are re-bound at every start.
    pub trust_principal_ids: BTreeMap<String, String>,
    /// Inline identity policies.
    pub inline_policies: Vec<InlinePolicy>,
    /// Permissions boundary policy JSON, if any (config-file roles).
    pub permissions_boundary: Option<String>,
    /// Permissions boundary as a managed policy ARN (set with `PutRolePermissionsBoundary`).
    pub permissions_boundary_arn: Option<String>,
    /// ARNs of the managed policies attached to the role, in attachment order.
    pub attached_policies: Vec<String>,
    /// Maximum session duration in seconds (3600-43200).
    pub max_session_duration: u32,
    /// Description.
    pub description: String,
    /// Tags; they become `aws:PrincipalTag/*` of sessions.
    pub tags: BTreeMap<String, String>,
    /// Config file or API.
    pub origin: Origin,
    /// When it was created.
    pub created: OffsetDateTime,
}

impl Role {
    /// `arn:aws:iam::<acct>:role/<path><name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:role{}{}",
            self.account, self.path, self.name
        )
    }
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// `v1`, `v2`, … (never reused within a policy).
    pub version_id: String,
    /// The policy JSON as written.
    pub document: String,
    /// When it was created.
    pub created: OffsetDateTime,
}

/// A customer managed policy: a named, versioned identity policy attachable to roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    /// The owning account.
    pub account: AccountId,
    /// Name (1-128 of `[\w+=,.@-]`), unique per account ignoring case.
    pub name: String,
    /// Path, `/` by default.
    pub path: String,
    /// `ANPA…`, 21 characters.
    pub policy_id: String,
    /// Description (set at creation only, as in AWS).
    pub description: String,
    /// Versions, oldest first (at most 5).
    pub versions: Vec<PolicyVersion>,
    /// The version that is in force.
    pub default_version: String,
    /// The number the next version gets (`v<n>`).
    pub next_version: u32,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Config file or API.
    pub origin: Origin,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When the default version last changed.
    pub updated: OffsetDateTime,
}

impl ManagedPolicy {
    /// `arn:aws:iam::<acct>:policy/<path><name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:policy{}{}",
            self.account, self.path, self.name
        )
    }

    /// The version in force.
    pub fn default_document(&self) -> Option<&PolicyVersion> {
        self.versions
            .iter()
            .find(|v| v.version_id == self.default_version)
    }
}

/// A guardrail (SCP-like) attached to the root (`/`), an OU path, or an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guardrail {
    /// `/`, an OU path like `/workloads`, or a 12-digit account id.
    pub target: String,
    /// Name, unique per target.
    pub name: String,
    /// The policy JSON.
    pub document: String,
    /// Config file, API, or built in.
    pub origin: Origin,
}

/// Everything the store holds, as loaded at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entities {
    /// Accounts.
    pub accounts: Vec<Account>,
    /// OIDC providers.
    pub providers: Vec<OidcProvider>,
    /// Roles.
    pub roles: Vec<Role>,
    /// Guardrails.
    pub guardrails: Vec<Guardrail>,
    /// Customer managed policies.
    pub policies: Vec<ManagedPolicy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_arn_drops_the_scheme() {
        let p = OidcProvider {
            account: AccountId::parse("123456789012").unwrap(),
            url: "https://token.actions.githubusercontent.com".into(),
            client_ids: vec![],
            thumbprints: vec![],
            allow_http: false,
            tags: BTreeMap::new(),
            origin: Origin::Config,
            created: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(
            p.arn(),
            "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        );
        assert_eq!(
            issuer_key_prefix("http://127.0.0.1:8080/dev/oidc"),
            "127.0.0.1:8080/dev/oidc"
        );
    }
}
