//! /organizations/{org}/clients: register OAuth clients (RFC 7591 field names), read, replace,
//! update, delete, and rotate their secret. The secret is shown once, in the response that
//! created it, and stored only as SHA-256 (it is 256 random bits, so a fast hash is enough).

use serde::Serialize;
use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::fields::Fields;
use crate::admin::{Failure, Outcome, body, created, no_content, organizations, validate};
use crate::crypto;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::database::Db;
use crate::edge::store::{
    self,
    clients::{Client, GroupWrites},
};
use crate::protocol::groups::{DEFAULT_GROUPS_CLAIM, DEFAULT_ROLES_CLAIM, RoleMapping};

/// The members a client body may have.
pub const FIELDS: &[&str] = &[
    "client_id",
    "client_name",
    "grant_types",
    "redirect_uris",
    "post_logout_redirect_uris",
    "scopes",
    "token_endpoint_auth_method",
    "groups_claim",
    "roles_claim",
    "groups_in_id_token",
    "role_mappings",
    "allowed_groups",
    "require_mfa",
];

/// What a client body sets; everything but the id and the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub client_name: String,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub roles_claim: String,
    pub groups_in_id_token: bool,
    pub role_mappings: Vec<RoleMapping>,
    pub allowed_groups: Vec<String>,
    pub require_mfa: bool,
}

impl Settings {
    fn of(c: &Client) -> Settings {
        Settings {
            client_name: c.client_name.clone(),
            token_endpoint_auth_method: c.token_endpoint_auth_method.clone(),
            grant_types: c.grant_types.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            scopes: c.scopes.clone(),
            groups_claim: c.groups_claim.clone(),
            roles_claim: c.roles_claim.clone(),
            groups_in_id_token: c.groups_in_id_token,
            role_mappings: c.role_mappings.clone(),
            allowed_groups: c.allowed_groups.clone(),
            require_mfa: c.require_mfa,
        }
    }
}

