//! Lint rules: GitHub Actions, GitLab CI, AWS config files, IAM policies (validator-backed).

use keyless_scan::Severity;
use keyless_scan::lint::lint_content;

fn rules(path: &str, src: &str) -> Vec<(String, usize)> {
    lint_content(path, src)
        .into_iter()
        .map(|f| (f.rule, f.line))
        .collect()
}

#[test]
fn github_static_keys_and_action_inputs() {
    let wf = "on: push\nenv:\n  AWS_ACCESS_KEY_ID: ${{ secrets.A }}\njobs:\n  d:\n    runs-on: x\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          aws-access-key-id: ${{ secrets.A }}\n          aws-secret-access-key: ${{ secrets.B }}\n          aws-region: eu-west-1\n";
    let r = rules(".github/workflows/a.yml", wf);
    assert_eq!(
        r,
        vec![
            ("gha-static-aws-keys".to_string(), 3),
            ("gha-configure-aws-credentials-keys".to_string(), 10),
            ("gha-configure-aws-credentials-keys".to_string(), 11),
        ]
    );
}

#[test]
fn github_oidc_permissions_and_duration() {
    let base = "on: push\n{P}jobs:\n  d:\n    runs-on: x\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::123456789012:role/r\n          role-duration-seconds: {D}\n          aws-region: eu-west-1\n";
    let wf = base.replace("{P}", "").replace("{D}", "3600");
    assert_eq!(
        rules(".github/workflows/a.yml", &wf),
        vec![("gha-missing-id-token-permission".to_string(), 6)]
    );
    let wf = base
        .replace("{P}", "permissions:\n  id-token: write\n")
        .replace("{D}", "43200");
    assert_eq!(
        rules(".github/workflows/a.yml", &wf),
        vec![("gha-long-role-duration".to_string(), 11)]
    );
    let wf = base
        .replace("{P}", "permissions: write-all\n")
        .replace("{D}", "900");
    assert!(rules(".github/workflows/a.yml", &wf).is_empty());
    // Job-level permissions override the workflow's.
    let wf = "on: push\npermissions:\n  id-token: write\njobs:\n  d:\n    permissions:\n      contents: read\n    steps:\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::123456789012:role/r\n";
    assert_eq!(
        rules(".github/workflows/a.yml", wf),
        vec![("gha-missing-id-token-permission".to_string(), 9)]
    );
}

#[test]
fn malformed_workflow_reports_parse_error() {
    let f = lint_content(".github/workflows/a.yml", "jobs: [unclosed\n");
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "lint-parse-error");
    assert!(
        f[0].message.starts_with("not checked: YAML syntax error"),
        "{}",
        f[0].message
    );
}

#[test]
fn gitlab_rules() {
    let ci = "variables:\n  AWS_ACCESS_KEY_ID: AKIA...\ndeploy:\n  id_tokens:\n    GOOD:\n      aud: sts.amazonaws.com\n    BAD:\n      foo: 1\n  variables:\n    AWS_SECRET_ACCESS_KEY: x\n  script:\n    - export AWS_SECRET_ACCESS_KEY=$S\n    - aws s3 ls\n";
    assert_eq!(
        rules(".gitlab-ci.yml", ci),
        vec![
            ("gitlab-static-aws-keys".to_string(), 2),
            ("gitlab-id-token-without-audience".to_string(), 7),
            ("gitlab-static-aws-keys".to_string(), 10),
            ("gitlab-static-aws-keys".to_string(), 12),
        ]
    );
}

#[test]
fn aws_config_static_keys() {
    let c = "[default]\nsso_session = corp\n\n[profile legacy]\naws_access_key_id = AKIAY34FZKBOKMUTVV7A\naws_secret_access_key = x\n";
    assert_eq!(
        rules(".aws/credentials", c),
        vec![
            ("aws-config-static-keys".to_string(), 5),
            ("aws-config-static-keys".to_string(), 6)
        ]
    );
    assert!(rules(".aws/config", "[default]\nsso_session = corp\n").is_empty());
}

const OPEN_TRUST: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}}
  }]
}"#;

