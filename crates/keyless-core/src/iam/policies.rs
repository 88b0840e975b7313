//! Customer managed policies and their versions (at most five, one of them the default).

use std::sync::Arc;

use keyless_policy::PolicyType;
use rand::Rng;

use super::params::{Check, check_tag_rules, parse_policy, request_tags, resource_tags};
use super::{
    Cx, IamOutcome, Node, already_exists, delete_conflict, limit_exceeded, no_such_entity,
    unique_id, unmodifiable,
};
use crate::directory::CompiledManagedPolicy;
use crate::error::ApiError;
use crate::model::{ManagedPolicy, Origin, PolicyVersion};
use crate::ports::Change;
use crate::sts::params::Params;

/// Versions one managed policy may keep.
pub const MAX_VERSIONS: usize = 5;
/// Customer managed policies per account (AWS default quota).
pub const MAX_POLICIES: usize = 1_500;

fn policy_nodes(m: &ManagedPolicy, counts: (usize, usize), with_tags: bool) -> Vec<Node> {
    let mut n = vec![
        Node::leaf("PolicyName", m.name.clone()),
        Node::leaf("PolicyId", m.policy_id.clone()),
        Node::leaf("Arn", m.arn()),
        Node::leaf("Path", m.path.clone()),
        Node::leaf("DefaultVersionId", m.default_version.clone()),
        Node::leaf("AttachmentCount", counts.0.to_string()),
        Node::leaf("PermissionsBoundaryUsageCount", counts.1.to_string()),
        Node::flag("IsAttachable", true),
    ];
    if !m.description.is_empty() {
        n.push(Node::leaf("Description", m.description.clone()));
    }
    n.push(Node::date("CreateDate", m.created));
    n.push(Node::date("UpdateDate", m.updated));
    if with_tags && !m.tags.is_empty() {
        n.push(Node::tags(&m.tags));
    }
    n
}

fn version_nodes(m: &ManagedPolicy, v: &PolicyVersion, with_document: bool) -> Vec<Node> {
    let mut n = Vec::new();
    if with_document {
        n.push(Node::Document("Document", v.document.clone()));
    }
    n.push(Node::leaf("VersionId", v.version_id.clone()));
    n.push(Node::flag(
        "IsDefaultVersion",
        v.version_id == m.default_version,
    ));
    n.push(Node::date("CreateDate", v.created));
    n
}

fn arn_param(c: &mut Check, p: &Params) -> String {
    c.required_with(p, "PolicyArn", "policyArn", |c, v| {
        c.arn(v, "policyArn");
    })
}

fn version_param(c: &mut Check, p: &Params) -> String {
    let v = c
        .required(p, "VersionId", "versionId")
        .unwrap_or_default()
        .to_owned();
    if p.get("VersionId").is_some() {
        let ok = v.strip_prefix('v').is_some_and(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0')
        });
        if !ok {
            c.push(
                &v,
                "versionId",
                "Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?",
            );
        }
    }
    v
}

/// The ARN of the caller's managed policy that `arn` names, as it is stored; `arn` itself when
/// it names none. A policy is found by name ignoring case, whatever the partition says, so a
/// policy must be authorized (as resource or as `iam:PolicyARN`/`iam:PermissionsBoundary`)
/// under this ARN: a Deny on `policy/Guard*` must not be stepped around with `policy/guard`.
pub(super) fn canonical_policy_arn(cx: &Cx<'_>, arn: &str) -> String {
    cx.directory()
        .managed_policy_by_arn(arn)
        .filter(|m| m.policy.account == cx.account())
        .map_or_else(|| arn.to_owned(), |m| m.arn.clone())
}

/// Authorizes `action` on the policy (under its stored ARN when it exists, as roles are), then
/// finds it.
fn authorized_policy(
    cx: &Cx<'_>,
    action: &str,
    arn: &str,
    extra: impl FnOnce(&mut keyless_policy::Context),
) -> Result<Arc<CompiledManagedPolicy>, ApiError> {
    let found = cx
        .directory()
        .managed_policy_by_arn(arn)
        .filter(|m| m.policy.account == cx.account());
    // The lookup ignores the name's case but ARNs in policies match case-sensitively: authorize
    // on the policy's own ARN, or `…:policy/protected` would slip past a Deny on
    // `…:policy/Protected`.
    let resource = found.as_ref().map_or(arn, |m| m.arn.as_str());
    cx.authorize(action, resource, |c| {
        if let Some(m) = &found {
            resource_tags(c, &m.policy.tags);
        }
        extra(c);
    })?;
    found.ok_or_else(|| no_such_entity(format!("Policy {arn} was not found.")))
}

/// Parses a managed policy document. IAM refuses one without `"Version": "2012-10-17"` (a
/// missing Version means 2008-10-17, where `${…}` is literal text); inline policies may omit it.
fn parse_managed(doc: &str) -> Result<(), ApiError> {
    if !parse_policy(doc, PolicyType::Identity)?.supports_variables() {
        return Err(super::malformed(
            "Policy document must be version 2012-10-17 or greater.",
        ));
    }
    Ok(())
}