/// Reads the settings from a body. With `current` (PATCH) an absent member keeps its value;
/// without (POST, PUT) it takes the default, and `client_name` and `redirect_uris` are required.
/// Pure.
pub fn settings(fields: &Fields, current: Option<&Settings>) -> Result<Settings, ApiError> {
    let client_name = match (fields.string("client_name")?, current) {
        (Some(name), _) => validate::display_name("client_name", &name)?,
        (None, Some(c)) => c.client_name.clone(),
        (None, None) => {
            return Err(ApiError::invalid_field(
                "client_name",
                "client_name is required",
            ));
        }
    };
    let token_endpoint_auth_method = match (fields.string("token_endpoint_auth_method")?, current) {
        (Some(m), _) => validate::auth_method("token_endpoint_auth_method", &m)?,
        (None, Some(c)) => c.token_endpoint_auth_method.clone(),
        // RFC 7591 §2: "If unspecified or omitted, the default is client_secret_basic".
        (None, None) => "client_secret_basic".to_string(),
    };
    let grant_types = match (fields.string_list("grant_types")?, current) {
        (Some(g), _) => validate::grant_types("grant_types", &g)?,
        (None, Some(c)) => c.grant_types.clone(),
        // RFC 7591 §2: "If omitted, the default behavior is that the client will use only the
        // authorization_code Grant Type."
        (None, None) => vec!["authorization_code".to_string()],
    };
    let redirect_uris = match (fields.string_list("redirect_uris")?, current) {
        (Some(u), _) => validate::redirect_uris("redirect_uris", &u, false)?,
        (None, Some(c)) => c.redirect_uris.clone(),
        (None, None) => {
            return Err(ApiError::invalid_field(
                "redirect_uris",
                "redirect_uris is required",
            ));
        }
    };
    let post_logout_redirect_uris =
        match (fields.string_list("post_logout_redirect_uris")?, current) {
            (Some(u), _) => validate::redirect_uris("post_logout_redirect_uris", &u, true)?,
            (None, Some(c)) => c.post_logout_redirect_uris.clone(),
            (None, None) => Vec::new(),
        };
    let scopes = match (fields.string_list("scopes")?, current) {
        (Some(s), _) => validate::subset("scopes", &s, validate::SCOPES)?,
        (None, Some(c)) => c.scopes.clone(),
        (None, None) => validate::DEFAULT_SCOPES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let groups_claim = match (fields.string("groups_claim")?, current) {
        (Some(n), _) => validate::claim_name("groups_claim", &n)?,
        (None, Some(c)) => c.groups_claim.clone(),
        (None, None) => DEFAULT_GROUPS_CLAIM.to_string(),
    };
    let roles_claim = match (fields.string("roles_claim")?, current) {
        (Some(n), _) => validate::claim_name("roles_claim", &n)?,
        (None, Some(c)) => c.roles_claim.clone(),
        (None, None) => DEFAULT_ROLES_CLAIM.to_string(),
    };
    if groups_claim.eq_ignore_ascii_case(&roles_claim) {
        let field = if fields.has("roles_claim") {
            "roles_claim"
        } else {
            "groups_claim"
        };
        return Err(ApiError::invalid_field(
            field,
            "groups_claim and roles_claim must be different claim names",
        ));
    }
    let groups_in_id_token = match (fields.bool("groups_in_id_token")?, current) {
        (Some(b), _) => b,
        (None, Some(c)) => c.groups_in_id_token,
        (None, None) => false,
    };
    let role_mappings = match (fields.value("role_mappings"), current) {
        (Some(v), _) => validate::role_mappings("role_mappings", v)?,
        (None, Some(c)) => c.role_mappings.clone(),
        (None, None) => Vec::new(),
    };
    let require_mfa = match (fields.bool("require_mfa")?, current) {
        (Some(b), _) => b,
        (None, Some(c)) => c.require_mfa,
        (None, None) => false,
    };
    let allowed_groups = match (fields.string_list("allowed_groups")?, current) {
        (Some(g), _) => validate::group_names("allowed_groups", &g)?,
        (None, Some(c)) => c.allowed_groups.clone(),
        (None, None) => Vec::new(),
    };
    Ok(Settings {
        client_name,
        token_endpoint_auth_method,
        grant_types,
        redirect_uris,
        post_logout_redirect_uris,
        scopes,
        groups_claim,
        roles_claim,
        groups_in_id_token,
        role_mappings,
        allowed_groups,
        require_mfa,
    })
}

/// The groups named in a client's settings as the organization spells them (names are unique
/// ignoring case), or a 400 naming the first that does not exist. Pure.
pub fn canonical_groups(s: &mut Settings, existing: &[String]) -> Result<(), ApiError> {
    let find = |field: &str, name: &str| {
        existing
            .iter()
            .find(|e| e.eq_ignore_ascii_case(name))
            .cloned()
            .ok_or_else(|| {
                ApiError::invalid_field(
                    field,
                    format!("there is no group {name} in this organization; create it first"),
                )
            })
    };
    for m in &mut s.role_mappings {
        m.group = find("role_mappings", &m.group)?;
    }
    for g in &mut s.allowed_groups {
        *g = find("allowed_groups", g)?;
    }
    Ok(())
}

/// `canonical_groups` against the organization's groups, read at the primary (only when the
/// settings name any).
async fn check_groups(db: &Db, org: &str, s: &mut Settings) -> Result<(), Failure> {
    if s.role_mappings.is_empty() && s.allowed_groups.is_empty() {
        return Ok(());
    }
    let existing: Vec<String> = store::groups::list_groups(db, org)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    Ok(canonical_groups(s, &existing)?)
}

/// A client as the API shows it: never the secret hash; the secret itself only right after it
/// was generated.
#[derive(Serialize)]
pub struct ClientView {
    pub org: String,
    pub client_id: String,
    pub client_name: String,
    pub token_endpoint_auth_method: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub groups_claim: String,
    pub roles_claim: String,
    pub groups_in_id_token: bool,
    pub role_mappings: Vec<RoleMapping>,
    pub allowed_groups: Vec<String>,
    /// A second factor is required to sign in to this client.
    pub require_mfa: bool,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// RFC 7591 §3.2.1: required with a client_secret; 0 means it does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
}

pub fn view(c: Client, secret: Option<String>) -> ClientView {
    ClientView {
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret,
        org: c.org,
        client_id: c.client_id,
        client_name: c.client_name,
        token_endpoint_auth_method: c.token_endpoint_auth_method,
        grant_types: c.grant_types,
        redirect_uris: c.redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris,
        scopes: c.scopes,
        groups_claim: c.groups_claim,
        roles_claim: c.roles_claim,
        groups_in_id_token: c.groups_in_id_token,
        role_mappings: c.role_mappings,
        allowed_groups: c.allowed_groups,
        require_mfa: c.require_mfa,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

fn apply(c: &mut Client, s: Settings) {
    c.client_name = s.client_name;
    c.token_endpoint_auth_method = s.token_endpoint_auth_method;
    c.grant_types = s.grant_types;
    c.redirect_uris = s.redirect_uris;
    c.post_logout_redirect_uris = s.post_logout_redirect_uris;
    c.scopes = s.scopes;
    c.groups_claim = s.groups_claim;
    c.roles_claim = s.roles_claim;
    c.groups_in_id_token = s.groups_in_id_token;
    c.role_mappings = s.role_mappings;
    c.allowed_groups = s.allowed_groups;
    c.require_mfa = s.require_mfa;
}

/// Gives a confidential client without a secret a fresh one (returned, to show once), and takes
/// the secret away from a public client (`none` authenticates with no secret at all).
fn settle_secret(c: &mut Client) -> Option<String> {
    if c.is_public() {
        c.secret_hash = None;
        return None;
    }
    if c.secret_hash.is_some() {
        return None;
    }
    let secret = crypto::random_token("cs_");
    c.secret_hash = Some(crypto::token_hash(&secret));
    Some(secret)
}

pub async fn create(req: &mut Request, ctx: &Ctx, org: &str) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    let client_id = match fields.string("client_id")? {
        Some(id) => validate::client_id("client_id", &id)?,
        // 128 random bits, URL-safe: unguessable, though a client id is not a secret.
        None => crypto::b64url(&crypto::random_bytes::<16>()),
    };
    let mut s = settings(&fields, None)?;
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    check_groups(&db, org, &mut s).await?;
    let mut client = Client {
        org: org.to_string(),
        client_id,
        client_name: String::new(),
        token_endpoint_auth_method: String::new(),
        secret_hash: None,
        grant_types: Vec::new(),
        redirect_uris: Vec::new(),
        post_logout_redirect_uris: Vec::new(),
        scopes: Vec::new(),
        created_at: ctx.now,
        updated_at: ctx.now,
        groups_claim: String::new(),
        roles_claim: String::new(),
        groups_in_id_token: false,
        role_mappings: Vec::new(),
        allowed_groups: Vec::new(),
        require_mfa: false,
    };
    apply(&mut client, s);
    let secret = settle_secret(&mut client);
    let everything = GroupWrites {
        role_mappings: Some(&client.role_mappings),
        allowed_groups: Some(&client.allowed_groups),
    };
    let stored = match store::clients::save_client(&db, &client, true, &everything).await {
        Ok(stored) => stored.ok_or_else(|| ApiError::not_found("client"))?,
        Err(e) if store::d1::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "client_id",
                format!("client {} already exists in {org}", client.client_id),
            )
            .into());
        }
        Err(e) => return Err(group_race(e)),
    };
    let location = format!("/api/v1/organizations/{org}/clients/{}", stored.client_id);
    created(&location, &view(stored, secret))
}