#[test]
fn standalone_trust_policy_without_sub() {
    let f = lint_content("iam/trust.json", OPEN_TRUST);
    let codes: Vec<&str> = f.iter().map(|x| x.rule.as_str()).collect();
    assert!(
        codes.contains(&"iam-policy/MISSING_GITHUB_REPO_CONDITION_KEY"),
        "{codes:?}"
    );
    assert!(f.iter().any(|x| x.severity == Severity::High));
}

#[test]
fn org_wide_trust_and_admin_in_terraform() {
    let tf = r#"
resource "aws_iam_role" "ci" {
  name                 = "ci"
  max_session_duration = 43200
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Federated = aws_iam_openid_connect_provider.github.arn }
      Action    = "sts:AssumeRoleWithWebIdentity"
      Condition = {
        StringEquals = { "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com" }
        StringLike   = { "token.actions.githubusercontent.com:sub" = "repo:acme/*" }
      }
    }]
  })
}

resource "aws_iam_policy" "admin" {
  policy = <<EOF
{
  "Version": "2012-10-17",
  "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
}
EOF
}
"#;
    let f = lint_content("main.tf", tf);
    let got: Vec<(&str, usize)> = f.iter().map(|x| (x.rule.as_str(), x.line)).collect();
    assert!(
        got.contains(&("iam-policy/OVERLY_BROAD_GITHUB_SUB", 5)),
        "{got:?}"
    );
    assert!(
        got.contains(&("iam-long-max-session-duration", 4)),
        "{got:?}"
    );
    assert!(
        got.contains(&("iam-allow-all-actions-all-resources", 21)),
        "{got:?}"
    );
    // Terraform references are placeholders, not invalid principals.
    assert!(
        !got.iter().any(|(r, _)| r.contains("INVALID_PRINCIPAL")),
        "{got:?}"
    );
}

#[test]
fn cloudformation_yaml_and_json() {
    let yaml = r#"AWSTemplateFormatVersion: "2010-09-09"
Resources:
  DeployRole:
    Type: AWS::IAM::Role
    Properties:
      MaxSessionDuration: 14400
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal:
              Federated: !Sub arn:aws:iam::${AWS::AccountId}:oidc-provider/token.actions.githubusercontent.com
            Action: sts:AssumeRoleWithWebIdentity
"#;
    let f = lint_content("stack.yaml", yaml);
    let got: Vec<(&str, usize)> = f.iter().map(|x| (x.rule.as_str(), x.line)).collect();
    assert!(
        got.contains(&("iam-policy/MISSING_GITHUB_REPO_CONDITION_KEY", 7)),
        "{got:?}"
    );
    assert!(
        got.contains(&("iam-long-max-session-duration", 6)),
        "{got:?}"
    );

    let json = r#"{"AWSTemplateFormatVersion": "2010-09-09", "Resources": {"P": {"Type": "AWS::IAM::ManagedPolicy",
 "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["*"], "Resource": "*"}]}}}}}"#;
    let f = lint_content("stack.json", json);
    assert!(
        f.iter()
            .any(|x| x.rule == "iam-allow-all-actions-all-resources" && x.line == 2),
        "{f:?}"
    );

    let f = lint_content(
        "stack.json",
        "{\"AWSTemplateFormatVersion\": \"2010-09-09\", \"Resources\": ",
    );
    assert_eq!(f[0].rule, "lint-parse-error");
}

#[test]
fn good_files_are_clean() {
    let trust = OPEN_TRUST.replace(
        "\"token.actions.githubusercontent.com:aud\": \"sts.amazonaws.com\"",
        "\"token.actions.githubusercontent.com:aud\": \"sts.amazonaws.com\", \"token.actions.githubusercontent.com:sub\": \"repo:acme/app:ref:refs/heads/main\"",
    );
    let f = lint_content("trust.json", &trust);
    assert!(f.iter().all(|x| x.severity == Severity::Low), "{f:?}");
    assert!(lint_content("README.md", "AWS_ACCESS_KEY_ID").is_empty());
}

#[test]
fn other_oidc_provider_without_sub() {
    let other_idp = OPEN_TRUST.replace("token.actions.githubusercontent.com", "gitlab.example.com");
    let codes: Vec<String> = lint_content("iam/trust.json", &other_idp)
        .into_iter()
        .map(|x| x.rule)
        .collect();
    assert!(
        codes.contains(&"iam-policy/MISSING_SUB_CONDITION".to_string()),
        "{codes:?}"
    );
}

