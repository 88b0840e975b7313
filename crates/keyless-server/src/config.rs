//! The TOML config file: parsing, validation with file/line/column errors, and conversion into
//! the config-owned [`Entities`].
//!
//! Unknown keys are an error. Policy documents are parsed and validated here, so a bad policy
//! stops start-up with the line it is on instead of failing a request later.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use keyless_core::model::{Account, Entities, Guardrail, InlinePolicy, OidcProvider, Origin, Role};
use keyless_core::organization::{Organization, check_org_id, check_ou_id, check_root_id};
use keyless_policy::{PolicyType, ROLE_INLINE_POLICIES_MAX_SIZE, Severity, policy_size};
use keyless_types::{AccountId, OffsetDateTime};
use serde::Deserialize;
use toml::Spanned;

/// A config error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Per (role, source address) token bucket for the STS issuing actions.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleConfig {
    /// Sustained requests per second.
    pub rate_per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            rate_per_second: 50.0,
            burst: 100,
        }
    }
}

/// The validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Data directory: database, key ring, audit log.
    pub data_dir: PathBuf,
    /// Postgres instead of the SQLite file in the data dir (`database_url`); its `Debug` hides
    /// the password.
    pub database_url: Option<keyless_store::DatabaseUrl>,
    /// Entities owned by the config file.
    pub entities: Entities,
    /// Throttling.
    pub throttle: ThrottleConfig,
    /// Leeway for `exp`/`nbf`/`iat`, per provider URL (default 300 s).
    pub provider_leeway: BTreeMap<String, u32>,
    /// Callers of `/v1/authorize`.
    pub authorize_clients: Vec<crate::authorize_api::AuthorizeClient>,
    /// Built-in guardrails (`[builtin_guardrails]`).
    pub builtin_guardrails: BuiltinGuardrails,
    /// IAM API settings (`[iam]`).
    pub iam: IamConfig,
    /// Warnings to log at start-up (e.g. a trust policy with a SECURITY_WARNING finding).
    pub warnings: Vec<String>,
    /// The `[audit]` table.
    pub audit: crate::audit::AuditSettings,
    /// The `[http]` table: connection limits and timeouts.
    pub http: crate::http_front::HttpSettings,
    /// The `[tls]` table: serve HTTPS with this certificate (paths resolved, files checked).
    pub tls: Option<crate::tls::TlsSettings>,
    /// The `[organization]` table: the AWS Organizations ids of the OU tree, every OU on an
    /// account's path given one. Not stored: each server reads it from its own config.
    pub organization: Option<Arc<Organization>>,
}

/// `[builtin_guardrails]`: guardrails keyless attaches at the root by itself.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuiltinGuardrails {
    /// `no-long-term-keys`: deny `iam:CreateAccessKey`, `iam:CreateUser`,
    /// `iam:CreateLoginProfile` and `iam:UpdateAccessKey` to everyone (default on).
    #[serde(default = "on")]
    pub no_long_term_keys: bool,
}

impl Default for BuiltinGuardrails {
    fn default() -> Self {
        BuiltinGuardrails {
            no_long_term_keys: true,
        }
    }
}

fn on() -> bool {
    true
}

/// `[iam]`: settings of the IAM API.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    /// Let `CreateOpenIDConnectProvider` accept `http://` URLs on loopback hosts (local test
    /// issuers only; default off, AWS accepts https only).
    #[serde(default)]
    pub allow_loopback_http_providers: bool,
    /// Let providers created through the IAM API reach loopback, private, link-local and other
    /// non-public addresses (default off: only the config's providers may name internal
    /// issuers).
    #[serde(default)]
    pub allow_private_provider_addresses: bool,
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7707";

/// A provider's `leeway_seconds` when it gives none (the server's default leeway).
pub const DEFAULT_LEEWAY_SECONDS: u32 = 300;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    data_dir: Option<PathBuf>,
    database_url: Option<Spanned<String>>,
    database_url_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    providers: Vec<RawProvider>,
    #[serde(default)]
    roles: Vec<RawRole>,
    #[serde(default)]
    guardrails: Vec<RawGuardrail>,
    throttle: Option<Spanned<ThrottleConfig>>,
    #[serde(default)]
    authorize_clients: Vec<RawAuthorizeClient>,
    builtin_guardrails: Option<BuiltinGuardrails>,
    iam: Option<IamConfig>,
    audit: Option<Spanned<crate::audit::AuditSettings>>,
    http: Option<Spanned<crate::http_front::HttpSettings>>,
    tls: Option<Spanned<crate::tls::TlsSettings>>,
    organization: Option<Spanned<RawOrganization>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    id: Spanned<String>,
    root: Spanned<String>,
    #[serde(default)]
    ous: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthorizeClient {
    name: Spanned<String>,
    token_sha256: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    id: Spanned<String>,
    name: Option<String>,
    ou: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    account: Spanned<String>,
    url: Spanned<String>,
    client_ids: Spanned<Vec<String>>,
    #[serde(default)]
    thumbprints: Vec<String>,
    #[serde(default)]
    allow_http: bool,
    leeway_seconds: Option<Spanned<u32>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    account: Spanned<String>,
    name: Spanned<String>,
    path: Option<Spanned<String>>,
    max_session_duration: Option<Spanned<i64>>,
    #[serde(default)]
    description: String,
    trust_policy: Option<Spanned<String>>,
    trust_policy_file: Option<Spanned<PathBuf>>,
    #[serde(default)]
    policies: BTreeMap<String, Spanned<String>>,
    permissions_boundary: Option<Spanned<String>>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGuardrail {
    target: Spanned<String>,
    name: Spanned<String>,
    document: Spanned<String>,
}

/// The largest config file read: far above any real one (a role's inline policies are at most
/// 10,240 characters), and a bound on what `--config /dev/zero` or a wrong path can make us
/// hold in memory.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and validates a config file, the TLS certificate and key it names included.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_reading_tls(path, true)
}

/// [`load`] for the operator tools (`revoke`, `audit`, `sessions`, `report`, `keys`), which
/// want the data dir and the store: the `[tls]` paths are resolved but the files are not read,
/// so a renewal that broke them (the server keeps serving its previous certificate) or a key
/// only the server may read does not stop a revocation.
pub fn load_for_tools(path: &Path) -> Result<Config, ConfigError> {
    load_reading_tls(path, false)
}

/// Why a file was not read whole.
enum Unread {
    /// It could not be opened or read.
    Io(std::io::Error),
    /// It holds more than the bound (a wrong path, a device such as `/dev/zero`).
    TooLarge,
}

/// The bytes of `path` and its metadata, reading at most `max` bytes of it.
fn read_at_most(path: &Path, max: u64) -> Result<(Vec<u8>, std::fs::Metadata), Unread> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    let meta = std::fs::File::open(path)
        .and_then(|file| {
            let meta = file.metadata()?;
            file.take(max + 1).read_to_end(&mut bytes)?;
            Ok(meta)
        })
        .map_err(Unread::Io)?;
    if bytes.len() as u64 > max {
        return Err(Unread::TooLarge);
    }
    Ok((bytes, meta))
}

