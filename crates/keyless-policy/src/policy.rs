//! Policy types, the grammar checks and compilation into the evaluable form.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;

use crate::json::{self, Node, Val, child_idx, child_key};
use crate::pattern::{self, ArnPat, Pat, VarIssue};
use crate::values;

/// The kind of policy a document is; it decides which elements are allowed and the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// Identity-based policy of a user or role (also used for permissions boundaries).
    Identity,
    /// Resource-based policy (e.g. a bucket policy).
    Resource,
    /// Role trust policy (the resource policy of `sts:AssumeRole*`).
    Trust,
    /// Organization guardrail, evaluated like an AWS service control policy.
    Guardrail,
    /// Session policy passed to `AssumeRole*` / `GetFederationToken`.
    Session,
}

impl PolicyType {
    /// The lowercase name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Identity => "identity",
            PolicyType::Resource => "resource",
            PolicyType::Trust => "trust",
            PolicyType::Guardrail => "guardrail",
            PolicyType::Session => "session",
        }
    }

    /// The maximum size in characters, whitespace not counted (IAM quotas: managed policy 6,144;
    /// role trust policy 2,048 by default; SCP 5,120; session policy 2,048; resource policies
    /// use the S3 bucket-policy limit of 20,480).
    pub fn max_size(self) -> usize {
        match self {
            PolicyType::Identity => 6_144,
            PolicyType::Resource => 20_480,
            PolicyType::Trust => 2_048,
            PolicyType::Guardrail => 5_120,
            PolicyType::Session => 2_048,
        }
    }

    fn default_label(self) -> &'static str {
        match self {
            PolicyType::Identity => "the identity policy",
            PolicyType::Resource => "the resource policy",
            PolicyType::Trust => "the trust policy",
            PolicyType::Guardrail => "the guardrail",
            PolicyType::Session => "the session policy",
        }
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quota that all inline policies of one role share, in characters with whitespace not
/// counted (IAM: "role policy size", 10,240). One inline policy may use all of it.
pub const ROLE_INLINE_POLICIES_MAX_SIZE: usize = 10_240;

/// A document's size as IAM's quotas count it: characters, whitespace not counted.
pub fn policy_size(src: &str) -> usize {
    src.chars().filter(|c| !c.is_whitespace()).count()
}

/// Error for an unknown policy type name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy type `{0}`; use identity, resource, trust, guardrail or session")]
pub struct UnknownPolicyType(pub String);

impl FromStr for PolicyType {
    type Err = UnknownPolicyType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "identity" => Ok(PolicyType::Identity),
            "resource" => Ok(PolicyType::Resource),
            "trust" => Ok(PolicyType::Trust),
            "guardrail" => Ok(PolicyType::Guardrail),
            "session" => Ok(PolicyType::Session),
            other => Err(UnknownPolicyType(other.to_string())),
        }
    }
}

/// Severity of a validation finding (Access Analyzer's finding types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The policy is invalid or does not do what it says.
    Error,
    /// The policy grants more than intended.
    SecurityWarning,
    /// The policy is valid but probably wrong.
    Warning,
    /// The policy can be simplified or improved.
    Suggestion,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "ERROR",
            Severity::SecurityWarning => "SECURITY_WARNING",
            Severity::Warning => "WARNING",
            Severity::Suggestion => "SUGGESTION",
        })
    }
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// SCREAMING_SNAKE code, e.g. `MISSING_SUB_CONDITION`.
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// JSON path of the element, e.g. `$.Statement[0].Condition`.
    pub path: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column (characters).
    pub column: u32,
}

/// What kind of problem made a document unparsable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// Not valid JSON.
    Json,
    /// The same key twice in one object.
    DuplicateKey,
    /// A character outside TAB, LF, CR and U+0020–U+00FF.
    InvalidCharacter,
    /// Larger than the policy type allows.
    TooLarge,
    /// Valid JSON that IAM's policy grammar rejects.
    Grammar,
}

/// A document that is not a valid policy of its type. `Display` gives the message with the JSON
/// path, line and column; [`ParseError::aws_message`] gives the text AWS returns with
/// `MalformedPolicyDocument` (or `LimitExceeded` for size, see [`ParseError::aws_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at {path}, line {line}, column {column})")]
pub struct ParseError {
    kind: ParseErrorKind,
    code: String,
    message: String,
    aws: String,
    path: String,
    line: u32,
    column: u32,
    off: usize,
}

impl ParseError {
    /// Byte offset of the error in the document.
    pub fn offset(&self) -> usize {
        self.off
    }
    /// The kind of error.
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }
    /// The finding code (e.g. `JSON_SYNTAX_ERROR`, `DUPLICATE_KEY`).
    pub fn code(&self) -> &str {
        &self.code
    }
    /// Human message without location.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// JSON path of the offending element.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// 1-based line.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// 1-based column.
    pub fn column(&self) -> u32 {
        self.column
    }
    /// The AWS wire error code: `LimitExceeded` for size, else `MalformedPolicyDocument`.
    pub fn aws_code(&self) -> &'static str {
        match self.kind {
            ParseErrorKind::TooLarge => "LimitExceeded",
            _ => "MalformedPolicyDocument",
        }
    }
    /// The message AWS returns for this error (e.g. `Has prohibited field Resource.`).
    pub fn aws_message(&self) -> &str {
        &self.aws
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// Operator families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    StrEq,
    StrEqIc,
    StrLike,
    Num(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qual {
    None,
    ForAll,
    ForAny,
}

/// Parses an operator name into (op, negated, qualifier, if_exists).
pub(crate) fn parse_operator(name: &str) -> Option<(Op, bool, Qual, bool)> {
    let (qual, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
        (Qual::ForAll, r)
    } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (Qual::ForAny, r)
    } else {
        (Qual::None, name)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (rest, false),
    };
    let (op, neg) = match base {
        "StringEquals" => (Op::StrEq, false),
        "StringNotEquals" => (Op::StrEq, true),
        "StringEqualsIgnoreCase" => (Op::StrEqIc, false),
        "StringNotEqualsIgnoreCase" => (Op::StrEqIc, true),
        "StringLike" => (Op::StrLike, false),
        "StringNotLike" => (Op::StrLike, true),
        "NumericEquals" => (Op::Num(Cmp::Eq), false),
        "NumericNotEquals" => (Op::Num(Cmp::Eq), true),
        "NumericLessThan" => (Op::Num(Cmp::Lt), false),
        "NumericLessThanEquals" => (Op::Num(Cmp::Le), false),
        "NumericGreaterThan" => (Op::Num(Cmp::Gt), false),
        "NumericGreaterThanEquals" => (Op::Num(Cmp::Ge), false),
        "DateEquals" => (Op::Date(Cmp::Eq), false),
        "DateNotEquals" => (Op::Date(Cmp::Eq), true),
        "DateLessThan" => (Op::Date(Cmp::Lt), false),
        "DateLessThanEquals" => (Op::Date(Cmp::Le), false),
        "DateGreaterThan" => (Op::Date(Cmp::Gt), false),
        "DateGreaterThanEquals" => (Op::Date(Cmp::Ge), false),
        "Bool" => (Op::Bool, false),
        "BinaryEquals" => (Op::Binary, false),
        "IpAddress" => (Op::Ip, false),
        "NotIpAddress" => (Op::Ip, true),
        "ArnEquals" | "ArnLike" => (Op::Arn, false),
        "ArnNotEquals" | "ArnNotLike" => (Op::Arn, true),
        "Null" => (Op::Null, false),
        _ => return None,
    };
    Some((op, neg, qual, if_exists))
}

/// A string condition value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StrVal {
    pub(crate) pat: Pat,
    /// Lowercased literal for IgnoreCase without variables.
    pub(crate) lower: Option<String>,
}

/// Compiled condition values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Vals {
    Str(Vec<StrVal>),
    Num(Vec<Option<values::NumVal>>),
    Date(Vec<Option<i128>>),
    Bool(Vec<Option<bool>>),
    Binary(Vec<Option<Vec<u8>>>),
    Ip(Vec<Option<values::Cidr>>),
    Arn(Vec<ArnPat>),
    Null(Vec<Option<bool>>),
}

