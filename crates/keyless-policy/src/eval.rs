//! Evaluation of one request against a set of policies, with explanations.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use crate::context::{Context, ContextValue};
use crate::pattern::{ArnView, split_byte};
use crate::policy::{Cmp, Cond, Effect, Op, Policy, PolicyType, Principals, Qual, Statement, Vals};
use crate::values;

/// One request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Principal ARN (user, role, role session, federated user, OIDC/SAML provider) or a service
    /// principal name.
    pub principal: &'a str,
    /// The unique id (`AROA…`) of the principal's role, when the principal is a role or one of
    /// its sessions. A policy that bound a role ARN to an id ([`Policy::with_principal_ids`])
    /// grants that ARN only to a request carrying the same id; `None` carries none.
    pub principal_id: Option<&'a str>,
    /// Action, e.g. `s3:GetObject`.
    pub action: &'a str,
    /// Resource ARN or `*`.
    pub resource: &'a str,
    /// Account owning the resource; `None` = the account in the resource ARN, else the
    /// principal's account.
    pub resource_account: Option<&'a str>,
    /// Context keys.
    pub context: &'a Context,
}

/// The policies that apply to a request. Labels of the policies name them in explanations.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicySet<'a> {
    /// Guardrail levels, root first; every level needs an Allow (SCP semantics).
    pub guardrails: &'a [Vec<&'a Policy>],
    /// The resource-based policy; for `sts:AssumeRole*` the role's trust policy.
    pub resource_policy: Option<&'a Policy>,
    /// Identity policies of the principal.
    pub identity: &'a [&'a Policy],
    /// Permissions boundary of the principal.
    pub boundary: Option<&'a Policy>,
    /// Session policy of the principal's session.
    pub session: Option<&'a Policy>,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecisionKind {
    /// Allowed.
    Allowed,
    /// No statement allowed the request (or a required policy did not).
    ImplicitlyDenied,
    /// A Deny statement matched.
    ExplicitlyDenied,
}

impl DecisionKind {
    /// `Allowed`, `ImplicitlyDenied` or `ExplicitlyDenied`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Allowed => "Allowed",
            DecisionKind::ImplicitlyDenied => "ImplicitlyDenied",
            DecisionKind::ExplicitlyDenied => "ExplicitlyDenied",
        }
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement of a labelled policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// Label of the policy.
    pub policy: Arc<str>,
    /// Sid, if any.
    pub sid: Option<Arc<str>>,
    /// 0-based index within the policy.
    pub index: usize,
}

impl StatementRef {
    /// `<prefix><this statement as Display writes it>`, built without the formatting machinery
    /// (every decision's explanation starts this way).
    fn described_after(&self, prefix: &str) -> String {
        let sid = self.sid.as_deref().filter(|s| !s.is_empty());
        let mut out =
            String::with_capacity(prefix.len() + 24 + self.policy.len() + sid.map_or(0, str::len));
        out.push_str(prefix);
        match sid {
            Some(s) => {
                out.push_str("statement `");
                out.push_str(s);
                out.push_str("` of ");
            }
            None => {
                out.push_str("statement #");
                out.push_str(&self.index.to_string());
                out.push_str(" of ");
            }
        }
        out.push_str(&self.policy);
        out
    }
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(s) if !s.is_empty() => write!(f, "statement `{s}` of {}", self.policy),
            _ => write!(f, "statement #{} of {}", self.index, self.policy),
        }
    }
}

/// Why a statement did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The action was not matched.
    Action,
    /// The resource was not matched.
    Resource,
    /// The principal was not matched.
    Principal,
    /// A condition test was false.
    Condition {
        /// Operator as written, e.g. `StringLike`.
        operator: String,
        /// Key as written.
        key: String,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Action => f.write_str("Action"),
            Failure::Resource => f.write_str("Resource"),
            Failure::Principal => f.write_str("Principal"),
            Failure::Condition { operator, key } => write!(f, "{operator} {key}"),
        }
    }
}

/// The nearest statement for an implicit deny and what it failed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nearest {
    /// The statement.
    pub statement: StatementRef,
    /// What it failed on.
    pub failed: Failure,
}

