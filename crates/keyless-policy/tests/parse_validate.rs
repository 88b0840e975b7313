//! Parser and validator: malformed, oversized, wrong-type and hostile documents, each with its
//! exact error and location, and the Access-Analyzer-style findings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

use keyless_policy::{
    Finding, ParseErrorKind, Policy, PolicyType, ROLE_INLINE_POLICIES_MAX_SIZE, Severity,
    policy_size, validate, validate_within,
};

fn err(doc: &str, ty: PolicyType) -> keyless_policy::ParseError {
    Policy::parse(doc, ty).expect_err("must be rejected")
}

fn codes(doc: &str, ty: PolicyType) -> Vec<(Severity, String)> {
    validate(doc, ty)
        .into_iter()
        .map(|f| (f.severity, f.code))
        .collect()
}

fn has(doc: &str, ty: PolicyType, sev: Severity, code: &str) -> Finding {
    validate(doc, ty)
        .into_iter()
        .find(|f| f.severity == sev && f.code == code)
        .unwrap_or_else(|| panic!("no {sev} {code} in {:?}", codes(doc, ty)))
}

const OK_ID: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

#[test]
fn valid_identity_policy_has_no_findings() {
    assert!(validate(OK_ID, PolicyType::Identity).is_empty());
    let p = Policy::parse(OK_ID, PolicyType::Identity).unwrap();
    assert_eq!(p.statement_count(), 1);
    assert_eq!(p.label(), "the identity policy");
}

#[test]
fn duplicate_key_in_trust_condition_is_rejected_with_location() {
    let doc = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\n\"Principal\":{\"Federated\":\"arn:aws:iam::1:oidc-provider/x\"},\"Action\":\"sts:AssumeRoleWithWebIdentity\",\n\"Condition\":{\"StringLike\":{\"x:sub\":\"repo:a/b:*\",\n   \"x:sub\":\"*\"}}}]}";
    let e = err(doc, PolicyType::Trust);
    assert_eq!(e.kind(), ParseErrorKind::DuplicateKey);
    assert_eq!(e.code(), "DUPLICATE_KEY");
    assert_eq!(e.path(), "$.Statement[0].Condition.StringLike");
    assert_eq!((e.line(), e.column()), (4, 4));
    assert_eq!(e.aws_code(), "MalformedPolicyDocument");
    assert!(e.to_string().contains("duplicate key \"x:sub\""), "{e}");
    assert!(e.to_string().contains("line 4, column 4"), "{e}");
}

#[test]
fn duplicate_top_level_statement_key() {
    let doc = r#"{"Version":"2012-10-17","Statement":[],"Statement":[]}"#;
    let e = err(doc, PolicyType::Identity);
    assert_eq!(e.kind(), ParseErrorKind::DuplicateKey);
    assert_eq!(e.path(), "$");
    assert_eq!((e.line(), e.column()), (1, 40));
}

#[test]
fn json_syntax_errors() {
    let e = err(
        "{\"Version\":\"2012-10-17\",\n \"Statement\": [",
        PolicyType::Identity,
    );
    assert_eq!(e.kind(), ParseErrorKind::Json);
    assert_eq!(e.code(), "JSON_SYNTAX_ERROR");
    assert_eq!(e.aws_message(), "This policy contains invalid Json");
    assert_eq!(e.path(), "$.Statement[0]");
    assert_eq!(err("", PolicyType::Identity).kind(), ParseErrorKind::Json);
    assert_eq!(
        err("[1,2]", PolicyType::Identity).code(),
        "DATA_TYPE_MISMATCH"
    );
    assert_eq!(
        err(
            "{\"Version\":\"2012-10-17\"} trailing",
            PolicyType::Identity
        )
        .kind(),
        ParseErrorKind::Json
    );
}

#[test]
fn hostile_nesting_and_characters() {
    let deep = format!("{{\"Statement\":{}{}}}", "[".repeat(40), "]".repeat(40));
    let e = err(&deep, PolicyType::Resource);
    assert_eq!(e.kind(), ParseErrorKind::Json);
    assert!(e.message().contains("nested too deeply"), "{e}");
    let e = err(
        "{\"Version\":\"2012-10-17\",\"Id\":\"\u{263A}\"}",
        PolicyType::Identity,
    );
    assert_eq!(e.kind(), ParseErrorKind::InvalidCharacter);
    assert_eq!((e.line(), e.column()), (1, 31));
    assert!(e.message().contains("U+263A"));
    let e = err("{\"Id\":\"\u{0}\"}", PolicyType::Identity);
    assert_eq!(e.kind(), ParseErrorKind::InvalidCharacter);
}

