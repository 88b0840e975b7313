//! The in-memory, compiled view of the store that every request reads.
//!
//! Built from [`Entities`] after start-up and after every change, then swapped in whole, so a
//! request sees one consistent snapshot and never touches the database. Policies are parsed
//! once here; an entity whose stored policy no longer parses is kept out and reported, so one
//! bad row fails closed for that entity only.

use std::collections::HashMap;
use std::sync::Arc;

use keyless_policy::{Policy, PolicyType};
use keyless_types::{AccountId, Arn};

use crate::FastMap;
use crate::model::{Account, Entities, Guardrail, ManagedPolicy, OidcProvider, Role};
use crate::organization::{OrgKeys, Organization};
use crate::trust_binding::RoleKey;

/// A role with its policies compiled.
#[derive(Debug)]
pub struct CompiledRole {
    /// The stored role.
    pub role: Role,
    /// Its ARN.
    pub arn: String,
    /// The trust policy.
    pub trust: Policy,
    /// Inline identity policies, by name.
    pub inline: Vec<(String, Policy)>,
    /// Attached managed policies (their default versions), by ARN.
    pub managed: Vec<(String, Policy)>,
    /// The permissions boundary (a document from the config file, or a managed policy's default
    /// version).
    pub boundary: Option<Policy>,
    /// The organization keys of the role's account, when an organization is declared.
    pub org: Option<Arc<OrgKeys>>,
}

impl CompiledRole {
    /// Every identity policy of the role: inline policies, then attached managed policies.
    pub fn identity_policies(&self) -> Vec<&Policy> {
        self.inline
            .iter()
            .chain(self.managed.iter())
            .map(|(_, p)| p)
            .collect()
    }
}

/// A managed policy with its default version compiled.
#[derive(Debug)]
pub struct CompiledManagedPolicy {
    /// The stored policy.
    pub policy: ManagedPolicy,
    /// Its ARN.
    pub arn: String,
    /// The default version, compiled; `None` when it no longer parses (roles that attach it are
    /// then disabled).
    pub compiled: Option<Policy>,
    /// How many roles attach it.
    pub attachment_count: usize,
    /// How many roles use it as permissions boundary.
    pub boundary_count: usize,
}

/// A guardrail with its document compiled.
#[derive(Debug)]
pub struct CompiledGuardrail {
    /// The stored guardrail.
    pub guardrail: Guardrail,
    /// The compiled document.
    pub policy: Policy,
}

/// The snapshot.
#[derive(Debug, Default)]
pub struct Directory {
    accounts: HashMap<AccountId, Account>,
    providers: HashMap<(AccountId, String), OidcProvider>,
    roles: HashMap<(AccountId, String), Arc<CompiledRole>>,
    /// The same roles by their ARN exactly as issued into session tokens, so that verifying a
    /// signed request finds the role with one lookup.
    roles_by_arn: FastMap<String, Arc<CompiledRole>>,
    /// Per account, the guardrail targets that apply to it (root, each OU prefix, the account),
    /// outermost first, that have guardrails.
    level_targets: FastMap<AccountId, Vec<String>>,
    guardrails: FastMap<String, Vec<CompiledGuardrail>>,
    policies: HashMap<(AccountId, String), Arc<CompiledManagedPolicy>>,
    full_access: Option<Policy>,
    /// The declared organization (the config's `[organization]`), and its keys per account.
    organization: Option<Arc<Organization>>,
    org_keys: FastMap<AccountId, Arc<OrgKeys>>,
    /// Problems found while compiling (logged by the edge).
    pub problems: Vec<String>,
}

impl Directory {
    /// Compiles a snapshot.
    pub fn build(entities: &Entities) -> Directory {
        Directory::build_in(entities, None, None)
    }

    /// Compiles a snapshot for accounts in a declared organization: their principals and
    /// resources get `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths` and the `aws:ResourceOrg…`
    /// pair. The organization is the server's config, not stored, so it goes in here.
    pub fn build_in_organization(
        entities: &Entities,
        organization: Option<Arc<Organization>>,
    ) -> Directory {
        Directory::build_in(entities, organization, None)
    }

    /// Compiles a snapshot, reusing the compiled roles of `previous` whose stored role and
    /// managed policies are unchanged (an IAM write changes one entity; recompiling thousands
    /// of unchanged trust policies would make every write slow). The organization is
    /// `previous`'s: it comes from the config the server started with.
    pub fn build_reusing(entities: &Entities, previous: Option<&Directory>) -> Directory {
        let organization = previous.and_then(|p| p.organization.clone());
        Directory::build_in(entities, organization, previous)
    }