/// Which policy (group) lacked an Allow for an implicit deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A guardrail level (0 = root).
    Guardrail(usize),
    /// The resource or trust policy had to allow and did not.
    ResourcePolicy,
    /// No identity policy (nor resource policy) allowed.
    Identity,
    /// The permissions boundary did not allow.
    Boundary,
    /// The session policy did not allow (or a federated user session has none).
    Session,
}

/// A decision with its explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    kind: DecisionKind,
    action: ActionText,
    statement: Option<StatementRef>,
    missing: Option<Missing>,
    nearest: Option<Nearest>,
    delegated_by: Option<StatementRef>,
    cross_account: Option<Box<str>>,
}

/// The request's action as a decision keeps it for its explanation: inline when it is short
/// (AWS action names are), so that deciding allocates nothing.
#[derive(Clone, PartialEq, Eq)]
enum ActionText {
    Inline {
        len: u8,
        buf: [u8; ActionText::INLINE],
    },
    Heap(Box<str>),
}

impl ActionText {
    const INLINE: usize = 64;

    fn new(s: &str) -> ActionText {
        match (u8::try_from(s.len()), s.len() <= Self::INLINE) {
            (Ok(len), true) => {
                let mut buf = [0u8; Self::INLINE];
                buf[..s.len()].copy_from_slice(s.as_bytes());
                ActionText::Inline { len, buf }
            }
            _ => ActionText::Heap(s.into()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // The bytes were copied from a `str` whole, so they are UTF-8.
            ActionText::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or_default()
            }
            ActionText::Heap(s) => s,
        }
    }
}

impl fmt::Display for ActionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ActionText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Decision {
    /// For an implicit deny after a resource/trust policy granted the principal's account: that
    /// statement (the grant delegates to identity policies, which did not allow).
    pub fn delegated_by(&self) -> Option<&StatementRef> {
        self.delegated_by.as_ref()
    }
    /// For a cross-account request: the resource account.
    pub fn cross_account(&self) -> Option<&str> {
        self.cross_account.as_deref()
    }
    /// The outcome.
    pub fn kind(&self) -> DecisionKind {
        self.kind
    }
    /// The deciding statement: the Deny for an explicit deny, the Allow that granted for an allow.
    pub fn statement(&self) -> Option<&StatementRef> {
        self.statement.as_ref()
    }
    /// For an implicit deny: which policy lacked an Allow.
    pub fn missing(&self) -> Option<&Missing> {
        self.missing.as_ref()
    }
    /// For an implicit deny: the nearest Allow statement and what it failed on.
    pub fn nearest(&self) -> Option<&Nearest> {
        self.nearest.as_ref()
    }
    /// Human explanation, e.g. `no statement allows sts:AssumeRoleWithWebIdentity; the nearest,
    /// statement `GitHubMain` of the trust policy, failed on StringLike
    /// token.actions.githubusercontent.com:sub`.
    pub fn explanation(&self) -> String {
        match self.kind {
            DecisionKind::Allowed => match &self.statement {
                Some(s) => s.described_after("allowed by "),
                None => format!("{} is allowed", self.action),
            },
            DecisionKind::ExplicitlyDenied => match &self.statement {
                Some(s) => s.described_after("explicitly denied by "),
                None => format!("{} is explicitly denied", self.action),
            },
            DecisionKind::ImplicitlyDenied => {
                let scope = match &self.missing {
                    Some(Missing::Guardrail(l)) => format!(" of guardrail level {l}"),
                    Some(Missing::Boundary) => " of the permissions boundary".to_string(),
                    Some(Missing::Session) => " of the session policy".to_string(),
                    Some(Missing::ResourcePolicy) | Some(Missing::Identity) | None => String::new(),
                };
                let mut s = format!("no statement{scope} allows {}", self.action);
                match (&self.nearest, &self.missing) {
                    (Some(n), _) => s.push_str(&format!("; the nearest, {}, failed on {}", n.statement, n.failed)),
                    (None, Some(Missing::ResourcePolicy)) => s.push_str("; the resource (trust) policy must allow the principal explicitly and none does"),
                    (None, Some(Missing::Session)) => s.push_str("; a session without a session policy that allows the action has no permissions"),
                    (None, _) => {}
                }
                if let Some(r) = &self.delegated_by {
                    s.push_str(&format!("; {r} names the principal's account, which only delegates to its identity policies, and none of them allows it"));
                }
                if let (Some(a), Some(Missing::Identity | Missing::Boundary | Missing::Session)) =
                    (&self.cross_account, &self.missing)
                {
                    s.push_str(&format!("; the resource is in another account ({a}), so the principal's own policies must allow it as well as the resource policy"));
                }
                s
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// What kind of principal is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Role,
    Session,
    FederatedUser,
    Root,
    Provider,
    Other,
}

struct Who<'a> {
    arn: &'a str,
    /// The unique id of the principal's role, from [`Request::principal_id`].
    id: Option<&'a str>,
    account: &'a str,
    kind: Kind,
    /// For a role session: the role name.
    role: &'a str,
    partition: &'a str,
}

fn who<'a>(p: &'a str, id: Option<&'a str>) -> Who<'a> {
    let fields = match ArnView::new(p).fields() {
        Some(&["arn", part, svc, _, acct, res]) => Some((part, svc, acct, res)),
        _ => None,
    };
    let Some((part, svc, acct, res)) = fields else {
        return Who {
            arn: p,
            id,
            account: "",
            kind: Kind::Other,
            role: "",
            partition: "",
        };
    };
    let (kind, role) = match (svc, split_byte(res, b'/')) {
        ("iam", Some(("user", _))) => (Kind::User, ""),
        ("iam", Some(("role", _))) => (Kind::Role, ""),
        ("iam", Some(("oidc-provider" | "saml-provider", _))) => (Kind::Provider, ""),
        ("iam", None) if res == "root" => (Kind::Root, ""),
        ("sts", Some(("assumed-role", rest))) => (
            Kind::Session,
            split_byte(rest, b'/').map_or(rest, |(role, _)| role),
        ),
        ("sts", Some(("federated-user", _))) => (Kind::FederatedUser, ""),
        _ => (Kind::Other, ""),
    };
    Who {
        arn: p,
        id,
        account: acct,
        kind,
        role,
        partition: part,
    }
}

/// How a resource-policy Allow named the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Grant {
    /// Names the account (root or ID): delegates to identity policies.
    Account,
    /// `*`: no identity policy needed; boundary and session policy still apply.
    Wildcard,
    /// Names the role of a session: boundary and session policy still apply.
    Role,
    /// Names the IAM user, session, federated user, provider or service exactly.
    Direct,
}

/// The role ARNs a policy bound to unique ids, consulted by the principal test of its Allow
/// statements.
#[derive(Clone, Copy)]
struct Bound<'p>(Option<&'p Policy>);