fn load_reading_tls(path: &Path, read_tls: bool) -> Result<Config, ConfigError> {
    let unreadable = |message: String| ConfigError {
        file: path.to_owned(),
        line: 0,
        column: 0,
        message,
    };
    let (bytes, _) = read_at_most(path, MAX_CONFIG_BYTES).map_err(|u| match u {
        Unread::Io(e) => unreadable(format!("cannot read config file: {e}")),
        Unread::TooLarge => unreadable(format!(
            "larger than {MAX_CONFIG_BYTES} bytes; is this the keyless TOML config?"
        )),
    })?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            // Locate the first bad byte, so the operator can find it.
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(e.as_bytes().get(..valid).unwrap_or_default());
            let (line, column) = line_col(&prefix, valid);
            return Err(ConfigError {
                file: path.to_owned(),
                line,
                column,
                message: "not UTF-8 text; TOML files must be UTF-8".into(),
            });
        }
    };
    parse_with(path, &text, read_tls)
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn at(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.text, offset);
        ConfigError {
            file: self.file.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }

    fn at_span<T>(&self, s: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.at(s.span().start, message)
    }

    /// Resolves a path given in the config relative to the config file's folder.
    fn relative(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(p)
        }
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Parses config text; `file` names it in errors and anchors relative paths.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    parse_with(file, text, true)
}

