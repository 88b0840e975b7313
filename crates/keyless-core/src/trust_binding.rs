//! Binding a trust policy's role principals to the roles' unique ids when the policy is saved,
//! as IAM does: "If your Principal element in a role trust policy contains an ARN that points
//! to a specific IAM role, then that ARN transforms to the role's unique principal ID when you
//! save the policy." Without it, whoever may delete and recreate a trusted role (but not touch
//! the trusting one) could recreate it, control its trust policy, and assume the trusting role.

use std::borrow::Cow;
use std::collections::BTreeMap;

use keyless_policy::Policy;
use keyless_types::{AccountId, Arn};

use crate::model::{Entities, Origin, Role};

/// Where a role ARN points: account, path (`/…/`) and name lowercased, the key IAM finds a
/// role by (names are unique per account ignoring case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleKey {
    /// The account.
    pub account: AccountId,
    /// The path, starting and ending with `/`.
    pub path: String,
    /// The name, lowercased.
    pub folded_name: String,
}

impl RoleKey {
    /// The key of `role`.
    pub fn of(role: &Role) -> RoleKey {
        RoleKey {
            account: role.account,
            path: role.path.clone(),
            folded_name: role.name.to_lowercase(),
        }
    }

    /// The key a role ARN points at; `None` for anything that cannot name a keyless role
    /// (another partition, another service, not `role/…`).
    pub fn parse(arn: &str) -> Option<RoleKey> {
        let parsed = Arn::parse(arn).ok()?;
        // keyless's entities live in the `aws` partition only (every ARN it writes says so).
        if parsed.partition != "aws" || parsed.service != "iam" || !parsed.region.is_empty() {
            return None;
        }
        let account = AccountId::parse(&parsed.account).ok()?;
        let rest = parsed.resource.strip_prefix("role/")?;
        let (path, name) = match rest.rfind('/') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => ("", rest),
        };
        Some(RoleKey {
            account,
            path: format!("/{path}"),
            folded_name: name.to_lowercase(),
        })
    }
}

/// A trust policy names a role that does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownRolePrincipal {
    /// The principal as written.
    pub arn: String,
}

impl UnknownRolePrincipal {
    /// IAM's `MalformedPolicyDocument` message for it.
    pub fn aws_message(&self) -> String {
        format!("Invalid principal in policy: \"AWS\":\"{}\"", self.arn)
    }
}

/// Binds every exact role ARN of `trust`'s `Principal.AWS` to the unique id `role_id_of`
/// finds for it (ARN as written → id). A role ARN that names no role is an error, as in IAM.
pub fn bind_role_principals(
    trust: &Policy,
    role_id_of: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, UnknownRolePrincipal> {
    trust
        .role_principal_arns()
        .into_iter()
        .map(|arn| {
            role_id_of(arn)
                .map(|id| (arn.to_owned(), id))
                .ok_or_else(|| UnknownRolePrincipal {
                    arn: arn.to_owned(),
                })
        })
        .collect()
}

/// `role`'s trust policy as IAM shows it. A bound role principal whose role is gone, or was
/// recreated under its name, reads as the unique id it stays bound to: IAM "can no longer map
/// it back to an ARN", and showing the ARN would suggest that the role now under that name is
/// trusted, which it is not. `current_id_of` gives the id of the role an ARN names now.
pub fn displayed_trust_policy(
    role: &Role,
    current_id_of: impl Fn(&str) -> Option<String>,
) -> Cow<'_, str> {
    let stale: BTreeMap<&str, &str> = role
        .trust_principal_ids
        .iter()
        .filter(|(arn, id)| current_id_of(arn).as_deref() != Some(id.as_str()))
        .map(|(arn, id)| (arn.as_str(), id.as_str()))
        .collect();
    if stale.is_empty() {
        return Cow::Borrowed(&role.trust_policy);
    }
    // The document was validated when saved; were it unreadable now, the text as saved is the
    // honest answer.
    let Ok(mut doc) = serde_json::from_str::<serde_json::Value>(&role.trust_policy) else {
        return Cow::Borrowed(&role.trust_policy);
    };
    let replace = |v: &mut serde_json::Value| {
        if let Some(id) = v.as_str().and_then(|s| stale.get(s)) {
            *v = serde_json::Value::String((*id).to_owned());
        }
    };
    let statements = match doc.get_mut("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter_mut().collect(),
        Some(one) => vec![one],
        None => vec![],
    };
    // Only `Principal` binds (see `Policy::role_principal_arns`), so only it is rewritten.
    for aws in statements
        .into_iter()
        .filter_map(|st| st.get_mut("Principal")?.get_mut("AWS"))
    {
        match aws {
            serde_json::Value::Array(list) => list.iter_mut().for_each(&replace),
            one => replace(one),
        }
    }
    serde_json::to_string(&doc).map_or(Cow::Borrowed(&role.trust_policy), Cow::Owned)
}

/// A config role whose trust policy could not be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBindingError {
    /// The config role's name.
    pub role: String,
    /// What went wrong, for the operator.
    pub message: String,
}