impl Bound<'_> {
    /// Whether `a` may name `w`: an ARN bound to an id names only the role holding that id (a
    /// role recreated under the same name holds another).
    fn admits(self, a: &str, w: &Who<'_>) -> bool {
        match self.0.and_then(|p| p.principal_id_of(a)) {
            Some(id) => w.id == Some(id),
            None => true,
        }
    }
}

fn principal_grant(pr: &Principals, w: &Who<'_>, bound: Bound<'_>) -> Option<Grant> {
    let mut best: Option<Grant> = None;
    let mut up = |g: Grant| best = Some(best.map_or(g, |b| b.max(g)));
    if pr.any {
        up(Grant::Wildcard);
    }
    for a in &pr.aws {
        if a == "*" || !bound.admits(a, w) {
            continue;
        }
        if a == w.arn {
            up(match w.kind {
                Kind::Root => Grant::Account,
                _ => Grant::Direct,
            });
        } else if !w.account.is_empty()
            && (*a == *w.account
                || (a
                    .strip_prefix("arn:")
                    .and_then(|r| r.split_once(":iam::"))
                    .is_some_and(|(part, r)| {
                        // The root of the same account ID in another partition is another
                        // account.
                        part == w.partition && r.strip_suffix(":root") == Some(w.account)
                    })))
        {
            up(Grant::Account);
        } else if w.kind == Kind::Session {
            // role ARN (any path) names the sessions of that role
            if let Some(&["arn", part, "iam", _, acct, res]) = ArnView::new(a).fields()
                && part == w.partition
                && acct == w.account
                && res.starts_with("role/")
                && res.rsplit('/').next() == Some(w.role)
            {
                up(Grant::Role);
            }
        }
    }
    if pr
        .federated
        .iter()
        .chain(&pr.service)
        .chain(&pr.canonical)
        .any(|f| f == w.arn)
    {
        up(Grant::Direct);
    }
    best
}

