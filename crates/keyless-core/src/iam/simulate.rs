//! `SimulatePrincipalPolicy` and `SimulateCustomPolicy`, evaluated by keyless-policy with the
//! guardrails of the account. Each result carries keyless's explanation in an extra
//! `Explanation` element (SDKs ignore unknown elements).

use keyless_policy::{
    Context, DecisionKind, Missing, Policy, PolicySet, PolicyType, Request, evaluate,
};

use super::params::{Check, parse_policy};
use super::{Cx, IamOutcome, Node, invalid_input, no_such_entity};
use crate::error::ApiError;
use crate::sts::params::Params;

/// Most actions, resources or policies in one simulation (IAM model limits).
const MAX_LIST: usize = 1000;

struct Inputs {
    actions: Vec<String>,
    resources: Vec<String>,
    policies: Vec<Policy>,
    boundary: Option<Policy>,
    context: Context,
    page: super::params::Page,
}

/// Inputs of the IAM simulator that keyless does not evaluate. Each can change AWS's answer
/// (a resource policy's Deny, another caller, excluded or organization policies), so a request
/// naming one is refused rather than answered as if it were absent.
const NOT_SIMULATED: &[&str] = &[
    "ResourcePolicy",
    "ResourceOwner",
    "CallerArn",
    "ResourceHandlingOption",
    "PolicyExclusionList",
    "OrderedOrganizationPolicyInputList",
];

const CONTEXT_KEY_TYPES: &[&str] = &[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

fn inputs(p: &Params, policies_required: bool) -> Result<Inputs, ApiError> {
    if let Some(name) = NOT_SIMULATED.iter().find(|n| {
        p.names()
            .any(|k| k == **n || k.strip_prefix(**n).is_some_and(|r| r.starts_with('.')))
    }) {
        return Err(invalid_input(format!(
            "keyless does not simulate {name}: the answer would ignore it. Leave it out; keyless evaluates identity policies, the permissions boundary and the account's guardrails."
        )));
    }
    let mut c = Check::default();
    let actions: Vec<String> = p
        .list("ActionNames")
        .into_iter()
        .map(str::to_owned)
        .collect();
    if actions.is_empty() {
        c.push("null", "actionNames", "Member must not be null");
    }
    for a in actions.iter().take(MAX_LIST + 1) {
        c.len(a, "actionNames.member", 3, 128);
    }
    let mut resources: Vec<String> = p
        .list("ResourceArns")
        .into_iter()
        .map(str::to_owned)
        .collect();
    for r in resources.iter().take(MAX_LIST + 1) {
        c.len(r, "resourceArns.member", 1, 2048);
    }
    if resources.is_empty() {
        resources.push("*".to_owned());
    }
    let docs = p.list("PolicyInputList");
    if policies_required && docs.is_empty() {
        c.push("null", "policyInputList", "Member must not be null");
    }
    for d in &docs {
        c.document(d, "policyInputList.member");
    }
    let boundary_docs = p.list("PermissionsBoundaryPolicyInputList");
    if boundary_docs.len() > 1 {
        c.push(
            &boundary_docs.len().to_string(),
            "permissionsBoundaryPolicyInputList",
            "Member must have length less than or equal to 1",
        );
    }
    for d in &boundary_docs {
        c.document(d, "permissionsBoundaryPolicyInputList.member");
    }
    let entries = p.struct_list("ContextEntries", &["ContextKeyName", "ContextKeyType"]);
    let mut context = Context::new();
    for (i, row) in entries.iter().enumerate() {
        let values: Vec<String> = p
            .list(&format!("ContextEntries.member.{}.ContextKeyValues", i + 1))
            .into_iter()
            .map(str::to_owned)
            .collect();
        match row.as_slice() {
            [Some(name), ty] => {
                c.len(name, "contextEntries.member.contextKeyName", 5, 256);
                let ty = ty.unwrap_or("string");
                c.one_of(
                    ty,
                    "contextEntries.member.contextKeyType",
                    CONTEXT_KEY_TYPES,
                );
                if ty.ends_with("List") {
                    context.insert_multi(name, values);
                } else if let Some(v) = values.into_iter().next() {
                    context.insert_single(name, v);
                }
            }
            _ => c.push(
                "null",
                "contextEntries.member.contextKeyName",
                "Member must not be null",
            ),
        }
    }
    if actions.len() > MAX_LIST || resources.len() > MAX_LIST || docs.len() > MAX_LIST {
        c.push(
            "list",
            "simulation",
            "Member must have length less than or equal to 1000",
        );
    }
    let page = c.page(p);
    c.finish()?;
    let mut policies = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        policies.push(
            parse_policy(d, PolicyType::Identity)?.with_label(format!("PolicyInputList.{}", i + 1)),
        );
    }
    let boundary = match boundary_docs.first() {
        Some(d) => Some(
            parse_policy(d, PolicyType::Identity)?
                .with_label("PermissionsBoundaryPolicyInputList.1"),
        ),
        None => None,
    };
    Ok(Inputs {
        actions,
        resources,
        policies,
        boundary,
        context,
        page,
    })
}

