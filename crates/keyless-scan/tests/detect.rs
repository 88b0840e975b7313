//! Detector tests: planted keys are found, decoys are not reported as live keys, secrets never
//! leak into output.

use keyless_scan::detect::{looks_like_secret, scan_bytes, scan_text};
use keyless_scan::report::{Format, render};
use keyless_scan::{Confidence, Severity};
use proptest::prelude::*;

/// Builds a key id for `account` the way AWS encodes it (inverse of the public scheme).
fn key_for(prefix: &str, account: u64, tail: &str) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let v: u64 = ((account << 7) | 0x8000_0000_0000 | 0x35) << 2;
    let mut s = prefix.to_string();
    for i in (0..10).rev() {
        s.push(A[((v >> (i * 5)) & 31) as usize] as char);
    }
    s.push_str(tail);
    s
}

const SECRET: &str = "Zk3Rq9vB8sT2pL5wX1yN7mC4hJ6gF0dA/E+uKiOo";

#[test]
fn env_file_pair_is_high_with_account() {
    let id = key_for("AKIA", 123_456_789_012, "QRSTUV");
    let text = format!("AWS_ACCESS_KEY_ID={id}\nAWS_SECRET_ACCESS_KEY={SECRET}\n");
    let f = scan_text(".env", text.as_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "aws-access-key");
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(f[0].confidence, Some(Confidence::High));
    assert_eq!(f[0].account_id.as_deref(), Some("123456789012"));
    assert_eq!(f[0].access_key_id.as_deref(), Some(id.as_str()));
    assert_eq!((f[0].line, f[0].column), (1, 19));
    assert_eq!(f[0].redacted.as_deref(), Some("Zk3R…(40 chars)"));
}

#[test]
fn credentials_file_profile() {
    let id = key_for("AKIA", 210_987_654_321, "ABCDEF");
    let text = format!(
        "[default]\nregion = us-east-1\n\n[prod]\naws_access_key_id = {id}\naws_secret_access_key = {SECRET}\n"
    );
    let f = scan_text("credentials", text.as_bytes());
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "aws-credentials-file");
    assert_eq!(f[0].line, 5);
}

#[test]
fn lone_secret_with_name_and_lone_key_id() {
    let f = scan_text(
        "a.py",
        format!("secret_access_key = \"{SECRET}\"\n").as_bytes(),
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "aws-secret-access-key");
    let id = key_for("AKIA", 1, "ZZZZZZ");
    let f = scan_text("a.txt", format!("the key {id} was rotated").as_bytes());
    assert_eq!(f[0].rule, "aws-access-key-id");
    assert_eq!(f[0].severity, Severity::Medium);
}

#[test]
fn temporary_credentials_with_token() {
    let id = key_for("ASIA", 555_555_555_555, "ABCDEF");
    let token = format!("IQoJb3JpZ2luX2VjE{}", "Ab3/".repeat(60));
    let text = format!(
        "{{\"AccessKeyId\": \"{id}\", \"SecretAccessKey\": \"{SECRET}\", \"SessionToken\": \"{token}\"}}"
    );
    let f = scan_text("creds.json", text.as_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "aws-temporary-credentials");
    assert_eq!(f[0].confidence, Some(Confidence::High));
    assert_eq!(f[0].account_id.as_deref(), Some("555555555555"));
}

#[test]
fn notebook_json_escapes() {
    let id = key_for("AKIA", 42, "NBNBNB");
    let nb = format!(
        "{{\"cells\":[{{\"source\":[\"import boto3\\n\",\"s = boto3.Session(aws_access_key_id=\\\"{id}\\\", aws_secret_access_key=\\\"{SECRET}\\\")\\n\"]}}]}}"
    );
    let f = scan_text("x.ipynb", nb.as_bytes());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].rule, "aws-access-key");
}

#[test]
fn documented_examples_are_low() {
    let f = scan_text("README.md", b"aws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nAKIAI44QH8DHBEXAMPLE\n");
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(
        f.iter()
            .all(|x| x.rule == "aws-example-key" && x.severity == Severity::Low && x.example)
    );
}

