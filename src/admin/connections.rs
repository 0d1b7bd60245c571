//! /organizations/{org}/connections: upstream OpenID Connect providers people of the
//! organization may sign in with (issue 17). The client secret is stored only sealed and never
//! returned; every answer carries the `redirect_uri` to register at the upstream.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::fields::Fields;
use crate::admin::{Outcome, body, created, no_content, organizations};
use crate::crypto::{b64url, random_bytes};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::connections::{self as store, Connection};
use crate::edge::store::database::Db;
use crate::protocol::groups::is_group_name;
use crate::protocol::upstream_mapping::{
    ClaimMapping, MAPPED, MAX_GROUP_MAPPINGS, is_upstream_claim_name, is_upstream_group_value,
};

pub const FIELDS: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret",
    "token_endpoint_auth_method",
    "scopes",
    "label",
    "jit_create",
    "link_by_verified_email",
    "trust_upstream_mfa",
    "claim_mapping",
    "default_groups",
    "groups_claim",
    "group_mapping",
];

/// What the sealed client secret is sealed for (crypto/keyring.rs purposes); the connection id
/// is the associated data, so a secret copied onto another connection does not open.
pub const SECRET_PURPOSE: &str = "upstream-client-secrets";

const MAX_LABEL: usize = 64;
const MAX_CLIENT_ID: usize = 255;
const MAX_SECRET: usize = 1024;
const MAX_ISSUER: usize = 2048;

/// An issuer (OpenID Connect Discovery §2: "a case-sensitive URL using the https scheme that
/// contains scheme, host, and optionally, port number and path components and no query or
/// fragment components"); plain http only on a loopback host, for local development. Stored
/// exactly as sent: the ID token's `iss` must equal it character for character, so
/// `https://accounts.google.com` is not repaired into `…/`.
pub fn issuer(value: &str) -> Result<String, ApiError> {
    let bad = |why: &str| ApiError::invalid_field("issuer", format!("issuer {why}"));
    if value.len() > MAX_ISSUER || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("must be a URL without whitespace"));
    }
    let lower = value.to_ascii_lowercase();
    let Ok(url) = url::Url::parse(value) else {
        return Err(bad("is not a URL"));
    };
    if url.query().is_some() || url.fragment().is_some() || value.contains(['?', '#']) {
        return Err(bad(
            "must have no query or fragment (OpenID Connect Discovery §2)",
        ));
    }
    let loopback = matches!(
        url.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    );
    let ok = lower.starts_with("https://") || (lower.starts_with("http://") && loopback);
    if !ok || url.username() != "" || url.password().is_some() {
        return Err(bad(
            "must use https (plain http only for localhost, 127.0.0.1, [::1])",
        ));
    }
    Ok(value.to_string())
}

fn text(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be 1-{max} characters without control characters"),
        ));
    }
    Ok(value.to_string())
}

/// RFC 6749 §3.3 scope tokens, `openid` among them, each once.
pub fn scopes(values: &[String]) -> Result<String, ApiError> {
    let token_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    };
    let mut out: Vec<&str> = Vec::new();
    for s in values {
        if !token_ok(s) {
            return Err(ApiError::invalid_field(
                "scopes",
                format!("{s:?} is not a scope token (RFC 6749 §3.3)"),
            ));
        }
        if !out.contains(&s.as_str()) {
            out.push(s);
        }
    }
    if !out.contains(&"openid") {
        return Err(ApiError::invalid_field(
            "scopes",
            "scopes must include openid (OpenID Connect Core §3.1.2.1)",
        ));
    }
    Ok(out.join(" "))
}

fn auth_method(value: &str) -> Result<String, ApiError> {
    match value {
        "client_secret_basic" | "client_secret_post" => Ok(value.to_string()),
        _ => Err(ApiError::invalid_field(
            "token_endpoint_auth_method",
            "token_endpoint_auth_method must be client_secret_basic or client_secret_post",
        )),
    }
}