#[test]
fn size_limits_per_type_ignore_whitespace() {
    let stmt = r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket-with-a-long-name/*"}"#;
    let doc = |n: usize| {
        format!(
            "{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}",
            vec![stmt; n].join(",")
        )
    };
    let big = doc(40); // about 3,800 characters
    assert!(Policy::parse(&big, PolicyType::Identity).is_ok());
    let e = err(&big, PolicyType::Session);
    assert_eq!(e.kind(), ParseErrorKind::TooLarge);
    assert_eq!(e.aws_code(), "LimitExceeded");
    assert_eq!(e.aws_message(), "Cannot exceed quota for PolicySize: 2048");
    let spaced = big.replace(',', " ,    \n  ");
    assert!(
        Policy::parse(&spaced, PolicyType::Identity).is_ok(),
        "whitespace is not counted"
    );
    assert_eq!(
        err(&doc(70), PolicyType::Identity).kind(),
        ParseErrorKind::TooLarge
    );
    // A role's inline policy may use the whole shared quota.
    let inline = doc(70); // about 6,600 characters
    assert!(
        Policy::parse_within(&inline, PolicyType::Identity, ROLE_INLINE_POLICIES_MAX_SIZE).is_ok()
    );
    let e = Policy::parse_within(
        &doc(110),
        PolicyType::Identity,
        ROLE_INLINE_POLICIES_MAX_SIZE,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ParseErrorKind::TooLarge);
    assert_eq!(e.aws_message(), "Cannot exceed quota for PolicySize: 10240");
    assert!(
        validate_within(&inline, PolicyType::Identity, ROLE_INLINE_POLICIES_MAX_SIZE)
            .iter()
            .all(|f| f.severity != Severity::Error)
    );
    assert_eq!(policy_size(&spaced), policy_size(&big));
}

#[test]
fn grammar_errors_have_aws_messages() {
    let trust_with_resource = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"}]}"#;
    let e = err(trust_with_resource, PolicyType::Trust);
    assert_eq!(e.code(), "ROLE_TRUST_POLICY_SYNTAX_ERROR_RESOURCE");
    assert_eq!(e.aws_message(), "Has prohibited field Resource.");
    assert_eq!(e.path(), "$.Statement[0].Resource");

    let np = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}]}"#;
    assert_eq!(
        err(np, PolicyType::Trust).code(),
        "ROLE_TRUST_POLICY_SYNTAX_ERROR_NOTPRINCIPAL"
    );

    let principal_in_identity = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    let e = err(principal_in_identity, PolicyType::Identity);
    assert_eq!(e.code(), "UNSUPPORTED_ELEMENT_PRINCIPAL");
    assert_eq!(
        e.aws_message(),
        "Policy document should not specify a principal."
    );

    let cases: &[(&str, PolicyType, &str, &str)] = &[
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject"}]}"#,
            PolicyType::Identity,
            "MISSING_RESOURCE",
            "$.Statement[0]",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#,
            PolicyType::Identity,
            "MISSING_ACTION",
            "$.Statement[0]",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity,
            "MISSING_EFFECT",
            "$.Statement[0]",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"allow","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity,
            "INVALID_EFFECT",
            "$.Statement[0].Effect",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:a:b","Resource":"*"}]}"#,
            PolicyType::Identity,
            "INVALID_ACTION",
            "$.Statement[0].Action",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"getobject","Resource":"*"}]}"#,
            PolicyType::Identity,
            "INVALID_ACTION",
            "$.Statement[0].Action",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}]}"#,
            PolicyType::Identity,
            "INVALID_ARN_RESOURCE",
            "$.Statement[0].Resource",
        ),
        (
            r#"{"Version":"2012-10-18","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity,
            "INVALID_VERSION",
            "$.Version",
        ),
        (
            r#"{"Version":"2012-10-17","Statment":[]}"#,
            PolicyType::Identity,
            "INVALID_POLICY_ELEMENT",
            "$.Statment",
        ),
        (
            r#"{"Version":"2012-10-17"}"#,
            PolicyType::Identity,
            "MISSING_STATEMENT",
            "$",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            PolicyType::Identity,
            "MISSING_STATEMENT",
            "$.Statement",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":"x"}"#,
            PolicyType::Identity,
            "DATA_TYPE_MISMATCH",
            "$.Statement",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":5,"Resource":"*"}]}"#,
            PolicyType::Identity,
            "DATA_TYPE_MISMATCH",
            "$.Statement[0].Action",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"a-b","Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity,
            "UNSUPPORTED_SID",
            "$.Statement[0].Sid",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity,
            "UNIQUE_SIDS_REQUIRED",
            "$.Statement[1].Sid",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:x":"1"}}}]}"#,
            PolicyType::Identity,
            "INVALID_CONDITION_OPERATOR",
            "$.Statement[0].Condition.StringEqualz",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"nocolon":"1"}}}]}"#,
            PolicyType::Identity,
            "INVALID_CONDITION_KEY_FORMAT",
            "$.Statement[0].Condition.StringEquals.nocolon",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:x":{"a":1}}}}]}"#,
            PolicyType::Identity,
            "DATA_TYPE_MISMATCH",
            "$.Statement[0].Condition.StringEquals['aws:x']",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/*"},"Action":"sts:AssumeRole"}]}"#,
            PolicyType::Trust,
            "ROLE_TRUST_POLICY_UNSUPPORTED_WILDCARD_IN_PRINCIPAL",
            "$.Statement[0].Principal.AWS",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Aws":"111122223333"},"Action":"sts:AssumeRole"}]}"#,
            PolicyType::Trust,
            "INVALID_PRINCIPAL_KEY",
            "$.Statement[0].Principal.Aws",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole"}]}"#,
            PolicyType::Trust,
            "INVALID_PRINCIPAL_FORMAT",
            "$.Statement[0].Principal.AWS",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"s3:GetObject"}]}"#,
            PolicyType::Trust,
            "UNSUPPORTED_ACTION_IN_TRUST_POLICY",
            "$.Statement[0].Action",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            PolicyType::Resource,
            "MISSING_PRINCIPAL",
            "$.Statement[0]",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","NotAction":"s3:x","Resource":"*"}]}"#,
            PolicyType::Identity,
            "UNSUPPORTED_ELEMENT_COMBINATION",
            "$.Statement[0].NotAction",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Actions":"s3:*","Resource":"*"}]}"#,
            PolicyType::Identity,
            "INVALID_POLICY_ELEMENT",
            "$.Statement[0].Actions",
        ),
    ];
    for (doc, ty, code, path) in cases {
        let e = err(doc, *ty);
        assert_eq!((e.code(), e.path()), (*code, *path), "{doc}: {e}");
        assert_eq!(e.kind(), ParseErrorKind::Grammar);
        assert!(
            validate(doc, *ty)
                .iter()
                .any(|f| f.severity == Severity::Error && f.code == *code)
        );
    }
}

const GH: &str = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com";

fn trust(cond: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"GitHub","Effect":"Allow","Principal":{{"Federated":"{GH}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{cond}}}]}}"#
    )
}

#[test]
fn oidc_trust_checks() {
    let aud_only = trust(
        r#"{"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}"#,
    );
    let f = has(
        &aud_only,
        PolicyType::Trust,
        Severity::SecurityWarning,
        "MISSING_GITHUB_REPO_CONDITION_KEY",
    );
    assert_eq!(f.path, "$.Statement[0].Condition");
    assert!(
        f.message
            .contains("token.actions.githubusercontent.com:sub")
    );
    // the evaluator still parses it
    assert!(Policy::parse(&aud_only, PolicyType::Trust).is_ok());

    let broad =
        trust(r#"{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo-org/*"}}"#);
    has(
        &broad,
        PolicyType::Trust,
        Severity::SecurityWarning,
        "OVERLY_BROAD_GITHUB_SUB",
    );
    let all = trust(r#"{"StringLike":{"token.actions.githubusercontent.com:sub":"*"}}"#);
    has(
        &all,
        PolicyType::Trust,
        Severity::SecurityWarning,
        "OVERLY_BROAD_GITHUB_SUB",
    );
    let repo_any_ref = trust(
        r#"{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:octo-org/app:*"}}"#,
    );
    has(
        &repo_any_ref,
        PolicyType::Trust,
        Severity::Warning,
        "SPECIFIC_GITHUB_REPO_AND_BRANCH_RECOMMENDED",
    );
    assert!(
        !codes(&repo_any_ref, PolicyType::Trust)
            .iter()
            .any(|(s, _)| *s == Severity::SecurityWarning)
    );
    let good = trust(
        r#"{"StringEquals":{"token.actions.githubusercontent.com:sub":"repo:octo-org/app:ref:refs/heads/main","token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}"#,
    );
    assert!(
        validate(&good, PolicyType::Trust).is_empty(),
        "{:?}",
        codes(&good, PolicyType::Trust)
    );
    let repo_claim = trust(
        r#"{"StringEquals":{"token.actions.githubusercontent.com:repository":"octo-org/app"}}"#,
    );
    assert!(validate(&repo_claim, PolicyType::Trust).is_empty());
    let negated_only = trust(
        r#"{"StringNotEquals":{"token.actions.githubusercontent.com:sub":"repo:evil/x:ref:refs/heads/main"}}"#,
    );
    has(
        &negated_only,
        PolicyType::Trust,
        Severity::SecurityWarning,
        "MISSING_GITHUB_REPO_CONDITION_KEY",
    );

    let eks = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::1:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#;
    let f = has(
        eks,
        PolicyType::Trust,
        Severity::SecurityWarning,
        "MISSING_SUB_CONDITION",
    );
    assert!(
        f.message
            .contains("oidc.eks.us-east-1.amazonaws.com/id/abc:sub")
    );
}

fn id_cond(cond: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{cond}}}]}}"#
    )
}

#[test]
fn condition_findings() {
    let i = PolicyType::Identity;
    has(
        &id_cond(r#"{"NullIfExists":{"aws:TokenIssueTime":"true"}}"#),
        i,
        Severity::Error,
        "NULL_WITH_IF_EXISTS",
    );
    has(
        &id_cond(r#"{"ForAllValues:Null":{"aws:TagKeys":"true"}}"#),
        i,
        Severity::Suggestion,
        "NULL_WITH_QUALIFIER",
    );
    has(
        &id_cond(r#"{"StringEquals":{"aws:TagKeys":"env"}}"#),
        i,
        Severity::Error,
        "MISSING_QUALIFIER",
    );
    let f = has(
        &id_cond(r#"{"ForAllValues:StringEquals":{"aws:PrincipalTag/team":"blue"}}"#),
        i,
        Severity::SecurityWarning,
        "FORALLVALUES_WITH_SINGLE_VALUED_KEY",
    );
    assert_eq!(
        f.path,
        "$.Statement[0].Condition['ForAllValues:StringEquals']['aws:PrincipalTag/team']"
    );
    has(
        &id_cond(r#"{"StringEquals":{"s3:prefix":"home/*"}}"#),
        i,
        Severity::Warning,
        "WILDCARD_WITHOUT_LIKE_OPERATOR",
    );
    has(
        &id_cond(r#"{"NumericLessThan":{"s3:max-keys":"${aws:username}"}}"#),
        i,
        Severity::Error,
        "INVALID_VARIABLE_FOR_OPERATOR",
    );
    has(
        &id_cond(r#"{"DateLessThan":{"aws:CurrentTime":"yesterday"}}"#),
        i,
        Severity::Warning,
        "INVALID_DATE_VALUE",
    );
    has(
        &id_cond(r#"{"NumericLessThan":{"s3:max-keys":"ten"}}"#),
        i,
        Severity::Warning,
        "TYPE_MISMATCH_NUMBER",
    );
    has(
        &id_cond(r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#),
        i,
        Severity::Error,
        "PRIVATE_IP_ADDRESS",
    );
    has(
        &id_cond(r#"{"IpAddress":{"aws:SourceIp":"300.1.1.1"}}"#),
        i,
        Severity::Warning,
        "TYPE_MISMATCH_IP_RANGE",
    );
    has(
        &id_cond(r#"{"StringEquals":{"aws:SourceIp":"1.2.3.4"}}"#),
        i,
        Severity::Warning,
        "TYPE_MISMATCH",
    );
    has(
        &id_cond(r#"{"StringEquals":{"aws:x":"1","AWS:X":"2"}}"#),
        i,
        Severity::Error,
        "DUPLICATE_KEYS_WITH_DIFFERENT_CASE",
    );
    has(
        &id_cond(r#"{"StringEquals":{"s3:prefix":"${aws:username"}}"#),
        i,
        Severity::Error,
        "MISSING_BRACE_IN_VARIABLE",
    );
    has(
        &id_cond(r#"{"StringEquals":{"s3:prefix":"${aws: username}"}}"#),
        i,
        Severity::Error,
        "UNSUPPORTED_SPACE_IN_VARIABLE",
    );
    has(
        &id_cond(r#"{"StringEquals":{"s3:prefix":"${}"}}"#),
        i,
        Severity::Error,
        "EMPTY_VARIABLE",
    );
    has(
        &id_cond(r#"{"Bool":{"aws:SecureTransport":"yes"}}"#),
        i,
        Severity::Warning,
        "TYPE_MISMATCH_BOOLEAN",
    );
    has(
        &id_cond("{}"),
        i,
        Severity::Suggestion,
        "EMPTY_OBJECT_CONDITION",
    );
}

#[test]
fn element_findings() {
    let allow_np = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"s3:*","Resource":"*"}]}"#;
    has(
        allow_np,
        PolicyType::Resource,
        Severity::SecurityWarning,
        "ALLOW_WITH_NOT_PRINCIPAL",
    );
    let no_version = r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    has(
        no_version,
        PolicyType::Identity,
        Severity::Warning,
        "MISSING_VERSION",
    );
    let var_2008 = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username}"}]}"#;
    has(
        var_2008,
        PolicyType::Identity,
        Severity::Error,
        "VARIABLE_UNSUPPORTED_IN_VERSION",
    );
    let var_in_action = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:${aws:username}","Resource":"*"}]}"#;
    assert!(
        codes(var_in_action, PolicyType::Identity)
            .iter()
            .any(|(_, c)| c == "VARIABLE_UNSUPPORTED_IN_ELEMENT" || c == "INVALID_ACTION")
    );
    let var_in_account = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3::${aws:username}::b"}]}"#;
    has(
        var_in_account,
        PolicyType::Identity,
        Severity::Error,
        "VARIABLE_UNSUPPORTED_IN_ELEMENT",
    );
    let empty_action =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#;
    has(
        empty_action,
        PolicyType::Identity,
        Severity::Suggestion,
        "EMPTY_ARRAY_ACTION",
    );
    let dup_sid_resource = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
    has(
        dup_sid_resource,
        PolicyType::Resource,
        Severity::Warning,
        "UNIQUE_SIDS_RECOMMENDED",
    );
    // findings are sorted by position and carry 1-based lines/columns
    let f = validate(
        "{\n  \"Statement\": [{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\",\n  \"Condition\":{\"NullIfExists\":{\"aws:x\":\"true\"}}}]}",
        PolicyType::Identity,
    );
    assert_eq!(f[0].code, "MISSING_VERSION");
    let n = f.iter().find(|f| f.code == "NULL_WITH_IF_EXISTS").unwrap();
    assert_eq!((n.line, n.column), (3, 16));
}

#[test]
fn policy_type_names() {
    for (s, t) in [
        ("identity", PolicyType::Identity),
        ("resource", PolicyType::Resource),
        ("trust", PolicyType::Trust),
        ("guardrail", PolicyType::Guardrail),
        ("session", PolicyType::Session),
    ] {
        assert_eq!(s.parse::<PolicyType>().unwrap(), t);
        assert_eq!(t.to_string(), s);
    }
    let e = "scp".parse::<PolicyType>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown policy type `scp`; use identity, resource, trust, guardrail or session"
    );
    assert_eq!(Severity::SecurityWarning.to_string(), "SECURITY_WARNING");
    assert_eq!(Severity::Error.to_string(), "ERROR");
    assert_eq!(Severity::Warning.to_string(), "WARNING");
    assert_eq!(Severity::Suggestion.to_string(), "SUGGESTION");
}

#[test]
fn policy_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<keyless_policy::Decision>();
}

#[test]
fn github_trust_patterns_that_match_every_repository_are_security_warnings() {
    let k = "token.actions.githubusercontent.com";
    // A subject pattern whose literal part stops before `repo:ORG/REPO:` is complete matches
    // `repo:` followed by anything, whatever wildcard it uses.
    for sub in ["r*", "re*", "rep*", "repo?*", "?epo:*", "repo?octo-org/*"] {
        let doc = trust(&format!(r#"{{"StringLike":{{"{k}:sub":"{sub}"}}}}"#));
        has(
            &doc,
            PolicyType::Trust,
            Severity::SecurityWarning,
            "OVERLY_BROAD_GITHUB_SUB",
        );
    }
    // A wildcard in the repository claims is no repository condition at all.
    for (key, value) in [
        ("repository", "*"),
        ("repository", "octo-org/*"),
        ("repository", "octo-org/ap?"),
        ("repository_id", "*"),
        ("job_workflow_ref", "*"),
        (
            "job_workflow_ref",
            "octo-org/*/.github/workflows/deploy.yml@refs/heads/main",
        ),
    ] {
        let doc = trust(&format!(r#"{{"StringLike":{{"{k}:{key}":"{value}"}}}}"#));
        has(
            &doc,
            PolicyType::Trust,
            Severity::SecurityWarning,
            "MISSING_GITHUB_REPO_CONDITION_KEY",
        );
    }
    // Patterns that name the repository stay accepted.
    for (key, value) in [
        ("sub", "repo:octo-org/app:ref:refs/heads/*"),
        ("sub", "repository_owner_id:42:repository_id:7:*"),
        ("repository", "octo-org/app"),
        (
            "job_workflow_ref",
            "octo-org/shared/.github/workflows/deploy.yml@*",
        ),
    ] {
        let doc = trust(&format!(r#"{{"StringLike":{{"{k}:{key}":"{value}"}}}}"#));
        assert!(
            !codes(&doc, PolicyType::Trust)
                .iter()
                .any(|(s, _)| *s == Severity::SecurityWarning),
            "{key}={value}: {:?}",
            codes(&doc, PolicyType::Trust)
        );
    }
}

#[test]
fn a_wildcard_in_the_service_segment_is_flagged() {
    // IAM User Guide, Resource element: no wildcard in the service segment.
    for r in [
        "arn:aws:*:::bucket/*",
        "arn:aws:s?:::bucket",
        "arn:*:*:*:*:*",
    ] {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"{r}"}}]}}"#
        );
        let f = validate(&doc, PolicyType::Identity);
        assert!(
            f.iter()
                .any(|f| f.code == "WILDCARD_IN_SERVICE_SEGMENT" && f.severity == Severity::Warning),
            "{r}: {f:?}"
        );
    }
    for r in ["*", "arn:aws:s3:::bucket/*", "arn:aws:s3:*:*:*"] {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"{r}"}}]}}"#
        );
        let f = validate(&doc, PolicyType::Identity);
        assert!(
            !f.iter().any(|f| f.code == "WILDCARD_IN_SERVICE_SEGMENT"),
            "{r}: {f:?}"
        );
    }
}

