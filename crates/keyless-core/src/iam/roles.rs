//! Roles: create, read, update, delete; trust policies (validated), inline policies, attached
//! managed policies, permissions boundaries and tags.

use std::collections::BTreeMap;
use std::sync::Arc;

use keyless_policy::{ParseErrorKind, Policy, PolicyType, Severity, policy_size, validate};
use rand::Rng;

use super::params::{
    Check, check_tag_rules, merge_tags, parse_policy, remove_tags, request_tags, role_resource_tags,
};
use super::policies::canonical_policy_arn;
use super::{
    ACKNOWLEDGE_RISK_TAG, AcknowledgedRisk, Cx, IamOutcome, Node, already_exists, delete_conflict,
    limit_exceeded, malformed, no_such_entity, unique_id, unmodifiable,
};
use crate::directory::{CompiledRole, Directory};
use crate::error::ApiError;
use crate::model::{InlinePolicy, Origin, Role};
use crate::ports::Change;
use crate::sts::params::Params;
use crate::trust_binding::{bind_role_principals, displayed_trust_policy};

/// Roles per account (AWS's default quota is 1,000, adjustable to 5,000).
pub const MAX_ROLES: usize = 5_000;
/// Managed policies attached to one role (AWS default quota).
pub const MAX_ATTACHED: usize = 10;
/// Total size of a role's inline policies, whitespace not counted.
pub const MAX_INLINE_TOTAL: usize = keyless_policy::ROLE_INLINE_POLICIES_MAX_SIZE;

fn role_arn(cx: &Cx<'_>, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{}:role{path}{name}", cx.account())
}

/// A role's members; `full` for GetRole/CreateRole/UpdateRoleDescription. ListRoles leaves out
/// the permissions boundary and the tags, as AWS documents for its resource-listing calls.
pub(super) fn role_nodes(r: &Role, full: bool, directory: &Directory) -> Vec<Node> {
    let trust = displayed_trust_policy(r, |arn| {
        directory
            .role_by_arn(arn)
            .map(|now| now.role.role_id.clone())
    });
    let mut n = vec![
        Node::leaf("Path", r.path.clone()),
        Node::leaf("RoleName", r.name.clone()),
        Node::leaf("RoleId", r.role_id.clone()),
        Node::leaf("Arn", r.arn()),
        Node::date("CreateDate", r.created),
        Node::Document("AssumeRolePolicyDocument", trust.into_owned()),
    ];
    if !r.description.is_empty() {
        n.push(Node::leaf("Description", r.description.clone()));
    }
    n.push(Node::leaf(
        "MaxSessionDuration",
        r.max_session_duration.to_string(),
    ));
    if let Some(arn) = r.permissions_boundary_arn.as_ref().filter(|_| full) {
        n.push(Node::Group(
            "PermissionsBoundary",
            vec![
                Node::leaf("PermissionsBoundaryType", "Policy"),
                Node::leaf("PermissionsBoundaryArn", arn.clone()),
            ],
        ));
    }
    if full && !r.tags.is_empty() {
        n.push(Node::tags(&r.tags));
    }
    n
}

/// Validates a trust policy: ERROR findings and duplicate keys are `MalformedPolicyDocument`;
/// each SECURITY_WARNING is too unless `acknowledged` names its code.
pub(super) fn check_trust(
    doc: &str,
    acknowledged: &[&str],
    role_arn: &str,
) -> Result<Vec<AcknowledgedRisk>, ApiError> {
    parse_policy(doc, PolicyType::Trust)?;
    let findings = validate(doc, PolicyType::Trust);
    if let Some(f) = findings.iter().find(|f| f.severity == Severity::Error) {
        return Err(malformed(f.message.clone()));
    }
    let mut out = Vec::new();
    for f in findings
        .iter()
        .filter(|f| f.severity == Severity::SecurityWarning)
    {
        if !acknowledged.contains(&f.code.as_str()) {
            return Err(malformed(format!(
                "The trust policy has the security warning {} at {}: {}. If this is intended, add the tag {ACKNOWLEDGE_RISK_TAG}={} to the role.",
                f.code, f.path, f.message, f.code
            )));
        }
        out.push(AcknowledgedRisk {
            role_arn: role_arn.to_owned(),
            code: f.code.clone(),
            message: f.message.clone(),
        });
    }
    Ok(out)
}

/// Binds the trust policy's role principals to the unique ids of the roles they name now, as
/// IAM does when a trust policy is saved; a role principal that names no role is
/// `MalformedPolicyDocument`, and nothing is saved.
fn bind_trust(cx: &Cx<'_>, doc: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let trust = parse_policy(doc, PolicyType::Trust)?;
    bind_role_principals(&trust, |arn| {
        cx.directory()
            .role_by_arn(arn)
            .map(|r| r.role.role_id.clone())
    })
    .map_err(|unknown| malformed(unknown.aws_message()))
}