/// One (operator, key) test.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cond {
    pub(crate) op: Op,
    pub(crate) negated: bool,
    pub(crate) qual: Qual,
    pub(crate) if_exists: bool,
    pub(crate) op_name: Box<str>,
    pub(crate) key: crate::context::KeyName,
    pub(crate) key_name: Box<str>,
    pub(crate) vals: Vals,
}

/// The Principal / NotPrincipal element.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Principals {
    pub(crate) any: bool,
    pub(crate) aws: Vec<String>,
    pub(crate) federated: Vec<String>,
    pub(crate) service: Vec<String>,
    pub(crate) canonical: Vec<String>,
}

/// A compiled statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sid: Option<Arc<str>>,
    pub(crate) index: usize,
    pub(crate) effect: Effect,
    pub(crate) not_action: bool,
    /// Lowercased action patterns.
    pub(crate) actions: Vec<Pat>,
    /// `(NotResource?, patterns)`; `None` when absent (trust policies).
    pub(crate) resources: Option<(bool, Vec<ArnPat>)>,
    /// `(NotPrincipal?, principals)`.
    pub(crate) principal: Option<(bool, Principals)>,
    pub(crate) conditions: Vec<Cond>,
}

/// A parsed, compiled policy. Cheap to share via `Arc`; `Send + Sync`.
///
/// Each policy has a label used in explanations (`"the trust policy"` by default; set it with
/// [`Policy::with_label`], e.g. `"inline policy s3-write of role deploy"`).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) label: Arc<str>,
    pub(crate) policy_type: PolicyType,
    pub(crate) version_2012: bool,
    pub(crate) id: Option<String>,
    pub(crate) statements: Vec<Statement>,
    /// Role ARNs of `Principal.AWS`, as written, bound to the unique id of the role each named
    /// when the policy was saved ([`Policy::with_principal_ids`]); sorted by ARN.
    pub(crate) principal_ids: Vec<(String, String)>,
}

impl Policy {
    /// Parses and compiles a policy document of the given type, enforcing the JSON syntax,
    /// duplicate keys, the character set, the size limit of the type and IAM's grammar.
    pub fn parse(json: &str, policy_type: PolicyType) -> Result<Policy, ParseError> {
        Self::parse_within(json, policy_type, policy_type.max_size())
    }

    /// [`Policy::parse`] with another size limit than the type's: a role's inline policies
    /// share one quota ([`ROLE_INLINE_POLICIES_MAX_SIZE`]) instead of each having the managed
    /// policy's 6,144 characters, so one of them alone may be larger.
    pub fn parse_within(
        json: &str,
        policy_type: PolicyType,
        max_size: usize,
    ) -> Result<Policy, ParseError> {
        let b = build(json, policy_type, max_size);
        if let Some(e) = b.fatal {
            return Err(e);
        }
        b.policy.ok_or_else(|| ParseError {
            kind: ParseErrorKind::Grammar,
            code: "INVALID_POLICY".into(),
            message: "the policy could not be compiled".into(),
            aws: "Syntax errors in policy.".into(),
            path: "$".into(),
            line: 1,
            column: 1,
            off: 0,
        })
    }

    /// Sets the label used in explanations, e.g. `"trust policy of role gha"`.
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Policy {
        self.label = Arc::from(label.into());
        self
    }

    /// Binds role ARNs of `Principal.AWS` (as written) to the unique ids of the roles they
    /// named when the policy was saved, as IAM does: an Allow naming a bound ARN then matches
    /// only a request whose [`crate::Request::principal_id`] is that id, so a role deleted and
    /// recreated under the same name is not trusted. ARNs left out match by ARN as before.
    #[must_use]
    pub fn with_principal_ids<'b>(
        mut self,
        ids: impl IntoIterator<Item = (&'b str, &'b str)>,
    ) -> Policy {
        let mut ids: Vec<(String, String)> = ids
            .into_iter()
            .map(|(arn, id)| (arn.to_owned(), id.to_owned()))
            .collect();
        ids.sort();
        ids.dedup_by(|a, b| a.0 == b.0);
        self.principal_ids = ids;
        self
    }

    /// The unique id `arn` was bound to, if it was.
    pub(crate) fn principal_id_of(&self, arn: &str) -> Option<&str> {
        self.principal_ids
            .binary_search_by(|(a, _)| a.as_str().cmp(arn))
            .ok()
            .and_then(|i| self.principal_ids.get(i))
            .map(|(_, id)| id.as_str())
    }

    /// The `Principal.AWS` values (of `Principal`, not `NotPrincipal`) that name one IAM role
    /// exactly, `arn:<partition>:iam::<account>:role/<path/name>`, each once, in order of
    /// appearance: the principals IAM binds to a role's unique id when the policy is saved.
    pub fn role_principal_arns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for st in &self.statements {
            let Some((false, pr)) = &st.principal else {
                continue;
            };
            for a in &pr.aws {
                if is_role_arn(a) && !out.contains(&a.as_str()) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// The label used in explanations.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The policy type it was parsed as.
    pub fn policy_type(&self) -> PolicyType {
        self.policy_type
    }

    /// The `Id` element, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// Whether any statement allows (rather than denies): a guardrail with one is an
    /// allow-list.
    pub fn has_allow_statement(&self) -> bool {
        self.statements.iter().any(|s| s.effect == Effect::Allow)
    }

    /// The condition keys the statements name, as written.
    pub fn condition_keys(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .flat_map(|s| s.conditions.iter().map(|c| &*c.key_name))
    }

    /// Number of statements.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// Whether `Version` is 2012-10-17 (policy variables are active).
    pub fn supports_variables(&self) -> bool {
        self.version_2012
    }

    /// One policy holding the statements of all `policies`, in order (renumbered), for a set
    /// that AWS evaluates as one: the session policies of a session (inline `Policy` plus
    /// `PolicyArns`), where any statement may allow. Variables stay active only when every part
    /// has `Version` 2012-10-17. No parts gives a policy with no statements, which allows
    /// nothing.
    pub fn merged(
        policy_type: PolicyType,
        label: impl Into<String>,
        policies: &[&Policy],
    ) -> Policy {
        let statements: Vec<Statement> = policies
            .iter()
            .flat_map(|p| p.statements.iter().cloned())
            .enumerate()
            .map(|(index, mut st)| {
                st.index = index;
                st
            })
            .collect();
        Policy {
            label: Arc::from(label.into()),
            policy_type,
            version_2012: policies.iter().all(|p| p.version_2012),
            id: None,
            statements,
            principal_ids: Vec::new(),
        }
    }
}

/// Whether `a` names one IAM role exactly: `arn:<partition>:iam::<account>:role/<path/name>`
/// without wildcards (the parser refuses those in principals anyway).
fn is_role_arn(a: &str) -> bool {
    matches!(
        crate::pattern::ArnView::new(a).fields(),
        Some(&["arn", part, "iam", "", acct, res])
            if !part.is_empty()
                && !acct.is_empty()
                && res.strip_prefix("role/").is_some_and(|n| !n.is_empty() && !n.ends_with('/'))
                && !a.contains(['*', '?'])
    )
}

// ---------------------------------------------------------------------------------------------
// Builder: one walk produces the compiled policy, fatal grammar errors and lint findings.

pub(crate) struct Built {
    pub(crate) policy: Option<Policy>,
    pub(crate) fatal: Option<ParseError>,
    pub(crate) findings: Vec<Finding>,
}

struct B<'a> {
    src: &'a str,
    ty: PolicyType,
    fatal: Option<ParseError>,
    findings: Vec<Finding>,
    version_2012: bool,
}

/// Known multivalued global keys (plus `*:amr` and `sts:TransitiveTagKeys`).
pub(crate) fn known_multivalued(key_lower: &str) -> bool {
    matches!(
        key_lower,
        "aws:tagkeys"
            | "aws:principalorgpaths"
            | "aws:resourceorgpaths"
            | "aws:calledvia"
            | "aws:principalservicenameslist"
            | "aws:sourceorgpaths"
            | "aws:vpceorgpaths"
            | "sts:transitivetagkeys"
    ) || key_lower.ends_with(":amr")
}

/// Known single-valued keys (for the ForAllValues warning).
fn known_single_valued(key_lower: &str) -> bool {
    (key_lower.starts_with("aws:") && !known_multivalued(key_lower))
        || key_lower.ends_with(":sub")
        || matches!(
            key_lower,
            "sts:rolesessionname" | "sts:sourceidentity" | "sts:externalid"
        )
}