/// The members a body sets, checked, applied onto `c`; the client secret in clear when sent (to
/// be sealed by the caller). Pure.
pub fn apply(fields: &Fields, c: &mut Connection) -> Result<Option<String>, ApiError> {
    if let Some(v) = fields.string("issuer")? {
        c.issuer = issuer(&v)?;
    }
    if let Some(v) = fields.string("client_id")? {
        c.client_id = text("client_id", &v, MAX_CLIENT_ID)?;
    }
    if let Some(v) = fields.string("token_endpoint_auth_method")? {
        c.token_endpoint_auth_method = auth_method(&v)?;
    }
    if let Some(v) = fields.string_list("scopes")? {
        c.scopes = scopes(&v)?;
    }
    if let Some(v) = fields.string("label")? {
        c.label = text("label", &v, MAX_LABEL)?;
    }
    if let Some(v) = fields.bool("jit_create")? {
        c.jit_create = v;
    }
    if let Some(v) = fields.bool("link_by_verified_email")? {
        c.link_by_verified_email = v;
    }
    if let Some(v) = fields.bool("trust_upstream_mfa")? {
        c.trust_upstream_mfa = v;
    }
    if fields.has("claim_mapping") {
        c.claim_mapping = claim_mapping(fields.value("claim_mapping"))?;
    }
    if fields.has("default_groups") {
        c.default_groups = group_names(fields.string_list("default_groups")?.unwrap_or_default())?;
    }
    if fields.has("groups_claim") {
        c.groups_claim = fields
            .string("groups_claim")?
            .map(|v| {
                is_upstream_claim_name(&v).then_some(v).ok_or_else(|| {
                    ApiError::invalid_field(
                        "groups_claim",
                        "groups_claim must be a claim name: 1-255 characters, no control characters or surrounding spaces",
                    )
                })
            })
            .transpose()?;
    }
    if fields.has("group_mapping") {
        c.group_mapping = group_mapping(fields.value("group_mapping"))?;
    }
    // A map without the claim it reads would silently do nothing.
    if !c.group_mapping.is_empty() && c.groups_claim.is_none() {
        return Err(ApiError::invalid_field(
            "group_mapping",
            "group_mapping needs groups_claim: the upstream claim whose values it maps",
        ));
    }
    fields
        .string("client_secret")?
        .map(|s| text("client_secret", &s, MAX_SECRET))
        .transpose()
}

/// `{"username"|"email"|"name"|"picture": upstream claim name}`; `null` or `{}`: the defaults.
fn claim_mapping(value: Option<&Value>) -> Result<ClaimMapping, ApiError> {
    let bad = || {
        ApiError::invalid_field(
            "claim_mapping",
            format!(
                "claim_mapping must be an object whose members ({}) are upstream claim names",
                MAPPED.join(", ")
            ),
        )
    };
    let Some(value) = value else {
        return Ok(ClaimMapping::default());
    };
    // Only an object: serde would also read a struct from a list, by position.
    if !value.is_object() {
        return Err(bad());
    }
    let m: ClaimMapping = serde_json::from_value(value.clone()).map_err(|_| bad())?;
    let names = [&m.username, &m.email, &m.name, &m.picture];
    if names
        .into_iter()
        .flatten()
        .any(|n| !is_upstream_claim_name(n))
    {
        return Err(bad());
    }
    Ok(m)
}

/// Group names (each once, ignoring case); whether they exist is checked against the database
/// by `existing_groups`.
fn group_names(values: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !is_group_name(&v) {
            return Err(ApiError::invalid_field(
                "default_groups",
                format!("{v:?} is not a group name"),
            ));
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&v)) {
            out.push(v);
        }
    }
    if out.len() > MAX_GROUP_MAPPINGS {
        return Err(ApiError::invalid_field(
            "default_groups",
            format!("at most {MAX_GROUP_MAPPINGS} default groups"),
        ));
    }
    Ok(out)
}

/// `{upstream value: Clavex group name}`; `null`: none.
fn group_mapping(value: Option<&Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let bad = |why: String| ApiError::invalid_field("group_mapping", why);
    let Some(value) = value else {
        return Ok(BTreeMap::new());
    };
    let Some(object) = value.as_object() else {
        return Err(bad(
            "group_mapping must be an object: {upstream group value: group name}".into(),
        ));
    };
    if object.len() > MAX_GROUP_MAPPINGS {
        return Err(bad(format!("at most {MAX_GROUP_MAPPINGS} entries")));
    }
    let mut out = BTreeMap::new();
    for (upstream_value, group) in object {
        if !is_upstream_group_value(upstream_value) {
            return Err(bad(format!(
                "{upstream_value:?} is not an upstream group value (1-255 characters, no control characters)"
            )));
        }
        match group.as_str() {
            Some(g) if is_group_name(g) => {
                out.insert(upstream_value.clone(), g.to_string());
            }
            _ => return Err(bad(format!("{group} is not a group name"))),
        }
    }
    Ok(out)
}