/// Prepares the config roles for [`crate::ports::Store::apply_config`]: each keeps the unique
/// id the store already holds for its name (the store keeps it anyway), and its trust policy
/// is bound against the roles as they will be once the config is applied: every config role
/// (so one may trust another defined later in the file) and the API roles the config leaves in
/// place. The config is the source of truth, so this runs at every start and re-binds.
pub fn bind_config_roles(config: &mut [Role], stored: &Entities) -> Result<(), ConfigBindingError> {
    for role in config.iter_mut() {
        let key = (role.account, role.name.to_lowercase());
        if let Some(kept) = stored
            .roles
            .iter()
            .find(|s| (s.account, s.name.to_lowercase()) == key)
        {
            role.role_id.clone_from(&kept.role_id);
        }
    }
    let api_roles_kept = stored.roles.iter().filter(|s| {
        s.origin == Origin::Api
            && !config
                .iter()
                .any(|c| c.account == s.account && c.name.to_lowercase() == s.name.to_lowercase())
    });
    let after_apply: Vec<(RoleKey, String)> = config
        .iter()
        .chain(api_roles_kept)
        .map(|r| (RoleKey::of(r), r.role_id.clone()))
        .collect();
    let role_id_of = |arn: &str| {
        let key = RoleKey::parse(arn)?;
        after_apply
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, id)| id.clone())
    };
    for role in config.iter_mut() {
        let trust =
            Policy::parse(&role.trust_policy, keyless_policy::PolicyType::Trust).map_err(|e| {
                ConfigBindingError {
                    role: role.name.clone(),
                    message: format!("trust policy: {e}"),
                }
            })?;
        role.trust_principal_ids =
            bind_role_principals(&trust, role_id_of).map_err(|u| ConfigBindingError {
                role: role.name.clone(),
                message: format!(
                    "the trust policy names {}, which is not a role ({}); define that role in the \
                     config or create it through IAM first, or remove it from the trust policy",
                    u.arn,
                    u.aws_message()
                ),
            })?;
    }
    Ok(())
}

