//! The AWS Organizations ids of keyless's OU tree, and the condition keys they give.
//!
//! keyless places accounts in an OU tree by path (`ou = "/workloads/ci"`), but paths are not
//! what AWS policies name: `aws:PrincipalOrgID` is an organization id (`o-…`) and
//! `aws:PrincipalOrgPaths` a path of ids (`o-…/r-…/ou-…/`). keyless assigns none of its own,
//! since a policy copied from AWS would then compare against ids nobody chose. The operator
//! declares the ids their organization already has (the config's `[organization]` table); with
//! them, every principal and resource of a declared account gets the keys, and without them the
//! keys are absent, as they are at AWS for an account outside any organization.

use std::collections::BTreeMap;

use keyless_policy::Context;

/// The declared organization: its id, its root's id, and one id per OU path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    id: String,
    root: String,
    units: BTreeMap<String, String>,
}

/// The organization keys of one account's principals and resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgKeys {
    /// `o-…`.
    pub org_id: String,
    /// The account's one entry of `aws:PrincipalOrgPaths`: `o-…/r-…/ou-…/…/`, ending in `/`.
    pub path: String,
}

impl OrgKeys {
    /// `aws:PrincipalOrgID` and `aws:PrincipalOrgPaths` (multivalued, one entry).
    pub fn insert_principal(&self, context: &mut Context) {
        context.insert_single("aws:PrincipalOrgID", self.org_id.clone());
        context.insert_multi("aws:PrincipalOrgPaths", vec![self.path.clone()]);
    }

    /// `aws:ResourceOrgID` and `aws:ResourceOrgPaths` (multivalued, one entry).
    pub fn insert_resource(&self, context: &mut Context) {
        context.insert_single("aws:ResourceOrgID", self.org_id.clone());
        context.insert_multi("aws:ResourceOrgPaths", vec![self.path.clone()]);
    }
}

impl Organization {
    /// Checks the ids' shapes (AWS Organizations' patterns) and that every OU id belongs to
    /// this root, as AWS's do (`ou-<root's suffix>-…`); `units` maps OU paths (`/workloads`)
    /// to OU ids. Whether the paths are the accounts' is the config's check.
    pub fn new(
        id: String,
        root: String,
        units: BTreeMap<String, String>,
    ) -> Result<Organization, String> {
        check_org_id(&id)?;
        let root_suffix = check_root_id(&root)?;
        let mut seen = BTreeMap::new();
        for (path, ou) in &units {
            check_ou_id(ou, root_suffix)?;
            if let Some(other) = seen.insert(ou.as_str(), path.as_str()) {
                return Err(format!("OU id {ou} is given to both {other} and {path}"));
            }
        }
        Ok(Organization { id, root, units })
    }

    /// The organization id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The OU paths that have ids.
    pub fn unit_paths(&self) -> impl Iterator<Item = &str> {
        self.units.keys().map(String::as_str)
    }

    /// The keys of an account at `ou_path` (`/` for the root), or `None` when an OU on the path
    /// has no id (the config refuses that, so a store edited behind its back fails closed).
    pub fn keys_for(&self, ou_path: &str) -> Option<OrgKeys> {
        let mut path = format!("{}/{}/", self.id, self.root);
        let mut prefix = String::with_capacity(ou_path.len());
        for segment in ou_path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(segment);
            path.push_str(self.units.get(&prefix)?);
            path.push('/');
        }
        Some(OrgKeys {
            org_id: self.id.clone(),
            path,
        })
    }
}

