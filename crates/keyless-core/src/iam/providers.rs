//! OIDC identity providers: the issuers whose tokens roles of the account may trust.

use super::params::{Check, check_tag_rules, merge_tags, remove_tags, request_tags, resource_tags};
use super::{
    Cx, IamOutcome, Node, already_exists, invalid_input, limit_exceeded, no_such_entity,
    unmodifiable,
};
use crate::error::ApiError;
use crate::model::{OidcProvider, Origin, issuer_key_prefix};
use crate::ports::Change;
use crate::sts::params::Params;

/// Providers per account (AWS quota).
pub const MAX_PROVIDERS: usize = 100;
/// Client ids per provider (AWS quota).
pub const MAX_CLIENT_IDS: usize = 100;
/// Thumbprints per provider (AWS quota).
pub const MAX_THUMBPRINTS: usize = 5;

fn provider_arn(cx: &Cx<'_>, url: &str) -> String {
    format!(
        "arn:aws:iam::{}:oidc-provider/{}",
        cx.account(),
        issuer_key_prefix(url)
    )
}

/// Checks an issuer URL: `https://host[:port][/path]` without query, fragment or credentials;
/// `http://` only for loopback hosts when the server allows it (local test issuers).
fn check_url(url: &str, allow_loopback_http: bool) -> Result<(), ApiError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid_input("Invalid Url: it must begin with https://."))?;
    let host_port = rest.split('/').next().unwrap_or("");
    let host = host_port
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host_port, |(h, _)| h);
    if host.is_empty()
        || rest.contains(['?', '#', '@', ' '])
        || !rest.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(invalid_input(
            "Invalid Url: use https://host[/path] without query, fragment or credentials.",
        ));
    }
    let loopback = matches!(host, "localhost" | "[::1]") || host.starts_with("127.");
    match scheme {
        "https" => Ok(()),
        "http" if allow_loopback_http && loopback => Ok(()),
        _ => Err(invalid_input("Invalid Url: it must begin with https://.")),
    }
}

fn check_thumbprints(c: &mut Check, list: &[&str]) {
    if list.len() > MAX_THUMBPRINTS {
        c.push(
            &list.len().to_string(),
            "thumbprintList",
            "Member must have length less than or equal to 5",
        );
    }
    for t in list.iter().take(MAX_THUMBPRINTS + 1) {
        if c.len(t, "thumbprintList.member", 40, 40) && !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            c.push(
                t,
                "thumbprintList.member",
                "Member must be 40 hexadecimal characters",
            );
        }
    }
}

fn arn_param(c: &mut Check, p: &Params) -> String {
    c.required_with(
        p,
        "OpenIDConnectProviderArn",
        "openIDConnectProviderArn",
        |c, v| {
            c.arn(v, "openIDConnectProviderArn");
        },
    )
}

/// Authorizes `action` on the provider ARN, then finds the provider of the caller's account.
fn authorized_provider(
    cx: &Cx<'_>,
    action: &str,
    arn: &str,
    extra: impl FnOnce(&mut keyless_policy::Context),
) -> Result<OidcProvider, ApiError> {
    let found = cx
        .directory()
        .providers()
        .find(|p| p.account == cx.account() && p.arn() == arn)
        .cloned();
    cx.authorize(action, arn, |c| {
        if let Some(p) = &found {
            resource_tags(c, &p.tags);
        }
        extra(c);
    })?;
    found.ok_or_else(|| no_such_entity(format!("OpenIDConnect Provider not found for arn {arn}")))
}

fn writable(p: OidcProvider) -> Result<OidcProvider, ApiError> {
    if p.origin == Origin::Config {
        return Err(unmodifiable("OpenIDConnect provider", &p.url));
    }
    Ok(p)
}