/// Outcome of one condition test.
pub(crate) fn cond_holds(c: &Cond, ctx: &Context) -> bool {
    let got = ctx.get_key(&c.key);
    if let Vals::Null(bs) = &c.vals {
        return match c.qual {
            Qual::ForAll => true,
            Qual::ForAny => false,
            Qual::None => bs.iter().any(|b| *b == Some(got.is_none())),
        };
    }
    let test = |v: &str| {
        let m = any_value_matches(c, v, ctx);
        if c.negated { !m } else { m }
    };
    match got {
        None => match c.qual {
            Qual::ForAll => true,
            Qual::ForAny => false,
            Qual::None => c.if_exists || c.negated,
        },
        // For a set operator an empty string is "a null data set" like an absent key (IAM UG,
        // multivalued context keys): ForAllValues holds, ForAnyValue does not.
        Some(ContextValue::Single(v)) if v.is_empty() && c.qual != Qual::None => {
            c.qual == Qual::ForAll
        }
        Some(ContextValue::Single(v)) => test(v),
        Some(ContextValue::Multi(vs)) => match c.qual {
            Qual::None => false,
            Qual::ForAll => vs.iter().all(|v| test(v)),
            Qual::ForAny => vs.iter().any(|v| test(v)),
        },
    }
}

fn cmp_ok(cmp: Cmp, o: Ordering) -> bool {
    match cmp {
        Cmp::Eq => o == Ordering::Equal,
        Cmp::Lt => o == Ordering::Less,
        Cmp::Le => o != Ordering::Greater,
        Cmp::Gt => o == Ordering::Greater,
        Cmp::Ge => o != Ordering::Less,
    }
}

fn eq_ignore_case(a: &str, lower_b: &str) -> bool {
    if a.is_ascii() && lower_b.is_ascii() {
        a.eq_ignore_ascii_case(lower_b)
    } else {
        a.chars().flat_map(char::to_lowercase).eq(lower_b.chars())
    }
}

/// Whether request value `v` matches any policy value (the positive sense of the operator).
fn any_value_matches(c: &Cond, v: &str, ctx: &Context) -> bool {
    match (&c.vals, c.op) {
        (Vals::Str(vs), Op::StrEqIc) => vs.iter().any(|sv| match &sv.lower {
            Some(l) => eq_ignore_case(v, l),
            None => sv
                .pat
                .resolve(ctx)
                .is_some_and(|r| eq_ignore_case(v, &r.to_lowercase())),
        }),
        (Vals::Str(vs), _) => vs.iter().any(|sv| sv.pat.matches(v, false, ctx)),
        (Vals::Arn(ps), _) => {
            let v = ArnView::new(v);
            ps.iter().any(|p| p.matches_view(&v, ctx, true))
        }
        (Vals::Num(ns), Op::Num(cmp)) => match values::parse_num(v) {
            Some(rv) => ns
                .iter()
                .flatten()
                .any(|pv| cmp_ok(cmp, values::cmp_num(&rv, &pv.as_num()))),
            None => false,
        },
        (Vals::Date(ds), Op::Date(cmp)) => match values::parse_date(v) {
            Some(rv) => ds.iter().flatten().any(|pv| cmp_ok(cmp, rv.cmp(pv))),
            None => false,
        },
        (Vals::Bool(bs), _) => {
            let rv = if v.eq_ignore_ascii_case("true") {
                Some(true)
            } else if v.eq_ignore_ascii_case("false") {
                Some(false)
            } else {
                None
            };
            rv.is_some_and(|rv| bs.contains(&Some(rv)))
        }
        (Vals::Binary(bs), _) => match base64::engine::general_purpose::STANDARD.decode(v) {
            Ok(rv) => bs.iter().flatten().any(|b| *b == rv),
            Err(_) => false,
        },
        (Vals::Ip(cs), _) => match values::parse_ip(v) {
            Some(ip) => cs.iter().flatten().any(|c| c.contains(ip)),
            None => false,
        },
        _ => false,
    }
}

/// Per-statement match detail, used for "nearest" scoring.
struct Detail {
    action: bool,
    resource: bool,
    principal: bool,
    passed: usize,
    failed_cond: Option<usize>,
}