#[test]
fn a_unique_id_saved_back_as_a_principal_says_where_it_came_from() {
    let doc = |p: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{p}"}},"Action":"sts:AssumeRole"}}]}}"#
        )
    };
    let f = has(
        &doc("AROAOLDROLE1234567890"),
        PolicyType::Trust,
        Severity::Error,
        "INVALID_PRINCIPAL_FORMAT",
    );
    assert!(
        f.message.contains("unique id of a deleted role"),
        "{}",
        f.message
    );
    let f = has(
        &doc("bob"),
        PolicyType::Trust,
        Severity::Error,
        "INVALID_PRINCIPAL_FORMAT",
    );
    assert!(!f.message.contains("unique id"), "{}", f.message);
}

#[test]
fn a_sub_pattern_that_matches_every_subject_is_no_sub_condition() {
    // For a provider other than GitHub, `StringLike sub "*"` (or `?*`, a list holding `*`, a
    // set operator, `${…:sub}` itself) counted as the subject check, so a trust policy open to
    // every identity of the provider passed without the acknowledgement MISSING_SUB_CONDITION
    // asks for.
    let h = "oidc.eks.us-east-1.amazonaws.com/id/ABC";
    let with = |cond: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::123456789012:oidc-provider/{h}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{h}:aud":"sts.amazonaws.com"}},{cond}}}}}]}}"#
        )
    };
    for cond in [
        format!(r#""StringLike":{{"{h}:sub":"*"}}"#),
        format!(r#""StringLike":{{"{h}:sub":"?*"}}"#),
        format!(r#""StringLike":{{"{h}:sub":["system:serviceaccount:ns:app","*"]}}"#),
        format!(r#""ForAnyValue:StringLike":{{"{h}:sub":"*"}}"#),
        format!(r#""StringLike":{{"{h}:sub":"${{{h}:sub}}"}}"#),
        format!(r#""StringEqualsIgnoreCase":{{"{h}:sub":"${{{h}:sub}}"}}"#),
    ] {
        has(
            &with(&cond),
            PolicyType::Trust,
            Severity::SecurityWarning,
            "MISSING_SUB_CONDITION",
        );
    }
    for cond in [
        format!(r#""StringEquals":{{"{h}:sub":"system:serviceaccount:ns:app"}}"#),
        // `*` is literal text to StringEquals.
        format!(r#""StringEquals":{{"{h}:sub":"*"}}"#),
        format!(r#""StringLike":{{"{h}:sub":"system:serviceaccount:ns:*"}}"#),
    ] {
        let doc = with(&cond);
        assert!(
            !codes(&doc, PolicyType::Trust)
                .iter()
                .any(|(s, _)| *s == Severity::SecurityWarning),
            "{cond}: {:?}",
            codes(&doc, PolicyType::Trust)
        );
    }
}

#[test]
fn a_not_action_statement_granting_web_identity_gets_the_oidc_checks() {
    // `NotAction: sts:AssumeRole` allows sts:AssumeRoleWithWebIdentity, but the subject checks
    // looked only at statements whose Action named it: the statement below, open to every
    // identity of the provider, had no finding at all.
    for (host, code) in [
        ("oidc.example.com", "MISSING_SUB_CONDITION"),
        (
            "token.actions.githubusercontent.com",
            "MISSING_GITHUB_REPO_CONDITION_KEY",
        ),
    ] {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::123456789012:oidc-provider/{host}"}},"NotAction":"sts:AssumeRole","Condition":{{"StringEquals":{{"{host}:aud":"sts.amazonaws.com"}}}}}}]}}"#
        );
        has(&doc, PolicyType::Trust, Severity::SecurityWarning, code);
        // The evaluator agrees: any subject of the provider gets in.
        let trust = Policy::parse(&doc, PolicyType::Trust).unwrap();
        let mut ctx = keyless_policy::Context::new();
        ctx.insert_single(&format!("{host}:aud"), "sts.amazonaws.com");
        ctx.insert_single(
            &format!("{host}:sub"),
            "repo:anyone/anything:ref:refs/heads/x",
        );
        let principal = format!("arn:aws:iam::123456789012:oidc-provider/{host}");
        let req = keyless_policy::Request {
            principal: &principal,
            principal_id: None,
            action: "sts:AssumeRoleWithWebIdentity",
            resource: "arn:aws:iam::123456789012:role/open",
            resource_account: None,
            context: &ctx,
        };
        let set = keyless_policy::PolicySet {
            resource_policy: Some(&trust),
            ..keyless_policy::PolicySet::default()
        };
        assert_eq!(
            keyless_policy::evaluate(&req, &set).kind(),
            keyless_policy::DecisionKind::Allowed
        );
    }
    // A NotAction that leaves web identity out needs no subject check.
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.example.com"},"NotAction":"sts:AssumeRoleWith*","Condition":{"StringEquals":{"oidc.example.com:aud":"sts.amazonaws.com"}}}]}"#;
    assert!(
        !codes(doc, PolicyType::Trust)
            .iter()
            .any(|(s, c)| *s == Severity::SecurityWarning && c == "MISSING_SUB_CONDITION"),
        "{:?}",
        codes(doc, PolicyType::Trust)
    );
}

#[test]
fn a_wildcard_principal_in_a_trust_policy_is_a_security_warning() {
    // `Principal: "*"` or `{"AWS": "*"}` lets every principal in: every session, and (with web
    // identity allowed) every identity of every provider, whose token then needs no subject
    // check at all. It passed with no finding; keyless refuses unacknowledged SECURITY_WARNINGs.
    let with = |principal: &str, extra: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal},"Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity"]{extra}}}]}}"#
        )
    };
    for (principal, extra) in [
        (r#""*""#, ""),
        (r#"{"AWS":"*"}"#, ""),
        (r#"{"AWS":["arn:aws:iam::123456789012:root","*"]}"#, ""),
        (
            r#""*""#,
            r#","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"999999999999"}}"#,
        ),
        (
            r#""*""#,
            r#","Condition":{"StringEqualsIfExists":{"aws:PrincipalOrgID":"o-abc"}}"#,
        ),
        // A condition that matches every principal narrows nothing.
        (
            r#""*""#,
            r#","Condition":{"StringLike":{"aws:PrincipalArn":"*"}}"#,
        ),
        (
            r#""*""#,
            r#","Condition":{"ArnLike":{"aws:PrincipalArn":["arn:aws:iam::123456789012:role/ci","arn:aws:iam::*:role/*"]}}"#,
        ),
        (
            r#""*""#,
            r#","Condition":{"StringLike":{"aws:PrincipalAccount":"1234*"}}"#,
        ),
    ] {
        has(
            &with(principal, extra),
            PolicyType::Trust,
            Severity::SecurityWarning,
            "WILDCARD_PRINCIPAL_IN_TRUST_POLICY",
        );
    }
    for (principal, extra) in [
        (
            r#""*""#,
            r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}"#,
        ),
        (
            r#"{"AWS":"*"}"#,
            r#","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/ci-*"}}"#,
        ),
        (
            r#"{"AWS":"*"}"#,
            r#","Condition":{"StringEquals":{"AWS:PrincipalAccount":"123456789012"}}"#,
        ),
        (r#"{"AWS":"arn:aws:iam::123456789012:root"}"#, ""),
    ] {
        let doc = with(principal, extra);
        assert!(
            !codes(&doc, PolicyType::Trust)
                .iter()
                .any(|(_, c)| c == "WILDCARD_PRINCIPAL_IN_TRUST_POLICY"),
            "{doc}"
        );
    }
    // A Deny with a wildcard principal is how trust policies say "no one else".
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"},{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}]}"#;
    assert!(
        !codes(deny, PolicyType::Trust)
            .iter()
            .any(|(_, c)| c == "WILDCARD_PRINCIPAL_IN_TRUST_POLICY")
    );
    // Resource policies other than trust policies are not judged here.
    let bucket = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    assert!(
        !codes(bucket, PolicyType::Resource)
            .iter()
            .any(|(_, c)| c == "WILDCARD_PRINCIPAL_IN_TRUST_POLICY")
    );
}

#[test]
fn a_gitlab_com_subject_must_name_the_project() {
    // gitlab.com's subject is `project_path:GROUP/PROJECT:ref_type:…:ref:…`, shared by every
    // project on gitlab.com: `project_path:*` or `project_path:group*` let any gitlab.com
    // user's pipeline in, and counted as a subject check.
    let h = "gitlab.com";
    let with = |sub: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::123456789012:oidc-provider/{h}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{h}:aud":"https://gitlab.com"}},"StringLike":{{"{h}:sub":"{sub}"}}}}}}]}}"#
        )
    };
    for sub in [
        "project_path:*",
        "project_path:octo-group*",
        "proj*",
        "project_path:octo-group/app*",
    ] {
        has(
            &with(sub),
            PolicyType::Trust,
            Severity::SecurityWarning,
            "OVERLY_BROAD_GITLAB_SUB",
        );
    }
    for sub in [
        "project_path:octo-group/app:ref_type:branch:ref:main",
        "project_path:octo-group/app:*",
        "project_path:octo-group/sub/app:ref_type:branch:ref:*",
    ] {
        let doc = with(sub);
        assert!(
            !codes(&doc, PolicyType::Trust)
                .iter()
                .any(|(s, _)| *s == Severity::SecurityWarning),
            "{sub}: {:?}",
            codes(&doc, PolicyType::Trust)
        );
    }
}
