//! IAM policy extraction for `lint`: standalone JSON, CloudFormation (JSON and YAML) and
//! Terraform (`jsonencode(...)` and heredoc), checked with the `keyless-policy` validator.

use keyless_policy::PolicyType;
use serde_json::{Map, Value};

use crate::finding::{Finding, Severity};
use crate::lint::{FileKind, classify, make};
use crate::rules;
use crate::yaml::{self, Node};

/// A policy document found in a file.
#[derive(Debug, Clone)]
pub struct ExtractedPolicy {
    /// The policy as JSON text.
    pub json: String,
    /// How it is used.
    pub policy_type: PolicyType,
    /// 1-based line where the document starts in the file.
    pub line: usize,
    /// When true, `json` is the file's own text starting at `line`, so validator lines map 1:1
    /// (offset by `line - 1`); otherwise validator findings are reported at `line`.
    pub verbatim: bool,
    /// Where it came from (`standalone`, `CloudFormation Resource.Property`, `Terraform attr`).
    pub origin: String,
}

/// A role setting found next to policies (`MaxSessionDuration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSetting {
    /// Seconds.
    pub seconds: u64,
    /// 1-based line.
    pub line: usize,
    /// Where it came from.
    pub origin: String,
}

/// A resource that creates an IAM access key (`aws_iam_access_key`, `AWS::IAM::AccessKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyResource {
    /// 1-based line.
    pub line: usize,
    /// Where it came from (`Terraform aws_iam_access_key.ci`, `CloudFormation CiKey (…)`).
    pub origin: String,
}

/// Everything lint checks that a template holds.
#[derive(Debug, Default)]
pub struct Extracted {
    /// Policy documents.
    pub policies: Vec<ExtractedPolicy>,
    /// MaxSessionDuration settings.
    pub sessions: Vec<SessionSetting>,
    /// Access key resources.
    pub access_keys: Vec<AccessKeyResource>,
    /// Why the file could not be read, when it could not.
    pub error: Option<String>,
}

/// Guesses a standalone policy's type from its content.
#[must_use]
pub fn guess_type(v: &Value) -> PolicyType {
    let stmts: Vec<&Value> = match v.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    };
    let actions_of = |s: &Value| -> Vec<String> {
        match s.get("Action") {
            Some(Value::String(a)) => vec![a.to_ascii_lowercase()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                .collect(),
            _ => Vec::new(),
        }
    };
    let trust = stmts.iter().any(|s| {
        s.get("Principal").is_some()
            && actions_of(s)
                .iter()
                .any(|a| a.starts_with("sts:assumerole") || a == "sts:tagsession")
    });
    if trust {
        PolicyType::Trust
    } else if stmts
        .iter()
        .any(|s| s.get("Principal").is_some() || s.get("NotPrincipal").is_some())
    {
        PolicyType::Resource
    } else {
        PolicyType::Identity
    }
}