fn parse_with(file: &Path, text: &str, read_tls: bool) -> Result<Config, ConfigError> {
    let cx = Ctx { file, text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let mut c = cx.at(offset, e.message().to_owned());
        if e.span().is_none() {
            c.line = 0;
        }
        c
    })?;
    let mut warnings = Vec::new();

    let listen = match &raw.listen {
        Some(l) => l.get_ref().parse::<SocketAddr>().map_err(|_| {
            cx.at_span(
                l,
                format!(
                    "listen = {:?} is not an address like 127.0.0.1:7707",
                    l.get_ref()
                ),
            )
        })?,
        None => DEFAULT_LISTEN
            .parse()
            .map_err(|_| cx.at(0, "internal: bad default listen address"))?,
    };

    let mut entities = Entities::default();
    let mut account_ids = BTreeSet::new();
    for a in &raw.accounts {
        let id = AccountId::parse(a.id.get_ref()).map_err(|e| cx.at_span(&a.id, e.to_string()))?;
        if !account_ids.insert(id) {
            return Err(cx.at_span(&a.id, format!("account {id} is declared twice")));
        }
        let ou_path = match &a.ou {
            Some(ou) => {
                check_ou_path(ou.get_ref()).map_err(|m| cx.at_span(ou, m))?;
                ou.get_ref().clone()
            }
            None => "/".to_owned(),
        };
        entities.accounts.push(Account {
            id,
            name: a.name.clone().unwrap_or_else(|| id.to_string()),
            ou_path,
            origin: Origin::Config,
        });
    }
    let account = |s: &Spanned<String>| -> Result<AccountId, ConfigError> {
        let id = AccountId::parse(s.get_ref()).map_err(|e| cx.at_span(s, e.to_string()))?;
        if !account_ids.contains(&id) {
            return Err(cx.at_span(
                s,
                format!(
                    "account {id} is not declared; add an [[accounts]] entry with id = \"{id}\""
                ),
            ));
        }
        Ok(id)
    };

    let mut provider_leeway = BTreeMap::new();
    // Per URL: the leeway its first entry gives (absent: the default) and where.
    let mut leeway_of_url: BTreeMap<&str, (u32, &Spanned<String>)> = BTreeMap::new();
    let mut seen_urls = BTreeSet::new();
    for p in &raw.providers {
        let acct = account(&p.account)?;
        check_provider_url(p.url.get_ref(), p.allow_http).map_err(|m| cx.at_span(&p.url, m))?;
        // The rule CreateOpenIDConnectProvider applies: the scheme aside and the case ignored,
        // one URL is one provider per account.
        let folded = keyless_core::model::issuer_key_prefix(p.url.get_ref()).to_ascii_lowercase();
        if !seen_urls.insert((acct, folded)) {
            return Err(cx.at_span(
                &p.url,
                "this provider is declared twice in the same account (provider URLs ignore case and scheme)",
            ));
        }
        // The leeway is applied per issuer, whichever account's role the token is for, so
        // entries of one URL must agree: otherwise the last one silently set it for all.
        let leeway = p
            .leeway_seconds
            .as_ref()
            .map_or(DEFAULT_LEEWAY_SECONDS, |l| *l.get_ref());
        match leeway_of_url.get(p.url.get_ref().as_str()) {
            Some((first, at)) if *first != leeway => {
                let (line, _) = line_col(text, at.span().start);
                let here = p
                    .leeway_seconds
                    .as_ref()
                    .map_or_else(|| cx.at_span(&p.url, ""), |l| cx.at_span(l, ""));
                return Err(ConfigError {
                    message: format!(
                        "leeway_seconds is {leeway} here but {first} for the same provider url at line {line}; \
                         the leeway applies to the issuer in every account, so give each entry of this url \
                         the same leeway_seconds (absent means {DEFAULT_LEEWAY_SECONDS})"
                    ),
                    ..here
                });
            }
            Some(_) => {}
            None => {
                leeway_of_url.insert(p.url.get_ref().as_str(), (leeway, &p.url));
            }
        }
        if p.client_ids.get_ref().is_empty() {
            return Err(cx.at_span(
                &p.client_ids,
                "client_ids must list at least one audience, e.g. [\"sts.amazonaws.com\"]",
            ));
        }
        if p.client_ids.get_ref().len() > 100
            || p.client_ids
                .get_ref()
                .iter()
                .any(|c| c.is_empty() || c.len() > 255)
        {
            return Err(cx.at_span(
                &p.client_ids,
                "client_ids: at most 100 entries of 1-255 characters",
            ));
        }
        if p.thumbprints.len() > 5
            || p.thumbprints
                .iter()
                .any(|t| t.len() != 40 || !t.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(cx.at_span(
                &p.url,
                "thumbprints: at most 5 SHA-1 fingerprints of 40 hex characters",
            ));
        }
        if let Some(l) = &p.leeway_seconds {
            if *l.get_ref() > 3600 {
                return Err(cx.at_span(l, "leeway_seconds must be at most 3600"));
            }
            provider_leeway.insert(p.url.get_ref().clone(), *l.get_ref());
        }
        entities.providers.push(OidcProvider {
            account: acct,
            url: p.url.get_ref().clone(),
            client_ids: p.client_ids.get_ref().clone(),
            thumbprints: p.thumbprints.clone(),
            allow_http: p.allow_http,
            tags: p.tags.clone(),
            origin: Origin::Config,
            created: OffsetDateTime::UNIX_EPOCH,
        });
    }

    let mut role_names = BTreeSet::new();
    for r in &raw.roles {
        let acct = account(&r.account)?;
        let name = r.name.get_ref();
        check_role_name(name).map_err(|m| cx.at_span(&r.name, m))?;
        if !role_names.insert((acct, name.to_lowercase())) {
            return Err(cx.at_span(
                &r.name,
                format!("role {name} is declared twice in account {acct} (names ignore case)"),
            ));
        }
        let path = match &r.path {
            Some(p) => {
                check_role_path(p.get_ref()).map_err(|m| cx.at_span(p, m))?;
                p.get_ref().clone()
            }
            None => "/".to_owned(),
        };
        let max = match &r.max_session_duration {
            Some(m) => {
                let v = *m.get_ref();
                u32::try_from(v)
                    .ok()
                    .filter(|v| (3600..=43200).contains(v))
                    .ok_or_else(|| {
                        cx.at_span(
                            m,
                            format!("max_session_duration = {v}: must be 3600 to 43200 seconds"),
                        )
                    })?
            }
            None => 3600,
        };
        let trust_policy = match (&r.trust_policy, &r.trust_policy_file) {
            (Some(doc), None) => {
                check_policy(
                    &cx,
                    doc,
                    PolicyType::Trust,
                    &format!("trust policy of role {name}"),
                    &mut warnings,
                )?;
                doc.get_ref().clone()
            }
            (None, Some(f)) => {
                let path = cx.relative(f.get_ref());
                let doc = read_policy_file(&path).map_err(|m| {
                    cx.at_span(f, format!("trust_policy_file {}: {m}", path.display()))
                })?;
                let sub = Ctx {
                    file: &path,
                    text: &doc,
                };
                let spanned = Spanned::new(0..doc.len(), doc.clone());
                check_policy(
                    &sub,
                    &spanned,
                    PolicyType::Trust,
                    &format!("trust policy of role {name}"),
                    &mut warnings,
                )?;
                doc
            }
            (Some(doc), Some(_)) => {
                return Err(cx.at_span(
                    doc,
                    "give either trust_policy or trust_policy_file, not both",
                ));
            }
            (None, None) => {
                return Err(cx.at_span(
                    &r.name,
                    format!("role {name} needs a trust_policy (or trust_policy_file)"),
                ));
            }
        };
        let mut inline_policies = Vec::new();
        for (pname, doc) in &r.policies {
            if pname.is_empty()
                || pname.len() > 128
                || !pname
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
            {
                return Err(cx.at_span(
                    doc,
                    format!(
                        "policy name {pname:?}: 1-128 characters of letters, digits and +=,.@-_"
                    ),
                ));
            }
            check_policy_within(
                &cx,
                doc,
                PolicyType::Identity,
                ROLE_INLINE_POLICIES_MAX_SIZE,
                &format!("inline policy {pname} of role {name}"),
                &mut warnings,
            )?;
            inline_policies.push(InlinePolicy {
                name: pname.clone(),
                document: doc.get_ref().clone(),
            });
        }
        let inline_size: usize = inline_policies
            .iter()
            .map(|p| policy_size(&p.document))
            .sum();
        if inline_size > ROLE_INLINE_POLICIES_MAX_SIZE {
            return Err(cx.at_span(
                &r.name,
                format!(
                    "the inline policies of role {name} have {inline_size} characters together \
                     (whitespace not counted), but a role's inline policies may have at most \
                     {ROLE_INLINE_POLICIES_MAX_SIZE}; move some statements into a managed policy"
                ),
            ));
        }
        let permissions_boundary = match &r.permissions_boundary {
            Some(doc) => {
                check_policy(
                    &cx,
                    doc,
                    PolicyType::Identity,
                    &format!("permissions boundary of role {name}"),
                    &mut warnings,
                )?;
                Some(doc.get_ref().clone())
            }
            None => None,
        };
        if r.description.chars().count() > 1000 {
            return Err(cx.at_span(&r.name, "description: at most 1000 characters"));
        }
        check_tags(&r.tags).map_err(|m| cx.at_span(&r.name, m))?;
        entities.roles.push(Role {
            account: acct,
            name: name.clone(),
            path,
            role_id: String::new(), // assigned by the store on first apply
            trust_policy,
            trust_principal_ids: Default::default(),
            inline_policies,
            permissions_boundary,
            permissions_boundary_arn: None,
            attached_policies: Vec::new(),
            max_session_duration: max,
            description: r.description.clone(),
            tags: r.tags.clone(),
            origin: Origin::Config,
            created: OffsetDateTime::UNIX_EPOCH,
        });
    }

    let organization = match &raw.organization {
        Some(o) => Some(Arc::new(organization(&cx, o, &entities.accounts)?)),
        None => None,
    };

    let mut guardrail_names = BTreeSet::new();
    for g in &raw.guardrails {
        let target = g.target.get_ref();
        if target != "/" && AccountId::parse(target).is_err() {
            check_ou_path(target).map_err(|m| {
                cx.at_span(
                    &g.target,
                    format!("target: {m}; or use \"/\" or a 12-digit account id"),
                )
            })?;
        }
        if !guardrail_target_exists(target, &entities.accounts) {
            return Err(cx.at_span(
                &g.target,
                format!(
                    "guardrail target {target:?} names no declared account and no OU of one, so the guardrail would bind no one; \
                     use \"/\", an [[accounts]] id, or an OU on an account's ou path ({}; OU paths are case-sensitive)",
                    declared_ous(&entities.accounts).join(", ")
                ),
            ));
        }
        if !guardrail_names.insert((target.clone(), g.name.get_ref().clone())) {
            return Err(cx.at_span(&g.name, "guardrail name is declared twice for this target"));
        }
        check_policy(
            &cx,
            &g.document,
            PolicyType::Guardrail,
            &format!("guardrail {}", g.name.get_ref()),
            &mut warnings,
        )?;
        entities.guardrails.push(Guardrail {
            target: target.clone(),
            name: g.name.get_ref().clone(),
            document: g.document.get_ref().clone(),
            origin: Origin::Config,
        });
    }

    let mut authorize_clients = Vec::new();
    for c in &raw.authorize_clients {
        let hex_digest = c.token_sha256.get_ref();
        let mut sha = [0u8; 32];
        if hex::decode_to_slice(hex_digest, &mut sha).is_err() {
            return Err(cx.at_span(
                &c.token_sha256,
                "token_sha256 must be 64 hex characters: the SHA-256 of the client's bearer token (printf %s \"$TOKEN\" | sha256sum)",
            ));
        }
        if c.name.get_ref().is_empty() {
            return Err(cx.at_span(&c.name, "authorize client name must not be empty"));
        }
        // The name is how the audit trail tells gateways apart, and only the first entry of a
        // token would ever be used.
        if authorize_clients
            .iter()
            .any(|a: &crate::authorize_api::AuthorizeClient| a.name == *c.name.get_ref())
        {
            return Err(cx.at_span(
                &c.name,
                "authorize client name is declared twice; audit records name the client, so give each its own",
            ));
        }
        if authorize_clients
            .iter()
            .any(|a: &crate::authorize_api::AuthorizeClient| a.token_sha256 == sha)
        {
            return Err(cx.at_span(
                &c.token_sha256,
                "this token_sha256 is another authorize client's already: give each client its own token",
            ));
        }
        authorize_clients.push(crate::authorize_api::AuthorizeClient {
            name: c.name.get_ref().clone(),
            token_sha256: sha,
        });
    }

    let builtin_guardrails = raw.builtin_guardrails.unwrap_or_default();
    if builtin_guardrails.no_long_term_keys
        && let Some(g) = raw.guardrails.iter().find(|g| {
            g.target.get_ref() == "/" && g.name.get_ref() == keyless_core::iam::NO_LONG_TERM_KEYS
        })
    {
        return Err(cx.at_span(
            &g.name,
            "the built-in guardrail no-long-term-keys is attached at the root already; rename this one, or turn the built-in off with [builtin_guardrails] no_long_term_keys = false",
        ));
    }
    let throttle = raw
        .throttle
        .as_ref()
        .map_or_else(ThrottleConfig::default, |t| *t.get_ref());
    if !(throttle.rate_per_second > 0.0 && throttle.rate_per_second.is_finite())
        || throttle.burst == 0
    {
        // At the table: offset 0 would name the first line of the file.
        let at = raw.throttle.as_ref().map_or(0, |t| t.span().start);
        return Err(cx.at(at, "[throttle]: rate_per_second must be > 0 and burst >= 1"));
    }

    let audit = match &raw.audit {
        Some(a) => {
            a.get_ref().check().map_err(|m| cx.at_span(a, m))?;
            a.get_ref().clone()
        }
        None => crate::audit::AuditSettings::default(),
    };

    let http = match &raw.http {
        Some(h) => {
            h.get_ref().check().map_err(|m| cx.at_span(h, m))?;
            h.get_ref().clone()
        }
        None => crate::http_front::HttpSettings::default(),
    };

    // The files are read now, so a wrong path or a key that does not fit stops start-up here,
    // pointing at the table.
    let tls = match &raw.tls {
        Some(t) => {
            let settings = crate::tls::TlsSettings {
                cert_file: cx.relative(&t.get_ref().cert_file),
                key_file: cx.relative(&t.get_ref().key_file),
            };
            if read_tls {
                crate::tls::load(&settings).map_err(|m| cx.at_span(t, m))?;
            }
            Some(settings)
        }
        None => None,
    };

    let database_url = match (&raw.database_url, &raw.database_url_file) {
        (Some(u), None) => {
            Some(keyless_store::DatabaseUrl::parse(u.get_ref()).map_err(|m| cx.at_span(u, m))?)
        }
        // The URL holds the password: design.md lets every secret come from a file, so the
        // config can live in git and the URL in a secrets mount.
        (None, Some(f)) => Some(database_url_from_file(&cx, f, &mut warnings)?),
        (Some(u), Some(_)) => {
            return Err(cx.at_span(u, "give either database_url or database_url_file, not both"));
        }
        (None, None) => None,
    };

    Ok(Config {
        listen,
        data_dir: raw.data_dir.map_or_else(
            || cx.relative(Path::new("keyless-data")),
            |d| cx.relative(&d),
        ),
        database_url,
        entities,
        throttle,
        provider_leeway,
        authorize_clients,
        builtin_guardrails,
        iam: raw.iam.unwrap_or_default(),
        warnings,
        audit,
        http,
        tls,
        organization,
    })
}

