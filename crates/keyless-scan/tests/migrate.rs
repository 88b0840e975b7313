//! `migrate github-actions`: rewrite, idempotence, preserved comments, errors.

use keyless_scan::lint::lint_content;
use keyless_scan::migrate::{MigrateError, MigrateOptions, migrate_github_actions};

fn opts() -> MigrateOptions {
    MigrateOptions {
        role_arn: "arn:aws:iam::123456789012:role/deploy".into(),
        audience: "sts.amazonaws.com".into(),
        repository: "acme/app".into(),
        branch: "main".into(),
        environment: None,
        region: "eu-west-1".into(),
        duration_seconds: 900,
    }
}

const WF: &str = "name: deploy   # the deploy workflow\non:\n  push:\n    branches: [main]\n\npermissions:\n  contents: read # keep\n\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      # configure credentials\n      - name: creds\n        uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.AWS_ACCESS_KEY_ID }}\n          aws-secret-access-key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n          aws-region: eu-west-1\n      - run: aws s3 sync . s3://bucket\n  smoke:\n    runs-on: ubuntu-latest\n    env:\n      AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}\n      AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n      STAGE: prod\n    steps:\n      - run: aws sts get-caller-identity\n";

#[test]
fn rewrites_and_is_idempotent() {
    let before = lint_content(".github/workflows/d.yml", WF);
    assert!(before.len() >= 3);
    let r = migrate_github_actions(WF, &opts()).unwrap();
    assert!(r.changed);
    let out = &r.workflow;
    assert!(out.contains("name: deploy   # the deploy workflow\n"));
    assert!(
        out.contains("  contents: read # keep\n  id-token: write\n"),
        "{out}"
    );
    assert!(out.contains("      # configure credentials\n"));
    assert!(out.contains("          role-to-assume: arn:aws:iam::123456789012:role/deploy\n          role-duration-seconds: 900\n          aws-region: eu-west-1\n"), "{out}");
    assert!(
        !out.contains("aws-access-key-id") && !out.contains("AWS_SECRET_ACCESS_KEY"),
        "{out}"
    );
    assert!(out.contains("      STAGE: prod\n"));
    assert!(out.contains("      - name: Configure AWS credentials (OIDC)\n"));
    let after = lint_content(".github/workflows/d.yml", out);
    assert!(after.is_empty(), "{after:?}");
    let again = migrate_github_actions(out, &opts()).unwrap();
    assert!(!again.changed);
    assert_eq!(&again.workflow, out);
    assert!(r.trust_policy.contains("repo:acme/app:ref:refs/heads/main"));
    assert!(r.keyless_config.contains("name = \"deploy\""));
    let trust_findings = lint_content("trust.json", &r.trust_policy);
    assert!(
        trust_findings
            .iter()
            .all(|f| f.severity == keyless_scan::Severity::Low),
        "{trust_findings:?}"
    );
}

#[test]
fn bad_inputs() {
    let mut o = opts();
    o.role_arn = "arn:aws:iam::123:role/x".into();
    assert_eq!(
        migrate_github_actions(WF, &o).unwrap_err(),
        MigrateError::RoleArn("arn:aws:iam::123:role/x".into())
    );
    let mut o = opts();
    o.repository = "acme".into();
    assert_eq!(
        migrate_github_actions(WF, &o).unwrap_err(),
        MigrateError::Repository("acme".into())
    );
    let mut o = opts();
    o.branch = "main\"; rm -rf /".into();
    assert!(matches!(
        migrate_github_actions(WF, &o).unwrap_err(),
        MigrateError::Name("branch", _)
    ));
    assert_eq!(
        migrate_github_actions("a: 1\n", &opts()).unwrap_err(),
        MigrateError::NotAWorkflow
    );
    assert!(matches!(
        migrate_github_actions("jobs: [", &opts()).unwrap_err(),
        MigrateError::Yaml(_)
    ));
    let flow = "jobs:\n  d:\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with: {aws-access-key-id: x, aws-region: y}\n";
    assert_eq!(
        migrate_github_actions(flow, &opts()).unwrap_err(),
        MigrateError::Unsupported(5, "flow-style `with`".into())
    );
}