    fn build_in(
        entities: &Entities,
        organization: Option<Arc<Organization>>,
        previous: Option<&Directory>,
    ) -> Directory {
        let mut d = Directory {
            full_access: Policy::parse(FULL_ACCESS, PolicyType::Guardrail)
                .ok()
                .map(|p| p.with_label("FullAWSAccess (implicit at every level)".to_owned())),
            ..Directory::default()
        };
        for a in &entities.accounts {
            d.accounts.insert(a.id, a.clone());
            let Some(org) = &organization else { continue };
            match org.keys_for(&a.ou_path) {
                Some(keys) => {
                    d.org_keys.insert(a.id, Arc::new(keys));
                }
                // The config refuses this; a store changed behind its back leaves the account's
                // principals without the keys, which fails closed for policies that ask.
                None => d.problems.push(format!(
                    "account {} is in OU {}, which has no id in [organization]; its principals and resources have no aws:PrincipalOrgID",
                    a.id, a.ou_path
                )),
            }
        }
        d.organization = organization;
        for p in &entities.providers {
            d.providers.insert((p.account, p.url.clone()), p.clone());
        }
        let mut managed: HashMap<String, CompiledManagedPolicy> = HashMap::new();
        for p in &entities.policies {
            let arn = p.arn();
            let compiled = match p.default_document() {
                Some(v) => match Policy::parse(&v.document, PolicyType::Identity) {
                    Ok(c) => Some(
                        c.with_label(format!("managed policy {} ({})", p.name, p.default_version)),
                    ),
                    Err(e) => {
                        d.problems
                            .push(format!("managed policy {arn} does not parse: {e}"));
                        None
                    }
                },
                None => {
                    d.problems
                        .push(format!("managed policy {arn} has no default version"));
                    None
                }
            };
            managed.insert(
                arn.clone(),
                CompiledManagedPolicy {
                    policy: p.clone(),
                    arn,
                    compiled,
                    attachment_count: 0,
                    boundary_count: 0,
                },
            );
        }
        for r in &entities.roles {
            for a in &r.attached_policies {
                if let Some(m) = managed.get_mut(a) {
                    m.attachment_count += 1;
                }
            }
            if let Some(m) = r
                .permissions_boundary_arn
                .as_ref()
                .and_then(|a| managed.get_mut(a))
            {
                m.boundary_count += 1;
            }
        }
        for r in &entities.roles {
            let org = d.org_keys.get(&r.account).cloned();
            if let Some(prev) = previous
                .and_then(|p| p.reusable_role(r, &managed))
                .filter(|prev| prev.org == org)
            {
                d.roles.insert((r.account, r.name.to_lowercase()), prev);
                continue;
            }
            match compile_role(r, &managed, org) {
                Ok(c) => {
                    d.roles
                        .insert((r.account, r.name.to_lowercase()), Arc::new(c));
                }
                Err(e) => d
                    .problems
                    .push(format!("role {} is disabled: {e}", r.arn())),
            }
        }
        for (_, m) in managed {
            d.policies.insert(
                (m.policy.account, m.policy.name.to_lowercase()),
                Arc::new(m),
            );
        }
        for g in &entities.guardrails {
            match Policy::parse(&g.document, PolicyType::Guardrail) {
                Ok(policy) => {
                    let policy = policy.with_label(format!("guardrail {} at {}", g.name, g.target));
                    d.guardrails
                        .entry(g.target.clone())
                        .or_default()
                        .push(CompiledGuardrail {
                            guardrail: g.clone(),
                            policy,
                        });
                }
                // A guardrail that cannot be read must not silently stop applying: deny everything
                // at its level instead.
                Err(e) => {
                    d.problems.push(format!(
                        "guardrail {} at {} does not parse ({e}); its level now denies everything",
                        g.name, g.target
                    ));
                    d.guardrails.entry(g.target.clone()).or_default();
                    d.broken_levels_push(&g.target);
                }
            }
        }
        d.roles_by_arn = d
            .roles
            .values()
            .map(|r| (r.arn.clone(), Arc::clone(r)))
            .collect();
        d.level_targets = d
            .accounts
            .values()
            .map(|a| (a.id, d.targets_of(a.id)))
            .collect();
        d
    }

    /// This snapshot's compiled `r`, when `r` and every managed policy it uses are unchanged.
    fn reusable_role(
        &self,
        r: &Role,
        managed: &HashMap<String, CompiledManagedPolicy>,
    ) -> Option<Arc<CompiledRole>> {
        let prev = self.roles.get(&(r.account, r.name.to_lowercase()))?;
        if prev.role != *r {
            return None;
        }
        let unchanged = r
            .attached_policies
            .iter()
            .chain(r.permissions_boundary_arn.iter())
            .all(
                |arn| match (self.managed_policy_by_arn(arn), managed.get(arn)) {
                    (Some(old), Some(new)) => old.policy == new.policy,
                    _ => false,
                },
            );
        unchanged.then(|| Arc::clone(prev))
    }