/// A write whose group sub-select found nothing: the group was deleted between the check and the
/// batch, which then wrote nothing at all.
fn group_race(e: worker::Error) -> Failure {
    if store::d1::is_not_null_violation(&e) {
        return ApiError::new(
            409,
            "conflict",
            "a group named in the request was deleted meanwhile; nothing was changed",
        )
        .into();
    }
    if store::d1::is_foreign_key_violation(&e) {
        return ApiError::not_found("client").into();
    }
    e.into()
}

async fn require(ctx: &Ctx, org: &str, client_id: &str) -> Result<Client, Failure> {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    store::clients::get_client(&db, org, client_id)
        .await?
        .ok_or_else(|| ApiError::not_found("client").into())
}

pub async fn list(ctx: &Ctx, org: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let clients: Vec<ClientView> = store::clients::list_clients(&db, org)
        .await?
        .into_iter()
        .map(|c| view(c, None))
        .collect();
    Ok(http::json(200, &serde_json::json!({ "clients": clients }))?)
}

pub async fn get(ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    let client = require(ctx, org, client_id).await?;
    Ok(http::json(200, &view(client, None))?)
}

/// PUT replaces every setting (absent members take their defaults, as on creation); PATCH
/// changes only the members present. The id cannot change; a `client_id` member must match.
async fn write(req: &mut Request, ctx: &Ctx, org: &str, client_id: &str, replace: bool) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    if let Some(id) = fields.string("client_id")?
        && id != client_id
    {
        return Err(ApiError::invalid_field("client_id", "client_id cannot be changed").into());
    }
    let mut client = require(ctx, org, client_id).await?;
    let current = Settings::of(&client);
    let mut s = settings(&fields, if replace { None } else { Some(&current) })?;
    let db = ctx.primary()?;
    check_groups(&db, org, &mut s).await?;
    apply(&mut client, s);
    let secret = settle_secret(&mut client);
    client.updated_at = ctx.now;
    // Only what the body names is rewritten (PUT names everything): a PATCH of the name never
    // races a rename of a group the client maps.
    let groups = GroupWrites {
        role_mappings: (replace || fields.has("role_mappings"))
            .then_some(&client.role_mappings[..]),
        allowed_groups: (replace || fields.has("allowed_groups"))
            .then_some(&client.allowed_groups[..]),
    };
    let client = store::clients::save_client(&db, &client, false, &groups)
        .await
        .map_err(group_race)?
        .ok_or_else(|| ApiError::not_found("client"))?;
    Ok(http::json(200, &view(client, secret))?)
}

