//! Evaluation cases in the JSON format of `shared/vectors/policy/README.md` (also the input of
//! `keyless policy simulate --case FILE`).

use crate::context::Context;
use crate::eval::{Decision, DecisionKind, PolicySet, Request, evaluate};
use crate::json::{self, Node, Val, child_idx, child_key};
use crate::policy::{Policy, PolicyType};

/// Largest case file accepted (bytes).
pub const MAX_CASE_FILE: usize = 4 * 1024 * 1024;

/// A malformed case or policy, with its location in the case file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message} (at {path}, line {line}, column {column})", id.as_ref().map(|i| format!("case {i}: ")).unwrap_or_default())]
pub struct CaseError {
    /// The case id, when it could be read.
    pub id: Option<String>,
    /// What is wrong.
    pub message: String,
    /// JSON path in the case file.
    pub path: String,
    /// 1-based line in the case file.
    pub line: u32,
    /// 1-based column in the case file.
    pub column: u32,
}

/// One evaluation case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Identifier.
    pub id: String,
    /// Description.
    pub name: Option<String>,
    /// Expected decision, if given.
    pub expect: Option<DecisionKind>,
    /// Principal ARN.
    pub principal: String,
    /// Action.
    pub action: String,
    /// Resource.
    pub resource: String,
    /// Resource account.
    pub resource_account: String,
    /// Context.
    pub context: Context,
    /// Identity policies.
    pub identity: Vec<Policy>,
    /// Resource (or trust) policy.
    pub resource_policy: Option<Policy>,
    /// Permissions boundary.
    pub boundary: Option<Policy>,
    /// Session policy.
    pub session: Option<Policy>,
    /// Guardrail levels, root first.
    pub scps: Vec<Vec<Policy>>,
}

impl Case {
    /// Evaluates the case.
    pub fn evaluate(&self) -> Decision {
        let identity: Vec<&Policy> = self.identity.iter().collect();
        let scps: Vec<Vec<&Policy>> = self.scps.iter().map(|l| l.iter().collect()).collect();
        let req = Request {
            principal: &self.principal,
            principal_id: None,
            action: &self.action,
            resource: &self.resource,
            resource_account: Some(&self.resource_account),
            context: &self.context,
        };
        let set = PolicySet {
            guardrails: &scps,
            resource_policy: self.resource_policy.as_ref(),
            identity: &identity,
            boundary: self.boundary.as_ref(),
            session: self.session.as_ref(),
        };
        evaluate(&req, &set)
    }
}

struct Ctx<'a> {
    src: &'a str,
    id: Option<String>,
}

impl Ctx<'_> {
    fn err(&self, message: impl Into<String>, path: &str, off: usize) -> CaseError {
        let (line, column) = json::line_col(self.src, off);
        CaseError {
            id: self.id.clone(),
            message: message.into(),
            path: path.into(),
            line,
            column,
        }
    }

    fn string(&self, n: &Node, path: &str) -> Result<String, CaseError> {
        match &n.v {
            Val::Str(s) => Ok(s.clone()),
            other => Err(self.err(
                format!("expected a string, found {}", other.type_name()),
                path,
                n.off,
            )),
        }
    }

    fn policy(
        &self,
        n: &Node,
        path: &str,
        ty: PolicyType,
        label: String,
    ) -> Result<Policy, CaseError> {
        if !matches!(n.v, Val::Obj(_)) {
            return Err(self.err(
                format!(
                    "expected a policy document (an object), found {}",
                    n.v.type_name()
                ),
                path,
                n.off,
            ));
        }
        let text = self.src.get(n.off..n.end).unwrap_or("");
        match Policy::parse(text, ty) {
            Ok(p) => Ok(p.with_label(label)),
            Err(e) => {
                let sub = e.path().strip_prefix('$').unwrap_or("");
                Err(self.err(
                    format!("invalid {ty} policy: {}", e.message()),
                    &format!("{path}{sub}"),
                    n.off + e.offset(),
                ))
            }
        }
    }
}