/// `[organization]`: the ids well formed, each OU path one an account is on, and every OU on
/// an account's path given an id, so no account's `aws:PrincipalOrgPaths` is cut short.
fn organization(
    cx: &Ctx<'_>,
    o: &Spanned<RawOrganization>,
    accounts: &[Account],
) -> Result<Organization, ConfigError> {
    let raw = o.get_ref();
    check_org_id(raw.id.get_ref()).map_err(|m| cx.at_span(&raw.id, m))?;
    let root_suffix = check_root_id(raw.root.get_ref()).map_err(|m| cx.at_span(&raw.root, m))?;
    let declared = ous_on_paths(accounts);
    let mut units = BTreeMap::new();
    for (path, id) in &raw.ous {
        let p = path.get_ref();
        check_ou_path(p).map_err(|m| cx.at_span(path, m))?;
        if !declared.contains(p) {
            return Err(cx.at_span(
                path,
                format!(
                    "OU {p:?} is on no account's ou path, so its id would name no one; the declared OUs: {}",
                    declared_ous(accounts).join(", ")
                ),
            ));
        }
        check_ou_id(id.get_ref(), root_suffix).map_err(|m| cx.at_span(id, m))?;
        units.insert(p.clone(), id.get_ref().clone());
    }
    if let Some(missing) = declared.iter().find(|ou| !units.contains_key(*ou)) {
        let account = accounts
            .iter()
            .find(|a| a.ou_path == *missing || a.ou_path.starts_with(&format!("{missing}/")))
            .map_or_else(String::new, |a| format!(" (account {})", a.id));
        return Err(cx.at_span(
            o,
            format!(
                "OU {missing}{account} has no id: give every OU on an account's path its AWS id, e.g. ous = {{ \"{missing}\" = \"ou-{root_suffix}-…\" }}, or aws:PrincipalOrgPaths would be wrong"
            ),
        ));
    }
    Organization::new(raw.id.get_ref().clone(), raw.root.get_ref().clone(), units)
        .map_err(|m| cx.at_span(o, m))
}

/// The largest policy file read: far above any policy's size limit, and a bound on what
/// `trust_policy_file = "/dev/zero"` can make us hold.
const MAX_POLICY_FILE_BYTES: u64 = 1024 * 1024;

/// Reads a policy file of at most [`MAX_POLICY_FILE_BYTES`].
fn read_policy_file(path: &Path) -> Result<String, String> {
    let (bytes, _) = read_at_most(path, MAX_POLICY_FILE_BYTES).map_err(|u| match u {
        Unread::Io(e) => format!("cannot read it: {e}"),
        Unread::TooLarge => {
            format!("larger than {MAX_POLICY_FILE_BYTES} bytes; is it a policy document?")
        }
    })?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

/// The largest `database_url_file` read: a URL with its TLS parameters is far shorter.
const MAX_DATABASE_URL_FILE_BYTES: u64 = 64 * 1024;

/// Reads `database_url_file` (relative to the config's folder; one line, surrounding whitespace
/// ignored). Errors point at the key and never quote the file, which holds the password.
fn database_url_from_file(
    cx: &Ctx<'_>,
    f: &Spanned<PathBuf>,
    warnings: &mut Vec<String>,
) -> Result<keyless_store::DatabaseUrl, ConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = cx.relative(f.get_ref());
    let (bytes, meta) = read_at_most(&path, MAX_DATABASE_URL_FILE_BYTES).map_err(|u| {
        let message = match u {
            Unread::Io(e) => format!("cannot read database_url_file {}: {e}", path.display()),
            Unread::TooLarge => format!(
                "database_url_file {} is larger than {MAX_DATABASE_URL_FILE_BYTES} bytes; it should hold one postgres:// URL",
                path.display()
            ),
        };
        cx.at_span(f, message)
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        cx.at_span(
            f,
            format!("database_url_file {} is not UTF-8 text", path.display()),
        )
    })?;
    let url = keyless_store::DatabaseUrl::parse(text.trim())
        .map_err(|m| cx.at_span(f, format!("database_url_file {}: {m}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        warnings.push(format!(
            "{}: database_url_file {} holds the database password and group or others may read it; run: chmod 600 {}",
            cx.file.display(),
            path.display(),
            path.display()
        ));
    }
    Ok(url)
}

/// Parses and validates a policy held in a TOML string; errors point into the config file.
fn check_policy(
    cx: &Ctx<'_>,
    doc: &Spanned<String>,
    kind: PolicyType,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    check_policy_within(cx, doc, kind, kind.max_size(), what, warnings)
}

/// [`check_policy`] with another size limit than the type's (a role's inline policies).
fn check_policy_within(
    cx: &Ctx<'_>,
    doc: &Spanned<String>,
    kind: PolicyType,
    max_size: usize,
    what: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    // The policy text starts after the opening quotes (and the newline a ''' string may skip).
    let start = doc.span().start;
    let raw = cx.text.get(start..).unwrap_or("");
    let skip = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        3 + usize::from(raw.get(3..).is_some_and(|r| r.starts_with('\n')))
    } else if raw.starts_with('\'') || raw.starts_with('"') {
        1
    } else {
        0
    };
    let (base_line, base_col) = line_col(cx.text, start + skip);
    let locate = |line: u32, column: u32| -> (usize, usize) {
        let line = line.max(1) as usize;
        if line == 1 {
            (base_line, base_col + column.max(1) as usize - 1)
        } else {
            (base_line + line - 1, column as usize)
        }
    };
    for f in keyless_policy::validate_within(doc.get_ref(), kind, max_size) {
        let (line, column) = locate(f.line, f.column);
        match f.severity {
            Severity::Error => {
                return Err(ConfigError {
                    file: cx.file.to_owned(),
                    line,
                    column,
                    message: format!("{what}: {} ({} at {})", f.message, f.code, f.path),
                });
            }
            Severity::SecurityWarning => {
                warnings.push(format!(
                    "{}:{line}:{column}: {what}: {} ({})",
                    cx.file.display(),
                    f.message,
                    f.code
                ));
            }
            Severity::Warning | Severity::Suggestion => {}
        }
    }
    Ok(())
}