/// The expected operator family of well-known keys.
fn key_family(key_lower: &str) -> Option<&'static str> {
    Some(match key_lower {
        "aws:sourceip" => "IP",
        "aws:currenttime" | "aws:tokenissuetime" => "Date",
        "aws:epochtime" => "DateOrNumeric",
        "aws:multifactorauthage" => "Numeric",
        "aws:securetransport"
        | "aws:multifactorauthpresent"
        | "aws:viaawsservice"
        | "aws:principalisawsservice" => "Bool",
        _ => return None,
    })
}

fn op_family(op: Op) -> &'static str {
    match op {
        Op::StrEq | Op::StrEqIc | Op::StrLike => "String",
        Op::Num(_) => "Numeric",
        Op::Date(_) => "Date",
        Op::Bool => "Bool",
        Op::Binary => "Binary",
        Op::Ip => "IP",
        Op::Arn => "ARN",
        Op::Null => "Null",
    }
}

const TRUST_ACTIONS: [&str; 5] = [
    "sts:assumerole",
    "sts:assumerolewithsaml",
    "sts:assumerolewithwebidentity",
    "sts:tagsession",
    "sts:setsourceidentity",
];

impl B<'_> {
    fn pos(&self, off: usize) -> (u32, u32) {
        json::line_col(self.src, off)
    }

    fn find(&mut self, sev: Severity, code: &str, message: String, path: &str, off: usize) {
        let (line, column) = self.pos(off);
        self.findings.push(Finding {
            severity: sev,
            code: code.into(),
            message,
            path: path.into(),
            line,
            column,
        });
    }

    /// A grammar error: fatal for parse, an ERROR finding for validate.
    fn fatal(&mut self, code: &str, message: String, aws: &str, path: &str, off: usize) {
        self.fatal_kind(ParseErrorKind::Grammar, code, message, aws, path, off);
    }

    fn fatal_kind(
        &mut self,
        kind: ParseErrorKind,
        code: &str,
        message: String,
        aws: &str,
        path: &str,
        off: usize,
    ) {
        let (line, column) = self.pos(off);
        if self.fatal.is_none() {
            self.fatal = Some(ParseError {
                kind,
                code: code.into(),
                message: message.clone(),
                aws: aws.into(),
                path: path.into(),
                line,
                column,
                off,
            });
        }
        self.findings.push(Finding {
            severity: Severity::Error,
            code: code.into(),
            message,
            path: path.into(),
            line,
            column,
        });
    }

    /// Reads a string-or-array-of-strings element.
    fn strings<'n>(
        &mut self,
        n: &'n Node,
        path: &str,
        what: &str,
    ) -> Vec<(&'n str, usize, String)> {
        match &n.v {
            Val::Str(s) => vec![(s.as_str(), n.off, path.to_string())],
            Val::Arr(items) => {
                if items.is_empty() {
                    self.find(
                        Severity::Suggestion,
                        &format!("EMPTY_ARRAY_{}", what.to_ascii_uppercase()),
                        format!("{what} is an empty array and matches nothing; remove the statement or list at least one value"),
                        path,
                        n.off,
                    );
                }
                let mut out = Vec::new();
                for (i, it) in items.iter().enumerate() {
                    let p = child_idx(path, i);
                    match &it.v {
                        Val::Str(s) => out.push((s.as_str(), it.off, p)),
                        other => self.fatal(
                            "DATA_TYPE_MISMATCH",
                            format!(
                                "{what} values must be strings, found {}; quote the value",
                                other.type_name()
                            ),
                            "Syntax errors in policy.",
                            &p,
                            it.off,
                        ),
                    }
                }
                out
            }
            other => {
                self.fatal(
                    "DATA_TYPE_MISMATCH",
                    format!(
                        "{what} must be a string or an array of strings, found {}",
                        other.type_name()
                    ),
                    "Syntax errors in policy.",
                    path,
                    n.off,
                );
                Vec::new()
            }
        }
    }

    fn var_issues(&mut self, issues: &[VarIssue], path: &str, off: usize) {
        for i in issues {
            match i {
                VarIssue::MissingBrace => self.find(
                    Severity::Error,
                    "MISSING_BRACE_IN_VARIABLE",
                    "a policy variable is missing its closing brace; write it as ${key}".into(),
                    path,
                    off,
                ),
                VarIssue::Space => self.find(
                    Severity::Error,
                    "UNSUPPORTED_SPACE_IN_VARIABLE",
                    "a policy variable contains a space; write ${key} or ${key, 'default'} exactly"
                        .into(),
                    path,
                    off,
                ),
                VarIssue::Empty => self.find(
                    Severity::Error,
                    "EMPTY_VARIABLE",
                    "the policy variable ${} is empty; name a context key, e.g. ${aws:username}"
                        .into(),
                    path,
                    off,
                ),
            }
        }
    }

    fn action(&mut self, a: &str, path: &str, off: usize) -> Option<Pat> {
        if a.contains("${") && self.version_2012 {
            self.find(
                Severity::Error,
                "VARIABLE_UNSUPPORTED_IN_ELEMENT",
                "policy variables are not allowed in Action; list the actions literally".into(),
                path,
                off,
            );
        }
        if a != "*" {
            let parts: Vec<&str> = a.split(':').collect();
            let ok_vendor = |v: &str| {
                !v.is_empty()
                    && v.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'*' || c == b'?')
            };
            let ok_name = |v: &str| {
                !v.is_empty()
                    && v.bytes().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, b'*' | b'?' | b'-' | b'_')
                    })
            };
            if parts.len() != 2 || !ok_vendor(parts[0]) || !ok_name(parts[1]) {
                let msg = if parts.len() > 2 {
                    "Actions/Condition can contain only one colon."
                } else if parts.len() < 2 {
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
                } else {
                    "Syntax errors in policy."
                };
                self.fatal(
                    "INVALID_ACTION",
                    format!("action `{a}` is not valid; write service:Action (one colon, letters, digits, * and ?), e.g. s3:GetObject, or \"*\""),
                    msg,
                    path,
                    off,
                );
                return None;
            }
            if parts[0].contains(['*', '?']) {
                self.find(
                    Severity::Suggestion,
                    "WILDCARD_IN_SERVICE_NAME",
                    format!("action `{a}` has a wildcard in the service name; name the service explicitly"),
                    path,
                    off,
                );
            }
        }
        let (p, _) = pattern::compile(&a.to_ascii_lowercase(), true, false);
        if self.ty == PolicyType::Trust
            && !TRUST_ACTIONS
                .iter()
                .any(|t| p.matches(t, false, &crate::Context::new()))
        {
            self.fatal(
                "UNSUPPORTED_ACTION_IN_TRUST_POLICY",
                format!("action `{a}` cannot be used in a trust policy; use sts:AssumeRole, sts:AssumeRoleWithSAML, sts:AssumeRoleWithWebIdentity, sts:TagSession or sts:SetSourceIdentity"),
                "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity",
                path,
                off,
            );
        }
        Some(p)
    }

    fn resource(&mut self, r: &str, path: &str, off: usize) -> Option<ArnPat> {
        if r != "*" {
            let parts: Vec<&str> = r.splitn(6, ':').collect();
            if parts.len() < 6 || parts[0] != "arn" {
                let pad_ok = matches!(self.ty, PolicyType::Identity | PolicyType::Session)
                    && parts[0] == "arn"
                    && parts.len() >= 2;
                if !pad_ok {
                    self.fatal(
                        "INVALID_ARN_RESOURCE",
                        format!("resource `{r}` must be an ARN (arn:partition:service:region:account:resource) or \"*\""),
                        &format!("Resource {r} must be in ARN format or \"*\"."),
                        path,
                        off,
                    );
                    return None;
                }
                self.find(
                    Severity::Warning,
                    "MISSING_ARN_FIELD",
                    format!("resource `{r}` has fewer than six ARN fields; the missing fields are treated as *; write the full ARN"),
                    path,
                    off,
                );
            }
            // "You can't use a wildcard in the service segment that identifies the AWS product"
            // (IAM User Guide, Resource element): such a pattern says nothing about which
            // service's resources it means.
            if let Some(service) = parts.get(2)
                && service.contains(['*', '?'])
            {
                self.find(
                    Severity::Warning,
                    "WILDCARD_IN_SERVICE_SEGMENT",
                    format!("resource `{r}` has a wildcard in its service segment, which IAM does not allow; name the service, e.g. arn:aws:s3:::bucket/*"),
                    path,
                    off,
                );
            }
            if parts.len() >= 2 && parts[1].is_empty() {
                self.fatal(
                    "INVALID_PARTITION",
                    format!("resource `{r}` has an empty partition; use aws, aws-cn or aws-us-gov"),
                    &format!("Partition \"\" is not valid for resource \"{r}\"."),
                    path,
                    off,
                );
                return None;
            }
            if self.version_2012 {
                let head: String = parts.iter().take(5).copied().collect::<Vec<_>>().join(":");
                if head.contains("${") {
                    self.find(
                        Severity::Error,
                        "VARIABLE_UNSUPPORTED_IN_ELEMENT",
                        format!("resource `{r}` uses a policy variable before the resource part; variables are allowed only after the fifth colon"),
                        path,
                        off,
                    );
                }
            }
        }
        let pad = !matches!(self.ty, PolicyType::Resource | PolicyType::Guardrail);
        let (p, issues) = ArnPat::compile(r, self.version_2012, pad);
        self.var_issues(&issues, path, off);
        Some(p)
    }

    fn principal(&mut self, n: &Node, path: &str, not: bool) -> Principals {
        let mut out = Principals::default();
        match &n.v {
            Val::Str(s) if s == "*" => out.any = true,
            Val::Obj(members) => {
                if members.is_empty() {
                    self.find(
                        Severity::Suggestion,
                        "EMPTY_OBJECT_PRINCIPAL",
                        "the principal object is empty and matches no one; name a principal".into(),
                        path,
                        n.off,
                    );
                }
                for (k, koff, v) in members {
                    let p = child_key(path, k);
                    let vals = self.strings(v, &p, "Principal");
                    let target = match k.as_str() {
                        "AWS" => &mut out.aws,
                        "Federated" => &mut out.federated,
                        "Service" => &mut out.service,
                        "CanonicalUser" => &mut out.canonical,
                        _ => {
                            self.fatal(
                                "INVALID_PRINCIPAL_KEY",
                                format!("principal key `{k}` is not valid; use AWS, Federated, Service or CanonicalUser"),
                                "Invalid principal in policy",
                                &p,
                                *koff,
                            );
                            continue;
                        }
                    };
                    let mut list = Vec::new();
                    for (s, off, vp) in vals {
                        if s == "*" && k == "AWS" {
                            list.push(s.to_string());
                            continue;
                        }
                        if s.contains('*') || s.contains('?') {
                            let code = if self.ty == PolicyType::Trust {
                                "ROLE_TRUST_POLICY_UNSUPPORTED_WILDCARD_IN_PRINCIPAL"
                            } else {
                                "UNSUPPORTED_WILDCARD_IN_PRINCIPAL"
                            };
                            self.fatal(
                                code,
                                format!("principal `{s}` contains a wildcard; principals must be exact (only the whole value \"*\" is allowed); use a condition such as ArnLike aws:PrincipalArn instead"),
                                &format!("Invalid principal in policy: \"{k}\":\"{s}\""),
                                &vp,
                                off,
                            );
                            continue;
                        }
                        if self.version_2012 && s.contains("${") {
                            self.find(Severity::Error, "VARIABLE_UNSUPPORTED_IN_ELEMENT", "policy variables are not allowed in Principal; name the principal literally".into(), &vp, off);
                        }
                        if k == "AWS"
                            && !(s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit()))
                            && !s.starts_with("arn:")
                        {
                            // A GetRole of a trust policy whose role was deleted shows this id;
                            // saving the document back as it was shown lands here.
                            let unique_id = (s.starts_with("AROA") || s.starts_with("AIDA"))
                                && s.bytes()
                                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
                            let hint = if unique_id {
                                " (it is the unique id of a deleted role or user, shown where a \
                                 trust policy names a principal that no longer exists: name a \
                                 principal that exists by its ARN, or remove it)"
                            } else {
                                ""
                            };
                            self.fatal(
                                "INVALID_PRINCIPAL_FORMAT",
                                format!(
                                    "AWS principal `{s}` must be a 12-digit account ID or an ARN{hint}"
                                ),
                                &format!("Invalid principal in policy: \"AWS\":\"{s}\""),
                                &vp,
                                off,
                            );
                            continue;
                        }
                        if k == "Service" && !s.contains('.') {
                            self.find(
                                Severity::Error,
                                "INVALID_SERVICE_PRINCIPAL_FORMAT",
                                format!(
                                    "service principal `{s}` should look like service.amazonaws.com"
                                ),
                                &vp,
                                off,
                            );
                        }
                        list.push(s.to_string());
                    }
                    target.extend(list);
                }
            }
            other => {
                self.fatal(
                    "INVALID_PRINCIPAL_FORMAT",
                    format!("{} must be \"*\" or an object with AWS, Federated, Service or CanonicalUser; found {}", if not { "NotPrincipal" } else { "Principal" }, other.type_name()),
                    "Invalid principal in policy",
                    path,
                    n.off,
                );
            }
        }
        if out.aws.iter().any(|a| a == "*") {
            out.any = true;
        }
        out
    }

    fn condition(&mut self, n: &Node, path: &str, effect: Effect) -> Vec<Cond> {
        let mut out = Vec::new();
        let Val::Obj(ops) = &n.v else {
            self.fatal(
                "DATA_TYPE_MISMATCH",
                format!(
                    "Condition must be an object of operators, found {}",
                    n.v.type_name()
                ),
                "Syntax errors in policy.",
                path,
                n.off,
            );
            return out;
        };
        if ops.is_empty() {
            self.find(
                Severity::Suggestion,
                "EMPTY_OBJECT_CONDITION",
                "the Condition object is empty; remove it".into(),
                path,
                n.off,
            );
        }
        for (opname, ooff, keys) in ops {
            let op_path = child_key(path, opname);
            let Some((op, negated, qual, if_exists)) = parse_operator(opname) else {
                self.fatal(
                    "INVALID_CONDITION_OPERATOR",
                    format!("`{opname}` is not a condition operator; use e.g. StringEquals, StringLike, ArnLike, IpAddress, DateLessThan, Bool, Null, optionally with ForAllValues:/ForAnyValue: and IfExists"),
                    "Syntax errors in policy.",
                    &op_path,
                    *ooff,
                );
                continue;
            };
            if op == Op::Null && if_exists {
                self.find(
                    Severity::Error,
                    "NULL_WITH_IF_EXISTS",
                    "the Null operator cannot be combined with IfExists; use Null alone".into(),
                    &op_path,
                    *ooff,
                );
            }
            if op == Op::Null && qual != Qual::None {
                let always = if qual == Qual::ForAll {
                    "always true"
                } else {
                    "always false"
                };
                self.find(Severity::Suggestion, "NULL_WITH_QUALIFIER", format!("{opname} is {always}; use Null without a ForAllValues/ForAnyValue qualifier"), &op_path, *ooff);
            }
            let Val::Obj(keys) = &keys.v else {
                self.fatal("DATA_TYPE_MISMATCH", format!("the value of operator {opname} must be an object of condition keys, found {}", keys.v.type_name()), "Syntax errors in policy.", &op_path, keys.off);
                continue;
            };
            let mut seen: Vec<String> = Vec::new();
            for (key, koff, vnode) in keys {
                let kpath = child_key(&op_path, key);
                let lower = key.to_lowercase();
                if seen.contains(&lower) {
                    self.find(Severity::Error, "DUPLICATE_KEYS_WITH_DIFFERENT_CASE", format!("condition key `{key}` appears twice under {opname} (key names are case-insensitive); merge the values into one key"), &kpath, *koff);
                }
                seen.push(lower.clone());
                if !key.contains(':') || key.starts_with(':') {
                    self.fatal(
                        "INVALID_CONDITION_KEY_FORMAT",
                        format!("condition key `{key}` must be prefixed by a service, e.g. aws:SourceIp"),
                        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
                        &kpath,
                        *koff,
                    );
                    continue;
                }
                // operator vs key checks
                if qual == Qual::None && known_multivalued(&lower) && op != Op::Null {
                    self.find(Severity::Error, "MISSING_QUALIFIER", format!("`{key}` is multivalued; use ForAnyValue:{opname} or ForAllValues:{opname}, a plain operator never matches a multivalued key"), &kpath, *koff);
                }
                if qual == Qual::ForAll && known_single_valued(&lower) && op != Op::Null {
                    self.find(Severity::SecurityWarning, "FORALLVALUES_WITH_SINGLE_VALUED_KEY", format!("ForAllValues with the single-valued key `{key}` is true when the key is absent; use {} without the qualifier", opname.trim_start_matches("ForAllValues:")), &kpath, *koff);
                }
                if let Some(fam) = key_family(&lower) {
                    let of = op_family(op);
                    let ok = of == "Null"
                        || fam == of
                        || (fam == "DateOrNumeric" && (of == "Date" || of == "Numeric"));
                    if !ok {
                        self.find(Severity::Warning, "TYPE_MISMATCH", format!("`{key}` is a {fam} key but {opname} compares as {of}; use a {fam} operator"), &kpath, *koff);
                    }
                }
                // values
                let raw: Vec<(String, usize, String)> = match &vnode.v {
                    Val::Arr(items) => {
                        if items.is_empty() {
                            self.find(
                                Severity::Suggestion,
                                "EMPTY_ARRAY_CONDITION",
                                format!("`{key}` has no values; the test never matches"),
                                &kpath,
                                vnode.off,
                            );
                        }
                        let mut r = Vec::new();
                        for (i, it) in items.iter().enumerate() {
                            if let Some(s) = self.scalar(it, &child_idx(&kpath, i)) {
                                r.push((s, it.off, child_idx(&kpath, i)));
                            }
                        }
                        r
                    }
                    _ => self
                        .scalar(vnode, &kpath)
                        .map(|s| vec![(s, vnode.off, kpath.clone())])
                        .unwrap_or_default(),
                };
                let vars_ok = matches!(op, Op::StrEq | Op::StrEqIc | Op::StrLike | Op::Arn);
                for (s, off, p) in &raw {
                    if self.version_2012 && s.contains("${") && !vars_ok {
                        self.find(Severity::Error, "INVALID_VARIABLE_FOR_OPERATOR", format!("policy variables cannot be used with {opname}; only String and ARN operators take variables"), p, *off);
                    }
                    if matches!(op, Op::StrEq | Op::StrEqIc) && s.contains(['*', '?']) {
                        self.find(Severity::Warning, "WILDCARD_WITHOUT_LIKE_OPERATOR", format!("`{s}` contains * or ?, which {opname} compares literally; use {} to match a pattern", if negated { "StringNotLike" } else { "StringLike" }), p, *off);
                    }
                }
                let v2012 = self.version_2012;
                let vals = match op {
                    Op::StrEq | Op::StrEqIc | Op::StrLike => Vals::Str(
                        raw.iter()
                            .map(|(s, off, p)| {
                                let (pat, issues) = pattern::compile(s, op == Op::StrLike, v2012);
                                self.var_issues(&issues, p, *off);
                                let lower = (op == Op::StrEqIc && !pat.has_var).then(|| pat.resolve(&crate::Context::new()).unwrap_or_default().to_lowercase());
                                StrVal { pat, lower }
                            })
                            .collect(),
                    ),
                    Op::Arn => Vals::Arn(
                        raw.iter()
                            .map(|(s, off, p)| {
                                let (pat, issues) = ArnPat::compile(s, v2012, false);
                                self.var_issues(&issues, p, *off);
                                if pat.segs.is_none() {
                                    self.find(Severity::Warning, "INVALID_ARN_FORMAT", format!("`{s}` is not an ARN with six fields, and {opname} compares the six fields one by one, so it matches nothing (not even with `*`); write every field, e.g. arn:*:*:*:*:*, or use Null to test that the key is present"), p, *off);
                                }
                                pat
                            })
                            .collect(),
                    ),
                    Op::Num(_) => {
                        for (s, off, p) in &raw {
                            if values::parse_num(s).is_none() {
                                self.find(Severity::Warning, "TYPE_MISMATCH_NUMBER", format!("`{s}` is not a number; {opname} needs an integer or decimal value"), p, *off);
                            }
                        }
                        Vals::Num(raw.iter().map(|(s, _, _)| values::NumVal::parse(s)).collect())
                    }
                    Op::Date(_) => Vals::Date(
                        raw.iter()
                            .map(|(s, off, p)| {
                                let d = values::parse_date(s);
                                if d.is_none() {
                                    self.find(Severity::Warning, "INVALID_DATE_VALUE", format!("`{s}` is not a date; use ISO 8601 (2026-01-31T00:00:00Z) or epoch seconds"), p, *off);
                                }
                                d
                            })
                            .collect(),
                    ),
                    Op::Bool | Op::Null => {
                        let bs = raw
                            .iter()
                            .map(|(s, off, p)| {
                                let b = if s.eq_ignore_ascii_case("true") { Some(true) } else if s.eq_ignore_ascii_case("false") { Some(false) } else { None };
                                if b.is_none() {
                                    self.find(Severity::Warning, "TYPE_MISMATCH_BOOLEAN", format!("`{s}` is not true or false; {opname} needs a boolean"), p, *off);
                                }
                                b
                            })
                            .collect();
                        if op == Op::Bool { Vals::Bool(bs) } else { Vals::Null(bs) }
                    }
                    Op::Binary => Vals::Binary(
                        raw.iter()
                            .map(|(s, off, p)| {
                                let d = base64::engine::general_purpose::STANDARD.decode(s).ok();
                                if d.is_none() {
                                    self.find(Severity::Warning, "TYPE_MISMATCH_BINARY", format!("`{s}` is not base64; BinaryEquals needs a base64 value"), p, *off);
                                }
                                d
                            })
                            .collect(),
                    ),
                    Op::Ip => Vals::Ip(
                        raw.iter()
                            .map(|(s, off, p)| {
                                let c = values::parse_cidr(s);
                                match c {
                                    None => self.find(Severity::Warning, "TYPE_MISMATCH_IP_RANGE", format!("`{s}` is not an IP address or CIDR range, e.g. 203.0.113.0/24 or 2001:db8::/32"), p, *off),
                                    Some(c) if c.is_private() && lower == "aws:sourceip" => self.find(
                                        Severity::Error,
                                        if negated { "PRIVATE_NOT_IP_ADDRESS" } else { "PRIVATE_IP_ADDRESS" },
                                        format!("`{s}` is a private range, but aws:SourceIp only holds public addresses; use aws:VpcSourceIp for private ranges"),
                                        p,
                                        *off,
                                    ),
                                    Some(_) => {}
                                }
                                c
                            })
                            .collect(),
                    ),
                };
                let _ = effect;
                out.push(Cond {
                    op,
                    negated,
                    qual,
                    if_exists,
                    op_name: opname.as_str().into(),
                    key: crate::context::KeyName::new(&lower),
                    key_name: key.as_str().into(),
                    vals,
                });
            }
        }
        out
    }

    fn scalar(&mut self, n: &Node, path: &str) -> Option<String> {
        match &n.v {
            Val::Str(s) => Some(s.clone()),
            Val::Num(s) => Some(s.clone()),
            Val::Bool(b) => Some(b.to_string()),
            other => {
                self.fatal(
                    "DATA_TYPE_MISMATCH",
                    format!(
                        "condition values must be strings, numbers or booleans, found {}",
                        other.type_name()
                    ),
                    "Syntax errors in policy.",
                    path,
                    n.off,
                );
                None
            }
        }
    }

    fn statement(&mut self, n: &Node, index: usize, path: &str) -> Option<Statement> {
        let Val::Obj(members) = &n.v else {
            self.fatal(
                "DATA_TYPE_MISMATCH",
                format!(
                    "each statement must be an object, found {}",
                    n.v.type_name()
                ),
                "Syntax errors in policy.",
                path,
                n.off,
            );
            return None;
        };
        let get = |k: &str| {
            members
                .iter()
                .find(|(mk, _, _)| mk == k)
                .map(|(_, off, v)| (*off, v))
        };
        for (k, off, _) in members {
            if !matches!(
                k.as_str(),
                "Sid"
                    | "Effect"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Principal"
                    | "NotPrincipal"
                    | "Condition"
            ) {
                self.fatal(
                    "INVALID_POLICY_ELEMENT",
                    format!("`{k}` is not a statement element; use Sid, Effect, Action/NotAction, Resource/NotResource, Principal/NotPrincipal or Condition (names are case-sensitive)"),
                    &format!("Syntax errors in policy. Unknown field {k}"),
                    &child_key(path, k),
                    *off,
                );
            }
        }
        let sid = match get("Sid") {
            None => None,
            Some((off, v)) => match &v.v {
                Val::Str(s) => {
                    let sp = child_key(path, "Sid");
                    if s.is_empty() {
                        self.find(
                            Severity::Suggestion,
                            "EMPTY_SID_VALUE",
                            "Sid is empty; remove it or give the statement a name".into(),
                            &sp,
                            off,
                        );
                    } else if self.ty != PolicyType::Resource
                        && !s.bytes().all(|c| c.is_ascii_alphanumeric())
                    {
                        self.fatal(
                            "UNSUPPORTED_SID",
                            format!("Sid `{s}` may contain only letters A-Z, a-z and digits 0-9"),
                            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
                            &sp,
                            off,
                        );
                    }
                    Some(Arc::<str>::from(s.as_str()))
                }
                other => {
                    self.fatal(
                        "DATA_TYPE_MISMATCH",
                        format!("Sid must be a string, found {}", other.type_name()),
                        "Syntax errors in policy.",
                        &child_key(path, "Sid"),
                        v.off,
                    );
                    None
                }
            },
        };
        let effect = match get("Effect") {
            None => {
                self.fatal(
                    "MISSING_EFFECT",
                    "the statement has no Effect; add \"Effect\": \"Allow\" or \"Deny\"".into(),
                    "Missing required field Effect",
                    path,
                    n.off,
                );
                None
            }
            Some((_, v)) => match &v.v {
                Val::Str(s) if s == "Allow" => Some(Effect::Allow),
                Val::Str(s) if s == "Deny" => Some(Effect::Deny),
                _ => {
                    self.fatal(
                        "INVALID_EFFECT",
                        "Effect must be exactly \"Allow\" or \"Deny\" (case-sensitive)".into(),
                        "Invalid effect: must be Allow or Deny",
                        &child_key(path, "Effect"),
                        v.off,
                    );
                    None
                }
            },
        };
        // Action / NotAction
        let (not_action, actions) = match (get("Action"), get("NotAction")) {
            (Some(_), Some((off, _))) => {
                self.fatal(
                    "UNSUPPORTED_ELEMENT_COMBINATION",
                    "a statement cannot have both Action and NotAction; keep one".into(),
                    "Syntax errors in policy.",
                    &child_key(path, "NotAction"),
                    off,
                );
                (false, Vec::new())
            }
            (None, None) => {
                self.fatal(
                    "MISSING_ACTION",
                    "the statement has neither Action nor NotAction; add one".into(),
                    "Policy statement must contain actions.",
                    path,
                    n.off,
                );
                (false, Vec::new())
            }
            (a, na) => {
                let (name, not, node) = match (a, na) {
                    (Some((_, v)), _) => ("Action", false, v),
                    (None, Some((_, v))) => ("NotAction", true, v),
                    (None, None) => return None,
                };
                let p = child_key(path, name);
                let list = self.strings(node, &p, "Action");
                let mut out = Vec::new();
                for (s, off, ap) in list {
                    if let Some(pat) = self.action(s, &ap, off) {
                        out.push(pat);
                    }
                }
                (not, out)
            }
        };
        // Resource / NotResource
        let res_el = match (get("Resource"), get("NotResource")) {
            (Some(_), Some((off, _))) => {
                self.fatal(
                    "UNSUPPORTED_ELEMENT_COMBINATION",
                    "a statement cannot have both Resource and NotResource; keep one".into(),
                    "Syntax errors in policy.",
                    &child_key(path, "NotResource"),
                    off,
                );
                None
            }
            (Some((off, v)), None) => Some(("Resource", false, off, v)),
            (None, Some((off, v))) => Some(("NotResource", true, off, v)),
            (None, None) => None,
        };
        let resources = match (res_el, self.ty) {
            (Some((name, _, off, _)), PolicyType::Trust) => {
                self.fatal(
                    "ROLE_TRUST_POLICY_SYNTAX_ERROR_RESOURCE",
                    format!("a role trust policy cannot have {name}; the resource is the role itself, remove the element"),
                    &format!("Has prohibited field {name}."),
                    &child_key(path, name),
                    off,
                );
                None
            }
            (None, PolicyType::Trust) => None,
            (None, _) => {
                self.fatal("MISSING_RESOURCE", "the statement has neither Resource nor NotResource; add one, e.g. \"Resource\": \"*\"".into(), "Policy statement must contain resources.", path, n.off);
                None
            }
            (Some((name, not, _, v)), _) => {
                let p = child_key(path, name);
                let list = self.strings(v, &p, "Resource");
                let mut out = Vec::new();
                for (s, off, rp) in list {
                    if let Some(r) = self.resource(s, &rp, off) {
                        out.push(r);
                    }
                }
                Some((not, out))
            }
        };
        // Principal / NotPrincipal
        let pr_el = match (get("Principal"), get("NotPrincipal")) {
            (Some(_), Some((off, _))) => {
                self.fatal(
                    "UNSUPPORTED_ELEMENT_COMBINATION",
                    "a statement cannot have both Principal and NotPrincipal; keep one".into(),
                    "Syntax errors in policy.",
                    &child_key(path, "NotPrincipal"),
                    off,
                );
                None
            }
            (Some((off, v)), None) => Some(("Principal", false, off, v)),
            (None, Some((off, v))) => Some(("NotPrincipal", true, off, v)),
            (None, None) => None,
        };
        let principal = match (pr_el, self.ty) {
            (
                Some((name, _, off, _)),
                PolicyType::Identity | PolicyType::Session | PolicyType::Guardrail,
            ) => {
                self.fatal(
                    "UNSUPPORTED_ELEMENT_PRINCIPAL",
                    format!("{name} is not allowed in {} policies; the principal is whoever the policy is attached to, remove the element", self.ty),
                    "Policy document should not specify a principal.",
                    &child_key(path, name),
                    off,
                );
                None
            }
            (Some(("NotPrincipal", _, off, _)), PolicyType::Trust) => {
                self.fatal(
                    "ROLE_TRUST_POLICY_SYNTAX_ERROR_NOTPRINCIPAL",
                    "a role trust policy cannot use NotPrincipal; name the allowed principals in Principal".into(),
                    "Has prohibited field NotPrincipal.",
                    &child_key(path, "NotPrincipal"),
                    off,
                );
                None
            }
            (None, PolicyType::Trust | PolicyType::Resource) => {
                self.fatal("MISSING_PRINCIPAL", "resource-based and trust policy statements need a Principal; add one, e.g. {\"AWS\": \"arn:aws:iam::111122223333:root\"}".into(), "Missing required field Principal", path, n.off);
                None
            }
            (None, _) => None,
            (Some((name, not, off, v)), _) => {
                let p = child_key(path, name);
                let pr = self.principal(v, &p, not);
                if not && effect == Some(Effect::Allow) {
                    self.find(
                        Severity::SecurityWarning,
                        "ALLOW_WITH_NOT_PRINCIPAL",
                        "Allow with NotPrincipal grants access to everyone not listed and is not supported by AWS; use Principal with the principals to allow".into(),
                        &p,
                        off,
                    );
                }
                Some((not, pr))
            }
        };
        let conditions = match get("Condition") {
            Some((_, v)) => self.condition(
                v,
                &child_key(path, "Condition"),
                effect.unwrap_or(Effect::Allow),
            ),
            None => Vec::new(),
        };
        if self.ty == PolicyType::Trust
            && effect == Some(Effect::Allow)
            && let Some((false, pr)) = &principal
        {
            self.oidc_checks(pr, &conditions, (not_action, &actions), path, n.off);
            self.wildcard_trust_check(pr, &conditions, path, n.off);
        }
        Some(Statement {
            sid,
            index,
            effect: effect?,
            not_action,
            actions,
            resources,
            principal,
            conditions,
        })
    }

    /// A SECURITY_WARNING for a trust statement that allows every principal (`"*"` or
    /// `{"AWS": "*"}`): every session of every account, and every identity of every provider,
    /// whose token then needs no subject check. A positive condition on who the principal is
    /// (its ARN, account or organization) narrows it enough; keyless sets no organization keys,
    /// so one on them admits no one, which is safe, and the message does not suggest them.
    fn wildcard_trust_check(&mut self, pr: &Principals, conds: &[Cond], path: &str, off: usize) {
        if !(pr.any || pr.aws.iter().any(|a| a == "*")) {
            return;
        }
        let narrowed = conds
            .iter()
            .any(|c| !c.negated && !c.if_exists && c.op != Op::Null && narrows_principal(c));
        if !narrowed {
            self.find(
                Severity::SecurityWarning,
                "WILDCARD_PRINCIPAL_IN_TRUST_POLICY",
                "this trust policy lets every principal assume the role (every session of every account, and every identity of every OIDC provider with no subject check): name the principals, e.g. {\"AWS\": \"arn:aws:iam::111122223333:role/ci\"} or {\"Federated\": <provider ARN>} with a sub condition, or add a StringEquals condition on aws:PrincipalAccount or an ArnLike condition on aws:PrincipalArn".into(),
                &child_key(path, "Principal"),
                off,
            );
        }
    }

    /// SECURITY_WARNINGs for OIDC trust without a subject check, and too broad GitHub subjects.
    fn oidc_checks(
        &mut self,
        pr: &Principals,
        conds: &[Cond],
        (not_action, actions): (bool, &[Pat]),
        path: &str,
        off: usize,
    ) {
        let ctx = crate::Context::new();
        // A NotAction statement grants web identity unless it lists it.
        let named = actions
            .iter()
            .any(|a| a.matches("sts:assumerolewithwebidentity", false, &ctx));
        if named == not_action {
            return;
        }
        for fed in &pr.federated {
            let Some(host) = fed
                .split_once(":oidc-provider/")
                .map(|(_, h)| h.to_lowercase())
            else {
                continue;
            };
            let positive = |suffix: &str| {
                let key = format!("{host}:{suffix}");
                conds
                    .iter()
                    .find(|c| *c.key == *key && !c.negated && c.op != Op::Null && !c.if_exists)
            };
            let github = host == "token.actions.githubusercontent.com";
            // A subject pattern that matches every subject (`*`, `?*`, `${…:sub}` itself) is no
            // subject check. GitHub subjects are judged below (OVERLY_BROAD_GITHUB_SUB).
            let sub = positive("sub").filter(|c| {
                github
                    || !matches!(&c.vals, Vals::Str(vs)
                        if vs.iter().any(|v| matches_every_subject(&v.pat)))
            });
            // A repository claim matched with a wildcard in the repository does not restrict
            // the repository: `StringLike repository "*"` is no condition at all, nor is one
            // compared with a variable, which the token itself fills in.
            let naming = |suffix: &'static str| {
                positive(suffix).filter(|c| {
                    !matches!(&c.vals, Vals::Str(vs)
                        if vs.iter().any(|v| github_repo_claim_is_broad(suffix, &v.pat)))
                })
            };
            let repo = if github {
                naming("repository")
                    .or_else(|| naming("repository_id"))
                    .or_else(|| naming("job_workflow_ref"))
            } else {
                None
            };
            match (sub, repo) {
                (None, None) if github => self.find(
                    Severity::SecurityWarning,
                    "MISSING_GITHUB_REPO_CONDITION_KEY",
                    format!("this trust policy lets any GitHub repository assume the role: add a StringEquals or StringLike condition on {host}:sub (e.g. \"repo:ORG/REPO:ref:refs/heads/main\") or {host}:repository"),
                    &child_key(path, "Condition"),
                    off,
                ),
                (None, None) => self.find(
                    Severity::SecurityWarning,
                    "MISSING_SUB_CONDITION",
                    format!("this trust policy lets any identity of {host} assume the role: add a StringEquals condition on {host}:sub naming the allowed subject"),
                    &child_key(path, "Condition"),
                    off,
                ),
                _ => {}
            }
            if let Some(c) = sub.filter(|_| github)
                && let Vals::Str(vs) = &c.vals
            {
                {
                    for v in vs {
                        if github_sub_is_broad(&v.pat) {
                            let text = v.pat.describe();
                            self.find(
                                Severity::SecurityWarning,
                                "OVERLY_BROAD_GITHUB_SUB",
                                format!("`{text}` matches every repository of the organization (or all of GitHub): a wildcard or a policy variable (which the token fills in) stands where the repository should be; name the repository, e.g. repo:ORG/REPO:ref:refs/heads/main"),
                                &child_key(&child_key(path, "Condition"), &c.op_name),
                                off,
                            );
                            continue;
                        }
                        let Some(text) = v.pat.resolve(&ctx) else {
                            continue;
                        };
                        if c.op == Op::StrLike && text.ends_with(":*") {
                            self.find(
                                Severity::Warning,
                                "SPECIFIC_GITHUB_REPO_AND_BRANCH_RECOMMENDED",
                                format!("`{text}` allows every branch, tag, environment and pull request of the repository; name the branch or environment, e.g. repo:ORG/REPO:ref:refs/heads/main"),
                                &child_key(&child_key(path, "Condition"), &c.op_name),
                                off,
                            );
                        }
                    }
                }
            }
            // gitlab.com's subjects are shared by every project on gitlab.com, as GitHub's
            // are by every repository: `project_path:*` is no project check.
            if host == "gitlab.com"
                && let Some(c) = sub
                && let Vals::Str(vs) = &c.vals
                && let Some(v) = vs.iter().find(|v| gitlab_sub_is_broad(&v.pat))
            {
                let text = v.pat.describe();
                self.find(
                    Severity::SecurityWarning,
                    "OVERLY_BROAD_GITLAB_SUB",
                    format!("`{text}` matches projects of other gitlab.com groups or users: a wildcard or a policy variable stands where the project should be; name the project, e.g. project_path:GROUP/PROJECT:ref_type:branch:ref:main"),
                    &child_key(&child_key(path, "Condition"), &c.op_name),
                    off,
                );
            }
        }
    }
}