fn lower_alnum(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `^o-[a-z0-9]{10,32}$`.
pub fn check_org_id(id: &str) -> Result<(), String> {
    match id.strip_prefix("o-") {
        Some(rest) if (10..=32).contains(&rest.len()) && lower_alnum(rest) => Ok(()),
        _ => Err(format!(
            "organization id {id:?} is not an AWS Organizations id: o- and 10 to 32 lowercase letters or digits, e.g. o-a1b2c3d4e5"
        )),
    }
}

/// `^r-[0-9a-z]{4,32}$`; returns the part after `r-`.
pub fn check_root_id(id: &str) -> Result<&str, String> {
    match id.strip_prefix("r-") {
        Some(rest) if (4..=32).contains(&rest.len()) && lower_alnum(rest) => Ok(rest),
        _ => Err(format!(
            "root id {id:?} is not an AWS Organizations root id: r- and 4 to 32 lowercase letters or digits, e.g. r-ab12"
        )),
    }
}

/// `^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$`, whose first part is the root's.
pub fn check_ou_id(id: &str, root_suffix: &str) -> Result<(), String> {
    let shape = id
        .strip_prefix("ou-")
        .and_then(|rest| rest.split_once('-'))
        .filter(|(r, u)| {
            (4..=32).contains(&r.len())
                && (8..=32).contains(&u.len())
                && lower_alnum(r)
                && lower_alnum(u)
        });
    match shape {
        Some((r, _)) if r == root_suffix => Ok(()),
        Some(_) => Err(format!(
            "OU id {id:?} is not under root r-{root_suffix}: AWS's OU ids start with ou-{root_suffix}-"
        )),
        None => Err(format!(
            "OU id {id:?} is not an AWS Organizations OU id: ou-, the root's 4 to 32 characters, -, and 8 to 32 lowercase letters or digits, e.g. ou-ab12-11111111"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org() -> Organization {
        Organization::new(
            "o-a1b2c3d4e5".into(),
            "r-ab12".into(),
            BTreeMap::from([
                ("/workloads".into(), "ou-ab12-11111111".into()),
                ("/workloads/ci".into(), "ou-ab12-22222222".into()),
            ]),
        )
        .unwrap()
    }

    #[test]
    fn paths_are_the_ids_from_the_root_down() {
        let o = org();
        assert_eq!(o.keys_for("/").unwrap().path, "o-a1b2c3d4e5/r-ab12/");
        assert_eq!(
            o.keys_for("/workloads").unwrap().path,
            "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"
        );
        let ci = o.keys_for("/workloads/ci").unwrap();
        assert_eq!(ci.org_id, "o-a1b2c3d4e5");
        assert_eq!(
            ci.path,
            "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-22222222/"
        );
        // An OU without an id gives no keys rather than a shorter, wrong path.
        assert_eq!(o.keys_for("/workloads/ci/deep"), None);
        assert_eq!(o.keys_for("/sandbox"), None);
    }

    #[test]
    fn ids_must_have_aws_shapes() {
        let units = |ou: &str| BTreeMap::from([("/w".to_owned(), ou.to_owned())]);
        let make = |id: &str, root: &str, ou: &str| {
            Organization::new(id.into(), root.into(), units(ou)).map(|_| ())
        };
        assert!(make("o-a1b2c3d4e5", "r-ab12", "ou-ab12-11111111").is_ok());
        for (id, root, ou, needle) in [
            ("o-short", "r-ab12", "ou-ab12-11111111", "organization id"),
            (
                "o-A1B2C3D4E5",
                "r-ab12",
                "ou-ab12-11111111",
                "organization id",
            ),
            (
                "x-a1b2c3d4e5",
                "r-ab12",
                "ou-ab12-11111111",
                "organization id",
            ),
            (
                &format!("o-{}", "a".repeat(33)),
                "r-ab12",
                "ou-ab12-11111111",
                "organization id",
            ),
            ("o-a1b2c3d4e5", "r-ab1", "ou-ab1-11111111", "root id"),
            ("o-a1b2c3d4e5", "r-ab_2", "ou-ab12-11111111", "root id"),
            ("o-a1b2c3d4e5", "r-ab12", "ou-ab12-1111111", "OU id"),
            ("o-a1b2c3d4e5", "r-ab12", "ou-ab12", "OU id"),
            (
                "o-a1b2c3d4e5",
                "r-ab12",
                "ou-cd34-11111111",
                "not under root r-ab12",
            ),
            ("o-a1b2c3d4e5", "r-ab12", "ou-ab12-1111111é", "OU id"),
        ] {
            let e = make(id, root, ou).unwrap_err();
            assert!(e.contains(needle), "{id} {root} {ou}: {e}");
        }
        let twice = Organization::new(
            "o-a1b2c3d4e5".into(),
            "r-ab12".into(),
            BTreeMap::from([
                ("/a".into(), "ou-ab12-11111111".into()),
                ("/b".into(), "ou-ab12-11111111".into()),
            ]),
        )
        .unwrap_err();
        assert!(twice.contains("given to both /a and /b"), "{twice}");
    }

    #[test]
    fn keys_go_in_as_aws_names_them() {
        let keys = org().keys_for("/workloads").unwrap();
        let mut c = Context::new();
        keys.insert_principal(&mut c);
        keys.insert_resource(&mut c);
        use keyless_policy::ContextValue;
        let path = "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/".to_owned();
        for who in ["Principal", "Resource"] {
            assert_eq!(
                c.get(&format!("aws:{who}OrgID")),
                Some(&ContextValue::Single("o-a1b2c3d4e5".into()))
            );
            assert_eq!(
                c.get(&format!("aws:{who}OrgPaths")),
                Some(&ContextValue::Multi(vec![path.clone()]))
            );
        }
    }
}