/// An org-wide GitHub trust whose provider ARN is a reference, written the ways CloudFormation
/// and Terraform templates write it. The validator's OIDC checks need the provider host, which
/// the conditions name; without it they did not run, and `repo:acme/*` passed as clean.
#[test]
fn org_wide_trust_with_a_referenced_provider() {
    let cfn = |federated: &str| {
        format!(
            "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  DeployRole:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Action: sts:AssumeRoleWithWebIdentity\n            Principal:\n              Federated: {federated}\n            Condition:\n              StringLike:\n                token.actions.githubusercontent.com:sub: repo:acme/*\n"
        )
    };
    let cfn_json = r#"{"AWSTemplateFormatVersion":"2010-09-09","Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRoleWithWebIdentity","Principal":{"Federated":{"Fn::GetAtt":["GithubOidc","Arn"]}},"Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:acme/*"}}}]}}}}}"#;
    let tf_var = "resource \"aws_iam_role\" \"deploy\" {\n  assume_role_policy = jsonencode({\n    Version = \"2012-10-17\"\n    Statement = [{\n      Effect    = \"Allow\"\n      Action    = \"sts:AssumeRoleWithWebIdentity\"\n      Principal = { Federated = var.github_oidc_provider_arn }\n      Condition = { StringLike = { \"token.actions.githubusercontent.com:sub\" = \"repo:acme/*\" } }\n    }]\n  })\n}\n";
    let tf_heredoc = "resource \"aws_iam_role\" \"deploy\" {\n  assume_role_policy = <<EOT\n{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\n    \"Effect\": \"Allow\",\n    \"Action\": \"sts:AssumeRoleWithWebIdentity\",\n    \"Principal\": { \"Federated\": \"${aws_iam_openid_connect_provider.github.arn}\" },\n    \"Condition\": { \"StringLike\": { \"token.actions.githubusercontent.com:sub\": \"repo:acme/*\" } }\n  }]\n}\nEOT\n}\n";
    let cases = [
        ("ref.yaml", cfn("!Ref GithubOidc"), 6),
        ("getatt.yaml", cfn("!GetAtt GithubOidc.Arn"), 6),
        ("getatt-seq.yaml", cfn("!GetAtt [GithubOidc, Arn]"), 6),
        ("long.yaml", cfn("\n                Ref: GithubOidc"), 6),
        (
            "if.yaml",
            cfn("!If [Create, !Ref GithubOidc, !Ref ProviderArn]"),
            6,
        ),
        ("t.json", cfn_json.to_string(), 1),
        ("var.tf", tf_var.to_string(), 2),
        ("heredoc.tf", tf_heredoc.to_string(), 5),
    ];
    for (path, src, line) in cases {
        assert_eq!(
            rules(path, &src),
            vec![("iam-policy/OVERLY_BROAD_GITHUB_SUB".to_string(), line)],
            "{path}"
        );
    }
    // A literal federated service principal is not an OIDC provider reference.
    let cognito = cfn("cognito-identity.amazonaws.com").replace(
        "StringLike:\n                token.actions.githubusercontent.com:sub: repo:acme/*",
        "ForAnyValue:StringLike:\n                cognito-identity.amazonaws.com:amr: authenticated",
    );
    assert_eq!(rules("cognito.yaml", &cognito), vec![]);
}