/// [`github_sub_is_broad`] for gitlab.com subjects, `project_path:GROUP[/SUB…]/PROJECT:…`: the
/// fixed head must hold `project_path:…:` entirely.
fn gitlab_sub_is_broad(pattern: &Pat) -> bool {
    let (head, open) = pattern.fixed_head();
    if !open {
        return false;
    }
    match head.strip_prefix("project_path:") {
        Some(rest) => !rest.contains(':'),
        None => "project_path:".starts_with(head),
    }
}

/// Whether a GitHub `sub` pattern can match more than one repository: its fixed head (the
/// text before the first wildcard or policy variable) must hold `repo:ORG/REPO:` entirely. A
/// head that stops short of it (`r*`, `rep?`, `repo:octo/app*`, which also matches
/// `octo/app-fork`, `repo:${…:repository_owner}/app`) matches other repositories.
/// Customized subject templates (`repository_owner_id:…`) are not judged.
fn github_sub_is_broad(pattern: &Pat) -> bool {
    let (head, open) = pattern.fixed_head();
    if !open {
        return false;
    }
    match head.strip_prefix("repo:") {
        Some(rest) => !rest.contains(':'),
        None => "repo:".starts_with(head),
    }
}

/// Whether a condition names who the principal is closely enough for a trust policy's
/// wildcard principal: every value of `aws:PrincipalAccount` fixed, every `aws:PrincipalArn`
/// fixed up to its account (`arn:aws:iam::111122223333:` before any wildcard or variable), so
/// `StringLike aws:PrincipalArn "*"` narrows nothing. keyless sets no organization keys, so a
/// condition on them admits no one and counts.
fn narrows_principal(c: &Cond) -> bool {
    let patterns: Vec<&Pat> = match &c.vals {
        Vals::Str(vs) => vs.iter().map(|v| &v.pat).collect(),
        Vals::Arn(vs) => vs.iter().map(|v| &v.whole).collect(),
        _ => return false,
    };
    let fixed_account = |p: &Pat| {
        let (head, open) = p.fixed_head();
        let mut fields = head.split(':');
        !open || (head.matches(':').count() >= 5 && fields.nth(4).is_some_and(|a| !a.is_empty()))
    };
    match &*c.key {
        "aws:principalaccount" => patterns.iter().all(|p| !p.fixed_head().1),
        "aws:principalarn" => patterns.iter().all(|p| fixed_account(p)),
        "aws:principalorgid" | "aws:principalorgpaths" => true,
        _ => false,
    }
}