/// What one evaluation derives from the request once, for every statement it tests.
struct Eval<'a> {
    req: &'a Request<'a>,
    /// The action with ASCII letters lowercased (when it fits the buffer): action patterns are
    /// compiled lowercase, so a case-sensitive match against this is the case-insensitive match
    /// against the action, at the cost of one lowercasing per evaluation instead of one per
    /// pattern.
    action_lower: Option<&'a [u8]>,
    who: Who<'a>,
    resource: ArnView<'a>,
    has_boundary: bool,
}

/// Longest action lowercased into a stack buffer; longer ones compare case-insensitively.
const ACTION_BUF: usize = 128;

/// The bytes of `s` with ASCII letters lowercased. Every other byte is left alone, so they are
/// UTF-8 still, as the pattern matcher needs.
fn lower_ascii<'b>(s: &str, buf: &'b mut [u8; ACTION_BUF]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..s.len())?;
    out.copy_from_slice(s.as_bytes());
    out.make_ascii_lowercase();
    Some(out)
}

fn action_matches(st: &Statement, e: &Eval<'_>) -> bool {
    let ctx = e.req.context;
    let any = match e.action_lower {
        Some(a) => st.actions.iter().any(|p| p.matches_bytes(a, false, ctx)),
        None => st
            .actions
            .iter()
            .any(|p| p.matches(e.req.action, true, ctx)),
    };
    any != st.not_action
}

fn resource_matches(st: &Statement, e: &Eval<'_>) -> bool {
    match &st.resources {
        None => true,
        Some((not, pats)) => {
            let any = pats
                .iter()
                .any(|p| p.matches_resource(&e.resource, e.req.context));
            any != *not
        }
    }
}

/// Principal test; returns the grant (for Allow) or `None` if not matched. Only an Allow's
/// principals honour `p`'s bindings: a Deny naming a role by ARN keeps applying to any role of
/// that name, which is stricter than IAM and never grants more.
fn principal_matches(p: &Policy, st: &Statement, w: &Who<'_>, has_boundary: bool) -> Option<Grant> {
    let bound = Bound((st.effect == Effect::Allow).then_some(p));
    match &st.principal {
        None => Some(Grant::Direct),
        Some((false, pr)) => principal_grant(pr, w, bound),
        // AWS does not support NotPrincipal with Allow (NotPrincipal page); it grants no one.
        Some((true, _)) if st.effect == Effect::Allow => None,
        Some((true, pr)) => {
            // Only a principal named exactly (or `*`) is spared: AWS checks the account, the
            // role and the session separately, so naming the account does not spare its users
            // and sessions, nor naming a role its sessions (NotPrincipal page: "all principals
            // except the assumed-role user ... are explicitly denied" with the role and the
            // account listed too). The account root is the account itself.
            let spared = match principal_grant(pr, w, Bound(None)) {
                Some(Grant::Direct | Grant::Wildcard) => true,
                Some(Grant::Account) => w.kind == Kind::Root,
                Some(Grant::Role) | None => false,
            };
            if !spared || (has_boundary && st.effect == Effect::Deny) {
                Some(Grant::Wildcard)
            } else {
                None
            }
        }
    }
}

fn detail(p: &Policy, st: &Statement, e: &Eval<'_>) -> Detail {
    let action = action_matches(st, e);
    let resource = resource_matches(st, e);
    let principal = principal_matches(p, st, &e.who, e.has_boundary).is_some();
    let mut passed = 0;
    let mut failed_cond = None;
    for (i, c) in st.conditions.iter().enumerate() {
        if cond_holds(c, e.req.context) {
            passed += 1;
        } else if failed_cond.is_none() {
            failed_cond = Some(i);
        }
    }
    Detail {
        action,
        resource,
        principal,
        passed,
        failed_cond,
    }
}

/// Result of scanning one policy.
struct Scan {
    deny: Option<usize>,
    allow: Option<(usize, Grant)>,
}