/// Infrastructure code that mints a permanent access key: every apply creates (and stores in
/// the state or an output) exactly the credential keyless is meant to replace.
#[test]
fn access_keys_created_by_infrastructure_code() {
    let tf = "resource \"aws_iam_user\" \"ci\" {\n  name = \"ci\"\n}\n\nresource \"aws_iam_access_key\" \"ci\" {\n  user = aws_iam_user.ci.name\n}\n\n  resource   \"aws_iam_access_key\"   \"other\" {\n  user = \"x\"\n}\n# resource \"aws_iam_access_key\" \"commented\" {}\n";
    assert_eq!(
        rules("users.tf", tf),
        vec![
            ("iac-iam-access-key".to_string(), 5),
            ("iac-iam-access-key".to_string(), 9)
        ]
    );
    let f = lint_content("users.tf", tf);
    assert_eq!(f[0].severity, Severity::High);
    assert_eq!(
        f[0].message,
        "Terraform aws_iam_access_key.ci creates a permanent access key"
    );
    let cfn_yaml = "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  CiUser:\n    Type: AWS::IAM::User\n  CiKey:\n    Type: AWS::IAM::AccessKey\n    Properties:\n      UserName: !Ref CiUser\n";
    assert_eq!(
        rules("t.yaml", cfn_yaml),
        vec![("iac-iam-access-key".to_string(), 5)]
    );
    let cfn_json = r#"{"AWSTemplateFormatVersion":"2010-09-09","Resources":{"CiKey":{"Type":"AWS::IAM::AccessKey","Properties":{"UserName":"ci"}}}}"#;
    let f = lint_content("t.json", cfn_json);
    assert_eq!(
        f.iter().map(|x| x.message.as_str()).collect::<Vec<_>>(),
        vec!["CloudFormation CiKey (AWS::IAM::AccessKey) creates a permanent access key"]
    );
}

/// Static keys fed to a step other than through `env`: another action's inputs, or a `run`
/// script that exports them or writes them with `aws configure set`.
#[test]
fn github_static_keys_in_other_actions_and_run_scripts() {
    let wf = "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: appleboy/lambda-action@v0.2.0\n        with:\n          aws_access_key_id: ${{ secrets.AWS_ACCESS_KEY_ID }}\n          aws_secret_access_key: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n          function_name: f\n      - run: |\n          export AWS_ACCESS_KEY_ID=${{ secrets.AWS_ACCESS_KEY_ID }}\n          aws s3 sync . s3://b\n      - run: aws configure set aws_secret_access_key \"${{ secrets.SECRET }}\"\n      - run: AWS_ACCESS_KEY_ID=AKIAY34FZKBOKMUTVV7A ./deploy.sh\n";
    let f = lint_content(".github/workflows/a.yml", wf);
    let got: Vec<(&str, usize, &str)> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.line, x.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "gha-static-aws-keys",
                8,
                "job `deploy`: appleboy/lambda-action@v0.2.0 is given `aws_access_key_id` from a repository secret"
            ),
            (
                "gha-static-aws-keys",
                9,
                "job `deploy`: appleboy/lambda-action@v0.2.0 is given `aws_secret_access_key` from a repository secret"
            ),
            (
                "gha-static-aws-keys",
                12,
                "job `deploy`: a `run` script sets AWS_ACCESS_KEY_ID from a repository secret"
            ),
            (
                "gha-static-aws-keys",
                14,
                "job `deploy`: a `run` script sets aws_secret_access_key from a repository secret"
            ),
            (
                "gha-static-aws-keys",
                15,
                "job `deploy`: a `run` script sets AWS_ACCESS_KEY_ID from a literal key"
            ),
        ]
    );
    // Credentials a previous step obtained (temporary ones) are not static keys.
    let ok = "on: push\njobs:\n  d:\n    runs-on: x\n    steps:\n      - run: |\n          export AWS_ACCESS_KEY_ID=$(echo \"$CREDS\" | jq -r .AccessKeyId)\n          echo \"AWS_ACCESS_KEY_ID=${{ steps.sts.outputs.key }}\" >> $GITHUB_ENV\n      - uses: some/action@v1\n        with:\n          aws-access-key-id: ${{ steps.sts.outputs.aws-access-key-id }}\n";
    assert_eq!(rules(".github/workflows/a.yml", ok), vec![]);
}