fn writable(m: &CompiledManagedPolicy) -> Result<ManagedPolicy, ApiError> {
    if m.policy.origin == Origin::Config {
        return Err(unmodifiable("policy", &m.policy.name));
    }
    Ok(m.policy.clone())
}

pub(super) fn create<R: Rng + ?Sized>(
    cx: &Cx<'_>,
    p: &Params,
    rng: &mut R,
) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = c.required_with(p, "PolicyName", "policyName", |c, v| {
        c.name(v, "policyName", 128);
    });
    let path = p.get("Path").unwrap_or("/").to_owned();
    c.policy_path(&path, "path");
    let doc = c.required_with(p, "PolicyDocument", "policyDocument", |c, v| {
        c.document(v, "policyDocument");
    });
    let description = p.get("Description").unwrap_or("").to_owned();
    // policyDescriptionType has a length and no pattern, unlike a role's description.
    c.len(&description, "description", 0, 1000);
    let tags = c.tags(p);
    c.finish()?;
    check_tag_rules(&tags)?;
    let arn = format!("arn:aws:iam::{}:policy{path}{name}", cx.account());
    cx.authorize("CreatePolicy", &arn, |ctx| request_tags(ctx, &tags))?;
    cx.authorize_tags_on_create("TagPolicy", &arn, &tags)?;
    if cx.directory().managed_policy(cx.account(), &name).is_some() {
        return Err(already_exists(format!(
            "A policy called {name} already exists. Duplicate names are not allowed."
        )));
    }
    let count = cx
        .directory()
        .managed_policies()
        .filter(|m| m.policy.account == cx.account())
        .count();
    if count >= MAX_POLICIES {
        return Err(limit_exceeded(format!(
            "Cannot exceed quota for PoliciesPerAccount: {MAX_POLICIES}"
        )));
    }
    parse_managed(&doc)?;
    let policy = ManagedPolicy {
        account: cx.account(),
        name,
        path,
        policy_id: unique_id("ANPA", rng),
        description,
        versions: vec![PolicyVersion {
            version_id: "v1".into(),
            document: doc,
            created: cx.now(),
        }],
        default_version: "v1".into(),
        next_version: 2,
        tags: tags.into_iter().collect(),
        origin: Origin::Api,
        created: cx.now(),
        updated: cx.now(),
    };
    let nodes = vec![Node::Group("Policy", policy_nodes(&policy, (0, 0), true))];
    Ok(IamOutcome::write_with(Change::PutPolicy(policy), nodes))
}

pub(super) fn get(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    c.finish()?;
    let m = authorized_policy(cx, "GetPolicy", &arn, |_| {})?;
    Ok(IamOutcome::result(vec![Node::Group(
        "Policy",
        policy_nodes(&m.policy, (m.attachment_count, m.boundary_count), true),
    )]))
}

pub(super) fn list(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let scope = p.get("Scope").unwrap_or("All").to_owned();
    c.one_of(&scope, "scope", &["All", "AWS", "Local"]);
    let only_attached = match p.get("OnlyAttached") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            c.push(other, "onlyAttached", "Member must be a boolean");
            false
        }
    };
    let usage = p.get("PolicyUsageFilter").map(str::to_owned);
    if let Some(u) = &usage {
        c.one_of(
            u,
            "policyUsageFilter",
            &["PermissionsPolicy", "PermissionsBoundary"],
        );
    }
    let prefix = p.get("PathPrefix").unwrap_or("/").to_owned();
    c.policy_path(&prefix, "pathPrefix");
    let page = c.page(p);
    c.finish()?;
    cx.authorize("ListPolicies", "*", |_| {})?;
    // keyless has no AWS managed policies: the AWS scope is empty.
    let items: Vec<&Arc<CompiledManagedPolicy>> = cx
        .directory()
        .managed_policies()
        .filter(|m| scope != "AWS" && m.policy.account == cx.account())
        .filter(|m| m.policy.path.starts_with(&prefix))
        .filter(|m| !only_attached || m.attachment_count > 0 || m.boundary_count > 0)
        .filter(|m| match usage.as_deref() {
            Some("PermissionsPolicy") => m.attachment_count > 0,
            Some("PermissionsBoundary") => m.boundary_count > 0,
            _ => true,
        })
        .collect();
    let (page_items, mut tail) = page.apply(items, |m| m.policy.name.to_lowercase())?;
    let mut nodes = vec![Node::list(
        "Policies",
        page_items
            .iter()
            .map(|m| policy_nodes(&m.policy, (m.attachment_count, m.boundary_count), false))
            .collect(),
    )];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}

pub(super) fn delete(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    c.finish()?;
    let m = authorized_policy(cx, "DeletePolicy", &arn, |_| {})?;
    let policy = writable(&m)?;
    if m.attachment_count > 0 || m.boundary_count > 0 {
        return Err(delete_conflict(
            "Cannot delete a policy attached to entities.",
        ));
    }
    if policy.versions.len() > 1 {
        return Err(delete_conflict(
            "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
        ));
    }
    Ok(IamOutcome::write(Change::DeletePolicy {
        account: policy.account,
        name: policy.name,
    }))
}