fn line_of(content: &str, byte: usize) -> usize {
    content.as_bytes()[..byte.min(content.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

/// Finds the line of the first occurrence of `needle` at or after `from`.
fn find_line(content: &str, from: usize, needle: &str) -> (usize, usize) {
    match content.get(from..).and_then(|s| s.find(needle)) {
        Some(p) => (line_of(content, from + p), from + p),
        None => (line_of(content, from), from),
    }
}

/// What CloudFormation's `Fn::Sub` makes of a template, as far as lint needs: every `${Name}`
/// is the template's own substitution (a parameter, a resource, a pseudo parameter), not an
/// IAM policy variable, so it becomes fixed text (pseudo parameters a plausible value);
/// `${!Text}` is the escape for a literal `${Text}`, which stays a policy variable.
#[must_use]
pub fn cfn_sub(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(p) = rest.find("${") {
        out.push_str(&rest[..p]);
        let after = &rest[p + 2..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[p..]);
            return out;
        };
        let name = &after[..close];
        match name.strip_prefix('!') {
            Some(literal) => {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            }
            None => out.push_str(match name {
                "AWS::AccountId" => "000000000000",
                "AWS::Region" => "us-east-1",
                "AWS::Partition" => "aws",
                "AWS::URLSuffix" => "amazonaws.com",
                other => other,
            }),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn cfn_intrinsic_to_string(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    if o.len() != 1 {
        return None;
    }
    let (k, inner) = o.iter().next()?;
    if k == "Fn::Sub" {
        // `"template"` or `["template", {vars}]` (variables are substituted by name too).
        let template = match inner {
            Value::String(t) => Some(t.as_str()),
            Value::Array(a) => a.first().and_then(Value::as_str),
            _ => None,
        };
        if let Some(t) = template {
            return Some(cfn_sub(t));
        }
    }
    (k == "Ref" || k.starts_with("Fn::")).then(|| format!("${{{k}:{}}}", inner))
}

/// Replaces CloudFormation intrinsics (`{"Ref": ...}`, `{"Fn::Sub": ...}`) with `${...}` placeholders.
fn flatten_intrinsics(v: &Value) -> Value {
    if let Some(s) = cfn_intrinsic_to_string(v) {
        return Value::String(s);
    }
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), flatten_intrinsics(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(flatten_intrinsics).collect()),
        other => other.clone(),
    }
}

/// Converts a YAML node (CloudFormation) to JSON; short-form tags are dropped by the parser, so
/// `!Sub x` becomes the string `x`; scalars stay strings except plain integers and booleans.
fn node_to_json(n: &Node) -> Value {
    match n {
        // Short-form intrinsics (`!Ref X`, `!GetAtt [X, Arn]`, `!If [...]`) become the same
        // `${...}` placeholders as their long forms; `!Sub` becomes its template with the
        // substitutions as fixed text (see [`cfn_sub`]).
        Node::Scalar {
            value,
            tag: Some(t),
            ..
        } if t == "!Sub" => Value::String(cfn_sub(value)),
        Node::Scalar {
            value,
            tag: Some(t),
            ..
        } if t.starts_with('!') => Value::String(format!("${{{t}:{value}}}")),
        Node::Seq {
            items,
            tag: Some(t),
            ..
        } if t.starts_with('!') => {
            let inner = Value::Array(items.iter().map(node_to_json).collect());
            match (t.as_str(), items.first()) {
                ("!Sub", Some(Node::Scalar { value, .. })) => Value::String(cfn_sub(value)),
                _ => Value::String(format!("${{{t}:{inner}}}")),
            }
        }
        Node::Scalar { value, .. } => {
            if let Ok(i) = value.parse::<i64>() {
                Value::from(i)
            } else if value == "true" || value == "false" {
                Value::Bool(value == "true")
            } else {
                Value::String(value.clone())
            }
        }
        Node::Seq { items, .. } => Value::Array(items.iter().map(node_to_json).collect()),
        Node::Map { entries, .. } => {
            let mut m = Map::new();
            for (k, v) in entries {
                m.insert(k.as_str().unwrap_or("").to_string(), node_to_json(v));
            }
            Value::Object(m)
        }
        Node::Alias { .. } => Value::String("${alias}".into()),
    }
}

fn cfn_docs_in_resource(
    rtype: &str,
    props: &Value,
    mut push: impl FnMut(&str, PolicyType, &Value),
) {
    if let Some(d) = props.get("AssumeRolePolicyDocument") {
        push("AssumeRolePolicyDocument", PolicyType::Trust, d);
    }
    if let Some(Value::Array(ps)) = props.get("Policies") {
        for p in ps {
            if let Some(d) = p.get("PolicyDocument") {
                push("Policies.PolicyDocument", PolicyType::Identity, d);
            }
        }
    }
    if let Some(d) = props.get("PolicyDocument") {
        let t = if rtype.ends_with("::Policy") && rtype.starts_with("AWS::IAM")
            || rtype == "AWS::IAM::ManagedPolicy"
        {
            PolicyType::Identity
        } else {
            PolicyType::Resource
        };
        push("PolicyDocument", t, d);
    }
    if rtype == "AWS::Organizations::Policy"
        && let Some(d) = props.get("Content")
    {
        push("Content", PolicyType::Guardrail, d);
    }
    if let Some(d) = props.get("KeyPolicy") {
        push("KeyPolicy", PolicyType::Resource, d);
    }
}

/// Extracts policies, MaxSessionDuration settings and access key resources from a
/// CloudFormation template (JSON or YAML).
#[must_use]
pub fn extract_cloudformation(content: &str) -> Extracted {
    let trimmed = content.trim_start();
    // JSON: values without positions; YAML: a tree with lines.
    let (resources, yaml_lines): (Vec<(String, Value, usize)>, bool) = if trimmed.starts_with('{') {
        let v: Value = match serde_json::from_str(content) {
            Ok(v) => v,
            Err(e) => {
                return Extracted {
                    error: Some(format!("CloudFormation JSON: {e}")),
                    ..Extracted::default()
                };
            }
        };
        let list = v.get("Resources").and_then(Value::as_object).map(|o| {
            o.iter()
                .map(|(k, r)| {
                    let (l, _) = find_line(content, 0, &format!("\"{k}\""));
                    (k.clone(), r.clone(), l)
                })
                .collect()
        });
        (list.unwrap_or_default(), false)
    } else {
        let docs = match yaml::parse(content) {
            Ok(d) => d,
            Err(e) => {
                return Extracted {
                    error: Some(format!("CloudFormation {e}")),
                    ..Extracted::default()
                };
            }
        };
        let mut list = Vec::new();
        for d in &docs {
            for (k, r) in d.get("Resources").map(Node::entries).unwrap_or_default() {
                list.push((
                    k.as_str().unwrap_or("?").to_string(),
                    node_to_json(r),
                    k.line(),
                ));
            }
        }
        (list, true)
    };
    let _ = yaml_lines;
    let mut policies = Vec::new();
    let mut sessions = Vec::new();
    let mut access_keys = Vec::new();
    for (name, res, res_line) in resources {
        let rtype = res
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if rtype == "AWS::IAM::AccessKey" {
            access_keys.push(AccessKeyResource {
                line: res_line,
                origin: format!("CloudFormation {name} ({rtype})"),
            });
        }
        let Some(props) = res.get("Properties") else {
            continue;
        };
        let start_byte = content
            .lines()
            .take(res_line.saturating_sub(1))
            .map(|l| l.len() + 1)
            .sum::<usize>();
        cfn_docs_in_resource(&rtype, props, |prop, t, doc| {
            let key = prop.rsplit('.').next().unwrap_or(prop);
            let (line, _) = find_line(content, start_byte, key);
            let mut doc = match doc {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::String(s.clone())),
                other => flatten_intrinsics(other),
            };
            resolve_federated(&mut doc);
            policies.push(ExtractedPolicy {
                json: serde_json::to_string_pretty(&doc).unwrap_or_default(),
                policy_type: t,
                line,
                verbatim: false,
                origin: format!("CloudFormation {name}.{prop}"),
            });
        });
        if rtype == "AWS::IAM::Role" {
            let secs = props.get("MaxSessionDuration").and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            });
            if let Some(seconds) = secs {
                let (line, _) = find_line(content, start_byte, "MaxSessionDuration");
                sessions.push(SessionSetting {
                    seconds,
                    line,
                    origin: format!("CloudFormation {name}"),
                });
            }
        }
    }
    Extracted {
        policies,
        sessions,
        access_keys,
        error: None,
    }
}