pub async fn replace(req: &mut Request, ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    write(req, ctx, org, client_id, true).await
}

pub async fn update(req: &mut Request, ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    write(req, ctx, org, client_id, false).await
}

pub async fn delete(ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    if !store::clients::delete_client(&db, org, client_id).await? {
        return Err(ApiError::not_found("client").into());
    }
    no_content()
}

/// POST …/secret: a new secret replaces the old one at once (the old one stops working).
pub async fn rotate_secret(ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    let mut client = require(ctx, org, client_id).await?;
    if client.is_public() {
        return Err(ApiError::invalid_request(
            "a public client (token_endpoint_auth_method none) has no secret",
        )
        .into());
    }
    client.secret_hash = None;
    let secret = settle_secret(&mut client);
    client.updated_at = ctx.now;
    let unchanged = GroupWrites {
        role_mappings: None,
        allowed_groups: None,
    };
    let client = store::clients::save_client(&ctx.primary()?, &client, false, &unchanged)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    Ok(http::json(200, &view(client, secret))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: serde_json::Value) -> Fields {
        Fields::new(v, FIELDS).unwrap()
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_guide_body_is_accepted_as_written() {
        let s = settings(
            &fields(json!({
                "client_id": "rocketchat", "client_name": "Rocket.Chat",
                "grant_types": ["authorization_code", "refresh_token"],
                "redirect_uris": ["https://chat.acme.eu/_oauth/clavex"],
                "scopes": ["openid", "profile", "email"],
                "token_endpoint_auth_method": "client_secret_post"
            })),
            None,
        )
        .unwrap();
        assert_eq!(s.token_endpoint_auth_method, "client_secret_post");
        assert_eq!(
            s.grant_types,
            strings(&["authorization_code", "refresh_token"])
        );
        assert_eq!(
            s.redirect_uris,
            strings(&["https://chat.acme.eu/_oauth/clavex"])
        );
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let s = settings(
            &fields(json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"]})),
            None,
        )
        .unwrap();
        assert_eq!(s.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(s.grant_types, strings(&["authorization_code"]));
        assert_eq!(s.scopes, strings(&["openid", "profile", "email"]));
        assert!(s.post_logout_redirect_uris.is_empty());
    }

    #[test]
    fn patch_keeps_what_is_absent_and_put_does_not() {
        let current = settings(
            &fields(
                json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"],
                            "scopes": ["openid"]}),
            ),
            None,
        )
        .unwrap();
        let patched = settings(&fields(json!({"client_name": "New"})), Some(&current)).unwrap();
        assert_eq!(patched.client_name, "New");
        assert_eq!(patched.scopes, strings(&["openid"]));
        assert_eq!(patched.redirect_uris, current.redirect_uris);
        let err = settings(&fields(json!({"client_name": "New"})), None).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("redirect_uris"));
    }

    #[test]
    fn each_rule_names_its_field() {
        let base = json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"]});
        for (member, value) in [
            ("client_name", json!("")),
            ("client_name", json!(["x"])),
            ("grant_types", json!(["implicit"])),
            ("grant_types", json!("authorization_code")),
            ("redirect_uris", json!([])),
            ("redirect_uris", json!(["http://app.example/cb"])),
            ("redirect_uris", json!(["https://app.example/cb#x"])),
            ("redirect_uris", json!(["/cb"])),
            ("post_logout_redirect_uris", json!(["http://app.example/"])),
            ("scopes", json!(["openid", "admin"])),
            ("scopes", json!([])),
            ("token_endpoint_auth_method", json!("private_key_jwt")),
            ("groups_claim", json!("sub")),
            ("roles_claim", json!("groups")),
            ("roles_claim", json!(["roles"])),
            ("groups_in_id_token", json!("yes")),
            ("role_mappings", json!({"chat-admins": "admin"})),
            ("allowed_groups", json!(["/staff"])),
            ("allowed_groups", json!("staff")),
        ] {
            let mut body = base.clone();
            body[member] = value.clone();
            let err = settings(&fields(body), None).expect_err(&format!("{member}={value}"));
            assert_eq!(err.field.as_deref(), Some(member));
            assert_eq!(err.status, 400);
        }
    }

    fn client(method: &str, secret_hash: Option<&str>) -> Client {
        Client {
            org: "o".into(),
            client_id: "c".into(),
            client_name: "n".into(),
            token_endpoint_auth_method: method.into(),
            secret_hash: secret_hash.map(String::from),
            grant_types: vec![],
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            scopes: vec![],
            created_at: 0,
            updated_at: 0,
            groups_claim: "groups".into(),
            roles_claim: "roles".into(),
            groups_in_id_token: false,
            role_mappings: vec![],
            allowed_groups: vec![],
            require_mfa: false,
        }
    }

    #[test]
    fn secrets_follow_the_auth_method() {
        let mut public = client("none", Some("old"));
        assert_eq!(settle_secret(&mut public), None);
        assert_eq!(public.secret_hash, None);

        let mut fresh = client("client_secret_post", None);
        let secret = settle_secret(&mut fresh).unwrap();
        assert!(secret.starts_with("cs_"));
        assert_eq!(fresh.secret_hash, Some(crypto::token_hash(&secret)));

        let mut kept = client("client_secret_basic", Some("old"));
        assert_eq!(settle_secret(&mut kept), None);
        assert_eq!(kept.secret_hash.as_deref(), Some("old"));
    }

    #[test]
    fn views_never_carry_the_hash() {
        let stored = client("client_secret_basic", Some("STORED-HASH"));
        let v = serde_json::to_value(view(stored.clone(), None)).unwrap();
        assert!(!v.to_string().contains("STORED-HASH"), "{v}");
        assert!(v.get("secret_hash").is_none() && v.get("client_secret").is_none());
        assert!(v.get("client_secret_expires_at").is_none());
        let shown = serde_json::to_value(view(
            client("client_secret_basic", Some("h")),
            Some("cs_x".into()),
        ))
        .unwrap();
        assert_eq!(shown["client_secret"], "cs_x");
        assert_eq!(shown["client_secret_expires_at"], 0);
        assert!(shown.get("secret_hash").is_none());
    }

    #[test]
    fn group_settings_default_keep_and_canonicalise() {
        let mut s = settings(
            &fields(
                json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"],
                "role_mappings": [{"group": "CHAT-admins", "role": "admin"}],
                "allowed_groups": ["Staff", "staff"], "roles_claim": "rc_roles"}),
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            (s.groups_claim.as_str(), s.roles_claim.as_str()),
            ("groups", "rc_roles")
        );
        assert_eq!(s.allowed_groups, strings(&["Staff"]));
        canonical_groups(&mut s, &strings(&["chat-admins", "staff"])).unwrap();
        assert_eq!(s.role_mappings[0].group, "chat-admins");
        assert_eq!(s.allowed_groups, strings(&["staff"]));
        let err = canonical_groups(&mut s.clone(), &strings(&["staff"])).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("role_mappings"));
        let patched = settings(&fields(json!({"groups_in_id_token": true})), Some(&s)).unwrap();
        assert!(patched.groups_in_id_token);
        assert_eq!(patched.role_mappings, s.role_mappings);
        let cleared = settings(&fields(json!({"allowed_groups": []})), Some(&s)).unwrap();
        assert!(cleared.allowed_groups.is_empty());
    }
}