pub(super) fn create_version(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let doc = c.required_with(p, "PolicyDocument", "policyDocument", |c, v| {
        c.document(v, "policyDocument");
    });
    let set_default = match p.get("SetAsDefault") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            c.push(other, "setAsDefault", "Member must be a boolean");
            false
        }
    };
    c.finish()?;
    let m = authorized_policy(cx, "CreatePolicyVersion", &arn, |_| {})?;
    let mut policy = writable(&m)?;
    if policy.versions.len() >= MAX_VERSIONS {
        return Err(limit_exceeded(
            "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.",
        ));
    }
    parse_managed(&doc)?;
    let version = PolicyVersion {
        version_id: format!("v{}", policy.next_version),
        document: doc,
        created: cx.now(),
    };
    policy.next_version = policy.next_version.saturating_add(1);
    if set_default {
        policy.default_version = version.version_id.clone();
        policy.updated = cx.now();
    }
    policy.versions.push(version.clone());
    let nodes = vec![Node::Group(
        "PolicyVersion",
        version_nodes(&policy, &version, false),
    )];
    Ok(IamOutcome::write_with(Change::PutPolicy(policy), nodes))
}

fn find_version<'a>(
    m: &'a ManagedPolicy,
    arn: &str,
    version: &str,
) -> Result<&'a PolicyVersion, ApiError> {
    m.versions
        .iter()
        .find(|v| v.version_id == version)
        .ok_or_else(|| {
            no_such_entity(format!(
                "Policy {arn} version {version} does not exist or is not attachable."
            ))
        })
}

pub(super) fn get_version(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let version = version_param(&mut c, p);
    c.finish()?;
    let m = authorized_policy(cx, "GetPolicyVersion", &arn, |_| {})?;
    let v = find_version(&m.policy, &arn, &version)?;
    Ok(IamOutcome::result(vec![Node::Group(
        "PolicyVersion",
        version_nodes(&m.policy, v, true),
    )]))
}

pub(super) fn list_versions(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let page = c.page(p);
    c.finish()?;
    let m = authorized_policy(cx, "ListPolicyVersions", &arn, |_| {})?;
    // Newest first, as AWS lists them.
    let versions: Vec<&PolicyVersion> = m.policy.versions.iter().collect();
    let (items, mut tail) = page.apply(versions, |v| {
        let n: u32 = v
            .version_id
            .strip_prefix('v')
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        format!("{:010}", u32::MAX - n)
    })?;
    let mut nodes = vec![Node::list(
        "Versions",
        items
            .into_iter()
            .map(|v| version_nodes(&m.policy, v, false))
            .collect(),
    )];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}

pub(super) fn delete_version(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let version = version_param(&mut c, p);
    c.finish()?;
    let m = authorized_policy(cx, "DeletePolicyVersion", &arn, |_| {})?;
    let mut policy = writable(&m)?;
    find_version(&policy, &arn, &version)?;
    if policy.default_version == version {
        return Err(delete_conflict(
            "Cannot delete the default version of a policy.",
        ));
    }
    policy.versions.retain(|v| v.version_id != version);
    Ok(IamOutcome::write(Change::PutPolicy(policy)))
}

pub(super) fn set_default(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let version = version_param(&mut c, p);
    c.finish()?;
    let m = authorized_policy(cx, "SetDefaultPolicyVersion", &arn, |_| {})?;
    let mut policy = writable(&m)?;
    find_version(&policy, &arn, &version)?;
    policy.default_version = version;
    policy.updated = cx.now();
    Ok(IamOutcome::write(Change::PutPolicy(policy)))
}

pub(super) fn tag(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let tags = c.tags(p);
    if tags.is_empty() {
        c.push("null", "tags", "Member must not be null");
    }
    c.finish()?;
    let m = authorized_policy(cx, "TagPolicy", &arn, |c| request_tags(c, &tags))?;
    let mut policy = writable(&m)?;
    policy.tags = super::params::merge_tags(&policy.tags, &tags)?;
    Ok(IamOutcome::write(Change::PutPolicy(policy)))
}

pub(super) fn untag(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let keys = c.tag_keys(p);
    c.finish()?;
    let m = authorized_policy(cx, "UntagPolicy", &arn, |c| {
        c.insert_multi("aws:TagKeys", keys.clone());
    })?;
    let mut policy = writable(&m)?;
    policy.tags = super::params::remove_tags(&policy.tags, &keys);
    Ok(IamOutcome::write(Change::PutPolicy(policy)))
}

pub(super) fn list_tags(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let page = c.page(p);
    c.finish()?;
    let m = authorized_policy(cx, "ListPolicyTags", &arn, |_| {})?;
    let tags: Vec<(String, String)> = m
        .policy
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (items, mut tail) = page.apply(tags, |(k, _)| k.clone())?;
    let mut nodes = vec![Node::tags(&items.into_iter().collect())];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}