/// The codes the acknowledgement tag names. Only the exact key counts: tag keys are unique
/// ignoring case, but a guardrail denying the key with `StringEquals aws:TagKeys` compares
/// case-sensitively, and `Keyless:Acknowledge-Risk` must not acknowledge what it cannot deny.
fn acknowledged_codes<'a>(tags: impl Iterator<Item = (&'a String, &'a String)>) -> Vec<&'a str> {
    tags.filter(|(k, _)| k.as_str() == ACKNOWLEDGE_RISK_TAG)
        .flat_map(|(_, v)| v.split_whitespace())
        .collect()
}

/// The calls on an existing role whose `iam:PermissionsBoundary` is the role's current boundary,
/// as on AWS (CreateRole and PutRolePermissionsBoundary set it to the requested one). Guardrails
/// keeping an organization's boundary in place, and delegated administrators limited to the
/// roles under a boundary, read it.
const BOUNDARY_KEYED: &[&str] = &[
    "PutRolePolicy",
    "DeleteRolePolicy",
    "AttachRolePolicy",
    "DetachRolePolicy",
    "DeleteRolePermissionsBoundary",
];

/// Finds the role named by `RoleName` after authorizing `action` on it (AWS authorizes before
/// saying whether the role exists).
fn authorized_role(
    cx: &Cx<'_>,
    action: &str,
    name: &str,
    extra: impl FnOnce(&mut keyless_policy::Context),
) -> Result<Arc<CompiledRole>, ApiError> {
    let found = cx.directory().role(cx.account(), name);
    let arn = found
        .as_ref()
        .map_or_else(|| role_arn(cx, "/", name), |r| r.arn.clone());
    cx.authorize(action, &arn, |c| {
        if let Some(r) = &found {
            role_resource_tags(c, &r.role.tags);
            if let Some(b) = &r.role.permissions_boundary_arn
                && BOUNDARY_KEYED.contains(&action)
            {
                c.insert_single("iam:PermissionsBoundary", b.clone());
            }
        }
        extra(c);
    })?;
    found.ok_or_else(|| no_such_entity(format!("The role with name {name} cannot be found.")))
}

fn writable(r: &CompiledRole) -> Result<Role, ApiError> {
    if r.role.origin == Origin::Config {
        return Err(unmodifiable("role", &r.role.name));
    }
    Ok(r.role.clone())
}

fn role_name(c: &mut Check, p: &Params) -> String {
    c.required_with(p, "RoleName", "roleName", |c, v| {
        c.name(v, "roleName", 64);
    })
}

/// A boundary ARN must name a managed policy of the caller's account.
fn boundary_policy(cx: &Cx<'_>, arn: &str) -> Result<String, ApiError> {
    let p = cx
        .directory()
        .managed_policy_by_arn(arn)
        .filter(|p| p.policy.account == cx.account())
        .ok_or_else(|| {
            no_such_entity(format!(
                "Scope ARN: {arn} does not exist or is not attachable."
            ))
        })?;
    Ok(p.arn.clone())
}