#[test]
fn decoys_are_not_keys() {
    let decoys = [
        "AKIA1234567890ABCDEF",  // digits 0,1,8,9 are not base32
        "AKIAABCDEFGHIJKLMNO",   // 19 chars
        "AKIAABCDEFGHIJKLMNOPQ", // 21 chars
        "XAKIAABCDEFGHIJKLMNOP", // glued prefix
        "akiaabcdefghijklmnop",  // lower case
        "AKIAabcdefghijklmnop",  // mixed case
        "aws_secret_access_key = da39a3ee5e6b4b0d3255bfef95601890afd80709", // sha1
        "aws_secret_access_key = ${{ secrets.AWS_SECRET_ACCESS_KEY }}",
        "aws_secret_access_key = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "sha256 47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "AROAY34FZKBOKMUTVV7A AIDAY34FZKBOKMUTVV7A", // role/user ids are not keys
        "AKIAXXXXXXXXXXXXXXXX AKIAAAAAAAAAAAAAAAAA AKIAABABABABABABABAB", // placeholders
    ];
    for d in decoys {
        let f = scan_text("decoy.txt", d.as_bytes());
        assert!(f.is_empty(), "{d:?} reported: {f:?}");
    }
}

#[test]
fn secret_never_in_output_or_debug() {
    let id = key_for("AKIA", 7, "SECRET");
    let text = format!("k={id}\ns={SECRET}\n");
    let hits = scan_bytes(text.as_bytes());
    assert!(!format!("{hits:?}").contains(SECRET));
    let f = scan_text("x", text.as_bytes());
    for fmt in [Format::Text, Format::Json, Format::Sarif] {
        let out = render(fmt, "scan", &f, None);
        assert!(!out.contains(SECRET), "{fmt:?}");
        assert!(!out.contains(&SECRET[4..20]), "{fmt:?}");
        assert!(out.contains(&id), "key ids are not secret and are shown");
    }
}

#[test]
fn secret_shape_check() {
    assert!(looks_like_secret(SECRET.as_bytes()));
    assert!(!looks_like_secret(
        b"da39a3ee5e6b4b0d3255bfef95601890afd80709"
    ));
    assert!(!looks_like_secret(b"short"));
    assert!(!looks_like_secret(
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMN"
    ));
}

#[test]
fn positions_count_lines_and_unicode_columns() {
    let id = key_for("AKIA", 9, "UNICDE");
    let text = format!("é\n\n  ünï {id}\n");
    let f = scan_text("u", text.as_bytes());
    assert_eq!((f[0].line, f[0].column), (3, 7));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Arbitrary bytes never panic; the same input gives the same findings (fuzz target twin).
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let a = scan_text("p", &data);
        let b = scan_text("p", &data);
        prop_assert_eq!(a, b);
    }

    /// A planted key is found wherever it is placed in random text.
    #[test]
    fn planted_key_always_found(prefix in "[a-z \n=:]{0,300}", suffix in "[a-z \n]{0,300}", acct in 0u64..1_000_000_000_000) {
        let id = key_for("AKIA", acct, "QQQQQQ");
        let text = format!("{prefix} {id}\n{suffix}");
        let f = scan_text("p", text.as_bytes());
        prop_assert!(f.iter().any(|x| x.access_key_id.as_deref() == Some(id.as_str())));
        let acct_s = format!("{acct:012}");
        prop_assert_eq!(f[0].account_id.as_deref(), Some(acct_s.as_str()));
    }
}