fn scan(p: &Policy, e: &Eval<'_>) -> Scan {
    let mut out = Scan {
        deny: None,
        allow: None,
    };
    for (i, st) in p.statements.iter().enumerate() {
        if st.effect == Effect::Allow
            && out.allow.as_ref().is_some_and(|(_, g)| *g == Grant::Direct)
        {
            continue;
        }
        if !action_matches(st, e) || !resource_matches(st, e) {
            continue;
        }
        let Some(g) = principal_matches(p, st, &e.who, e.has_boundary) else {
            continue;
        };
        if !st.conditions.iter().all(|c| cond_holds(c, e.req.context)) {
            continue;
        }
        match st.effect {
            Effect::Deny => {
                out.deny = Some(i);
                return out;
            }
            Effect::Allow => {
                if out.allow.as_ref().is_none_or(|(_, og)| g > *og) {
                    out.allow = Some((i, g));
                }
            }
        }
    }
    out
}

fn sref(p: &Policy, i: usize) -> Option<StatementRef> {
    p.statements.get(i).map(|st| StatementRef {
        policy: p.label.clone(),
        sid: st.sid.clone(),
        index: st.index,
    })
}

/// Best candidate so far: (score, policy, statement index, detail).
type Best<'p> = ((bool, bool, bool, usize), &'p Policy, usize, Detail);

fn nearest(policies: &[&Policy], e: &Eval<'_>) -> Option<Nearest> {
    let mut best: Option<Best<'_>> = None;
    for p in policies {
        for (i, st) in p.statements.iter().enumerate() {
            if st.effect != Effect::Allow {
                continue;
            }
            let d = detail(p, st, e);
            let score = (d.action, d.resource, d.principal, d.passed);
            if best.as_ref().is_none_or(|(s, _, _, _)| score > *s) {
                best = Some((score, p, i, d));
            }
        }
    }
    let (_, p, i, d) = best?;
    let st = p.statements.get(i)?;
    let failed = if !d.action {
        Failure::Action
    } else if !d.resource {
        Failure::Resource
    } else if !d.principal {
        Failure::Principal
    } else {
        let c = st.conditions.get(d.failed_cond?)?;
        Failure::Condition {
            operator: c.op_name.to_string(),
            key: c.key_name.to_string(),
        }
    };
    Some(Nearest {
        statement: sref(p, i)?,
        failed,
    })
}