pub(super) fn create<R: Rng + ?Sized>(
    cx: &Cx<'_>,
    p: &Params,
    rng: &mut R,
) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let path = p.get("Path").unwrap_or("/").to_owned();
    c.path(&path, "path");
    let trust = c.required_with(
        p,
        "AssumeRolePolicyDocument",
        "assumeRolePolicyDocument",
        |c, v| {
            c.document(v, "assumeRolePolicyDocument");
        },
    );
    let description = p.get("Description").unwrap_or("").to_owned();
    c.description(&description, "description");
    let max = p
        .get("MaxSessionDuration")
        .map(|v| c.int(v, "maxSessionDuration", 3600, 43200));
    let boundary = p.get("PermissionsBoundary").map(str::to_owned);
    if let Some(b) = &boundary {
        c.arn(b, "permissionsBoundary");
    }
    let tags = c.tags(p);
    c.finish()?;
    check_tag_rules(&tags)?;
    let arn = role_arn(cx, &path, &name);
    cx.authorize("CreateRole", &arn, |ctx| {
        request_tags(ctx, &tags);
        if let Some(b) = &boundary {
            ctx.insert_single("iam:PermissionsBoundary", canonical_policy_arn(cx, b));
        }
    })?;
    cx.authorize_tags_on_create("TagRole", &arn, &tags)?;
    if cx.directory().role(cx.account(), &name).is_some() {
        return Err(already_exists(format!(
            "Role with name {name} already exists."
        )));
    }
    let count = cx
        .directory()
        .roles()
        .filter(|r| r.role.account == cx.account())
        .count();
    if count >= MAX_ROLES {
        return Err(limit_exceeded(format!(
            "Cannot exceed quota for RolesPerAccount: {MAX_ROLES}"
        )));
    }
    let boundary_arn = boundary.map(|b| boundary_policy(cx, &b)).transpose()?;
    let acknowledged = check_trust(
        &trust,
        &acknowledged_codes(tags.iter().map(|(k, v)| (k, v))),
        &arn,
    )?;
    let trust_principal_ids = bind_trust(cx, &trust)?;
    let role = Role {
        account: cx.account(),
        name,
        path,
        role_id: unique_id("AROA", rng),
        trust_policy: trust,
        trust_principal_ids,
        inline_policies: Vec::new(),
        permissions_boundary: None,
        permissions_boundary_arn: boundary_arn,
        attached_policies: Vec::new(),
        max_session_duration: max
            .flatten()
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(3600),
        description,
        tags: tags.into_iter().collect(),
        origin: Origin::Api,
        created: cx.now(),
    };
    let nodes = vec![Node::Group("Role", role_nodes(&role, true, cx.directory()))];
    let mut out = IamOutcome::write_with(Change::PutRole(role), nodes);
    out.acknowledged = acknowledged;
    Ok(out)
}

pub(super) fn get(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    c.finish()?;
    let r = authorized_role(cx, "GetRole", &name, |_| {})?;
    let mut nodes = role_nodes(&r.role, true, cx.directory());
    // Empty until a session of this role (this very role: by unique id) is issued, as in IAM.
    let last_used = cx
        .env
        .role_usage
        .last_used(&r.role.role_id)
        .map_or_else(Vec::new, |at| {
            vec![
                Node::date("LastUsedDate", at),
                Node::leaf("Region", crate::sts::REGION),
            ]
        });
    nodes.push(Node::Group("RoleLastUsed", last_used));
    Ok(IamOutcome::result(vec![Node::Group("Role", nodes)]))
}

pub(super) fn list(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let prefix = p.get("PathPrefix").unwrap_or("/").to_owned();
    c.path_prefix(&prefix, "pathPrefix");
    let page = c.page(p);
    c.finish()?;
    // ListRoles has no resource type: policies grant it on "*", as on AWS.
    cx.authorize("ListRoles", "*", |_| {})?;
    let roles: Vec<&Arc<CompiledRole>> = cx
        .directory()
        .roles()
        .filter(|r| r.role.account == cx.account() && r.role.path.starts_with(&prefix))
        .collect();
    let (items, mut tail) = page.apply(roles, |r| r.role.name.to_lowercase())?;
    let mut nodes = vec![Node::list(
        "Roles",
        items
            .iter()
            .map(|r| role_nodes(&r.role, false, cx.directory()))
            .collect(),
    )];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}

pub(super) fn update(
    cx: &Cx<'_>,
    p: &Params,
    description_only: bool,
) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let description = p.get("Description").map(str::to_owned);
    if let Some(d) = &description {
        c.description(d, "description");
    } else if description_only {
        c.required(p, "Description", "description");
    }
    let max = if description_only {
        None
    } else {
        p.get("MaxSessionDuration")
            .map(|v| c.int(v, "maxSessionDuration", 3600, 43200))
    };
    c.finish()?;
    let action = if description_only {
        "UpdateRoleDescription"
    } else {
        "UpdateRole"
    };
    let r = authorized_role(cx, action, &name, |_| {})?;
    let mut role = writable(&r)?;
    if let Some(d) = description {
        role.description = d;
    }
    if let Some(m) = max.flatten().and_then(|m| u32::try_from(m).ok()) {
        role.max_session_duration = m;
    }
    if description_only {
        let nodes = vec![Node::Group("Role", role_nodes(&role, true, cx.directory()))];
        return Ok(IamOutcome::write_with(Change::PutRole(role), nodes));
    }
    Ok(IamOutcome {
        result: Some(vec![]),
        change: Some(Change::PutRole(role)),
        acknowledged: vec![],
    })
}

pub(super) fn delete(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    c.finish()?;
    let r = authorized_role(cx, "DeleteRole", &name, |_| {})?;
    let role = writable(&r)?;
    if !role.inline_policies.is_empty() {
        return Err(delete_conflict(
            "Cannot delete entity, must delete policies first.",
        ));
    }
    if !role.attached_policies.is_empty() {
        return Err(delete_conflict(
            "Cannot delete entity, must detach all policies first.",
        ));
    }
    Ok(IamOutcome::write(Change::DeleteRole {
        account: role.account,
        name: role.name,
    }))
}