fn results(
    principal: &str,
    input: &Inputs,
    policies: &PolicySet<'_>,
) -> Result<Vec<Node>, ApiError> {
    let mut pairs = Vec::new();
    for a in &input.actions {
        for r in &input.resources {
            pairs.push((a.clone(), r.clone()));
        }
    }
    let mut index = 0usize;
    let keyed: Vec<(String, (String, String))> = pairs
        .into_iter()
        .map(|p| {
            index += 1;
            (format!("{index:08}"), p)
        })
        .collect();
    let (page, mut tail) = input.page.apply(keyed, |(k, _)| k.clone())?;
    let mut members = Vec::with_capacity(page.len());
    for (_, (action, resource)) in page {
        let request = Request {
            principal,
            principal_id: None,
            action: &action,
            resource: &resource,
            resource_account: None,
            context: &input.context,
        };
        let d = evaluate(&request, policies);
        let decided_by = d
            .statement()
            .map(|s| s.policy.to_string())
            .unwrap_or_default();
        let denied_by_guardrail = (d.kind() == DecisionKind::ExplicitlyDenied
            && decided_by.contains("guardrail"))
            || matches!(d.missing(), Some(Missing::Guardrail(_)));
        let denied_by_boundary = (d.kind() == DecisionKind::ExplicitlyDenied
            && decided_by.contains("ermissions boundary"))
            || matches!(d.missing(), Some(Missing::Boundary));
        let decision = match d.kind() {
            DecisionKind::Allowed => "allowed",
            DecisionKind::ExplicitlyDenied => "explicitDeny",
            DecisionKind::ImplicitlyDenied => "implicitDeny",
        };
        let mut m = vec![
            Node::leaf("EvalActionName", action.clone()),
            Node::leaf("EvalResourceName", resource.clone()),
            Node::leaf("EvalDecision", decision),
            Node::list(
                "MatchedStatements",
                d.statement()
                    .map(|s| {
                        vec![
                            Node::leaf("SourcePolicyId", s.policy.to_string()),
                            Node::leaf("SourcePolicyType", source_policy_type(&s.policy)),
                        ]
                    })
                    .into_iter()
                    .collect(),
            ),
            Node::Group("MissingContextValues", vec![]),
            Node::Group(
                "OrganizationsDecisionDetail",
                vec![Node::flag("AllowedByOrganizations", !denied_by_guardrail)],
            ),
        ];
        if policies.boundary.is_some() {
            m.push(Node::Group(
                "PermissionsBoundaryDecisionDetail",
                vec![Node::flag(
                    "AllowedByPermissionsBoundary",
                    !denied_by_boundary,
                )],
            ));
        }
        m.push(Node::leaf("Explanation", d.explanation()));
        members.push(m);
    }
    let mut nodes = vec![Node::list("EvaluationResults", members)];
    nodes.append(&mut tail);
    Ok(nodes)
}

/// AWS's `SourcePolicyType` for a policy label set by the directory.
fn source_policy_type(label: &str) -> &'static str {
    if label.starts_with("inline policy") {
        "role"
    } else if label.starts_with("managed policy") {
        "user-managed"
    } else {
        "none"
    }
}

pub(super) fn principal(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let source = c
        .required(p, "PolicySourceArn", "policySourceArn")
        .unwrap_or_default()
        .to_owned();
    if p.get("PolicySourceArn").is_some() {
        c.arn(&source, "policySourceArn");
    }
    c.finish()?;
    let input = inputs(p, false)?;
    let found = cx
        .directory()
        .role_by_arn(&source)
        .filter(|r| r.role.account == cx.account());
    // The lookup ignores the name's case; authorize on the role's own ARN, as for every other
    // call on a role.
    let resource = found.as_ref().map_or(source.as_str(), |r| r.arn.as_str());
    cx.authorize("SimulatePrincipalPolicy", resource, |c| {
        if let Some(r) = &found {
            super::params::role_resource_tags(c, &r.role.tags);
        }
    })?;
    if !source.contains(":role/") {
        return Err(invalid_input(
            "PolicySourceArn must be a role ARN: keyless has no IAM users or groups.",
        ));
    }
    let role = found
        .ok_or_else(|| no_such_entity(format!("The role with ARN {source} cannot be found.")))?;
    let levels = cx.directory().guardrail_levels(role.role.account);
    let mut identity = role.identity_policies();
    identity.extend(input.policies.iter());
    let set = PolicySet {
        guardrails: &levels,
        resource_policy: None,
        identity: &identity,
        boundary: input.boundary.as_ref().or(role.boundary.as_ref()),
        session: None,
    };
    Ok(IamOutcome::result(results(&role.arn, &input, &set)?))
}

pub(super) fn custom(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let input = inputs(p, true)?;
    cx.authorize("SimulateCustomPolicy", "*", |_| {})?;
    let levels = cx.directory().guardrail_levels(cx.account());
    let identity: Vec<&Policy> = input.policies.iter().collect();
    let set = PolicySet {
        guardrails: &levels,
        resource_policy: None,
        identity: &identity,
        boundary: input.boundary.as_ref(),
        session: None,
    };
    let principal = format!("arn:aws:iam::{}:role/simulated", cx.account());
    Ok(IamOutcome::result(results(&principal, &input, &set)?))
}