pub(super) fn create(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    // Trusted identity propagation changes what the provider's tokens mean (the subject comes
    // from another claim, claims become trusted context keys). keyless does not do it, and a
    // provider created without it would not be the one asked for.
    if let Some(name) = p.names().find(|n| {
        *n == "IdentityCenterInstanceArn"
            || *n == "ContextProvider"
            || n.starts_with("ContextProvider.")
    }) {
        let name = name.split('.').next().unwrap_or(name);
        return Err(invalid_input(format!(
            "keyless does not support trusted identity propagation ({name}): leave it out, and map claims to session tags with the https://aws.amazon.com/tags claim instead."
        )));
    }
    let mut c = Check::default();
    let url = c.required_with(p, "Url", "url", |c, v| {
        c.len(v, "url", 1, 255);
    });
    let client_ids = p.list("ClientIDList");
    if client_ids.len() > MAX_CLIENT_IDS {
        c.push(
            &client_ids.len().to_string(),
            "clientIDList",
            "Member must have length less than or equal to 100",
        );
    }
    for id in client_ids.iter().take(MAX_CLIENT_IDS + 1) {
        c.len(id, "clientIDList.member", 1, 255);
    }
    let thumbprints = p.list("ThumbprintList");
    check_thumbprints(&mut c, &thumbprints);
    let tags = c.tags(p);
    c.finish()?;
    check_tag_rules(&tags)?;
    check_url(&url, cx.env.allow_loopback_http_providers)?;
    let arn = provider_arn(cx, &url);
    cx.authorize("CreateOpenIDConnectProvider", &arn, |ctx| {
        request_tags(ctx, &tags);
    })?;
    cx.authorize_tags_on_create("TagOpenIDConnectProvider", &arn, &tags)?;
    let mine: Vec<&OidcProvider> = cx
        .directory()
        .providers()
        .filter(|p| p.account == cx.account())
        .collect();
    if mine
        .iter()
        .any(|p| issuer_key_prefix(&p.url).eq_ignore_ascii_case(issuer_key_prefix(&url)))
    {
        return Err(already_exists(format!(
            "Provider with url {url} already exists."
        )));
    }
    if mine.len() >= MAX_PROVIDERS {
        return Err(limit_exceeded(format!(
            "Cannot exceed quota for OpenIdProvidersPerAccount: {MAX_PROVIDERS}"
        )));
    }
    let mut ids: Vec<String> = Vec::new();
    for id in client_ids {
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    let provider = OidcProvider {
        account: cx.account(),
        allow_http: url.starts_with("http://"),
        url,
        client_ids: ids,
        thumbprints: thumbprints
            .into_iter()
            .map(|t| t.to_ascii_lowercase())
            .collect(),
        tags: tags.into_iter().collect(),
        origin: Origin::Api,
        created: cx.now(),
    };
    let mut nodes = vec![Node::leaf("OpenIDConnectProviderArn", arn)];
    if !provider.tags.is_empty() {
        nodes.push(Node::tags(&provider.tags));
    }
    Ok(IamOutcome::write_with(Change::PutProvider(provider), nodes))
}

pub(super) fn get(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    c.finish()?;
    let provider = authorized_provider(cx, "GetOpenIDConnectProvider", &arn, |_| {})?;
    let mut nodes = vec![
        Node::leaf("Url", issuer_key_prefix(&provider.url).to_owned()),
        Node::strings("ClientIDList", provider.client_ids.iter()),
        Node::strings("ThumbprintList", provider.thumbprints.iter()),
        Node::date("CreateDate", provider.created),
    ];
    if !provider.tags.is_empty() {
        nodes.push(Node::tags(&provider.tags));
    }
    Ok(IamOutcome::result(nodes))
}

pub(super) fn list(cx: &Cx<'_>) -> Result<IamOutcome, ApiError> {
    cx.authorize("ListOpenIDConnectProviders", "*", |_| {})?;
    let mut arns: Vec<String> = cx
        .directory()
        .providers()
        .filter(|p| p.account == cx.account())
        .map(OidcProvider::arn)
        .collect();
    arns.sort();
    Ok(IamOutcome::result(vec![Node::list(
        "OpenIDConnectProviderList",
        arns.into_iter()
            .map(|a| vec![Node::leaf("Arn", a)])
            .collect(),
    )]))
}

pub(super) fn delete(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    c.finish()?;
    let provider = writable(authorized_provider(
        cx,
        "DeleteOpenIDConnectProvider",
        &arn,
        |_| {},
    )?)?;
    Ok(IamOutcome::write(Change::DeleteProvider {
        account: provider.account,
        url: provider.url,
    }))
}

fn client_id_param(c: &mut Check, p: &Params) -> String {
    c.required_with(p, "ClientID", "clientID", |c, v| {
        c.len(v, "clientID", 1, 255);
    })
}

pub(super) fn add_client_id(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let id = client_id_param(&mut c, p);
    c.finish()?;
    let mut provider = writable(authorized_provider(
        cx,
        "AddClientIDToOpenIDConnectProvider",
        &arn,
        |_| {},
    )?)?;
    if provider.client_ids.contains(&id) {
        return Ok(IamOutcome::default());
    }
    if provider.client_ids.len() >= MAX_CLIENT_IDS {
        return Err(limit_exceeded(format!(
            "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: {MAX_CLIENT_IDS}"
        )));
    }
    provider.client_ids.push(id);
    Ok(IamOutcome::write(Change::PutProvider(provider)))
}

pub(super) fn remove_client_id(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let id = client_id_param(&mut c, p);
    c.finish()?;
    let mut provider = writable(authorized_provider(
        cx,
        "RemoveClientIDFromOpenIDConnectProvider",
        &arn,
        |_| {},
    )?)?;
    if !provider.client_ids.contains(&id) {
        return Ok(IamOutcome::default());
    }
    provider.client_ids.retain(|i| *i != id);
    Ok(IamOutcome::write(Change::PutProvider(provider)))
}

pub(super) fn update_thumbprint(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let thumbprints = p.list("ThumbprintList");
    if thumbprints.is_empty() {
        c.required(p, "ThumbprintList.member.1", "thumbprintList");
    }
    check_thumbprints(&mut c, &thumbprints);
    c.finish()?;
    let mut provider = writable(authorized_provider(
        cx,
        "UpdateOpenIDConnectProviderThumbprint",
        &arn,
        |_| {},
    )?)?;
    provider.thumbprints = thumbprints
        .into_iter()
        .map(|t| t.to_ascii_lowercase())
        .collect();
    Ok(IamOutcome::write(Change::PutProvider(provider)))
}

pub(super) fn tag(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let tags = c.tags(p);
    if tags.is_empty() {
        c.push("null", "tags", "Member must not be null");
    }
    c.finish()?;
    let mut provider = writable(authorized_provider(
        cx,
        "TagOpenIDConnectProvider",
        &arn,
        |c| {
            request_tags(c, &tags);
        },
    )?)?;
    provider.tags = merge_tags(&provider.tags, &tags)?;
    Ok(IamOutcome::write(Change::PutProvider(provider)))
}

pub(super) fn untag(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let keys = c.tag_keys(p);
    c.finish()?;
    let mut provider = writable(authorized_provider(
        cx,
        "UntagOpenIDConnectProvider",
        &arn,
        |c| {
            c.insert_multi("aws:TagKeys", keys.clone());
        },
    )?)?;
    provider.tags = remove_tags(&provider.tags, &keys);
    Ok(IamOutcome::write(Change::PutProvider(provider)))
}

pub(super) fn list_tags(cx: &Cx<'_>, p: &Params) -> Result<IamOutcome, ApiError> {
    let mut c = Check::default();
    let arn = arn_param(&mut c, p);
    let page = c.page(p);
    c.finish()?;
    let provider = authorized_provider(cx, "ListOpenIDConnectProviderTags", &arn, |_| {})?;
    let tags: Vec<(String, String)> = provider.tags.into_iter().collect();
    let (items, mut tail) = page.apply(tags, |(k, _)| k.clone())?;
    let mut nodes = vec![Node::tags(&items.into_iter().collect())];
    nodes.append(&mut tail);
    Ok(IamOutcome::result(nodes))
}