#[test]
fn hostile_density_is_linear() {
    // 20,000 key ids each next to a secret-shaped string: must finish fast and pair them all.
    let mut s = String::new();
    for i in 0..20_000u64 {
        s.push_str(&key_for("AKIA", i, "QRSTUV"));
        s.push(' ');
        s.push_str(SECRET);
        s.push('\n');
    }
    let t = std::time::Instant::now();
    let f = scan_text("dense", s.as_bytes());
    assert_eq!(f.len(), 20_000);
    assert!(f.iter().all(|x| x.rule == "aws-access-key"));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn key_ids_inside_one_long_base64_run_are_linear() {
    // `/AKIA…/AKIA…/…`: every key id has a boundary (`/` is not alphanumeric) but the whole
    // buffer is one base64 run. The search for a nearby secret must not rescan the run to its
    // end for each key id (it did: 600 KB took about a minute).
    let mut s = String::new();
    let mut i = 0u64;
    while s.len() < 600_000 {
        s.push('/');
        s.push_str(&key_for("AKIA", 100_000_000_000 + i * 7919, "QRSTUV"));
        i += 1;
    }
    let t = std::time::Instant::now();
    let f = scan_text("run", s.as_bytes());
    assert_eq!(f.len(), usize::try_from(i).unwrap());
    assert!(f.iter().all(|x| x.rule == "aws-access-key-id"));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn token_keywords_and_prefixes_inside_one_run_are_linear() {
    // `sessiontoken=` is itself base64-and-`=`, so each keyword's value runs over every
    // following keyword; `=IQoJb3JpZ2lu` starts a token prefix after each `=`. Each match
    // measured up to 8 KiB of the same run again (and prefixes were checked against every
    // token found so far): 1 MB took seconds.
    for unit in ["sessiontoken=", "=IQoJb3JpZ2lu"] {
        let s = unit.repeat(1_000_000 / unit.len());
        let t = std::time::Instant::now();
        let f = scan_text("run", s.as_bytes());
        assert!(f.iter().all(|x| x.rule == "aws-session-token"), "{unit}");
        assert!(
            t.elapsed() < std::time::Duration::from_millis(1500),
            "{unit}: {:?}",
            t.elapsed()
        );
    }
}

#[test]
fn lone_secret_given_without_an_assignment_operator() {
    // The secret's name and value separated by blanks only: Dockerfile `ENV k v`, the AWS
    // CLI's `aws configure set k v`, csh `setenv`, a Java system property. With no key id
    // nearby these were not found at all.
    for line in [
        format!("ENV AWS_SECRET_ACCESS_KEY {SECRET}\n"),
        format!("aws configure set aws_secret_access_key {SECRET}\n"),
        format!("setenv AWS_SECRET_ACCESS_KEY\t'{SECRET}'\n"),
        format!("java -Daws.secretKey={SECRET} -jar app.jar\n"),
        format!("aws.secretAccessKey = {SECRET}\n"),
    ] {
        let f = scan_text("f", line.as_bytes());
        let got: Vec<(&str, Severity)> = f.iter().map(|x| (x.rule.as_str(), x.severity)).collect();
        assert_eq!(
            got,
            vec![("aws-secret-access-key", Severity::High)],
            "{line}"
        );
    }
    // A name followed by prose, or by the value on the next line, is not a value.
    for text in [
        "set AWS_SECRET_ACCESS_KEY in the CI settings\n".to_string(),
        format!("AWS_SECRET_ACCESS_KEY\n{SECRET}\n"),
    ] {
        assert!(scan_text("f", text.as_bytes()).is_empty(), "{text}");
    }
}

#[test]
fn many_findings_on_one_long_line_are_linear() {
    // A minified file: one line, many key ids. Each finding's column was counted from the start
    // of its line again (a 2 MB line with 100,000 ids took 45 s).
    let mut s = String::new();
    let mut n = 0usize;
    while s.len() < 600_000 {
        s.push_str("é ");
        s.push_str(&key_for(
            "AKIA",
            100_000_000_000 + n as u64 * 7919,
            "QRSTUV",
        ));
        s.push(' ');
        n += 1;
    }
    let t = std::time::Instant::now();
    let f = scan_text("min.js", s.as_bytes());
    let elapsed = t.elapsed();
    assert_eq!(f.len(), n);
    // Columns count characters: each unit is `é` + space + 20 + space = 23 characters.
    assert_eq!((f[0].line, f[0].column), (1, 3));
    assert_eq!((f[n - 1].line, f[n - 1].column), (1, 23 * (n - 1) + 3));
    assert!(
        elapsed < std::time::Duration::from_millis(1500),
        "{elapsed:?}"
    );
}

#[test]
fn a_real_key_id_next_to_the_documented_example_secret_is_not_an_example() {
    // A real key id pasted into AWS's documented snippet keeps the example secret beside it.
    // Pairing them made the real id a low "example key", hidden by --min-severity medium.
    let id = key_for("AKIA", 609_629_065_308, "QRSTUV");
    let text = format!(
        "aws_access_key_id = {id}\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    );
    let f = scan_text("config", text.as_bytes());
    let got: Vec<(&str, Severity, usize)> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.severity, x.line))
        .collect();
    assert_eq!(
        got,
        vec![
            ("aws-access-key-id", Severity::Medium, 1),
            ("aws-example-key", Severity::Low, 2)
        ]
    );
    assert_eq!(f[0].access_key_id.as_deref(), Some(id.as_str()));
    assert!(!f[0].example);
}

#[test]
fn json_escaped_slashes_in_a_secret() {
    // PHP's json_encode (and others) write `/` as `\/`: the secret no longer looked like one.
    let esc = SECRET.replace('/', "\\/");
    let id = key_for("AKIA", 609_629_065_308, "QRSTUV");
    let pair = format!("{{\"AccessKeyId\":\"{id}\",\"SecretAccessKey\":\"{esc}\"}}\n");
    let f = scan_text("k.json", pair.as_bytes());
    let got: Vec<(&str, usize, usize)> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.line, x.column))
        .collect();
    assert_eq!(got, vec![("aws-access-key", 1, 17)]);
    assert_eq!(
        f[0].fingerprint,
        scan_text("p", format!("{id} {SECRET}").as_bytes())[0].fingerprint,
        "the secret is fingerprinted unescaped"
    );
    let lone = format!("{{\"x\": 1, \"SecretAccessKey\": \"{esc}\"}}\n");
    let f = scan_text("k.json", lone.as_bytes());
    let got: Vec<(&str, usize, usize)> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.line, x.column))
        .collect();
    assert_eq!(got, vec![("aws-secret-access-key", 1, 30)]);
}

