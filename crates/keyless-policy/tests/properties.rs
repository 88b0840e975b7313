//! Property tests: glob against regex, ArnLike against segment regex, set operators on absent
//! keys, the NOR law, IfExists on absent keys, deny monotonicity, and the fuzz entry point.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions"
)]

use keyless_policy::{Context, DecisionKind, Policy, PolicySet, PolicyType, Request, evaluate};
use proptest::prelude::*;

fn glob_regex(p: &str) -> regex::Regex {
    let mut r = String::from("^");
    for c in p.chars() {
        match c {
            '*' => r.push_str("(?s:.*)"),
            '?' => r.push_str("(?s:.)"),
            c => r.push_str(&regex::escape(&c.to_string())),
        }
    }
    r.push('$');
    regex::Regex::new(&r).unwrap()
}

fn one(cond: &str, ctx: &Context) -> DecisionKind {
    one_with(cond, ctx, "s3:GetObject", "arn:aws:s3:::b/k")
}

fn one_with(cond: &str, ctx: &Context, action: &str, resource: &str) -> DecisionKind {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{cond}}}]}}"#
    );
    let p = Policy::parse(&doc, PolicyType::Identity).unwrap();
    let req = Request {
        principal: "arn:aws:iam::123456789012:user/a",
        principal_id: None,
        action,
        resource,
        resource_account: None,
        context: ctx,
    };
    evaluate(
        &req,
        &PolicySet {
            identity: &[&p],
            ..PolicySet::default()
        },
    )
    .kind()
}