fn case(src: &str, n: &Node, path: &str) -> Result<Case, CaseError> {
    let mut cx = Ctx { src, id: None };
    let Val::Obj(members) = &n.v else {
        return Err(cx.err(
            format!("a case must be an object, found {}", n.v.type_name()),
            path,
            n.off,
        ));
    };
    let get = |k: &str| members.iter().find(|(mk, _, _)| mk == k).map(|(_, _, v)| v);
    if let Some(v) = get("id") {
        cx.id = Some(cx.string(v, &child_key(path, "id"))?);
    }
    for (i, (k, koff, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(p, _, _)| p == k) {
            return Err(cx.err(
                format!("duplicate key \"{k}\"; each key may appear only once in a case"),
                path,
                *koff,
            ));
        }
        if !matches!(
            k.as_str(),
            "id" | "name"
                | "source"
                | "action"
                | "resource"
                | "principal"
                | "resourceAccount"
                | "context"
                | "identity"
                | "resourcePolicy"
                | "boundary"
                | "session"
                | "scps"
                | "expect"
        ) {
            return Err(cx.err(
                format!("unknown case field `{k}`"),
                &child_key(path, k),
                *koff,
            ));
        }
    }
    let req = |k: &str| -> Result<String, CaseError> {
        match get(k) {
            Some(v) => cx.string(v, &child_key(path, k)),
            None => Err(cx.err(format!("the case has no `{k}`"), path, n.off)),
        }
    };
    let opt = |k: &str| -> Result<Option<String>, CaseError> {
        get(k)
            .map(|v| cx.string(v, &child_key(path, k)))
            .transpose()
    };
    let id = cx.id.clone().unwrap_or_else(|| path.to_string());
    let action = req("action")?;
    let resource = req("resource")?;
    let principal =
        opt("principal")?.unwrap_or_else(|| "arn:aws:iam::123456789012:user/alice".into());
    let resource_account = opt("resourceAccount")?.unwrap_or_else(|| "123456789012".into());
    let expect = match get("expect") {
        None => None,
        Some(v) => Some(match cx.string(v, &child_key(path, "expect"))?.as_str() {
            "Allowed" => DecisionKind::Allowed,
            "ImplicitlyDenied" => DecisionKind::ImplicitlyDenied,
            "ExplicitlyDenied" => DecisionKind::ExplicitlyDenied,
            other => {
                return Err(cx.err(
                    format!(
                        "expect `{other}` must be Allowed, ImplicitlyDenied or ExplicitlyDenied"
                    ),
                    &child_key(path, "expect"),
                    v.off,
                ));
            }
        }),
    };
    let mut context = Context::new();
    if let Some(c) = get("context") {
        let cp = child_key(path, "context");
        let Val::Obj(keys) = &c.v else {
            return Err(cx.err(
                format!("context must be an object, found {}", c.v.type_name()),
                &cp,
                c.off,
            ));
        };
        for (i, (k, koff, v)) in keys.iter().enumerate() {
            let kp = child_key(&cp, k);
            if keys[..i].iter().any(|(p, _, _)| p.eq_ignore_ascii_case(k)) {
                return Err(cx.err(
                    format!("duplicate context key \"{k}\" (key names are case-insensitive)"),
                    &cp,
                    *koff,
                ));
            }
            match &v.v {
                Val::Str(s) => context.insert_single(k, s.clone()),
                Val::Arr(items) => {
                    let vs = items
                        .iter()
                        .enumerate()
                        .map(|(i, it)| cx.string(it, &child_idx(&kp, i)))
                        .collect::<Result<Vec<_>, _>>()?;
                    context.insert_multi(k, vs);
                }
                other => {
                    return Err(cx.err(
                        format!(
                            "a context value must be a string or an array of strings, found {}",
                            other.type_name()
                        ),
                        &kp,
                        v.off,
                    ));
                }
            }
        }
    }
    let mut identity = Vec::new();
    if let Some(v) = get("identity") {
        let ip = child_key(path, "identity");
        let Val::Arr(items) = &v.v else {
            return Err(cx.err(
                format!(
                    "identity must be an array of policy documents, found {}",
                    v.v.type_name()
                ),
                &ip,
                v.off,
            ));
        };
        let many = items.len() > 1;
        for (i, it) in items.iter().enumerate() {
            let label = if many {
                format!("identity policy #{}", i + 1)
            } else {
                "the identity policy".into()
            };
            identity.push(cx.policy(it, &child_idx(&ip, i), PolicyType::Identity, label)?);
        }
    }
    let trust = action
        .get(..14)
        .is_some_and(|a| a.eq_ignore_ascii_case("sts:assumerole"));
    let resource_policy = match get("resourcePolicy") {
        Some(v) if trust => Some(cx.policy(
            v,
            &child_key(path, "resourcePolicy"),
            PolicyType::Trust,
            "the trust policy".into(),
        )?),
        Some(v) => Some(cx.policy(
            v,
            &child_key(path, "resourcePolicy"),
            PolicyType::Resource,
            "the resource policy".into(),
        )?),
        None => None,
    };
    let boundary = get("boundary")
        .map(|v| {
            cx.policy(
                v,
                &child_key(path, "boundary"),
                PolicyType::Identity,
                "the permissions boundary".into(),
            )
        })
        .transpose()?;
    let session = get("session")
        .map(|v| {
            cx.policy(
                v,
                &child_key(path, "session"),
                PolicyType::Session,
                "the session policy".into(),
            )
        })
        .transpose()?;
    let mut scps = Vec::new();
    if let Some(v) = get("scps") {
        let sp = child_key(path, "scps");
        let Val::Arr(levels) = &v.v else {
            return Err(cx.err(
                "scps must be an array of levels (arrays of policy documents)",
                &sp,
                v.off,
            ));
        };
        for (l, level) in levels.iter().enumerate() {
            let lp = child_idx(&sp, l);
            let Val::Arr(ps) = &level.v else {
                return Err(cx.err(
                    "each scps level must be an array of policy documents",
                    &lp,
                    level.off,
                ));
            };
            let mut out = Vec::new();
            for (j, p) in ps.iter().enumerate() {
                out.push(cx.policy(
                    p,
                    &child_idx(&lp, j),
                    PolicyType::Guardrail,
                    format!("guardrail #{} of level {l}", j + 1),
                )?);
            }
            scps.push(out);
        }
    }
    Ok(Case {
        id,
        name: opt("name")?,
        expect,
        principal,
        action,
        resource,
        resource_account,
        context,
        identity,
        resource_policy,
        boundary,
        session,
        scps,
    })
}

/// Reads a case file holding one case object or an array of them. The outer error is for a file
/// that is not JSON at all; each case is then read on its own so one malformed case does not
/// hide the others.
pub fn parse_cases(text: &str) -> Result<Vec<Result<Case, CaseError>>, CaseError> {
    let cx = Ctx {
        src: text,
        id: None,
    };
    if text.len() > MAX_CASE_FILE {
        return Err(cx.err(
            format!("the case file is larger than {MAX_CASE_FILE} bytes"),
            "$",
            0,
        ));
    }
    // Duplicate keys are tolerated here and reported per case (and per policy, which is
    // re-parsed strictly), so one malformed case does not hide the others.
    let root = json::parse_with(text, true).map_err(|e| cx.err(e.message, &e.path, e.off))?;
    Ok(match &root.v {
        Val::Arr(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| case(text, n, &child_idx("$", i)))
            .collect(),
        _ => vec![case(text, &root, "$")],
    })
}