/// Whether a guardrail target names something: the root, a declared account, or an OU on a
/// declared account's path (the OUs exist only as those paths).
fn guardrail_target_exists(target: &str, accounts: &[Account]) -> bool {
    target == "/"
        || accounts.iter().any(|a| {
            a.id.to_string() == target
                || a.ou_path == target
                || a.ou_path
                    .strip_prefix(target)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// Every OU the accounts' paths declare.
fn ous_on_paths(accounts: &[Account]) -> BTreeSet<String> {
    let mut ous = BTreeSet::new();
    for a in accounts {
        let mut prefix = String::new();
        for seg in a.ou_path.split('/').filter(|s| !s.is_empty()) {
            prefix.push('/');
            prefix.push_str(seg);
            ous.insert(prefix.clone());
        }
    }
    ous
}

/// Every OU the accounts' paths declare, sorted, for an error message.
fn declared_ous(accounts: &[Account]) -> Vec<String> {
    let ous = ous_on_paths(accounts);
    if ous.is_empty() {
        return vec!["no OU is declared".to_owned()];
    }
    ous.into_iter().collect()
}

fn check_ou_path(p: &str) -> Result<(), String> {
    let ok = p == "/"
        || (p.starts_with('/')
            && !p.ends_with('/')
            && p.len() <= 512
            && p[1..].split('/').all(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            }));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "OU path {p:?} must look like /workloads/dev (letters, digits, - and _)"
        ))
    }
}