fn allowed(cond: &str, ctx: &Context) -> bool {
    one(cond, ctx) == DecisionKind::Allowed
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn string_like_equals_regex(pat in "[ab*?:/]{0,8}", val in "[ab:/]{0,10}") {
        let mut ctx = Context::new();
        ctx.insert_single("aws:PrincipalTag/x", val.clone());
        let got = allowed(&format!(r#"{{"StringLike":{{"aws:PrincipalTag/x":{}}}}}"#, q(&pat)), &ctx);
        prop_assert_eq!(got, glob_regex(&pat).is_match(&val));
    }

    #[test]
    fn action_glob_is_case_insensitive_regex(pat in "[aB*?]{1,6}", val in "[Ab]{1,6}") {
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:{pat}","Resource":"*"}}]}}"#);
        let p = Policy::parse(&doc, PolicyType::Identity).unwrap();
        let ctx = Context::new();
        let action = format!("s3:{val}");
        let req = Request { principal: "arn:aws:iam::123456789012:user/a", principal_id: None, action: &action, resource: "*", resource_account: None, context: &ctx };
        let got = evaluate(&req, &PolicySet { identity: &[&p], ..PolicySet::default() }).kind() == DecisionKind::Allowed;
        prop_assert_eq!(got, glob_regex(&pat.to_lowercase()).is_match(&val.to_lowercase()));
    }

    #[test]
    fn arn_like_equals_segment_regex(
        segs in proptest::collection::vec("[a1*?:]{0,4}", 6..=6),
        vals in proptest::collection::vec("[a1:]{0,4}", 3..=8),
    ) {
        let pat = format!("arn:{}:{}:{}:{}:{}", segs[1].replace(':', ""), segs[2].replace(':', ""), segs[3].replace(':', ""), segs[4].replace(':', ""), segs[5]);
        let val = format!("arn:{}", vals.join(":"));
        let mut ctx = Context::new();
        ctx.insert_single("aws:SourceArn", val.clone());
        let got = allowed(&format!(r#"{{"ArnLike":{{"aws:SourceArn":{}}}}}"#, q(&pat)), &ctx);
        // reference: split both at the first five colons and match each part with a regex
        let p: Vec<&str> = pat.splitn(6, ':').collect();
        let v: Vec<&str> = val.splitn(6, ':').collect();
        let want = v.len() == 6 && p.iter().zip(&v).all(|(p, v)| glob_regex(p).is_match(v));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn set_operators_on_absent_or_empty_keys(op in prop::sample::select(vec!["StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "NumericLessThan", "IpAddress", "NotIpAddress", "ArnLike", "Bool", "DateLessThan"]), v in "[a-z0-9]{1,5}", empty in any::<bool>()) {
        let mut ctx = Context::new();
        if empty {
            ctx.insert_multi("aws:TagKeys", vec![]);
        }
        let all = allowed(&format!(r#"{{"ForAllValues:{op}":{{"aws:TagKeys":{}}}}}"#, q(&v)), &ctx);
        let any = allowed(&format!(r#"{{"ForAnyValue:{op}":{{"aws:TagKeys":{}}}}}"#, q(&v)), &ctx);
        prop_assert!(all, "ForAllValues on absent/empty must be true");
        prop_assert!(!any, "ForAnyValue on absent/empty must be false");
    }

    #[test]
    fn if_exists_absent_is_true(op in prop::sample::select(vec!["StringEquals", "StringLike", "NumericLessThan", "IpAddress", "ArnLike", "Bool", "DateLessThan", "StringNotEquals"]), v in "[a-z0-9]{1,5}") {
        let cond = format!(r#"{{"{op}IfExists":{{"aws:x":{}}}}}"#, q(&v));
        let got = allowed(&cond, &Context::new());
        prop_assert!(got);
    }

    #[test]
    fn nor_law_for_negated_operators(vals in proptest::collection::vec("[ab]{1,2}", 1..4), req in "[ab]{1,2}") {
        let mut ctx = Context::new();
        ctx.insert_single("aws:PrincipalTag/x", req.clone());
        let list = serde_json::to_string(&vals).unwrap();
        let neg = allowed(&format!(r#"{{"StringNotEquals":{{"aws:PrincipalTag/x":{list}}}}}"#), &ctx);
        let pos = allowed(&format!(r#"{{"StringEquals":{{"aws:PrincipalTag/x":{list}}}}}"#), &ctx);
        let each_neg = vals.iter().all(|v| allowed(&format!(r#"{{"StringNotEquals":{{"aws:PrincipalTag/x":{}}}}}"#, q(v)), &ctx));
        prop_assert_eq!(neg, !pos);
        prop_assert_eq!(neg, each_neg, "NOR: no value may match");
    }

    #[test]
    fn adding_a_deny_never_turns_deny_into_allow(
        allow_action in prop::sample::select(vec!["s3:*", "s3:GetObject", "*", "ec2:*"]),
        deny_action in prop::sample::select(vec!["s3:*", "s3:GetObject", "*", "ec2:*", "iam:*"]),
        deny_cond in prop::sample::select(vec!["", r#","Condition":{"Bool":{"aws:SecureTransport":"false"}}"#, r#","Condition":{"StringNotEquals":{"aws:x":"y"}}"#]),
        secure in any::<bool>(),
    ) {
        let mut ctx = Context::new();
        ctx.insert_single("aws:SecureTransport", secure.to_string());
        let base = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{allow_action}","Resource":"*"}}]}}"#);
        let more = format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{allow_action}","Resource":"*"}},{{"Effect":"Deny","Action":"{deny_action}","Resource":"*"{deny_cond}}}]}}"#);
        let b = Policy::parse(&base, PolicyType::Identity).unwrap();
        let m = Policy::parse(&more, PolicyType::Identity).unwrap();
        let req = Request { principal: "arn:aws:iam::123456789012:user/a", principal_id: None, action: "s3:GetObject", resource: "arn:aws:s3:::b/k", resource_account: None, context: &ctx };
        let before = evaluate(&req, &PolicySet { identity: &[&b], ..PolicySet::default() }).kind();
        let after = evaluate(&req, &PolicySet { identity: &[&m], ..PolicySet::default() }).kind();
        if before != DecisionKind::Allowed {
            prop_assert_ne!(after, DecisionKind::Allowed);
        }
        if before == DecisionKind::ExplicitlyDenied {
            prop_assert_eq!(after, DecisionKind::ExplicitlyDenied);
        }
    }

    #[test]
    fn case_reader_never_panics(s in r#"[{}\[\]":,a-zA-Z0-9*$ ]{0,160}"#) {
        keyless_policy::fuzz_cases(&s);
        keyless_policy::fuzz_cases(&format!(r#"[{{"id":"x","action":"s3:GetObject","resource":"*","identity":[{{"Version":"2012-10-17","Statement":[{s}]}}]}}]"#));
    }

    #[test]
    fn parser_never_panics(s in ".{0,200}") {
        keyless_policy::fuzz_parse(&s);
    }

    #[test]
    fn parser_never_panics_on_policy_like_input(s in r#"[{}\[\]":,A-Za-z0-9*$ ]{0,120}"#) {
        keyless_policy::fuzz_parse(&format!(r#"{{"Version":"2012-10-17","Statement":[{s}]}}"#));
    }
}