const ENV_WF: &str = "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    environment: production\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.A }}\n          aws-secret-access-key: ${{ secrets.B }}\n          aws-region: us-east-1\n";

#[test]
fn trust_subject_matches_the_jobs_environment() {
    // A job with `environment:` gets an OIDC token whose sub is
    // repo:OWNER/REPO:environment:NAME, never the branch: a branch-scoped trust policy would
    // refuse every run of the migrated workflow.
    assert_eq!(
        migrate_github_actions(ENV_WF, &opts()).unwrap_err(),
        MigrateError::Subject(
            "deploy".into(),
            "it runs in environment `production`, so its OIDC token's sub is repo:acme/app:environment:production; pass --environment production".into()
        )
    );
    let mapped = ENV_WF.replace(
        "environment: production\n",
        "environment:\n      name: production\n      url: https://example.invalid\n",
    );
    let mut o = opts();
    o.environment = Some("production".into());
    for wf in [ENV_WF, mapped.as_str()] {
        let r = migrate_github_actions(wf, &o).unwrap();
        assert!(
            r.trust_policy
                .contains("\"repo:acme/app:environment:production\"")
        );
    }
    // And the other way round: --environment for a job that runs in none (or another one).
    assert_eq!(
        migrate_github_actions(WF, &o).unwrap_err(),
        MigrateError::Subject(
            "deploy".into(),
            "it runs in no environment, so its OIDC token's sub is repo:acme/app:ref:refs/heads/<branch>, not environment `production`; add `environment: production` to the job or leave out --environment".into()
        )
    );
    o.environment = Some("staging".into());
    assert_eq!(
        migrate_github_actions(ENV_WF, &o).unwrap_err(),
        MigrateError::Subject(
            "deploy".into(),
            "it runs in environment `production`, so its OIDC token's sub is repo:acme/app:environment:production; pass --environment production".into()
        )
    );
    let expr = ENV_WF.replace("environment: production", "environment: ${{ inputs.env }}");
    assert_eq!(
        migrate_github_actions(&expr, &o).unwrap_err(),
        MigrateError::Subject(
            "deploy".into(),
            "its environment is the expression `${{ inputs.env }}`, so the OIDC token's sub is only known at run time; write the trust policy by hand".into()
        )
    );
}

#[test]
fn localstack_dummy_keys_are_left_alone() {
    // A test job against LocalStack sets dummy keys; it does not use AWS and must not be
    // rewritten to assume a role.
    let wf = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    env:\n      AWS_ACCESS_KEY_ID: test\n      AWS_SECRET_ACCESS_KEY: test\n    steps:\n      - run: make test\n";
    let r = migrate_github_actions(wf, &opts()).unwrap();
    assert!(!r.changed);
    assert_eq!(r.workflow, wf);
}

#[test]
fn role_path_is_kept_in_the_keyless_config() {
    // `--role-arn arn:aws:iam::…:role/ci/deploy` names role `deploy` at path `/ci/`. The
    // snippet declared `deploy` at `/`, whose ARN (role/deploy) is not the one the workflow
    // assumes.
    let mut o = opts();
    o.role_arn = "arn:aws:iam::123456789012:role/ci/deploy".into();
    let r = migrate_github_actions(WF, &o).unwrap();
    assert!(
        r.keyless_config.contains(
            "[[roles]]\naccount = \"123456789012\"\nname = \"deploy\"\npath = \"/ci/\"\n"
        ),
        "{}",
        r.keyless_config
    );
    assert!(
        r.workflow
            .contains("role-to-assume: arn:aws:iam::123456789012:role/ci/deploy")
    );
    let mut o = opts();
    o.role_arn = "arn:aws:iam::123456789012:role/c\"i/deploy".into();
    assert_eq!(
        migrate_github_actions(WF, &o).unwrap_err(),
        MigrateError::RoleArn(o.role_arn.clone())
    );
}