/// Evaluates `request` against `policies` following AWS's documented algorithm: explicit deny
/// first; every guardrail level must allow; the resource/trust policy with the same-account
/// rules (a direct grant to a user, session or federated principal is enough; a role grant is
/// still limited by boundary and session policy; an account grant delegates to identity
/// policies; a trust policy must always allow) and the cross-account rule (both sides must
/// allow); identity policies; permissions boundary; session policy.
pub fn evaluate(request: &Request<'_>, policies: &PolicySet<'_>) -> Decision {
    let mut action_buf = [0u8; ACTION_BUF];
    let e = Eval {
        req: request,
        action_lower: lower_ascii(request.action, &mut action_buf),
        who: who(request.principal, request.principal_id),
        resource: ArnView::new(request.resource),
        has_boundary: policies.boundary.is_some(),
    };
    let w = &e.who;
    let deny = |p: &Policy, i: usize| Decision {
        kind: DecisionKind::ExplicitlyDenied,
        action: ActionText::new(request.action),
        statement: sref(p, i),
        missing: None,
        nearest: None,
        delegated_by: None,
        cross_account: None,
    };

    // 1. scan everything; any matching Deny wins.
    // The first guardrail level without an Allow (every level is still scanned for a Deny).
    let mut level_missing: Option<usize> = None;
    for (l, level) in policies.guardrails.iter().enumerate() {
        let mut ok = false;
        for p in level {
            let s = scan(p, &e);
            if let Some(i) = s.deny {
                return deny(p, i);
            }
            ok |= s.allow.is_some();
        }
        if !ok && level_missing.is_none() {
            level_missing = Some(l);
        }
    }
    let mut res_allow: Option<(usize, Grant)> = None;
    if let Some(p) = policies.resource_policy {
        let s = scan(p, &e);
        if let Some(i) = s.deny {
            return deny(p, i);
        }
        res_allow = s.allow;
    }
    let mut id_allow: Option<(&Policy, usize)> = None;
    for p in policies.identity {
        let s = scan(p, &e);
        if let Some(i) = s.deny {
            return deny(p, i);
        }
        if id_allow.is_none() {
            id_allow = s.allow.map(|(i, _)| (*p, i));
        }
    }
    let mut boundary_allow = true;
    if let Some(p) = policies.boundary {
        let s = scan(p, &e);
        if let Some(i) = s.deny {
            return deny(p, i);
        }
        boundary_allow = s.allow.is_some();
    }
    let mut session_allow = true;
    if let Some(p) = policies.session {
        let s = scan(p, &e);
        if let Some(i) = s.deny {
            return deny(p, i);
        }
        session_allow = s.allow.is_some();
    } else if w.kind == Kind::FederatedUser {
        session_allow = false;
    }

    let mut delegated_by = None;
    let mut cross: Option<Box<str>> = None;
    let implicit = |missing: Missing,
                    near: Option<Nearest>,
                    delegated_by: Option<StatementRef>,
                    cross_account: Option<Box<str>>| Decision {
        kind: DecisionKind::ImplicitlyDenied,
        action: ActionText::new(request.action),
        statement: None,
        missing: Some(missing),
        nearest: near,
        delegated_by,
        cross_account,
    };

    // 2. guardrails: every level must allow.
    if let Some(l) = level_missing {
        let level: &[&Policy] = policies.guardrails.get(l).map(Vec::as_slice).unwrap_or(&[]);
        return implicit(Missing::Guardrail(l), nearest(level, &e), None, None);
    }

    // 3. resource policy and the account rules.
    let resource_account = request
        .resource_account
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| {
            let acct = match e.resource.fields() {
                Some(f) => f[4],
                None => request.resource.split(':').nth(4).unwrap_or(""),
            };
            if acct.is_empty() || acct.bytes().any(|b| b == b'*' || b == b'?') {
                w.account
            } else {
                acct
            }
        });
    let cross_account = !w.account.is_empty() && resource_account != w.account;
    let is_trust = policies
        .resource_policy
        .is_some_and(|p| p.policy_type == PolicyType::Trust)
        || request
            .action
            .get(..14)
            .is_some_and(|a| a.eq_ignore_ascii_case("sts:assumerole"));
    let res_near = || policies.resource_policy.and_then(|p| nearest(&[p], &e));

    if cross_account {
        cross = Some(resource_account.into());
    }
    if (is_trust || cross_account) && res_allow.is_none() {
        return implicit(Missing::ResourcePolicy, res_near(), None, cross);
    }
    let grant = if cross_account {
        None
    } else {
        res_allow.map(|(_, g)| g)
    };
    let res_ref = || match (policies.resource_policy, res_allow) {
        (Some(p), Some((i, _))) => sref(p, i),
        _ => None,
    };
    let (need_identity, need_boundary, need_session) = match grant {
        Some(Grant::Direct) => (false, w.kind == Kind::Role, false),
        Some(Grant::Role | Grant::Wildcard) => (false, true, true),
        Some(Grant::Account) | None => (true, true, true),
    };
    if grant == Some(Grant::Account) {
        delegated_by = res_ref();
    }
    if need_identity && id_allow.is_none() {
        let mut near_set: Vec<&Policy> = policies.identity.to_vec();
        if let Some(p) = policies.resource_policy {
            near_set.push(p);
        }
        return implicit(
            Missing::Identity,
            nearest(&near_set, &e),
            delegated_by,
            cross,
        );
    }
    if need_boundary && !boundary_allow {
        let b: Vec<&Policy> = policies.boundary.into_iter().collect();
        return implicit(Missing::Boundary, nearest(&b, &e), None, cross);
    }
    if need_session && !session_allow {
        let s: Vec<&Policy> = policies.session.into_iter().collect();
        return implicit(Missing::Session, nearest(&s, &e), None, cross);
    }
    let statement = match (grant, id_allow) {
        (Some(Grant::Account) | None, Some((p, i))) => sref(p, i),
        (Some(_), _) => res_ref(),
        (None, None) => res_ref(),
    };
    Decision {
        kind: DecisionKind::Allowed,
        action: ActionText::new(request.action),
        statement,
        missing: None,
        nearest: None,
        delegated_by: None,
        cross_account: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_described_as_display_writes_it() {
        for sid in [None, Some(""), Some("AllowMain")] {
            let s = StatementRef {
                policy: Arc::from("inline policy ci"),
                sid: sid.map(Arc::from),
                index: 12,
            };
            assert_eq!(s.described_after("allowed by "), format!("allowed by {s}"));
        }
    }
}