// ---- Terraform ----

struct Hcl<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Hcl<'_> {
    fn ws(&mut self, newlines: bool) {
        loop {
            match self.s.get(self.i) {
                Some(b' ' | b'\t' | b'\r') => self.i += 1,
                Some(b'\n') if newlines => self.i += 1,
                Some(b'#') => self.skip_line(),
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'/') => self.skip_line(),
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'*') => {
                    self.i += 2;
                    while self.i < self.s.len()
                        && !(self.s[self.i] == b'*' && self.s.get(self.i + 1) == Some(&b'/'))
                    {
                        self.i += 1;
                    }
                    self.i = (self.i + 2).min(self.s.len());
                }
                _ => break,
            }
        }
    }
    fn skip_line(&mut self) {
        while self.i < self.s.len() && self.s[self.i] != b'\n' {
            self.i += 1;
        }
    }
    fn string(&mut self) -> Option<String> {
        // at opening quote
        self.i += 1;
        let mut out = Vec::new();
        let mut interp = 0usize;
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                b'$' if self.s.get(self.i) == Some(&b'{') => {
                    interp += 1;
                    out.push(c);
                }
                b'}' if interp > 0 => {
                    interp -= 1;
                    out.push(c);
                }
                b'"' if interp == 0 => return Some(String::from_utf8_lossy(&out).into_owned()),
                _ => out.push(c),
            }
        }
        None
    }
    /// A bare expression (reference, function call, arithmetic) up to a separator, as text.
    fn bare(&mut self) -> String {
        let start = self.i;
        let mut nest = 0i32;
        while let Some(&c) = self.s.get(self.i) {
            match c {
                b'(' | b'[' | b'{' => nest += 1,
                b')' | b']' | b'}' if nest > 0 => nest -= 1,
                b',' | b'\n' | b')' | b']' | b'}' if nest == 0 => break,
                b'"' => {
                    let _ = self.string();
                    continue;
                }
                _ => {}
            }
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i])
            .trim()
            .to_string()
    }
    fn value(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        self.ws(true);
        let v = match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut m = Map::new();
                loop {
                    self.ws(true);
                    match *self.s.get(self.i)? {
                        b'}' => {
                            self.i += 1;
                            break;
                        }
                        b',' => {
                            self.i += 1;
                            continue;
                        }
                        _ => {}
                    }
                    let key = if self.s[self.i] == b'"' {
                        self.string()?
                    } else {
                        let st = self.i;
                        while self
                            .s
                            .get(self.i)
                            .is_some_and(|c| c.is_ascii_alphanumeric() || b"_-:.".contains(c))
                        {
                            self.i += 1;
                        }
                        if st == self.i {
                            return None;
                        }
                        String::from_utf8_lossy(&self.s[st..self.i]).into_owned()
                    };
                    self.ws(false);
                    match self.s.get(self.i) {
                        Some(b'=' | b':') => self.i += 1,
                        _ => return None,
                    }
                    let v = self.value()?;
                    m.insert(key, v);
                }
                Value::Object(m)
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                loop {
                    self.ws(true);
                    match *self.s.get(self.i)? {
                        b']' => {
                            self.i += 1;
                            break;
                        }
                        b',' => {
                            self.i += 1;
                            continue;
                        }
                        _ => a.push(self.value()?),
                    }
                }
                Value::Array(a)
            }
            b'"' => Value::String(self.string()?),
            _ => {
                let t = self.bare();
                if t.is_empty() {
                    return None;
                }
                match t.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => t
                        .parse::<i64>()
                        .map_or_else(|_| Value::String(format!("${{{t}}}")), Value::from),
                }
            }
        };
        self.depth -= 1;
        Some(v)
    }
}

