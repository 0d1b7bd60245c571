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
use crate::edge::store::{self, clients::Client};

const FIELDS: &[&str] = &[
    "client_id",
    "client_name",
    "grant_types",
    "redirect_uris",
    "post_logout_redirect_uris",
    "scopes",
    "token_endpoint_auth_method",
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
    Ok(Settings {
        client_name,
        token_endpoint_auth_method,
        grant_types,
        redirect_uris,
        post_logout_redirect_uris,
        scopes,
    })
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
    let fields = body::read(req, FIELDS).await?;
    let client_id = match fields.string("client_id")? {
        Some(id) => validate::client_id("client_id", &id)?,
        // 128 random bits, URL-safe: unguessable, though a client id is not a secret.
        None => crypto::b64url(&crypto::random_bytes::<16>()),
    };
    let s = settings(&fields, None)?;
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
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
    };
    apply(&mut client, s);
    let secret = settle_secret(&mut client);
    match store::clients::insert_client(&db, &client).await {
        Ok(()) => {}
        Err(e) if store::d1::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "client_id",
                format!("client {} already exists in {org}", client.client_id),
            )
            .into());
        }
        Err(e) => return Err(e.into()),
    }
    let location = format!("/api/v1/organizations/{org}/clients/{}", client.client_id);
    created(&location, &view(client, secret))
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
    let fields = body::read(req, FIELDS).await?;
    if let Some(id) = fields.string("client_id")?
        && id != client_id
    {
        return Err(ApiError::invalid_field("client_id", "client_id cannot be changed").into());
    }
    let mut client = require(ctx, org, client_id).await?;
    let current = Settings::of(&client);
    let s = settings(&fields, if replace { None } else { Some(&current) })?;
    apply(&mut client, s);
    let secret = settle_secret(&mut client);
    client.updated_at = ctx.now;
    let client = store::clients::update_client(&ctx.primary()?, &client)
        .await?
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
    let client = store::clients::update_client(&ctx.primary()?, &client)
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
}