/// The usual Terraform way to write a trust policy: an `aws_iam_policy_document` data source
/// with `statement`, `principals` and `condition` blocks. It was not read at all.
#[test]
fn terraform_policy_document_data_source() {
    let tf = "data \"aws_iam_policy_document\" \"github_trust\" {\n  statement {\n    effect  = \"Allow\"\n    actions = [\"sts:AssumeRoleWithWebIdentity\"]\n    principals {\n      type        = \"Federated\"\n      identifiers = [aws_iam_openid_connect_provider.github.arn]\n    }\n    condition {\n      test     = \"StringEquals\"\n      variable = \"token.actions.githubusercontent.com:aud\"\n      values   = [\"sts.amazonaws.com\"]\n    }\n    condition {\n      test     = \"StringLike\" # org-wide\n      variable = \"token.actions.githubusercontent.com:sub\"\n      values   = [\"repo:acme/*\"]\n    }\n  }\n}\n\nresource \"aws_iam_role\" \"deploy\" {\n  assume_role_policy = data.aws_iam_policy_document.github_trust.json\n}\n\ndata \"aws_iam_policy_document\" \"admin\" {\n  statement {\n    actions   = [\"*\"]\n    resources = [\"*\"]\n  }\n}\n";
    assert_eq!(
        rules("iam.tf", tf),
        vec![
            ("iam-policy/OVERLY_BROAD_GITHUB_SUB".to_string(), 1),
            ("iam-allow-all-actions-all-resources".to_string(), 26),
        ]
    );
    // Scoped to one repository and branch: clean. No sub condition at all: flagged.
    let scoped = tf
        .replace("repo:acme/*", "repo:acme/app:ref:refs/heads/main")
        .replace("StringLike", "StringEquals");
    let scoped = &scoped[..scoped
        .find("data \"aws_iam_policy_document\" \"admin\"")
        .unwrap()];
    assert_eq!(rules("iam.tf", scoped), vec![]);
    let no_sub = "data \"aws_iam_policy_document\" \"t\" {\n  statement {\n    actions = [\"sts:AssumeRoleWithWebIdentity\"]\n    principals {\n      type        = \"Federated\"\n      identifiers = [\"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com\"]\n    }\n  }\n}\n";
    assert_eq!(
        rules("t.tf", no_sub),
        vec![(
            "iam-policy/MISSING_GITHUB_REPO_CONDITION_KEY".to_string(),
            1
        )]
    );
}

/// `pull_request_target` runs for fork pull requests with the base repository's secrets and
/// OIDC token; a job that then builds the pull request's code hands AWS access to any fork.
#[test]
fn pull_request_target_with_aws_credentials() {
    let body = "jobs:\n  deploy:\n    runs-on: x\n    permissions:\n      id-token: write\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          ref: ${{ github.event.pull_request.head.sha }}\n      - uses: aws-actions/configure-aws-credentials@v4\n        with:\n          role-to-assume: arn:aws:iam::123456789012:role/r\n          aws-region: eu-west-1\n";
    for on in [
        "on: pull_request_target\n",
        "on: [push, pull_request_target]\n",
        "on:\n  pull_request_target:\n    types: [opened]\n",
    ] {
        let wf = format!("{on}{body}");
        let f = lint_content(".github/workflows/pr.yml", &wf);
        let got: Vec<(&str, usize, &str, Severity)> = f
            .iter()
            .map(|x| (x.rule.as_str(), x.line, x.message.as_str(), x.severity))
            .collect();
        let line = on.lines().count() + 10;
        assert_eq!(
            got,
            vec![(
                "gha-pull-request-target-aws",
                line,
                "job `deploy` gets AWS credentials in a workflow triggered by pull_request_target",
                Severity::High
            )],
            "{on}"
        );
    }
    let static_keys = "on: pull_request_target\njobs:\n  t:\n    runs-on: x\n    env:\n      AWS_ACCESS_KEY_ID: ${{ secrets.A }}\n    steps:\n      - run: make test\n";
    assert_eq!(
        rules(".github/workflows/pr.yml", static_keys),
        vec![
            ("gha-pull-request-target-aws".to_string(), 6),
            ("gha-static-aws-keys".to_string(), 6)
        ]
    );
    // Other triggers, and pull_request_target jobs without AWS credentials: nothing.
    assert_eq!(
        rules(".github/workflows/pr.yml", &format!("on: push\n{body}")),
        vec![]
    );
    assert_eq!(
        rules(
            ".github/workflows/pr.yml",
            "on: pull_request_target\njobs:\n  label:\n    runs-on: x\n    steps:\n      - uses: actions/labeler@v5\n"
        ),
        vec![]
    );
}

#[test]
fn gitlab_script_written_as_one_string() {
    // `script:` may be a single string instead of a list; it was not looked at.
    let ci = "deploy:\n  script: export AWS_ACCESS_KEY_ID=$KEY && aws s3 ls\n  after_script: |\n    aws configure set aws_secret_access_key \"$SECRET\"\n    AWS_SECRET_ACCESS_KEY=$SECRET ./x\n";
    assert_eq!(
        rules(".gitlab-ci.yml", ci),
        vec![
            ("gitlab-static-aws-keys".to_string(), 2),
            ("gitlab-static-aws-keys".to_string(), 4),
        ]
    );
}