impl Hcl<'_> {
    /// A block body at `{`: attributes (`name = value`) as values, nested blocks (`name { … }`)
    /// as arrays of objects under their type. Labelled nested blocks (`dynamic "x" { … }`) are
    /// skipped: their content is only known when Terraform expands them.
    fn block(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > 64 || self.s.get(self.i) != Some(&b'{') {
            return None;
        }
        self.i += 1;
        let mut m = Map::new();
        loop {
            self.ws(true);
            if *self.s.get(self.i)? == b'}' {
                self.i += 1;
                break;
            }
            let st = self.i;
            while self
                .s
                .get(self.i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || b"_-".contains(c))
            {
                self.i += 1;
            }
            if st == self.i {
                return None;
            }
            let name = String::from_utf8_lossy(&self.s[st..self.i]).into_owned();
            self.ws(false);
            match *self.s.get(self.i)? {
                b'=' => {
                    self.i += 1;
                    let v = self.value()?;
                    m.insert(name, v);
                }
                b'{' => {
                    let b = self.block()?;
                    match m.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                        Value::Array(a) => a.push(b),
                        _ => return None,
                    }
                }
                b'"' => {
                    while self.s.get(self.i) == Some(&b'"') {
                        self.string()?;
                        self.ws(false);
                    }
                    self.block()?;
                }
                _ => return None,
            }
        }
        self.depth -= 1;
        Some(Value::Object(m))
    }
}