fn check_provider_url(url: &str, allow_http: bool) -> Result<(), String> {
    if url.len() > 255 {
        return Err("provider url: at most 255 characters".into());
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        if !allow_http {
            return Err(format!(
                "provider url {url:?} must use https (allow_http = true is only for local test issuers on a loopback address)"
            ));
        }
        let host = r.split(['/', ':']).next().unwrap_or("");
        let host = if r.starts_with('[') {
            r.split(']').next().unwrap_or("").trim_start_matches('[')
        } else {
            host
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(format!(
                "allow_http is accepted only for a loopback issuer, not {host:?}"
            ));
        }
        r
    } else {
        return Err(format!("provider url {url:?} must start with https://"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("provider url {url:?} has no host"));
    }
    if rest.contains(['?', '#']) {
        return Err(format!(
            "provider url {url:?} must not have a query or fragment"
        ));
    }
    Ok(())
}

/// Role names: 1-64 of `[\w+=,.@-]`.
pub fn check_role_name(name: &str) -> Result<(), String> {
    if (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        Ok(())
    } else {
        Err(format!(
            "role name {name:?} must be 1-64 characters of letters, digits and _+=,.@-"
        ))
    }
}

fn check_role_path(p: &str) -> Result<(), String> {
    if (1..=512).contains(&p.len())
        && p.starts_with('/')
        && p.ends_with('/')
        && p.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c))
    {
        Ok(())
    } else {
        Err(format!(
            "role path {p:?} must start and end with / (e.g. /ci/)"
        ))
    }
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), String> {
    if tags.len() > 50 {
        return Err("at most 50 tags".into());
    }
    for (k, v) in tags {
        // The IAM model's lengths and characters, as TagRole checks them.
        let mut problems = keyless_core::sts::params::Problems::default();
        keyless_core::sts::params::check_tag_key(&mut problems, k, "tag key");
        keyless_core::sts::params::check_tag_value(&mut problems, v, "tag value");
        if problems.finish().is_err() {
            return Err(format!(
                "tag {k:?} = {v:?}: keys 1-128 and values at most 256 characters, of letters, digits, spaces and _.:/=+-@"
            ));
        }
    }
    // The rules TagRole applies: no `aws:` prefix, keys unique ignoring case in every script.
    let pairs: Vec<(String, String)> = tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    keyless_core::iam::params::check_tag_rules(&pairs).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"token.actions.githubusercontent.com:sub":"repo:o/r:ref:refs/heads/main","token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}}]}"#;

    fn base() -> String {
        format!(
            r#"listen = "127.0.0.1:7000"
data_dir = "/tmp/kd"

[[accounts]]
id = "123456789012"
name = "dev"
ou = "/workloads/dev"

[[providers]]
account = "123456789012"
url = "https://token.actions.githubusercontent.com"
client_ids = ["sts.amazonaws.com"]

[[roles]]
account = "123456789012"
name = "deploy"
max_session_duration = 7200
trust_policy = '''{TRUST}'''
policies = {{ read = '''{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}]}}''' }}
"#
        )
    }

    fn p(text: &str) -> Result<Config, ConfigError> {
        parse(Path::new("/etc/keyless.toml"), text)
    }

    #[test]
    fn the_skeleton_loads() {
        let c = p(&base()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.entities.roles[0].max_session_duration, 7200);
        assert_eq!(c.entities.roles[0].inline_policies[0].name, "read");
        assert_eq!(c.entities.accounts[0].ou_path, "/workloads/dev");
    }

    /// An inline policy of `count` statements, about 85 characters each.
    fn statements(prefix: &str, count: usize) -> String {
        let st: Vec<String> = (0..count)
            .map(|i| {
                format!(
                    r#"{{"Sid":"{prefix}{i}","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::{prefix}-{i:04}/*"}}"#
                )
            })
            .collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            st.join(",")
        )
    }

    #[test]
    fn a_roles_inline_policies_share_one_quota() {
        let with = |extra: &str| {
            base().replace("policies = { read", &format!("policies = {{ {extra}, read"))
        };
        let large = statements("large", 95);
        let size = keyless_policy::policy_size(&large);
        assert!((6_145..10_240).contains(&size), "{size}");
        let c = p(&with(&format!("large = '''{large}'''"))).unwrap();
        assert_eq!(c.entities.roles[0].inline_policies.len(), 2);

        let second = statements("second", 30);
        let e = p(&with(&format!(
            "large = '''{large}''', second = '''{second}'''"
        )))
        .unwrap_err();
        assert!(
            e.message
                .contains("the inline policies of role deploy have")
                && e.message.contains("at most 10240"),
            "{e}"
        );
        assert!(e.line > 15, "points at the role: {e}");

        let huge = statements("huge", 140);
        let e = p(&with(&format!("huge = '''{huge}'''"))).unwrap_err();
        assert!(e.message.contains("may have at most 10240"), "{e}");
    }

    #[test]
    fn role_tags_follow_tag_roles_rules() {
        let with = |tags: &str| {
            base().replace(
                "max_session_duration = 7200",
                &format!("max_session_duration = 7200\ntags = {{ {tags} }}"),
            )
        };
        assert!(p(&with(r#"team = "a""#)).is_ok());
        let e = p(&with(r#""équipe" = "a", "ÉQUIPE" = "b""#))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Duplicate tag keys") && e.contains("keyless.toml"),
            "{e}"
        );
        let e = p(&with(r#""aws:owner" = "a""#)).unwrap_err().to_string();
        assert!(e.contains("reserved"), "{e}");
    }

    #[test]
    fn the_audit_table_is_read_and_checked() {
        let c = p(&base()).unwrap();
        assert_eq!(c.audit, crate::audit::AuditSettings::default());
        let text = format!(
            "{}\n[audit]\nstdout = true\nmax_file_bytes = 4096\n",
            base()
        );
        let c = p(&text).unwrap();
        assert!(c.audit.stdout);
        assert_eq!(c.audit.max_file_bytes, 4096);
        assert_eq!(c.audit.digest_every_records, 1000);
        let bad = format!("{}\n[audit]\nauthorize_allow_sample_rate = 2.0\n", base());
        let e = p(&bad).unwrap_err();
        assert!(e.message.contains("authorize_allow_sample_rate"), "{e}");
        assert!(e.line > 20, "{e}");
        let unknown = format!("{}\n[audit]\nsink = \"postgres\"\n", base());
        assert!(p(&unknown).unwrap_err().message.contains("sink"));
    }

    #[test]
    fn retention_is_in_whole_days_of_at_least_one() {
        assert_eq!(p(&base()).unwrap().audit.retention_days, None);
        let kept = format!("{}\n[audit]\nretention_days = 90\n", base());
        let c = p(&kept).unwrap();
        assert_eq!(c.audit.retention_days, Some(90));
        let w = c.audit.writer_config("/x".into());
        assert_eq!(
            w.retention,
            Some(std::time::Duration::from_secs(90 * 86_400))
        );
        for bad in ["0", "36501"] {
            let text = format!("{}\n[audit]\nretention_days = {bad}\n", base());
            let e = p(&text).unwrap_err();
            assert!(
                e.message.contains("retention_days must be 1-36500"),
                "{bad}: {e}"
            );
            assert!(e.line > 20, "{bad}: {e}");
        }
        // Wrong types are refused at the value itself.
        for bad in ["-1", "1.5", "\"30d\""] {
            let text = format!("{}\n[audit]\nretention_days = {bad}\n", base());
            let line = text.lines().count();
            let e = p(&text).unwrap_err();
            assert_eq!(e.line, line, "{bad}: {e}");
        }
    }

    #[test]
    fn the_http_table_is_read_and_bounded() {
        assert_eq!(
            p(&base()).unwrap().http,
            crate::http_front::HttpSettings::default()
        );
        let text = format!(
            "{}\n[http]\nmax_connections = 50\nheader_read_timeout_seconds = 5\n",
            base()
        );
        let c = p(&text).unwrap();
        assert_eq!(c.http.max_connections, 50);
        assert_eq!(c.http.header_read_timeout_seconds, 5);
        assert_eq!(c.http.request_timeout_seconds, 30);
        assert_eq!(c.http.max_connections_per_source, 1000);
        for (line, says) in [
            ("max_connections = 0", "max_connections must be 1-1000000"),
            (
                "request_timeout_seconds = 3601",
                "request_timeout_seconds must be 1-3600",
            ),
            (
                "header_read_timeout_seconds = \"20s\"",
                "invalid type: string \"20s\", expected u64",
            ),
            (
                "max_connections_per_source = -1",
                "invalid value: integer `-1`, expected u32",
            ),
            (
                "idle_timeout_seconds = 5",
                "unknown field `idle_timeout_seconds`",
            ),
        ] {
            let bad = format!("{}\n[http]\n{line}\n", base());
            let e = p(&bad).unwrap_err();
            assert!(e.message.contains(says), "{line}: {e}");
            assert!(e.line > 20, "{line}: points into the file: {e}");
        }
    }

    #[test]
    fn the_tls_table_is_resolved_and_its_files_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("keyless.toml");
        let pki = crate::tls::tests::test_pki();
        crate::tls::tests::write_pki(dir.path(), &pki);
        let load = |extra: &str| {
            std::fs::write(&config_path, format!("{}\n{extra}", base())).unwrap();
            super::load(&config_path)
        };
        assert_eq!(load("").unwrap().tls, None);
        let c = load("[tls]\ncert_file = \"tls.crt\"\nkey_file = \"tls.key\"\n").unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(
            tls.cert_file,
            dir.path().join("tls.crt"),
            "relative to the config file"
        );
        assert_eq!(tls.key_file, dir.path().join("tls.key"));
        for (table, says) in [
            (
                "[tls]\ncert_file = \"absent.crt\"\nkey_file = \"tls.key\"\n",
                "cannot read the TLS certificate file",
            ),
            (
                "[tls]\ncert_file = \"tls.key\"\nkey_file = \"tls.key\"\n",
                "has no CERTIFICATE block",
            ),
            (
                "[tls]\ncert_file = \"tls.crt\"\n",
                "missing field `key_file`",
            ),
            (
                "[tls]\ncert_file = \"tls.crt\"\nkey_file = \"tls.key\"\nciphers = []\n",
                "unknown field `ciphers`",
            ),
            (
                "[tls]\ncert_file = 1\nkey_file = \"tls.key\"\n",
                "invalid type",
            ),
        ] {
            let e = load(table).unwrap_err();
            assert!(e.message.contains(says), "{table}: {e}");
            assert!(e.line > 20, "{table}: points into the file: {e}");
            assert_eq!(e.file, config_path);
        }
    }

    #[test]
    fn the_sync_pace_is_read_and_bounded() {
        assert_eq!(p(&base()).unwrap().audit.min_sync_interval_micros, 1000);
        let off = format!("{}\n[audit]\nmin_sync_interval_micros = 0\n", base());
        assert_eq!(p(&off).unwrap().audit.min_sync_interval_micros, 0);
        let long = format!("{}\n[audit]\nmin_sync_interval_micros = 100001\n", base());
        let e = p(&long).unwrap_err();
        assert!(
            e.message
                .contains("min_sync_interval_micros must be at most 100000"),
            "{e}"
        );
        let typed = format!("{}\n[audit]\nmin_sync_interval_micros = \"1ms\"\n", base());
        let e = p(&typed).unwrap_err();
        assert!(e.message.contains("expected u64"), "{e}");
    }

    #[test]
    fn the_loaded_batch_wait_is_read_and_bounded() {
        let ok = format!("{}\n[audit]\nbusy_batch_wait_micros = 1000\n", base());
        assert_eq!(p(&ok).unwrap().audit.busy_batch_wait_micros, 1000);
        // Out of range names the key; a wrong type is pointed at by its line and column.
        for (value, says, at_the_key) in [
            (
                "100001",
                "busy_batch_wait_micros must be at most 100000",
                false,
            ),
            (
                "\"1ms\"",
                "invalid type: string \"1ms\", expected u64",
                true,
            ),
            ("-1", "invalid value: integer `-1`, expected u64", true),
            (
                "1.5",
                "invalid type: floating point `1.5`, expected u64",
                true,
            ),
        ] {
            let bad = format!("{}\n[audit]\nbusy_batch_wait_micros = {value}\n", base());
            let key_line = bad
                .lines()
                .position(|l| l.starts_with("busy_batch"))
                .unwrap()
                + 1;
            let e = p(&bad).unwrap_err();
            assert!(e.message.contains(says), "{value}: {e}");
            if at_the_key {
                assert_eq!(e.line, key_line, "{value}: {e}");
            } else {
                assert!(e.line > 20, "{value}: {e}");
            }
        }
    }

    #[test]
    fn a_bad_database_url_is_refused_with_its_line_and_without_the_password() {
        let text = format!("database_url = \"mysql://app:s3cr3t-pw@db/k\"\n{}", base());
        let e = p(&text).unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.message.contains("unsupported scheme"), "{e}");
        assert!(!e.to_string().contains("s3cr3t-pw"), "{e}");
        let ok = format!("database_url = \"postgres://app:pw@db:5432/k\"\n{}", base());
        assert!(p(&ok).unwrap().database_url.is_some());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_line() {
        let text = base().replace("name = \"dev\"", "name = \"dev\"\nbogus = 1");
        let e = p(&text).unwrap_err();
        assert_eq!(e.line, 7, "{e}");
        assert!(e.message.contains("bogus"), "{e}");
        assert!(e.to_string().starts_with("/etc/keyless.toml:7:"), "{e}");
    }

    #[test]
    fn undeclared_accounts_are_rejected() {
        let text = base().replace(
            "account = \"123456789012\"\nname = \"deploy\"",
            "account = \"210987654321\"\nname = \"deploy\"",
        );
        let e = p(&text).unwrap_err();
        assert!(e.message.contains("not declared"), "{e}");
        assert_eq!(e.line, 15, "{e}");
    }

    #[test]
    fn a_malformed_policy_points_at_its_line() {
        let text = base().replace(
            r#""Action":"s3:GetObject","#,
            r#""Action":"s3:GetObject","Action":"s3:PutObject","#,
        );
        let e = p(&text).unwrap_err();
        assert_eq!(e.line, 19, "{e}");
        assert!(e.column > 60, "{e}");
        assert!(
            e.message.contains("inline policy read of role deploy"),
            "{e}"
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        let cases = [
            (base().replace("7200", "60"), "max_session_duration"),
            (base().replace("7200", "99999"), "max_session_duration"),
            (base().replace("https://token", "http://token"), "https"),
            (
                base().replace("name = \"deploy\"", "name = \"de ploy\""),
                "role name",
            ),
            (base().replace("\"sts.amazonaws.com\"]", "]"), "client_ids"),
            (base().replace("127.0.0.1:7000", "nowhere"), "listen"),
            (base().replace("/workloads/dev", "workloads"), "OU path"),
            (
                base().replace("123456789012\"\nname = \"dev\"", "12345\"\nname = \"dev\""),
                "12 digits",
            ),
        ];
        for (text, want) in cases {
            let e = p(&text).unwrap_err();
            assert!(e.message.contains(want), "want {want:?}, got {e}");
            assert!(e.line > 0, "{e}");
        }
    }

    #[test]
    fn a_guardrail_must_attach_to_a_declared_ou_or_account() {
        // A target naming nothing attached the guardrail to nothing: a typo ("/Workloads", an
        // account id off by a digit) left every account unguarded, and the server started.
        // AWS Organizations refuses to attach a policy to a target that does not exist.
        let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:DeleteObject","Resource":"*"}]}"#;
        let with = |target: &str| {
            format!(
                "{}\n[[guardrails]]\ntarget = \"{target}\"\nname = \"g\"\ndocument = '''{deny}'''\n",
                base()
            )
        };
        for target in ["/", "/workloads", "/workloads/dev", "123456789012"] {
            let c = p(&with(target)).unwrap();
            assert_eq!(c.entities.guardrails[0].target, target);
        }
        for target in [
            "/Workloads",
            "/workload",
            "/workloads/de",
            "/workloads/dev/team",
            "/sandbox",
            "210987654321",
        ] {
            let e = p(&with(target)).unwrap_err();
            assert!(
                e.message.contains("no declared account") && e.message.contains(target),
                "{target}: {e}"
            );
            assert!(e.line > 0, "{e}");
        }
    }

    #[test]
    fn the_organization_table_gives_every_ou_on_an_accounts_path_an_id() {
        let with = |table: &str| format!("{}\n[organization]\n{table}\n", base());
        let good = r#"id = "o-a1b2c3d4e5"
root = "r-ab12"
ous = { "/workloads" = "ou-ab12-11111111", "/workloads/dev" = "ou-ab12-22222222" }"#;
        let c = p(&with(good)).unwrap();
        let org = c.organization.unwrap();
        assert_eq!(org.id(), "o-a1b2c3d4e5");
        assert_eq!(
            org.keys_for("/workloads/dev").unwrap().path,
            "o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/ou-ab12-22222222/"
        );
        assert!(p(&base()).unwrap().organization.is_none());

        // (table, what the message names, the line the error points at: 0 for the table's)
        let table_line = base().lines().count() + 2;
        for (table, needle, line) in [
            // A partial mapping would cut the account's path short.
            (
                r#"id = "o-a1b2c3d4e5"
root = "r-ab12"
ous = { "/workloads" = "ou-ab12-11111111" }"#,
                "OU /workloads/dev (account 123456789012) has no id",
                table_line,
            ),
            (
                r#"id = "o-a1b2c3d4e5"
root = "r-ab12""#,
                "OU /workloads (account 123456789012) has no id",
                table_line,
            ),
            (
                &good.replace("o-a1b2c3d4e5", "o-abc"),
                "organization id \"o-abc\"",
                table_line + 1,
            ),
            (
                &good.replace("root = \"r-ab12\"", "root = \"R-AB12\""),
                "root id \"R-AB12\"",
                table_line + 2,
            ),
            (
                &good.replace("ou-ab12-22222222", "ou-cd34-22222222"),
                "not under root r-ab12",
                table_line + 3,
            ),
            (
                &good.replace("ou-ab12-22222222", "ou-ab12-1111111"),
                "is not an AWS Organizations OU id",
                table_line + 3,
            ),
            (
                &good.replace("ou-ab12-22222222", "ou-ab12-11111111"),
                "given to both /workloads and /workloads/dev",
                table_line,
            ),
            (
                &good.replace(" }", r#", "/sandbox" = "ou-ab12-33333333" }"#),
                "OU \"/sandbox\" is on no account's ou path",
                table_line + 3,
            ),
            (
                &good.replace("\"/workloads\" =", "\"workloads\" ="),
                "must look like /workloads/dev",
                table_line + 3,
            ),
            (
                &format!("{good}\nmaster = \"111111111111\""),
                "unknown field `master`",
                table_line + 4,
            ),
            (
                r#"id = 7
root = "r-ab12""#,
                "invalid type",
                table_line + 1,
            ),
        ] {
            let e = p(&with(table)).unwrap_err();
            assert!(e.message.contains(needle), "{table}: {e}");
            assert_eq!(e.line, line, "{table}: {e}");
        }
    }

    #[test]
    fn a_bad_throttle_table_is_refused_at_its_line() {
        let text = format!("{}\n[throttle]\nrate_per_second = 0.0\nburst = 5\n", base());
        let table_line = text.lines().position(|l| l == "[throttle]").unwrap() + 1;
        let e = p(&text).unwrap_err();
        assert!(e.message.contains("rate_per_second must be > 0"), "{e}");
        assert!(
            (table_line..=table_line + 2).contains(&e.line),
            "points at the [throttle] table (line {table_line}), not the top of the file: {e}"
        );
    }

    /// `base()` with a second account declaring the same provider URL.
    fn two_accounts(first_leeway: Option<u32>, second_leeway: Option<u32>) -> String {
        let leeway =
            |l: Option<u32>| l.map_or(String::new(), |l| format!("leeway_seconds = {l}\n"));
        base()
            .replace(
                "client_ids = [\"sts.amazonaws.com\"]\n",
                &format!("client_ids = [\"sts.amazonaws.com\"]\n{}", leeway(first_leeway)),
            )
            .replace(
                "[[roles]]",
                &format!(
                    "[[accounts]]\nid = \"210987654321\"\n\n[[providers]]\naccount = \"210987654321\"\n\
                     url = \"https://token.actions.githubusercontent.com\"\nclient_ids = [\"sts.amazonaws.com\"]\n{}\n[[roles]]",
                    leeway(second_leeway)
                ),
            )
    }

    #[test]
    fn one_issuer_has_one_leeway_in_every_account() {
        let url = "https://token.actions.githubusercontent.com";
        let c = p(&two_accounts(Some(60), Some(60))).unwrap();
        assert_eq!(c.provider_leeway.get(url), Some(&60));
        assert!(p(&two_accounts(None, Some(DEFAULT_LEEWAY_SECONDS))).is_ok());
        // The server keys the leeway by URL: the second entry would set it for the first
        // account's tokens too (an hour past `exp` where that account asked for none).
        for (first, second) in [(Some(0), Some(3600)), (Some(0), None), (None, Some(3600))] {
            let text = two_accounts(first, second);
            let e = p(&text).unwrap_err();
            assert!(
                e.message.contains("for the same provider url at line 11")
                    && e.message
                        .contains("give each entry of this url the same leeway_seconds"),
                "{first:?} {second:?}: {e}"
            );
            let second_url = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with("url = "))
                .nth(1)
                .unwrap()
                .0
                + 1;
            assert!(
                (second_url..=second_url + 2).contains(&e.line),
                "{first:?} {second:?}: at the second entry (line {second_url}): {e}"
            );
        }
    }

    #[test]
    fn a_provider_declared_twice_is_refused_whatever_the_case_of_its_url() {
        for url in [
            "https://token.actions.githubusercontent.com",
            "https://Token.Actions.GitHubUserContent.com",
        ] {
            let text = base().replace(
                "[[roles]]",
                &format!(
                    "[[providers]]\naccount = \"123456789012\"\nurl = \"{url}\"\nclient_ids = [\"x\"]\n\n[[roles]]"
                ),
            );
            let e = p(&text).unwrap_err();
            assert!(e.message.contains("declared twice"), "{url}: {e}");
            assert_eq!(e.line, 16, "{url}: {e}");
        }
    }

    #[test]
    fn a_config_that_is_not_utf8_is_refused_at_the_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyless.toml");
        let mut bytes = base().into_bytes();
        let at = bytes.windows(6).position(|w| w == b"deploy").unwrap();
        bytes[at] = 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!((e.line, e.column), (16, 9), "{e}");
        assert!(e.message.contains("not UTF-8"), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}:16:9:", path.display())),
            "{e}"
        );
    }

    #[test]
    fn a_config_larger_than_any_real_one_is_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyless.toml");
        // A valid config, padded with a comment past the limit.
        let mut text = base();
        text.push('#');
        text.push_str(&"x".repeat(usize::try_from(MAX_CONFIG_BYTES).unwrap()));
        text.push('\n');
        std::fs::write(&path, &text).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e.message.contains("larger than 16777216 bytes"), "{e}");
        assert_eq!(e.line, 0, "{e}");
        // A device that never ends is refused too, not read into memory.
        let e = load(Path::new("/dev/zero")).unwrap_err();
        assert!(e.message.contains("larger than"), "{e}");
    }

    #[test]
    fn authorize_clients_are_distinct_by_name_and_by_token() {
        let client = |name: &str, digit: char| {
            format!(
                "\n[[authorize_clients]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\n",
                digit.to_string().repeat(64)
            )
        };
        let two = |a: String, b: String| format!("{}{a}{b}", base());
        assert!(p(&two(client("s3", 'a'), client("sqs", 'b'))).is_ok());
        for (text, says, key) in [
            (
                two(client("s3", 'a'), client("s3", 'b')),
                "authorize client name is declared twice",
                "name = \"s3\"",
            ),
            (
                two(client("s3", 'a'), client("sqs", 'a')),
                "is another authorize client's already",
                "token_sha256",
            ),
        ] {
            let line = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.starts_with(key))
                .last()
                .unwrap()
                .0
                + 1;
            let e = p(&text).unwrap_err();
            assert!(e.message.contains(says), "{e}");
            assert_eq!(e.line, line, "at the second client: {e}");
        }
    }

    #[test]
    fn config_tags_follow_the_iam_tag_pattern() {
        // Config roles and providers are visible through the IAM API; their tags obey what
        // TagRole obeys, control characters included.
        for (key, value) in [("a\nb", "v"), ("k", "tab\there"), ("k", "semi;colon")] {
            let tags: BTreeMap<String, String> = [(key.to_owned(), value.to_owned())].into();
            let e = check_tags(&tags).unwrap_err();
            assert!(e.contains("tag"), "{e}");
        }
        let ok: BTreeMap<String, String> =
            [("cost center".to_owned(), "équipe-1 @eu:west/2".to_owned())].into();
        check_tags(&ok).unwrap();
        let text = base().replace(
            "max_session_duration = 7200",
            "max_session_duration = 7200\ntags = { team = \"a\\nb\" }",
        );
        let e = p(&text).unwrap_err();
        assert!(e.message.contains("tag"), "{e}");
    }

    #[test]
    fn the_database_url_can_come_from_a_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("keyless.toml");
        let url_file = dir.path().join("db-url");
        let load = |head: &str| {
            std::fs::write(&config_path, format!("{head}\n{}", base())).unwrap();
            super::load(&config_path)
        };
        std::fs::write(
            &url_file,
            "postgres://app:s3cr3t-pw@db.internal:5432/keyless\n",
        )
        .unwrap();
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        // Relative to the config's folder, like every path in it.
        let c = load("database_url_file = \"db-url\"").unwrap();
        let url = c.database_url.unwrap();
        assert_eq!(
            url.target(),
            "db.internal:5432 (database keyless, user app)"
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        std::fs::set_permissions(&url_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = load("database_url_file = \"db-url\"").unwrap();
        assert!(
            c.warnings.iter().any(|w| w.contains("chmod 600")),
            "{:?}",
            c.warnings
        );

        std::fs::write(&url_file, "mysql://app:s3cr3t-pw@db/k").unwrap();
        for (head, says) in [
            ("database_url_file = \"db-url\"", "unsupported scheme"),
            (
                "database_url_file = \"absent\"",
                "cannot read database_url_file",
            ),
            (
                "database_url = \"postgres://a@b/c\"\ndatabase_url_file = \"db-url\"",
                "either database_url or database_url_file",
            ),
        ] {
            let e = load(head).unwrap_err();
            assert!(e.message.contains(says), "{head}: {e}");
            assert_eq!(e.line, 1, "{head}: {e}");
            assert!(!e.to_string().contains("s3cr3t-pw"), "{e}");
        }
        // Oversized (a wrong path, a device) and empty files are refused at the key.
        let big = format!("postgres://app:s3cr3t-pw@db/k?x={}", "a".repeat(70_000));
        for (content, says) in [
            (big.as_str(), "larger than 65536 bytes"),
            ("", "database_url_file"),
        ] {
            std::fs::write(&url_file, content).unwrap();
            let e = load("database_url_file = \"db-url\"").unwrap_err();
            assert!(e.message.contains(says), "{e}");
            assert_eq!(e.line, 1, "{e}");
            assert!(!e.to_string().contains("s3cr3t-pw"), "{e}");
        }
    }

    #[test]
    fn a_trust_policy_file_is_read_with_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("keyless.toml");
        let load = |file: &str| {
            let text = base().replace(
                &format!("trust_policy = '''{TRUST}'''"),
                &format!("trust_policy_file = \"{file}\""),
            );
            std::fs::write(&config_path, text).unwrap();
            super::load(&config_path)
        };
        std::fs::write(dir.path().join("trust.json"), TRUST).unwrap();
        assert!(load("trust.json").is_ok());
        std::fs::write(dir.path().join("big.json"), " ".repeat(2 << 20)).unwrap();
        let e = load("big.json").unwrap_err();
        assert!(e.message.contains("larger than 1048576 bytes"), "{e}");
        assert_eq!(e.line, 18, "at the key: {e}");
        // A device that never ends is refused too, not read into memory.
        let e = load("/dev/zero").unwrap_err();
        assert!(e.message.contains("larger than 1048576 bytes"), "{e}");
    }

    #[test]
    fn http_issuers_only_on_loopback() {
        assert!(check_provider_url("http://127.0.0.1:9000", true).is_ok());
        assert!(check_provider_url("http://localhost:9000/x", true).is_ok());
        assert!(check_provider_url("http://[::1]:9000", true).is_ok());
        assert!(check_provider_url("http://10.0.0.1:9000", true).is_err());
        assert!(check_provider_url("http://127.0.0.1.evil.com", true).is_err());
        assert!(check_provider_url("http://127.0.0.1:9000", false).is_err());
        assert!(check_provider_url("https://x.example/?q", false).is_err());
    }
}