/// Every group the connection names must exist in the organization (400 naming the first that
/// does not). One read of the organization's groups. The groups are stored by id (migration
/// 0011h): a rename is followed, and deleting a group a connection names is refused (409).
async fn existing_groups(db: &Db, c: &mut Connection) -> Result<(), crate::admin::Failure> {
    if c.default_groups.is_empty() && c.group_mapping.is_empty() {
        return Ok(());
    }
    let groups = crate::edge::store::groups::list_groups(db, &c.org).await?;
    let canonical = |field: &str, name: &str| {
        groups
            .iter()
            .find(|g| g.name.eq_ignore_ascii_case(name))
            .map(|g| g.name.clone())
            .ok_or_else(|| ApiError::invalid_field(field, format!("group {name} does not exist")))
    };
    for name in c.default_groups.iter_mut() {
        *name = canonical("default_groups", name)?;
    }
    for name in c.group_mapping.values_mut() {
        *name = canonical("group_mapping", name)?;
    }
    Ok(())
}

/// A write that named a group deleted between the check and the write: 409, nothing written.
fn group_gone(e: worker::Error) -> crate::admin::Failure {
    if store::is_group_gone(&e) {
        return ApiError::new(
            409,
            "conflict",
            "a group this connection names was deleted meanwhile; send the request again",
        )
        .into();
    }
    e.into()
}

/// A new connection from a create body; its client secret still in clear. Pure.
pub fn new_connection(
    fields: &Fields,
    org: &str,
    id: String,
    now: i64,
) -> Result<(Connection, String), ApiError> {
    for required in ["issuer", "client_id", "client_secret", "label"] {
        fields.required_string(required)?;
    }
    let mut c = Connection {
        id,
        org: org.to_string(),
        issuer: String::new(),
        client_id: String::new(),
        client_secret_sealed: String::new(),
        token_endpoint_auth_method: "client_secret_basic".into(),
        scopes: crate::protocol::upstream::DEFAULT_SCOPES.into(),
        label: String::new(),
        jit_create: false,
        link_by_verified_email: false,
        trust_upstream_mfa: false,
        claim_mapping: ClaimMapping::default(),
        default_groups: Vec::new(),
        groups_claim: None,
        group_mapping: BTreeMap::new(),
        created_at: now,
        updated_at: now,
    };
    let secret = apply(fields, &mut c)?.expect("client_secret is required above");
    Ok((c, secret))
}

/// `con_` + 96 random bits: it appears in URLs (the start of a sign-in, `idp_hint`).
fn new_id() -> String {
    format!("con_{}", b64url(&random_bytes::<12>()))
}

/// The redirect URI to register at the upstream: one per organization.
pub fn redirect_uri(ctx: &Ctx, org: &str) -> String {
    format!("{}/connections/callback", ctx.config.issuer(org))
}

/// A connection as the API shows it: never its secret.
fn view(ctx: &Ctx, c: &Connection) -> Value {
    json!({
        "id": c.id,
        "issuer": c.issuer,
        "client_id": c.client_id,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "scopes": c.scopes.split(' ').collect::<Vec<_>>(),
        "label": c.label,
        "jit_create": c.jit_create,
        "link_by_verified_email": c.link_by_verified_email,
        "trust_upstream_mfa": c.trust_upstream_mfa,
        "claim_mapping": c.claim_mapping,
        "default_groups": c.default_groups,
        "groups_claim": c.groups_claim,
        "group_mapping": c.group_mapping,
        "redirect_uri": redirect_uri(ctx, &c.org),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    })
}

fn seal(ctx: &Ctx, id: &str, secret: &str) -> String {
    ctx.config
        .key_encryption_secret
        .seal(SECRET_PURPOSE, secret.as_bytes(), id.as_bytes())
}