/// The IAM policy JSON an `aws_iam_policy_document` data source renders, from its block body
/// (see [`Hcl::block`]): `statement` blocks with `effect`, `actions`, `resources`,
/// `principals { type identifiers }` and `condition { test variable values }`.
fn policy_document_to_json(doc: &Value) -> Value {
    let blocks = |v: &Value, name: &str| -> Vec<Value> {
        v.get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut statements = Vec::new();
    for st in blocks(doc, "statement") {
        let mut out = Map::new();
        out.insert(
            "Effect".into(),
            st.get("effect").cloned().unwrap_or_else(|| "Allow".into()),
        );
        for (hcl, json) in [
            ("sid", "Sid"),
            ("actions", "Action"),
            ("not_actions", "NotAction"),
            ("resources", "Resource"),
            ("not_resources", "NotResource"),
        ] {
            if let Some(v) = st.get(hcl) {
                out.insert(json.into(), v.clone());
            }
        }
        for (hcl, json) in [
            ("principals", "Principal"),
            ("not_principals", "NotPrincipal"),
        ] {
            let mut p = Map::new();
            for b in blocks(&st, hcl) {
                let ty = b.get("type").and_then(Value::as_str).unwrap_or("AWS");
                let ids = match b.get("identifiers") {
                    Some(Value::Array(a)) => a.clone(),
                    Some(other) => vec![other.clone()],
                    None => Vec::new(),
                };
                if let Value::Array(all) = p
                    .entry(ty.to_string())
                    .or_insert_with(|| Value::Array(Vec::new()))
                {
                    all.extend(ids);
                }
            }
            if !p.is_empty() {
                out.insert(json.into(), Value::Object(p));
            }
        }
        let mut cond = Map::new();
        for c in blocks(&st, "condition") {
            let (Some(test), Some(var)) = (
                c.get("test").and_then(Value::as_str),
                c.get("variable").and_then(Value::as_str),
            ) else {
                continue;
            };
            let values = c.get("values").cloned().unwrap_or(Value::Array(Vec::new()));
            if let Value::Object(op) = cond
                .entry(test.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
            {
                op.insert(var.to_string(), values);
            }
        }
        if !cond.is_empty() {
            out.insert("Condition".into(), Value::Object(cond));
        }
        statements.push(Value::Object(out));
    }
    let version = doc
        .get("version")
        .cloned()
        .unwrap_or_else(|| "2012-10-17".into());
    serde_json::json!({"Version": version, "Statement": statements})
}

/// Converts the HCL expression at the start of `src` (the argument of `jsonencode(`) to JSON.
/// References and function calls become `${...}` strings.
#[must_use]
pub fn hcl_to_json(src: &str) -> Option<Value> {
    Hcl {
        s: src.as_bytes(),
        i: 0,
        depth: 0,
    }
    .value()
}

/// A `Federated` principal that is a reference rather than a provider ARN: a Terraform
/// expression (`var.github_oidc_arn`, `aws_iam_openid_connect_provider.gh.arn`) or a
/// CloudFormation intrinsic (`!Ref`, `!GetAtt`, `!If`), all `${...}` here.
fn is_federated_placeholder(s: &str) -> bool {
    s.contains("${") && !s.contains(":oidc-provider/")
}

/// Terraform interpolations (`${var.org}`) in condition values are fixed once applied, not IAM
/// policy variables (those always have a `:`, as in `${aws:username}`): write them as their
/// expression text so the validator does not take them for variables the token fills in.
fn fix_terraform_interpolations(v: &mut Value) {
    let Some(stmts) = v.get_mut("Statement") else {
        return;
    };
    let list: Vec<&mut Value> = match stmts {
        Value::Array(a) => a.iter_mut().collect(),
        o @ Value::Object(_) => vec![o],
        _ => return,
    };
    let fix = |s: &mut String| {
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(p) = rest.find("${") {
            out.push_str(&rest[..p]);
            let after = &rest[p + 2..];
            match after.find('}') {
                Some(c) if !after[..c].contains(':') => {
                    out.push_str(&after[..c]);
                    rest = &after[c + 1..];
                }
                _ => {
                    out.push_str("${");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        *s = out;
    };
    for st in list {
        let Some(Value::Object(ops)) = st.get_mut("Condition") else {
            continue;
        };
        for keys in ops.values_mut() {
            let Value::Object(keys) = keys else { continue };
            for val in keys.values_mut() {
                match val {
                    Value::String(s) => fix(s),
                    Value::Array(a) => {
                        for x in a {
                            if let Value::String(s) = x {
                                fix(s);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Gives placeholder `Federated` principals (see [`is_federated_placeholder`]) a concrete
/// provider ARN derived from the condition keys (`<host>:sub`), so the validator can run its
/// OIDC checks. Returns each (placeholder, ARN) replaced.
fn resolve_federated(v: &mut Value) -> Vec<(String, String)> {
    let mut replaced = Vec::new();
    let Some(stmts) = v.get_mut("Statement") else {
        return replaced;
    };
    let list: Vec<&mut Value> = match stmts {
        Value::Array(a) => a.iter_mut().collect(),
        o @ Value::Object(_) => vec![o],
        _ => return replaced,
    };
    for st in list {
        let host = st
            .get("Condition")
            .and_then(Value::as_object)
            .and_then(|ops| {
                ops.values()
                    .filter_map(Value::as_object)
                    .flat_map(|m| m.keys())
                    .find_map(|k| {
                        let (h, claim) = k.rsplit_once(':')?;
                        ([
                            "sub",
                            "aud",
                            "repository",
                            "repository_id",
                            "job_workflow_ref",
                        ]
                        .contains(&claim)
                            && h.contains('.'))
                        .then(|| h.to_string())
                    })
            });
        let Some(fed) = st.get_mut("Principal").and_then(|p| p.get_mut("Federated")) else {
            continue;
        };
        let host = host.unwrap_or_else(|| "unknown.oidc.provider".into());
        let arn = format!("arn:aws:iam::000000000000:oidc-provider/{host}");
        // One provider or a list of them (policy documents always write a list).
        let one: Vec<&mut Value> = match fed {
            Value::Array(a) => a.iter_mut().collect(),
            other => vec![other],
        };
        for f in one {
            if let Some(p) = f.as_str().filter(|s| is_federated_placeholder(s)) {
                replaced.push((p.to_string(), arn.clone()));
                *f = Value::String(arn.clone());
            }
        }
    }
    replaced
}

fn tf_type(attr: &str, block_type: &str) -> PolicyType {
    if attr == "assume_role_policy" {
        PolicyType::Trust
    } else if block_type.contains("organizations_policy") {
        PolicyType::Guardrail
    } else if block_type.contains("bucket_policy")
        || block_type.contains("queue_policy")
        || block_type.contains("topic_policy")
        || attr == "key_policy"
    {
        PolicyType::Resource
    } else {
        PolicyType::Identity
    }
}

/// Extracts policies (`assume_role_policy`, `policy`, `content`, `key_policy` attributes set
/// with `jsonencode(...)` or a heredoc), `max_session_duration` and `aws_iam_access_key`
/// resources from Terraform.
#[must_use]
pub fn extract_terraform(content: &str) -> Extracted {
    let mut policies = Vec::new();
    let mut sessions = Vec::new();
    let mut access_keys = Vec::new();
    let mut block_type = String::new();
    let lines: Vec<&str> = content.lines().collect();
    let mut offsets = Vec::with_capacity(lines.len());
    let mut off = 0usize;
    for l in &lines {
        offsets.push(off);
        off += l.len() + 1;
    }
    let mut i = 0usize;
    while i < lines.len() {
        let t = lines[i].trim();
        if let Some(rest) = t
            .strip_prefix("resource ")
            .or_else(|| t.strip_prefix("data "))
        {
            block_type = rest.split('"').nth(1).unwrap_or("").to_string();
            if t.starts_with("data ") && block_type == "aws_iam_policy_document" {
                let name = rest.split('"').nth(3).unwrap_or("?");
                let open = lines[i].find('{').map(|p| offsets[i] + p);
                let doc = open.and_then(|o| {
                    Hcl {
                        s: content.as_bytes(),
                        i: o,
                        depth: 0,
                    }
                    .block()
                });
                if let Some(doc) = doc {
                    let mut v = policy_document_to_json(&doc);
                    resolve_federated(&mut v);
                    fix_terraform_interpolations(&mut v);
                    policies.push(ExtractedPolicy {
                        json: serde_json::to_string_pretty(&v).unwrap_or_default(),
                        policy_type: guess_type(&v),
                        line: i + 1,
                        verbatim: false,
                        origin: format!("Terraform data.aws_iam_policy_document.{name}"),
                    });
                }
            }
            if t.starts_with("resource ") && block_type == "aws_iam_access_key" {
                let name = rest.split('"').nth(3).unwrap_or("?");
                access_keys.push(AccessKeyResource {
                    line: i + 1,
                    origin: format!("Terraform aws_iam_access_key.{name}"),
                });
            }
        }
        let Some((attr, rhs)) = t.split_once('=') else {
            i += 1;
            continue;
        };
        let attr = attr.trim();
        let rhs = rhs.trim();
        if attr == "max_session_duration"
            && let Ok(seconds) = rhs.split_whitespace().next().unwrap_or("").parse::<u64>()
        {
            sessions.push(SessionSetting {
                seconds,
                line: i + 1,
                origin: format!("Terraform {block_type}"),
            });
        }
        if !matches!(
            attr,
            "assume_role_policy" | "policy" | "content" | "key_policy" | "inline_policy"
        ) {
            i += 1;
            continue;
        }
        let ptype = tf_type(attr, &block_type);
        let origin = format!("Terraform {block_type}.{attr}");
        if let Some(marker) = rhs.strip_prefix("<<") {
            let marker = marker.trim_start_matches('-').trim();
            let mut body = String::new();
            let mut j = i + 1;
            while j < lines.len() && lines[j].trim() != marker {
                body.push_str(lines[j]);
                body.push('\n');
                j += 1;
            }
            // Resolve referenced providers in place, on their own lines, so that validator
            // positions still map 1:1 to the file.
            if let Ok(mut v) = serde_json::from_str::<Value>(&body) {
                for (placeholder, arn) in resolve_federated(&mut v) {
                    body = body.replace(&format!("\"{placeholder}\""), &format!("\"{arn}\""));
                }
            }
            policies.push(ExtractedPolicy {
                json: body,
                policy_type: ptype,
                line: i + 2,
                verbatim: true,
                origin,
            });
            i = j + 1;
            continue;
        }
        if rhs.starts_with("jsonencode(") {
            let start =
                offsets[i] + lines[i].find("jsonencode(").unwrap_or(0) + "jsonencode(".len();
            if let Some(mut v) = content.get(start..).and_then(hcl_to_json) {
                resolve_federated(&mut v);
                fix_terraform_interpolations(&mut v);
                policies.push(ExtractedPolicy {
                    json: serde_json::to_string_pretty(&v).unwrap_or_default(),
                    policy_type: ptype,
                    line: i + 1,
                    verbatim: false,
                    origin,
                });
            }
        }
        i += 1;
    }
    Extracted {
        policies,
        sessions,
        access_keys,
        error: None,
    }
}

fn severity_of(s: keyless_policy::Severity) -> Severity {
    match s {
        keyless_policy::Severity::SecurityWarning => Severity::High,
        keyless_policy::Severity::Error | keyless_policy::Severity::Warning => Severity::Medium,
        keyless_policy::Severity::Suggestion => Severity::Low,
    }
}

/// Value at a validator JSON path such as `$.Statement[0].Principal.Federated`.
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    let rest = path.strip_prefix('$')?;
    for part in rest.split('.').filter(|p| !p.is_empty()) {
        let (name, idx) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

fn is_star(v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => s == "*",
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some("*")),
        _ => false,
    }
}

/// Validates one extracted policy and maps the validator's findings to lint findings.
#[must_use]
pub fn check_policy(path: &str, p: &ExtractedPolicy) -> Vec<Finding> {
    let parsed: Option<Value> = serde_json::from_str(&p.json).ok();
    let mut out = Vec::new();
    for vf in keyless_policy::validate(&p.json, p.policy_type) {
        // Placeholders from CloudFormation intrinsics or Terraform references are not errors.
        let placeholder = parsed
            .as_ref()
            .and_then(|v| at_path(v, &vf.path))
            .is_some_and(|x| x.to_string().contains("${"));
        if placeholder && vf.severity == keyless_policy::Severity::Error {
            continue;
        }
        let line = if p.verbatim {
            p.line + vf.line as usize - 1
        } else {
            p.line
        };
        let col = if p.verbatim { vf.column as usize } else { 1 };
        let rule_id = format!("iam-policy/{}", vf.code);
        let mut f = make(
            &rules::ALL[0],
            path,
            line,
            col,
            format!("{} ({} at {}): {}", vf.code, p.origin, vf.path, vf.message),
        );
        f.rule = rule_id;
        f.severity = severity_of(vf.severity);
        f.why = Some(format!(
            "The keyless-policy validator reports {} for this {:?} policy.",
            vf.code, p.policy_type
        ));
        f.fix = Some(vf.message.clone());
        out.push(f);
    }
    if let Some(v) = &parsed {
        let stmts: Vec<&Value> = match v.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            _ => Vec::new(),
        };
        for (i, s) in stmts.iter().enumerate() {
            if s.get("Effect").and_then(Value::as_str) == Some("Allow")
                && is_star(s.get("Action"))
                && is_star(s.get("Resource"))
                && let Some(info) = rules::info(rules::IAM_ADMIN_WILDCARD)
            {
                out.push(make(
                    info,
                    path,
                    p.line,
                    1,
                    format!(
                        "{}: Statement[{i}] allows \"Action\": \"*\" on \"Resource\": \"*\"",
                        p.origin
                    ),
                ));
            }
        }
    }
    out
}

/// Lint for policy-bearing files: standalone JSON, CloudFormation, Terraform.
#[must_use]
pub fn lint_policies(path: &str, content: &str) -> Vec<Finding> {
    let found = match classify(path, content) {
        Some(FileKind::PolicyJson) => {
            // An unparsable file is still given to the validator, which reports the syntax
            // error with its position.
            let policy_type = serde_json::from_str::<Value>(content)
                .map_or(PolicyType::Identity, |v| guess_type(&v));
            Extracted {
                policies: vec![ExtractedPolicy {
                    json: content.to_string(),
                    policy_type,
                    line: 1,
                    verbatim: true,
                    origin: "policy".into(),
                }],
                ..Extracted::default()
            }
        }
        Some(FileKind::CloudFormation) => extract_cloudformation(content),
        Some(FileKind::Terraform) => extract_terraform(content),
        _ => Extracted::default(),
    };
    let mut out = Vec::new();
    if let (Some(e), Some(info)) = (found.error, rules::info(rules::PARSE_ERROR)) {
        out.push(make(info, path, 1, 1, format!("not checked: {e}")));
    }
    for p in &found.policies {
        out.extend(check_policy(path, p));
    }
    for s in found.sessions {
        if s.seconds > 3600
            && let Some(info) = rules::info(rules::IAM_LONG_SESSION)
        {
            out.push(make(
                info,
                path,
                s.line,
                1,
                format!(
                    "{}: MaxSessionDuration is {} seconds (more than 3600)",
                    s.origin, s.seconds
                ),
            ));
        }
    }
    if let Some(info) = rules::info(rules::IAC_ACCESS_KEY) {
        for k in found.access_keys {
            out.push(make(
                info,
                path,
                k.line,
                1,
                format!("{} creates a permanent access key", k.origin),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl_objects_become_json() {
        let v = hcl_to_json("{\n  Version = \"2012-10-17\" # c\n  Statement = [{\n    Effect = \"Allow\",\n    Principal = { Federated = aws_iam_openid_connect_provider.gh.arn }\n    Action = [\"sts:AssumeRoleWithWebIdentity\"]\n    Condition = { StringLike = { \"token.actions.githubusercontent.com:sub\" = \"repo:o/*\" } }\n  }]\n})").unwrap();
        assert_eq!(v["Version"], "2012-10-17");
        assert_eq!(
            v["Statement"][0]["Principal"]["Federated"],
            "${aws_iam_openid_connect_provider.gh.arn}"
        );
        assert_eq!(
            v["Statement"][0]["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"],
            "repo:o/*"
        );
        assert!(hcl_to_json(&"[".repeat(1000)).is_none());
        assert!(hcl_to_json("{ = }").is_none());
    }

    #[test]
    fn json_paths_resolve() {
        let v: Value =
            serde_json::from_str(r#"{"Statement":[{"Principal":{"Federated":"x"}}]}"#).unwrap();
        assert_eq!(
            at_path(&v, "$.Statement[0].Principal.Federated"),
            Some(&Value::from("x"))
        );
        assert_eq!(at_path(&v, "$.Nope"), None);
    }
}