/// Whether a subject pattern starts with a wildcard or a policy variable, so that it matches
/// (nearly) every subject: nothing fixed comes before the first open piece.
fn matches_every_subject(pattern: &Pat) -> bool {
    let (head, open) = pattern.fixed_head();
    open && head.is_empty()
}

/// Whether a pattern for a GitHub repository claim leaves the repository open: any wildcard or
/// variable in `repository` or `repository_id`, one before `ORG/REPO/` in `job_workflow_ref`.
fn github_repo_claim_is_broad(claim: &str, pattern: &Pat) -> bool {
    let (head, open) = pattern.fixed_head();
    if !open {
        return false;
    }
    match claim {
        "job_workflow_ref" => head.matches('/').count() < 2,
        _ => true,
    }
}

/// Parses and compiles, collecting every finding.
pub(crate) fn build(src: &str, ty: PolicyType, max_size: usize) -> Built {
    let mut b = B {
        src,
        ty,
        fatal: None,
        findings: Vec::new(),
        version_2012: false,
    };
    let done = |b: B<'_>, policy| Built {
        policy,
        fatal: b.fatal,
        findings: b.findings,
    };
    // character set
    if let Some((off, c)) = src
        .char_indices()
        .find(|(_, c)| !matches!(*c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    {
        b.fatal_kind(
            ParseErrorKind::InvalidCharacter,
            "INVALID_CHARACTER",
            format!("character U+{:04X} is not allowed; policies may contain only TAB, LF, CR and U+0020-U+00FF", u32::from(c)),
            "The policy contains characters that are not allowed.",
            "$",
            off,
        );
        return done(b, None);
    }
    let size = policy_size(src);
    if size > max_size {
        b.fatal_kind(
            ParseErrorKind::TooLarge,
            "POLICY_SIZE_EXCEEDS_QUOTA",
            format!("the policy has {size} characters (whitespace not counted) but a {ty} policy may have at most {max_size}; split it or remove statements"),
            &format!("Cannot exceed quota for PolicySize: {max_size}"),
            "$",
            0,
        );
        return done(b, None);
    }
    let root = match json::parse(src) {
        Ok(r) => r,
        Err(e) => {
            let (kind, code) = if e.duplicate {
                (ParseErrorKind::DuplicateKey, "DUPLICATE_KEY")
            } else {
                (ParseErrorKind::Json, "JSON_SYNTAX_ERROR")
            };
            let aws = if e.duplicate {
                "Syntax errors in policy. Duplicate key."
            } else {
                "This policy contains invalid Json"
            };
            b.fatal_kind(kind, code, e.message, aws, &e.path, e.off);
            return done(b, None);
        }
    };
    let Val::Obj(top) = &root.v else {
        b.fatal(
            "DATA_TYPE_MISMATCH",
            format!(
                "a policy must be a JSON object, found {}",
                root.v.type_name()
            ),
            "Syntax errors in policy.",
            "$",
            root.off,
        );
        return done(b, None);
    };
    let mut id = None;
    let mut version = None;
    let mut stmt_node = None;
    for (k, off, v) in top {
        match k.as_str() {
            "Version" => match &v.v {
                Val::Str(s) if s == "2012-10-17" || s == "2008-10-17" => version = Some(s.clone()),
                _ => b.fatal("INVALID_VERSION", "Version must be \"2012-10-17\" (or the legacy \"2008-10-17\")".into(), "The policy failed legacy parsing", "$.Version", v.off),
            },
            "Id" => match &v.v {
                Val::Str(s) => id = Some(s.clone()),
                other => b.fatal("DATA_TYPE_MISMATCH", format!("Id must be a string, found {}", other.type_name()), "Syntax errors in policy.", "$.Id", v.off),
            },
            "Statement" => stmt_node = Some(v),
            _ => b.fatal(
                "INVALID_POLICY_ELEMENT",
                format!("`{k}` is not a policy element; use Version, Id and Statement (names are case-sensitive)"),
                &format!("Syntax errors in policy. Unknown field {k}"),
                &child_key("$", k),
                *off,
            ),
        }
    }
    b.version_2012 = version.as_deref() == Some("2012-10-17");
    match version.as_deref() {
        None => b.find(Severity::Warning, "MISSING_VERSION", "the policy has no Version, so policy variables are literal text; add \"Version\": \"2012-10-17\"".into(), "$", root.off),
        Some("2008-10-17") if src.contains("${") => b.find(
            Severity::Error,
            "VARIABLE_UNSUPPORTED_IN_VERSION",
            "Version 2008-10-17 treats ${...} as literal text; use \"Version\": \"2012-10-17\" for policy variables".into(),
            "$.Version",
            root.off,
        ),
        _ => {}
    }
    let Some(sn) = stmt_node else {
        b.fatal(
            "MISSING_STATEMENT",
            "the policy has no Statement; add a Statement array".into(),
            "Syntax errors in policy. Missing required field Statement",
            "$",
            root.off,
        );
        return done(b, None);
    };
    let items: Vec<(&Node, String)> = match &sn.v {
        Val::Arr(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (n, child_idx("$.Statement", i)))
            .collect(),
        Val::Obj(_) => vec![(sn, "$.Statement".to_string())],
        other => {
            b.fatal(
                "DATA_TYPE_MISMATCH",
                format!(
                    "Statement must be an object or an array of objects, found {}",
                    other.type_name()
                ),
                "Syntax errors in policy.",
                "$.Statement",
                sn.off,
            );
            return done(b, None);
        }
    };
    if items.is_empty() {
        b.fatal(
            "MISSING_STATEMENT",
            "Statement is empty; add at least one statement".into(),
            "Syntax errors in policy.",
            "$.Statement",
            sn.off,
        );
    }
    let mut statements = Vec::new();
    let mut sids: Vec<Arc<str>> = Vec::new();
    for (i, (n, p)) in items.iter().enumerate() {
        if let Some(st) = b.statement(n, i, p) {
            if let Some(sid) = &st.sid {
                if !sid.is_empty() && sids.contains(sid) {
                    let sp = child_key(p, "Sid");
                    if ty == PolicyType::Resource {
                        b.find(
                            Severity::Warning,
                            "UNIQUE_SIDS_RECOMMENDED",
                            format!("Sid `{sid}` is used twice; give each statement its own Sid"),
                            &sp,
                            n.off,
                        );
                    } else {
                        b.fatal(
                            "UNIQUE_SIDS_REQUIRED",
                            format!("Sid `{sid}` is used twice; give each statement its own Sid"),
                            "Statement IDs (SID) in a single policy must be unique.",
                            &sp,
                            n.off,
                        );
                    }
                }
                sids.push(sid.clone());
            }
            statements.push(st);
        }
    }
    let policy = Policy {
        label: Arc::from(ty.default_label()),
        policy_type: ty,
        version_2012: b.version_2012,
        id,
        statements,
        principal_ids: Vec::new(),
    };
    done(b, Some(policy))
}

/// Validates a policy document, returning Access-Analyzer-style findings sorted by position.
/// Grammar errors that [`Policy::parse`] rejects appear as `ERROR` findings.
pub fn validate(json: &str, policy_type: PolicyType) -> Vec<Finding> {
    validate_within(json, policy_type, policy_type.max_size())
}

/// [`validate`] with another size limit than the type's (see [`Policy::parse_within`]).
pub fn validate_within(json: &str, policy_type: PolicyType, max_size: usize) -> Vec<Finding> {
    let mut f = build(json, policy_type, max_size).findings;
    f.sort_by(|a, b| {
        (a.line, a.column)
            .cmp(&(b.line, b.column))
            .then(a.severity.cmp(&b.severity))
    });
    f
}