/// Template substitutions are not IAM policy variables: `!Sub repo:${GitHubOrg}/${Repo}:…`
/// (AWS's own sample template for GitHub OIDC) and Terraform's `"repo:${var.org}/…"` name one
/// repository once deployed. They were read as policy variables (filled in by the token) and
/// reported as org-wide trust (high).
#[test]
fn template_substitutions_in_trust_conditions() {
    let cfn = |sub: &str| {
        format!(
            "AWSTemplateFormatVersion: \"2010-09-09\"\nResources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Action: sts:AssumeRoleWithWebIdentity\n            Principal:\n              Federated: !Sub arn:aws:iam::${{AWS::AccountId}}:oidc-provider/token.actions.githubusercontent.com\n            Condition:\n              StringLike:\n                token.actions.githubusercontent.com:sub: {sub}\n"
        )
    };
    let scoped = "!Sub repo:${GitHubOrg}/${RepositoryName}:ref:refs/heads/main";
    assert_eq!(rules("t.yaml", &cfn(scoped)), vec![]);
    let long =
        "\n                  Fn::Sub: repo:${GitHubOrg}/${RepositoryName}:ref:refs/heads/main";
    assert_eq!(rules("t.yaml", &cfn(long)), vec![]);
    // Still broad when the template itself leaves the repository open.
    assert_eq!(
        rules("t.yaml", &cfn("!Sub repo:${GitHubOrg}/*")),
        vec![("iam-policy/OVERLY_BROAD_GITHUB_SUB".to_string(), 6)]
    );
    // A real policy variable (escaped in !Sub as ${!…}) is still one.
    assert_eq!(
        rules(
            "t.yaml",
            &cfn("!Sub repo:${!token.actions.githubusercontent.com:repository_owner}/app:*")
        ),
        vec![("iam-policy/OVERLY_BROAD_GITHUB_SUB".to_string(), 6)]
    );
    let tf = |sub: &str| {
        format!(
            "resource \"aws_iam_role\" \"deploy\" {{\n  assume_role_policy = jsonencode({{\n    Version = \"2012-10-17\"\n    Statement = [{{\n      Effect    = \"Allow\"\n      Action    = \"sts:AssumeRoleWithWebIdentity\"\n      Principal = {{ Federated = aws_iam_openid_connect_provider.github.arn }}\n      Condition = {{ StringLike = {{ \"token.actions.githubusercontent.com:sub\" = \"{sub}\" }} }}\n    }}]\n  }})\n}}\n"
        )
    };
    assert_eq!(
        rules(
            "a.tf",
            &tf("repo:${var.org}/${var.repo}:ref:refs/heads/main")
        ),
        vec![]
    );
    assert_eq!(
        rules("a.tf", &tf("repo:${var.org}/*")),
        vec![("iam-policy/OVERLY_BROAD_GITHUB_SUB".to_string(), 2)]
    );
}

#[test]
fn static_keys_passed_to_a_reusable_workflow() {
    // A job that calls a reusable workflow hands it the keys in `secrets:` (or `with:`).
    let wf = "on: push\njobs:\n  deploy:\n    uses: acme/infra/.github/workflows/deploy.yml@v1\n    secrets:\n      AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}\n      AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}\n      OTHER: ${{ secrets.OTHER }}\n    with:\n      aws-access-key-id: ${{ vars.KEY_ID }}\n";
    let f = lint_content(".github/workflows/a.yml", wf);
    let got: Vec<(&str, usize, &str)> = f
        .iter()
        .map(|x| (x.rule.as_str(), x.line, x.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "gha-static-aws-keys",
                6,
                "job `deploy`: acme/infra/.github/workflows/deploy.yml@v1 is given `AWS_ACCESS_KEY_ID` from a repository secret"
            ),
            (
                "gha-static-aws-keys",
                7,
                "job `deploy`: acme/infra/.github/workflows/deploy.yml@v1 is given `AWS_SECRET_ACCESS_KEY` from a repository secret"
            ),
            (
                "gha-static-aws-keys",
                10,
                "job `deploy`: acme/infra/.github/workflows/deploy.yml@v1 is given `aws-access-key-id` from a repository variable"
            ),
        ]
    );
}