    fn broken_levels_push(&mut self, target: &str) {
        if let Ok(deny_all) = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"UnreadableGuardrail","Effect":"Deny","Action":"*","Resource":"*"}]}"#,
            PolicyType::Guardrail,
        ) {
            let policy = deny_all.with_label(format!("unreadable guardrail at {target}"));
            self.guardrails
                .entry(target.to_owned())
                .or_default()
                .push(CompiledGuardrail {
                    guardrail: Guardrail {
                        target: target.to_owned(),
                        name: "unreadable".into(),
                        document: String::new(),
                        origin: crate::model::Origin::Config,
                    },
                    policy,
                });
        }
    }

    /// Without a declared organization, the labels of the policies whose conditions name an
    /// organization key (`aws:PrincipalOrgID`, `aws:ResourceOrgPaths`, …), which is then
    /// absent: such a condition never matches, and a Deny on `StringNotEquals` always applies.
    /// For a start-up warning; empty with an organization.
    pub fn policies_naming_absent_org_keys(&self) -> Vec<String> {
        if self.organization.is_some() {
            return Vec::new();
        }
        let names_org_key = |p: &&Policy| {
            p.condition_keys().any(|k| {
                let k = k.to_ascii_lowercase();
                k.starts_with("aws:principalorg") || k.starts_with("aws:resourceorg")
            })
        };
        let roles = self.roles.values().flat_map(|r| {
            std::iter::once(&r.trust)
                .chain(r.inline.iter().chain(&r.managed).map(|(_, p)| p))
                .chain(&r.boundary)
        });
        let guardrails = self.guardrails.values().flatten().map(|g| &g.policy);
        let mut labels: Vec<String> = roles
            .chain(guardrails)
            .filter(names_org_key)
            .map(|p| p.label().to_owned())
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }

    /// The organization keys of an account's principals and resources, when an organization
    /// is declared.
    pub fn org_keys(&self, account: AccountId) -> Option<&OrgKeys> {
        self.org_keys.get(&account).map(|k| &**k)
    }

    /// An account.
    pub fn account(&self, id: AccountId) -> Option<&Account> {
        self.accounts.get(&id)
    }

    /// All accounts.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// The provider registered in `account` for exactly this issuer URL.
    pub fn provider(&self, account: AccountId, issuer: &str) -> Option<&OidcProvider> {
        self.providers.get(&(account, issuer.to_owned()))
    }

    /// All providers.
    pub fn providers(&self) -> impl Iterator<Item = &OidcProvider> {
        self.providers.values()
    }

    /// The role a role ARN names: same account, same path, name compared ignoring case.
    pub fn role_by_arn(&self, arn: &str) -> Option<Arc<CompiledRole>> {
        if let Some(role) = self.roles_by_arn.get(arn) {
            return Some(Arc::clone(role));
        }
        let key = RoleKey::parse(arn)?;
        let role = self.roles.get(&(key.account, key.folded_name))?;
        (role.role.path == key.path).then(|| Arc::clone(role))
    }

    /// Every role, in no particular order.
    pub fn roles(&self) -> impl Iterator<Item = &Arc<CompiledRole>> {
        self.roles.values()
    }

    /// A managed policy by account and name (ignoring case).
    pub fn managed_policy(
        &self,
        account: AccountId,
        name: &str,
    ) -> Option<Arc<CompiledManagedPolicy>> {
        self.policies.get(&(account, name.to_lowercase())).cloned()
    }

    /// A managed policy by ARN: same account, path and name (name ignoring case).
    pub fn managed_policy_by_arn(&self, arn: &str) -> Option<Arc<CompiledManagedPolicy>> {
        let parsed = Arn::parse(arn).ok()?;
        if parsed.partition != "aws" || parsed.service != "iam" || !parsed.region.is_empty() {
            return None;
        }
        let account = AccountId::parse(&parsed.account).ok()?;
        let rest = parsed.resource.strip_prefix("policy/")?;
        let (path, name) = match rest.rfind('/') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => ("", rest),
        };
        let p = self.policies.get(&(account, name.to_lowercase()))?;
        (p.policy.path == format!("/{path}")).then(|| Arc::clone(p))
    }

    /// Every managed policy, in no particular order.
    pub fn managed_policies(&self) -> impl Iterator<Item = &Arc<CompiledManagedPolicy>> {
        self.policies.values()
    }

    /// The guardrails attached to one target (`/`, an OU path or an account id).
    pub fn guardrails_at(&self, target: &str) -> &[CompiledGuardrail] {
        self.guardrails.get(target).map_or(&[], Vec::as_slice)
    }

    /// A role by account and name.
    pub fn role(&self, account: AccountId, name: &str) -> Option<Arc<CompiledRole>> {
        self.roles.get(&(account, name.to_lowercase())).cloned()
    }

    /// The guardrail levels that bind principals in `account`, root first: `/`, each OU on the
    /// account's path, then the account itself. Like AWS Organizations, where `FullAWSAccess` is
    /// attached everywhere by default, a level whose guardrails only deny implicitly allows
    /// everything, so they restrict by denying. A level with an `Allow` statement among its
    /// guardrails is an allow-list, as when `FullAWSAccess` is detached in AWS: what none of
    /// them allows is denied there. Levels without guardrails are left out.
    pub fn guardrail_levels(&self, account: AccountId) -> Vec<Vec<&Policy>> {
        let level = |target: &String| -> Vec<&Policy> {
            let attached = self.guardrails.get(target).map_or(&[][..], Vec::as_slice);
            let allow_list = attached.iter().any(|g| g.policy.has_allow_statement());
            self.full_access
                .iter()
                .filter(|_| !allow_list)
                .chain(attached.iter().map(|g| &g.policy))
                .collect()
        };
        match self.level_targets.get(&account) {
            Some(targets) => targets.iter().map(level).collect(),
            None => self.targets_of(account).iter().map(level).collect(),
        }
    }

    /// The targets of [`Directory::guardrail_levels`] that have guardrails, root first.
    fn targets_of(&self, account: AccountId) -> Vec<String> {
        let ou_path = self
            .accounts
            .get(&account)
            .map_or("/", |a| a.ou_path.as_str());
        let mut targets = vec!["/".to_owned()];
        let mut prefix = String::with_capacity(ou_path.len());
        for seg in ou_path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(seg);
            targets.push(prefix.clone());
        }
        targets.push(account.to_string());
        targets.retain(|t| self.guardrails.get(t).is_some_and(|l| !l.is_empty()));
        targets
    }
}