/// POST → 201 with the connection (and its `redirect_uri`).
pub async fn create(req: &mut Request, ctx: &Ctx, org: &str) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    let (mut c, secret) = new_connection(&fields, org, new_id(), ctx.now)?;
    c.client_secret_sealed = seal(ctx, &c.id, &secret);
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    existing_groups(&db, &mut c).await?;
    store::insert(&db, &c).await.map_err(group_gone)?;
    // The login page reads the buttons with the cached organization: this isolate at once, the
    // others within the cache's lifetime (30 s).
    crate::oidc::request::forget_organization(org);
    created(
        &format!("/api/v1/organizations/{org}/connections/{}", c.id),
        &view(ctx, &c),
    )
}

pub async fn list(ctx: &Ctx, org: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let all: Vec<Value> = store::list(&db, org)
        .await?
        .iter()
        .map(|c| view(ctx, c))
        .collect();
    Ok(http::json(200, &json!({ "connections": all }))?)
}

async fn require(ctx: &Ctx, org: &str, id: &str) -> Result<Connection, crate::admin::Failure> {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    store::get(&db, org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection").into())
}

pub async fn get(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let c = require(ctx, org, id).await?;
    Ok(http::json(200, &view(ctx, &c))?)
}

/// PATCH any member; a `client_secret` sent replaces the stored one.
pub async fn update(req: &mut Request, ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    let before = require(ctx, org, id).await?;
    let mut c = before.clone();
    if let Some(secret) = apply(&fields, &mut c)? {
        c.client_secret_sealed = seal(ctx, &c.id, &secret);
    }
    c.updated_at = ctx.now;
    if fields.has("default_groups") || fields.has("group_mapping") {
        existing_groups(&ctx.primary()?, &mut c).await?;
    }
    let updated = store::update(&ctx.primary()?, &before, &c)
        .await
        .map_err(group_gone)?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    crate::oidc::request::forget_organization(org);
    Ok(http::json(200, &view(ctx, &updated))?)
}

/// DELETE → 204; the links of users to accounts there go with it (the users stay).
pub async fn delete(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    if !store::delete(&db, org, id).await? {
        return Err(ApiError::not_found("connection").into());
    }
    crate::oidc::request::forget_organization(org);
    no_content()
}

/// GET /organizations/{org}/users/{user_id}/links: the user's upstream accounts.
pub async fn links(ctx: &Ctx, org: &str, user_id: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    crate::edge::store::users::get_user(&db, org, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    let links = store::links_of(&db, org, user_id).await?;
    Ok(http::json(200, &json!({ "links": links }))?)
}

/// DELETE /organizations/{org}/users/{user_id}/links/{connection_id} → 204: the upstream account
/// no longer signs in as this user (a link made by mistake, an account handed over). Idempotent:
/// a user with no link there gets 204 too; an unknown user or connection is a 404.
pub async fn unlink(ctx: &Ctx, org: &str, user_id: &str, connection_id: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    crate::edge::store::users::get_user(&db, org, user_id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    store::get(&db, org, connection_id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))?;
    // Only a link that existed is an event: the idempotent repeat changes nothing.
    if let Some(upstream_sub) = store::unlink(&db, org, user_id, connection_id).await? {
        crate::edge::audit::note(
            ctx,
            crate::protocol::audit::Kind::UpstreamLinkRemoved,
            org,
            Some(user_id),
            None,
            crate::edge::audit::detail([
                ("connection_id", json!(connection_id)),
                (
                    "upstream_subject",
                    json!(crate::protocol::upstream::subject_hash(&upstream_sub)),
                ),
            ]),
        );
    }
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Fields {
        Fields::new(v, FIELDS).unwrap()
    }

    #[test]
    fn issuers_are_https_or_loopback_http_kept_exactly() {
        for ok in [
            "https://accounts.google.com",
            "https://login.example/realms/acme/",
            "http://127.0.0.1:8787/upstream",
            "http://localhost/x",
        ] {
            assert_eq!(issuer(ok).unwrap(), ok);
        }
        for bad in [
            "http://idp.example",
            "https://idp.example/?x=1",
            "https://idp.example/#f",
            "ftp://idp.example",
            "idp.example",
            "https://user:pw@idp.example",
            "https://idp.example/ x",
        ] {
            assert!(issuer(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_connection_needs_issuer_client_secret_and_label_and_openid() {
        let (c, secret) = new_connection(
            &fields(
                json!({"issuer": "https://idp.example", "client_id": "clavex",
                           "client_secret": "s3cret", "label": "Example", "jit_create": true}),
            ),
            "acme",
            "con_1".into(),
            7,
        )
        .unwrap();
        assert_eq!(secret, "s3cret");
        assert_eq!(c.scopes, "openid profile email");
        assert!(c.jit_create && !c.link_by_verified_email && !c.trust_upstream_mfa);
        assert_eq!(c.token_endpoint_auth_method, "client_secret_basic");
        for (body, field) in [
            (
                json!({"client_id": "c", "client_secret": "s", "label": "L"}),
                "issuer",
            ),
            (
                json!({"issuer": "https://i", "client_secret": "s", "label": "L"}),
                "client_id",
            ),
            (
                json!({"issuer": "https://i", "client_id": "c", "label": "L"}),
                "client_secret",
            ),
            (
                json!({"issuer": "https://i", "client_id": "c", "client_secret": "s"}),
                "label",
            ),
            (
                json!({"issuer": "https://i", "client_id": "c", "client_secret": "s", "label": "L",
                       "scopes": ["profile"]}),
                "scopes",
            ),
            (
                json!({"issuer": "https://i", "client_id": "c", "client_secret": "s", "label": "L",
                       "token_endpoint_auth_method": "none"}),
                "token_endpoint_auth_method",
            ),
            (
                json!({"issuer": "https://i", "client_id": "c", "client_secret": "s", "label": "L",
                       "jit_create": "yes"}),
                "jit_create",
            ),
        ] {
            let err = new_connection(&fields(body.clone()), "acme", "x".into(), 0).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn mapping_members_are_checked_and_a_group_map_needs_its_claim() {
        let base =
            json!({"issuer": "https://i", "client_id": "c", "client_secret": "s", "label": "L"});
        let with = |extra: Value| {
            let mut body = base.clone();
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            new_connection(&fields(body), "acme", "x".into(), 0)
        };
        let (c, _) = with(
            json!({"claim_mapping": {"username": "upn"}, "default_groups": ["a", "A", "b"],
                                 "groups_claim": "roles", "group_mapping": {"CN=Eng": "eng"}}),
        )
        .unwrap();
        assert_eq!(c.claim_mapping.username_claim(), "upn");
        assert_eq!(c.default_groups, ["a", "b"], "each once, ignoring case");
        assert_eq!(c.groups_claim.as_deref(), Some("roles"));
        assert_eq!(c.group_mapping["CN=Eng"], "eng");
        for (extra, field) in [
            (json!({"claim_mapping": {"phone": "x"}}), "claim_mapping"),
            (json!({"claim_mapping": {"email": ""}}), "claim_mapping"),
            (json!({"claim_mapping": ["email"]}), "claim_mapping"),
            (json!({"default_groups": ["no/slash"]}), "default_groups"),
            (json!({"groups_claim": " g"}), "groups_claim"),
            (json!({"group_mapping": {"eng": "eng"}}), "group_mapping"),
            (
                json!({"groups_claim": "g", "group_mapping": {"eng": 5}}),
                "group_mapping",
            ),
            (
                json!({"groups_claim": "g", "group_mapping": {"": "eng"}}),
                "group_mapping",
            ),
        ] {
            let err = with(extra.clone()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{extra}");
        }
        // null clears.
        let (c, _) =
            with(json!({"claim_mapping": null, "group_mapping": null, "groups_claim": null}))
                .unwrap();
        assert_eq!(c.claim_mapping, ClaimMapping::default());
        assert!(c.group_mapping.is_empty() && c.groups_claim.is_none());
    }

    #[test]
    fn scopes_are_tokens_once_each() {
        let s = |v: &[&str]| scopes(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["openid", "email", "openid"]).unwrap(), "openid email");
        assert!(s(&["openid", "a b"]).is_err());
        assert!(s(&["openid", "a\"b"]).is_err());
        assert!(s(&[]).is_err());
    }
}