#[test]
fn base64_encoded_values_of_kubernetes_secrets() {
    // A Kubernetes Secret's `data` holds base64 values under plain names.
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let id = key_for("AKIA", 609_629_065_308, "QRSTUV");
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\ndata:\n  AWS_ACCESS_KEY_ID: {}\n  AWS_SECRET_ACCESS_KEY: {}\n",
        b64(&id),
        b64(SECRET)
    );
    let f = scan_text("secret.yaml", manifest.as_bytes());
    let got: Vec<(&str, usize, usize, Option<&str>)> = f
        .iter()
        .map(|x| {
            (
                x.rule.as_str(),
                x.line,
                x.column,
                x.access_key_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(got, vec![("aws-access-key", 4, 22, Some(id.as_str()))]);
    let secret_only = format!("data:\n  aws_secret_access_key: {}\n", b64(SECRET));
    let f = scan_text("secret.yaml", secret_only.as_bytes());
    let got: Vec<(&str, usize, usize)> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.line, x.column))
        .collect();
    assert_eq!(got, vec![("aws-secret-access-key", 2, 26)]);
    // Base64 of something else under a credential name, and plain secrets, are not decoded
    // into findings (nor reported twice).
    let other = format!(
        "AWS_SECRET_ACCESS_KEY: {}\n",
        b64("not a secret at all, just some words")
    );
    assert!(scan_text("s.yaml", other.as_bytes()).is_empty());
    let plain = format!("AWS_SECRET_ACCESS_KEY: {SECRET}\n");
    assert_eq!(scan_text("s.env", plain.as_bytes()).len(), 1);
}

#[test]
fn percent_encoded_secret_in_a_url() {
    // Tools that take `s3://KEY:SECRET@bucket` (duplicity, rclone-style remotes, some SDK
    // endpoints) need `/` and `+` in the secret percent-encoded; it then lost its shape.
    let id = key_for("AKIA", 609_629_065_308, "QRSTUV");
    let enc = SECRET.replace('/', "%2F").replace('+', "%2b");
    let url = format!("TARGET=s3://{id}:{enc}@my-bucket/backups\n");
    let f = scan_text("backup.conf", url.as_bytes());
    let got: Vec<(&str, usize, usize)> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.line, x.column))
        .collect();
    assert_eq!(got, vec![("aws-access-key", 1, 13)]);
    assert_eq!(
        f[0].fingerprint,
        scan_text("p", format!("{id} {SECRET}").as_bytes())[0].fingerprint
    );
}