const FULL_ACCESS: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"FullAWSAccess","Effect":"Allow","Action":"*","Resource":"*"}]}"#;

fn compile_role(
    r: &Role,
    managed: &HashMap<String, CompiledManagedPolicy>,
    org: Option<Arc<OrgKeys>>,
) -> Result<CompiledRole, String> {
    let arn = r.arn();
    let trust = Policy::parse(&r.trust_policy, PolicyType::Trust)
        .map_err(|e| format!("trust policy: {e}"))?
        .with_label(format!("trust policy of role {}", r.name))
        .with_principal_ids(
            r.trust_principal_ids
                .iter()
                .map(|(arn, id)| (arn.as_str(), id.as_str())),
        );
    let mut inline = Vec::with_capacity(r.inline_policies.len());
    for p in &r.inline_policies {
        let policy = Policy::parse_within(
            &p.document,
            PolicyType::Identity,
            keyless_policy::ROLE_INLINE_POLICIES_MAX_SIZE,
        )
        .map_err(|e| format!("inline policy {}: {e}", p.name))?
        .with_label(format!("inline policy {} of role {}", p.name, r.name));
        inline.push((p.name.clone(), policy));
    }
    let mut attached = Vec::with_capacity(r.attached_policies.len());
    for a in &r.attached_policies {
        // A missing or unreadable attached policy only removes permissions, but the role would
        // not be what its owner sees through the API: disable it instead.
        let policy = managed
            .get(a)
            .and_then(|m| m.compiled.clone())
            .ok_or_else(|| format!("attached policy {a} is missing or unreadable"))?;
        attached.push((a.clone(), policy));
    }
    let boundary = match (&r.permissions_boundary, &r.permissions_boundary_arn) {
        (_, Some(a)) => Some(
            managed
                .get(a)
                .and_then(|m| m.compiled.clone())
                .ok_or_else(|| format!("permissions boundary {a} is missing or unreadable"))?
                .with_label(format!("permissions boundary {a} of role {}", r.name)),
        ),
        (Some(doc), None) => Some(
            Policy::parse(doc, PolicyType::Identity)
                .map_err(|e| format!("permissions boundary: {e}"))?
                .with_label(format!("permissions boundary of role {}", r.name)),
        ),
        (None, None) => None,
    };
    Ok(CompiledRole {
        role: r.clone(),
        arn,
        trust,
        inline,
        managed: attached,
        boundary,
        org,
    })
}