/// `env` keys that are not permanent keys: LocalStack's dummy `test`, and the temporary keys
/// configure-aws-credentials outputs (`output-credentials: true`) passed on to a later step.
/// They were reported as static keys (high).
#[test]
fn env_keys_that_are_not_static_credentials() {
    let wf = |v: &str| {
        format!(
            "on: push\njobs:\n  t:\n    runs-on: x\n    steps:\n      - run: make test\n        env:\n          AWS_ACCESS_KEY_ID: {v}\n"
        )
    };
    for v in [
        "test",
        "${{ steps.creds.outputs.aws-access-key-id }}",
        "\"dummy\"",
    ] {
        assert_eq!(rules(".github/workflows/a.yml", &wf(v)), vec![], "{v}");
    }
    for (v, src) in [
        ("${{ secrets.AWS_ACCESS_KEY_ID }}", "a repository secret"),
        ("${{ vars.KEY_ID }}", "a repository variable"),
        ("AKIAY34FZKBOKMUTVV7A", "a literal key"),
    ] {
        let f = lint_content(".github/workflows/a.yml", &wf(v));
        assert_eq!(f.len(), 1, "{v}");
        assert_eq!(
            f[0].message,
            format!("AWS_ACCESS_KEY_ID is set from {src} in `env`")
        );
    }
}

/// A composite action (`action.yml` with `runs: steps:`) wraps AWS login for many workflows;
/// its steps were not linted at all.
#[test]
fn composite_action_steps() {
    let action = "name: aws-login\ninputs:\n  key:\n    required: true\nruns:\n  using: composite\n  steps:\n    - uses: aws-actions/configure-aws-credentials@v4\n      with:\n        aws-access-key-id: ${{ inputs.key }}\n        aws-secret-access-key: ${{ inputs.secret }}\n        aws-region: eu-west-1\n    - shell: bash\n      run: aws sts get-caller-identity\n      env:\n        AWS_SECRET_ACCESS_KEY: ${{ secrets.S }}\n";
    for path in [".github/actions/aws-login/action.yml", "action.yaml"] {
        let f = lint_content(path, action);
        let got: Vec<(&str, usize, &str)> = f
            .iter()
            .map(|x| (x.rule.as_str(), x.line, x.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "gha-configure-aws-credentials-keys",
                    10,
                    "job `(composite action)`: aws-actions/configure-aws-credentials is given `aws-access-key-id`"
                ),
                (
                    "gha-configure-aws-credentials-keys",
                    11,
                    "job `(composite action)`: aws-actions/configure-aws-credentials is given `aws-secret-access-key`"
                ),
                (
                    "gha-static-aws-keys",
                    16,
                    "AWS_SECRET_ACCESS_KEY is set from a repository secret in `env`"
                ),
            ],
            "{path}"
        );
    }
    // OIDC inside a composite action: the calling workflow grants id-token, not the action.
    let oidc = "runs:\n  using: composite\n  steps:\n    - uses: aws-actions/configure-aws-credentials@v4\n      with:\n        role-to-assume: arn:aws:iam::123456789012:role/r\n        aws-region: eu-west-1\n";
    assert_eq!(rules(".github/actions/x/action.yml", oidc), vec![]);
}

#[test]
fn static_keys_in_job_containers_and_services() {
    // `container:` and `services:` take their own `env`, handed to those containers.
    let wf = "on: push\njobs:\n  t:\n    runs-on: x\n    container:\n      image: amazon/aws-cli\n      env:\n        AWS_ACCESS_KEY_ID: ${{ secrets.A }}\n    services:\n      uploader:\n        image: u\n        env:\n          AWS_SECRET_ACCESS_KEY: ${{ secrets.B }}\n    steps:\n      - run: aws s3 ls\n";
    assert_eq!(
        rules(".github/workflows/a.yml", wf),
        vec![
            ("gha-static-aws-keys".to_string(), 8),
            ("gha-static-aws-keys".to_string(), 13)
        ]
    );
}