/// The config roles whose bindings name an id that a config role proposed but the store did not
/// keep, with those ids replaced by the kept ones: `(account, name lowercased, bindings)`.
///
/// Two replicas starting at once on an empty database each propose their own ids and bind
/// against them; the store keeps the first apply's ids, so the second's bindings would name
/// ids no role holds. `kept` gives the stored id of each config role by (account, name
/// lowercased), read back inside the apply's transaction.
pub fn rebind_to_kept_ids(
    config: &[Role],
    kept: &BTreeMap<(AccountId, String), String>,
) -> Vec<(AccountId, String, BTreeMap<String, String>)> {
    let replaced: BTreeMap<&str, &str> = config
        .iter()
        .filter_map(|r| {
            let stored = kept.get(&(r.account, r.name.to_lowercase()))?;
            (*stored != r.role_id).then_some((r.role_id.as_str(), stored.as_str()))
        })
        .collect();
    if replaced.is_empty() {
        return Vec::new();
    }
    config
        .iter()
        .filter(|r| {
            r.trust_principal_ids
                .values()
                .any(|id| replaced.contains_key(id.as_str()))
        })
        .map(|r| {
            let ids = r
                .trust_principal_ids
                .iter()
                .map(|(arn, id)| {
                    let id = replaced.get(id.as_str()).copied().unwrap_or(id);
                    (arn.clone(), id.to_owned())
                })
                .collect();
            (r.account, r.name.to_lowercase(), ids)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Entities;

    const TRUST_A: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/a"},"Action":"sts:AssumeRole"}]}"#;
    const TRUST_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}"#;

    fn role(name: &str, id: &str, trust: &str, origin: Origin) -> Role {
        Role {
            account: AccountId::parse("123456789012").unwrap(),
            name: name.into(),
            path: "/".into(),
            role_id: id.into(),
            trust_policy: trust.into(),
            trust_principal_ids: BTreeMap::new(),
            inline_policies: vec![],
            permissions_boundary: None,
            permissions_boundary_arn: None,
            attached_policies: vec![],
            max_session_duration: 3600,
            description: String::new(),
            tags: BTreeMap::new(),
            origin,
            created: keyless_types::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_bound_principal_whose_role_is_gone_or_recreated_shows_as_its_unique_id() {
        let trust = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:role/a","arn:aws:iam::123456789012:role/b"]},"Action":"sts:AssumeRole"},
            {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:role/a"},"NotPrincipal":{"AWS":"arn:aws:iam::123456789012:role/a"},"Action":"sts:TagSession"}]}"#;
        let mut r = role("trusting", "AROATRUSTING", trust, Origin::Api);
        r.trust_principal_ids = BTreeMap::from([
            ("arn:aws:iam::123456789012:role/a".into(), "AROAOLDA".into()),
            ("arn:aws:iam::123456789012:role/b".into(), "AROAB".into()),
        ]);
        let now = |a: &'static str| {
            move |arn: &str| match arn.rsplit('/').next() {
                Some("a") => Some(a.to_owned()),
                Some("b") => Some("AROAB".to_owned()),
                _ => None,
            }
        };
        // Every bound role is the one that was bound: the text as saved, untouched.
        assert!(matches!(
            displayed_trust_policy(&r, now("AROAOLDA")),
            Cow::Borrowed(t) if t == trust
        ));
        // `a` recreated (another id), then gone: its id shows wherever `Principal` named it.
        let shown = |s: Cow<'_, str>| serde_json::from_str::<serde_json::Value>(&s).unwrap();
        for current in [
            displayed_trust_policy(&r, now("AROANEWA")),
            displayed_trust_policy(&r, |arn: &str| {
                arn.ends_with("/b").then(|| "AROAB".to_owned())
            }),
        ] {
            let doc = shown(current);
            assert_eq!(
                doc["Statement"][0]["Principal"]["AWS"],
                serde_json::json!(["AROAOLDA", "arn:aws:iam::123456789012:role/b"])
            );
            assert_eq!(doc["Statement"][1]["Principal"]["AWS"], "AROAOLDA");
            // NotPrincipal never binds, so it reads as written.
            assert_eq!(
                doc["Statement"][1]["NotPrincipal"]["AWS"],
                "arn:aws:iam::123456789012:role/a"
            );
            assert_eq!(doc["Statement"][1]["Action"], "sts:TagSession");
        }
    }

    #[test]
    fn a_config_role_may_trust_one_defined_after_it_and_binds_its_kept_id() {
        let mut config = vec![
            role("b", "AROAFRESHB", TRUST_A, Origin::Config),
            role("A", "AROAFRESHA", TRUST_ACCOUNT, Origin::Config),
        ];
        let stored = Entities {
            roles: vec![role("a", "AROAKEPTA", TRUST_ACCOUNT, Origin::Config)],
            ..Entities::default()
        };
        bind_config_roles(&mut config, &stored).unwrap();
        assert_eq!(config[1].role_id, "AROAKEPTA");
        assert_eq!(
            config[0].trust_principal_ids,
            BTreeMap::from([(
                "arn:aws:iam::123456789012:role/a".to_owned(),
                "AROAKEPTA".to_owned()
            )])
        );
        assert!(config[1].trust_principal_ids.is_empty());
    }

    #[test]
    fn a_config_role_may_trust_an_api_role() {
        let mut config = vec![role("b", "AROAB", TRUST_A, Origin::Config)];
        let stored = Entities {
            roles: vec![role("a", "AROAAPI", TRUST_ACCOUNT, Origin::Api)],
            ..Entities::default()
        };
        bind_config_roles(&mut config, &stored).unwrap();
        assert_eq!(
            config[0].trust_principal_ids.values().collect::<Vec<_>>(),
            ["AROAAPI"]
        );
    }

    #[test]
    fn a_config_role_trusting_a_missing_role_names_both() {
        let mut config = vec![role("b", "AROAB", TRUST_A, Origin::Config)];
        // A config role removed from the config is deleted by the apply: it does not count.
        let stored = Entities {
            roles: vec![role("a", "AROAOLD", TRUST_ACCOUNT, Origin::Config)],
            ..Entities::default()
        };
        let e = bind_config_roles(&mut config, &stored).unwrap_err();
        assert_eq!(e.role, "b");
        assert!(
            e.message.contains(
                "Invalid principal in policy: \"AWS\":\"arn:aws:iam::123456789012:role/a\""
            ),
            "{}",
            e.message
        );
    }

    #[test]
    fn bindings_follow_the_ids_the_store_kept() {
        let mut a = role("a", "AROAPROPOSED", TRUST_ACCOUNT, Origin::Config);
        let mut b = role("b", "AROAB", TRUST_A, Origin::Config);
        b.trust_principal_ids = BTreeMap::from([(
            "arn:aws:iam::123456789012:role/a".to_owned(),
            "AROAPROPOSED".to_owned(),
        )]);
        let kept = BTreeMap::from([
            ((a.account, "a".to_owned()), "AROAKEPT".to_owned()),
            ((b.account, "b".to_owned()), "AROAB".to_owned()),
        ]);
        let out = rebind_to_kept_ids(&[a.clone(), b.clone()], &kept);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, "b");
        assert_eq!(out[0].2.values().collect::<Vec<_>>(), ["AROAKEPT"]);
        // Nothing to do when every proposal was kept.
        a.role_id = "AROAKEPT".into();
        b.trust_principal_ids.clear();
        assert!(rebind_to_kept_ids(&[a, b], &kept).is_empty());
    }

    #[test]
    fn a_role_arn_with_another_path_names_no_role() {
        assert_eq!(
            RoleKey::parse("arn:aws:iam::123456789012:role/team/A"),
            Some(RoleKey {
                account: AccountId::parse("123456789012").unwrap(),
                path: "/team/".into(),
                folded_name: "a".into(),
            })
        );
        assert_eq!(RoleKey::parse("arn:aws-cn:iam::123456789012:role/a"), None);
        assert_eq!(RoleKey::parse("arn:aws:iam::123456789012:user/a"), None);
    }
}