pub(super) fn update_trust(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let doc = c.required_with(p, "PolicyDocument", "policyDocument", |c, v| {
        c.document(v, "policyDocument");
    });
    c.finish()?;
    let r = authorized_role(cx, "UpdateAssumeRolePolicy", &name, |_| {})?;
    let mut role = writable(&r)?;
    // UpdateAssumeRolePolicy has no Tags parameter: the acknowledgement is the role's tag.
    let acknowledged = check_trust(&doc, &acknowledged_codes(role.tags.iter()), &r.arn)?;
    role.trust_principal_ids = bind_trust(cx, &doc)?;
    role.trust_policy = doc;
    let mut out = IamOutcome::write(Change::PutRole(role));
    out.acknowledged = acknowledged;
    Ok(out)
}

fn policy_name(c: &mut Check, p: &Params) -> String {
    c.required_with(p, "PolicyName", "policyName", |c, v| {
        c.name(v, "policyName", 128);
    })
}

pub(super) fn put_inline(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let policy = policy_name(&mut c, p);
    let doc = c.required_with(p, "PolicyDocument", "policyDocument", |c, v| {
        c.document(v, "policyDocument");
    });
    c.finish()?;
    let r = authorized_role(cx, "PutRolePolicy", &name, |_| {})?;
    let mut role = writable(&r)?;
    let too_large = |role: &Role| {
        limit_exceeded(format!(
            "Maximum policy size of {MAX_INLINE_TOTAL} bytes exceeded for role {}",
            role.name
        ))
    };
    // The role's inline policies share one quota, so one of them alone may pass the managed
    // policy's 6,144 characters.
    match Policy::parse_within(&doc, PolicyType::Identity, MAX_INLINE_TOTAL) {
        Ok(_) => {}
        Err(e) if e.kind() == ParseErrorKind::TooLarge => return Err(too_large(&role)),
        Err(e) => return Err(malformed(e.aws_message().to_owned())),
    }
    role.inline_policies.retain(|i| i.name != policy);
    role.inline_policies.push(InlinePolicy {
        name: policy,
        document: doc,
    });
    role.inline_policies.sort_by(|a, b| a.name.cmp(&b.name));
    let total: usize = role
        .inline_policies
        .iter()
        .map(|i| policy_size(&i.document))
        .sum();
    if total > MAX_INLINE_TOTAL {
        return Err(too_large(&role));
    }
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn get_inline(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let policy = policy_name(&mut c, p);
    c.finish()?;
    let r = authorized_role(cx, "GetRolePolicy", &name, |_| {})?;
    let found = r
        .role
        .inline_policies
        .iter()
        .find(|i| i.name == policy)
        .ok_or_else(|| {
            no_such_entity(format!(
                "The role policy with name {policy} cannot be found."
            ))
        })?;
    Ok(IamOutcome::result(vec![
        Node::leaf("RoleName", r.role.name.clone()),
        Node::leaf("PolicyName", found.name.clone()),
        Node::Document("PolicyDocument", found.document.clone()),
    ]))
}

pub(super) fn delete_inline(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let policy = policy_name(&mut c, p);
    c.finish()?;
    let r = authorized_role(cx, "DeleteRolePolicy", &name, |_| {})?;
    let mut role = writable(&r)?;
    let before = role.inline_policies.len();
    role.inline_policies.retain(|i| i.name != policy);
    if role.inline_policies.len() == before {
        return Err(no_such_entity(format!(
            "The role policy with name {policy} cannot be found."
        )));
    }
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn list_inline(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let page = c.page(p);
    c.finish()?;
    let r = authorized_role(cx, "ListRolePolicies", &name, |_| {})?;
    let names: Vec<String> = r
        .role
        .inline_policies
        .iter()
        .map(|i| i.name.clone())
        .collect();
    let (items, mut tail) = page.apply(names, Clone::clone)?;
    let mut nodes = vec![Node::strings("PolicyNames", items.iter())];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}

fn policy_arn_param(c: &mut Check, p: &Params, name: &str, field: &str) -> String {
    let v = c.required(p, name, field).unwrap_or_default().to_owned();
    if p.get(name).is_some() {
        c.arn(&v, field);
    }
    v
}

pub(super) fn attach(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let arn = policy_arn_param(&mut c, p, "PolicyArn", "policyArn");
    c.finish()?;
    let r = authorized_role(cx, "AttachRolePolicy", &name, |ctx| {
        ctx.insert_single("iam:PolicyARN", canonical_policy_arn(cx, &arn));
    })?;
    let mut role = writable(&r)?;
    let policy = cx
        .directory()
        .managed_policy_by_arn(&arn)
        .filter(|m| m.policy.account == cx.account())
        .ok_or_else(|| {
            no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
        })?;
    if role.attached_policies.contains(&policy.arn) {
        return Ok(IamOutcome::default());
    }
    if role.attached_policies.len() >= MAX_ATTACHED {
        return Err(limit_exceeded(format!(
            "Cannot exceed quota for PoliciesPerRole: {MAX_ATTACHED}"
        )));
    }
    role.attached_policies.push(policy.arn.clone());
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn detach(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let arn = policy_arn_param(&mut c, p, "PolicyArn", "policyArn");
    c.finish()?;
    // Remove exactly the attachment authorized as `iam:PolicyARN`: matching the ARN ignoring
    // case removed `policy/Security/X` when asked for `policy/security/X`, an ARN a Deny on
    // `policy/Security/*` does not match.
    let attached = canonical_policy_arn(cx, &arn);
    let r = authorized_role(cx, "DetachRolePolicy", &name, |ctx| {
        ctx.insert_single("iam:PolicyARN", attached.clone());
    })?;
    let mut role = writable(&r)?;
    let before = role.attached_policies.len();
    role.attached_policies.retain(|a| *a != attached);
    if role.attached_policies.len() == before {
        return Err(no_such_entity(format!("Policy {arn} was not found.")));
    }
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn list_attached(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let prefix = p.get("PathPrefix").unwrap_or("/").to_owned();
    c.policy_path(&prefix, "pathPrefix");
    let page = c.page(p);
    c.finish()?;
    let r = authorized_role(cx, "ListAttachedRolePolicies", &name, |_| {})?;
    let attached: Vec<(String, String)> = r
        .role
        .attached_policies
        .iter()
        .filter_map(|a| cx.directory().managed_policy_by_arn(a))
        .filter(|m| m.policy.path.starts_with(&prefix))
        .map(|m| (m.policy.name.clone(), m.arn.clone()))
        .collect();
    let (items, mut tail) = page.apply(attached, |(n, _)| n.to_lowercase())?;
    let mut nodes = vec![Node::list(
        "AttachedPolicies",
        items
            .into_iter()
            .map(|(n, a)| vec![Node::leaf("PolicyName", n), Node::leaf("PolicyArn", a)])
            .collect(),
    )];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}

pub(super) fn put_boundary(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let arn = policy_arn_param(&mut c, p, "PermissionsBoundary", "permissionsBoundary");
    c.finish()?;
    let r = authorized_role(cx, "PutRolePermissionsBoundary", &name, |ctx| {
        ctx.insert_single("iam:PermissionsBoundary", canonical_policy_arn(cx, &arn));
    })?;
    let mut role = writable(&r)?;
    role.permissions_boundary_arn = Some(boundary_policy(cx, &arn)?);
    role.permissions_boundary = None;
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn delete_boundary(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    c.finish()?;
    let r = authorized_role(cx, "DeleteRolePermissionsBoundary", &name, |_| {})?;
    let mut role = writable(&r)?;
    if role.permissions_boundary_arn.is_none() {
        return Ok(IamOutcome::default());
    }
    role.permissions_boundary_arn = None;
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn tag(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let tags = c.tags(p);
    if tags.is_empty() {
        c.push("null", "tags", "Member must not be null");
    }
    c.finish()?;
    let r = authorized_role(cx, "TagRole", &name, |ctx| request_tags(ctx, &tags))?;
    let mut role = writable(&r)?;
    role.tags = merge_tags(&role.tags, &tags)?;
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn untag(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let keys = c.tag_keys(p);
    c.finish()?;
    let r = authorized_role(cx, "UntagRole", &name, |ctx| {
        ctx.insert_multi("aws:TagKeys", keys.clone());
    })?;
    let mut role = writable(&r)?;
    role.tags = remove_tags(&role.tags, &keys);
    Ok(IamOutcome::write(Change::PutRole(role)))
}

pub(super) fn list_tags(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let name = role_name(&mut c, p);
    let page = c.page(p);
    c.finish()?;
    let r = authorized_role(cx, "ListRoleTags", &name, |_| {})?;
    let tags: Vec<(String, String)> = r
        .role
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (items, mut tail) = page.apply(tags, |(k, _)| k.clone())?;
    let mut nodes = vec![Node::tags(&items.into_iter().collect())];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}
