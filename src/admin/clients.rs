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
use crate::edge::store::assign::{Assignments, SqlValue};
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
    "attributes_in_id_token",
    "role_mappings",
    "allowed_groups",
    "require_mfa",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
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
    pub attributes_in_id_token: bool,
    pub role_mappings: Vec<RoleMapping>,
    pub allowed_groups: Vec<String>,
    pub require_mfa: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
}

/// Reads the settings from a create or replace body: an absent member takes its default, and
/// `client_name` and `redirect_uris` are required. Pure.
pub fn settings(fields: &Fields) -> Result<Settings, ApiError> {
    let c = changes(fields)?;
    let client_name = c
        .client_name
        .ok_or_else(|| ApiError::invalid_field("client_name", "client_name is required"))?;
    let redirect_uris = c
        .redirect_uris
        .ok_or_else(|| ApiError::invalid_field("redirect_uris", "redirect_uris is required"))?;
    let groups_claim = c
        .groups_claim
        .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_string());
    let roles_claim = c
        .roles_claim
        .unwrap_or_else(|| DEFAULT_ROLES_CLAIM.to_string());
    different_claims(&groups_claim, &roles_claim, fields)?;
    Ok(Settings {
        client_name,
        // RFC 7591 §2: "If unspecified or omitted, the default is client_secret_basic".
        token_endpoint_auth_method: c
            .token_endpoint_auth_method
            .unwrap_or_else(|| "client_secret_basic".to_string()),
        // RFC 7591 §2: "If omitted, the default behavior is that the client will use only the
        // authorization_code Grant Type."
        grant_types: c
            .grant_types
            .unwrap_or_else(|| vec!["authorization_code".to_string()]),
        redirect_uris,
        post_logout_redirect_uris: c.post_logout_redirect_uris.unwrap_or_default(),
        scopes: c.scopes.unwrap_or_else(|| {
            validate::DEFAULT_SCOPES
                .iter()
                .map(|s| s.to_string())
                .collect()
        }),
        groups_claim,
        roles_claim,
        groups_in_id_token: c.groups_in_id_token.unwrap_or(false),
        attributes_in_id_token: c.attributes_in_id_token.unwrap_or(false),
        role_mappings: c.role_mappings.unwrap_or_default(),
        allowed_groups: c.allowed_groups.unwrap_or_default(),
        require_mfa: c.require_mfa.unwrap_or(false),
        // `""` (the way a PATCH clears it) and absent are the same: not told.
        backchannel_logout_uri: c.backchannel_logout_uri.filter(|u| !u.is_empty()),
        backchannel_logout_session_required: c.backchannel_logout_session_required.unwrap_or(false),
    })
}

/// The two claim names may not be the same, ignoring case; the member named is the one sent.
fn different_claims(
    groups_claim: &str,
    roles_claim: &str,
    fields: &Fields,
) -> Result<(), ApiError> {
    if groups_claim.eq_ignore_ascii_case(roles_claim) {
        return Err(claims_clash(fields));
    }
    Ok(())
}

fn claims_clash(fields: &Fields) -> ApiError {
    let field = if fields.has("roles_claim") {
        "roles_claim"
    } else {
        "groups_claim"
    };
    ApiError::invalid_field(
        field,
        "groups_claim and roles_claim must be different claim names",
    )
}

/// What a body sets, member by member, validated; `None`: not sent (`null` counts as not sent).
/// A PATCH writes exactly these, so a member it does not name keeps whatever is stored — also
/// what another request wrote a moment ago. Pure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClientChanges {
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub groups_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub groups_in_id_token: Option<bool>,
    pub attributes_in_id_token: Option<bool>,
    pub role_mappings: Option<Vec<RoleMapping>>,
    pub allowed_groups: Option<Vec<String>>,
    pub require_mfa: Option<bool>,
    /// `Some("")`: clear it.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
}

pub fn changes(fields: &Fields) -> Result<ClientChanges, ApiError> {
    let c = ClientChanges {
        client_name: fields
            .string("client_name")?
            .map(|n| validate::display_name("client_name", &n))
            .transpose()?,
        token_endpoint_auth_method: fields
            .string("token_endpoint_auth_method")?
            .map(|m| validate::auth_method("token_endpoint_auth_method", &m))
            .transpose()?,
        grant_types: fields
            .string_list("grant_types")?
            .map(|g| validate::grant_types("grant_types", &g))
            .transpose()?,
        redirect_uris: fields
            .string_list("redirect_uris")?
            .map(|u| validate::redirect_uris("redirect_uris", &u, false))
            .transpose()?,
        post_logout_redirect_uris: fields
            .string_list("post_logout_redirect_uris")?
            .map(|u| validate::redirect_uris("post_logout_redirect_uris", &u, true))
            .transpose()?,
        scopes: fields
            .string_list("scopes")?
            .map(|s| validate::subset("scopes", &s, validate::SCOPES))
            .transpose()?,
        groups_claim: fields
            .string("groups_claim")?
            .map(|n| validate::claim_name("groups_claim", &n))
            .transpose()?,
        roles_claim: fields
            .string("roles_claim")?
            .map(|n| validate::claim_name("roles_claim", &n))
            .transpose()?,
        groups_in_id_token: fields.bool("groups_in_id_token")?,
        attributes_in_id_token: fields.bool("attributes_in_id_token")?,
        role_mappings: fields
            .value("role_mappings")
            .map(|v| validate::role_mappings("role_mappings", v))
            .transpose()?,
        require_mfa: fields.bool("require_mfa")?,
        backchannel_logout_uri: fields
            .string("backchannel_logout_uri")?
            .map(|u| match u.as_str() {
                "" => Ok(u),
                // Back-Channel Logout 1.0 §2.2: an absolute URI without a fragment; Clavex
                // calls it from the Worker, so https (plain http only to a loopback host, for
                // local development) — the rule of redirect URIs.
                _ => validate::redirect_uri("backchannel_logout_uri", &u),
            })
            .transpose()?,
        backchannel_logout_session_required: fields.bool("backchannel_logout_session_required")?,
        allowed_groups: fields
            .string_list("allowed_groups")?
            .map(|g| validate::group_names("allowed_groups", &g))
            .transpose()?,
    };
    // With only one of the two sent, the stored other one is compared by the database itself
    // (migrations/0005f: a trigger refuses equal names), so a concurrent change of the other
    // cannot slip past this check.
    if let (Some(g), Some(r)) = (&c.groups_claim, &c.roles_claim) {
        different_claims(g, r, fields)?;
    }
    Ok(c)
}

impl From<Settings> for ClientChanges {
    /// A replace: every member.
    fn from(s: Settings) -> ClientChanges {
        ClientChanges {
            client_name: Some(s.client_name),
            token_endpoint_auth_method: Some(s.token_endpoint_auth_method),
            grant_types: Some(s.grant_types),
            redirect_uris: Some(s.redirect_uris),
            post_logout_redirect_uris: Some(s.post_logout_redirect_uris),
            scopes: Some(s.scopes),
            groups_claim: Some(s.groups_claim),
            roles_claim: Some(s.roles_claim),
            groups_in_id_token: Some(s.groups_in_id_token),
            attributes_in_id_token: Some(s.attributes_in_id_token),
            role_mappings: Some(s.role_mappings),
            allowed_groups: Some(s.allowed_groups),
            require_mfa: Some(s.require_mfa),
            backchannel_logout_uri: Some(s.backchannel_logout_uri.unwrap_or_default()),
            backchannel_logout_session_required: Some(s.backchannel_logout_session_required),
        }
    }
}

impl ClientChanges {
    /// The client columns to write. Switching to `none` drops the secret; switching to a secret
    /// method gives `new_secret_hash` to a client that has no secret yet — and only to one that
    /// has none when the write happens, so a concurrent rotation is never overwritten.
    pub fn assignments(&self, new_secret_hash: &str) -> Assignments {
        let mut a = Assignments::default();
        let text = |v: &String| SqlValue::Text(v.clone());
        if let Some(v) = &self.client_name {
            a.set("client_name", text(v));
        }
        if let Some(v) = &self.token_endpoint_auth_method {
            a.set("token_endpoint_auth_method", text(v));
            a.set(
                "secret_hash",
                if v == "none" {
                    SqlValue::Null
                } else {
                    SqlValue::IfNull(new_secret_hash.to_string())
                },
            );
        }
        for (column, value) in [
            ("grant_types", &self.grant_types),
            ("redirect_uris", &self.redirect_uris),
            ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
            ("scopes", &self.scopes),
        ] {
            if let Some(v) = value {
                a.set(column, SqlValue::json_list(v));
            }
        }
        if let Some(v) = &self.groups_claim {
            a.set("groups_claim", text(v));
        }
        if let Some(v) = &self.roles_claim {
            a.set("roles_claim", text(v));
        }
        if let Some(v) = self.groups_in_id_token {
            a.set("groups_in_id_token", SqlValue::Bool(v));
        }
        if let Some(v) = self.attributes_in_id_token {
            a.set("attributes_in_id_token", SqlValue::Bool(v));
        }
        if let Some(v) = self.require_mfa {
            a.set("require_mfa", SqlValue::Bool(v));
        }
        if let Some(v) = &self.backchannel_logout_uri {
            a.set(
                "backchannel_logout_uri",
                if v.is_empty() {
                    SqlValue::Null
                } else {
                    text(v)
                },
            );
        }
        if let Some(v) = self.backchannel_logout_session_required {
            a.set("backchannel_logout_session_required", SqlValue::Bool(v));
        }
        a
    }
}

/// The groups named in a client's role map and restriction as the organization spells them
/// (names are unique ignoring case), or a 400 naming the first that does not exist. Pure.
pub fn canonical_groups(
    role_mappings: &mut [RoleMapping],
    allowed_groups: &mut [String],
    existing: &[String],
) -> Result<(), ApiError> {
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
    for m in role_mappings.iter_mut() {
        m.group = find("role_mappings", &m.group)?;
    }
    for g in allowed_groups.iter_mut() {
        *g = find("allowed_groups", g)?;
    }
    Ok(())
}

/// `canonical_groups` against the organization's groups, read at the primary (only when the
/// body names any).
async fn check_groups(
    db: &Db,
    org: &str,
    role_mappings: &mut [RoleMapping],
    allowed_groups: &mut [String],
) -> Result<(), Failure> {
    if role_mappings.is_empty() && allowed_groups.is_empty() {
        return Ok(());
    }
    let existing: Vec<String> = store::groups::list_groups(db, org)
        .await?
        .into_iter()
        .map(|g| g.name)
        .collect();
    Ok(canonical_groups(role_mappings, allowed_groups, &existing)?)
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
    pub attributes_in_id_token: bool,
    pub role_mappings: Vec<RoleMapping>,
    pub allowed_groups: Vec<String>,
    /// A second factor is required to sign in to this client.
    pub require_mfa: bool,
    /// Back-Channel Logout 1.0: where logout tokens are sent (null: not told).
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
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
        attributes_in_id_token: c.attributes_in_id_token,
        role_mappings: c.role_mappings,
        allowed_groups: c.allowed_groups,
        require_mfa: c.require_mfa,
        backchannel_logout_uri: c.backchannel_logout_uri,
        backchannel_logout_session_required: c.backchannel_logout_session_required,
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
    c.attributes_in_id_token = s.attributes_in_id_token;
    c.role_mappings = s.role_mappings;
    c.allowed_groups = s.allowed_groups;
    c.require_mfa = s.require_mfa;
    c.backchannel_logout_uri = s.backchannel_logout_uri;
    c.backchannel_logout_session_required = s.backchannel_logout_session_required;
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
    let mut s = settings(&fields)?;
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    check_groups(&db, org, &mut s.role_mappings, &mut s.allowed_groups).await?;
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
        attributes_in_id_token: false,
        role_mappings: Vec::new(),
        allowed_groups: Vec::new(),
        require_mfa: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    };
    apply(&mut client, s);
    let secret = settle_secret(&mut client);
    let stored = match store::clients::insert_client(&db, &client).await {
        Ok(stored) => stored.ok_or_else(|| ApiError::not_found("client"))?,
        Err(e) if store::d1::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "client_id",
                format!("client {} already exists in {org}", client.client_id),
            )
            .into());
        }
        Err(e) => return Err(group_race(e, &fields)),
    };
    let location = format!("/api/v1/organizations/{org}/clients/{}", stored.client_id);
    created(&location, &view(stored, secret))
}

/// A write the database refused: a group sub-select that found nothing (the group was deleted
/// between the check and the batch, which then wrote nothing at all), the claim-name trigger
/// (the other name, stored meanwhile, is the same), or a client that is gone.
fn group_race(e: worker::Error, fields: &Fields) -> Failure {
    if store::d1::is_not_null_violation(&e) {
        return ApiError::new(
            409,
            "conflict",
            "a group named in the request was deleted meanwhile; nothing was changed",
        )
        .into();
    }
    if e.to_string().contains(CLAIM_NAMES_TRIGGER) {
        return claims_clash(fields).into();
    }
    if store::d1::is_foreign_key_violation(&e) {
        return ApiError::not_found("client").into();
    }
    e.into()
}

/// The message of the trigger that keeps the two claim names apart (migrations/0005f).
const CLAIM_NAMES_TRIGGER: &str = "clavex: groups_claim and roles_claim must differ";

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

/// The body's `client_id`, if any, must be the path's: the id cannot change.
fn same_id(fields: &Fields, client_id: &str) -> Result<(), ApiError> {
    match fields.string("client_id")? {
        Some(id) if id != client_id => Err(ApiError::invalid_field(
            "client_id",
            "client_id cannot be changed",
        )),
        _ => Ok(()),
    }
}

/// Members a replace may leave out only while they are unset: leaving one out must never
/// silently open a restricted client to everyone or drop its second factor.
const KEPT_UNLESS_SENT: [&str; 2] = ["allowed_groups", "require_mfa"];

/// PUT replaces every setting; absent members take their defaults (RFC 7592 §2.2) — except
/// `allowed_groups` and `require_mfa`: a PUT that leaves out one the client has set is refused
/// (400 naming it), and one left out while unset is not written at all, so a restriction another
/// request adds meanwhile stays.
pub async fn replace(req: &mut Request, ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    same_id(&fields, client_id)?;
    let mut changes = ClientChanges::from(settings(&fields)?);
    let current = require(ctx, org, client_id).await?;
    for member in KEPT_UNLESS_SENT {
        if fields.value(member).is_some() {
            continue;
        }
        let (set, now) = match member {
            "allowed_groups" => {
                changes.allowed_groups = None;
                (
                    !current.allowed_groups.is_empty(),
                    format!(
                        "the client admits only members of {}",
                        current.allowed_groups.join(", ")
                    ),
                )
            }
            _ => {
                changes.require_mfa = None;
                (
                    current.require_mfa,
                    "the client requires a second factor".to_string(),
                )
            }
        };
        if set {
            return Err(ApiError::invalid_field(
                member,
                format!(
                    "{member} is missing: {now}, and a PUT replaces every setting; send {member} \
                     (the value to keep, or {} to remove it), or use PATCH to change only some members",
                    if member == "allowed_groups" { "[]" } else { "false" }
                ),
            )
            .into());
        }
    }
    write(ctx, org, client_id, changes, &fields).await
}

/// PATCH changes only the members present: one UPDATE of exactly those columns (and the group
/// settings sent), so concurrent PATCHes of different members never undo each other.
pub async fn update(req: &mut Request, ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    same_id(&fields, client_id)?;
    let changes = changes(&fields)?;
    write(ctx, org, client_id, changes, &fields).await
}

async fn write(
    ctx: &Ctx,
    org: &str,
    client_id: &str,
    mut changes: ClientChanges,
    fields: &Fields,
) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    check_groups(
        &db,
        org,
        changes.role_mappings.as_deref_mut().unwrap_or_default(),
        changes.allowed_groups.as_deref_mut().unwrap_or_default(),
    )
    .await?;
    // Used only if the write switches a client without a secret to a secret method.
    let secret = crypto::random_token("cs_");
    let secret_hash = crypto::token_hash(&secret);
    let groups = GroupWrites {
        role_mappings: changes.role_mappings.as_deref(),
        allowed_groups: changes.allowed_groups.as_deref(),
    };
    let client = store::clients::update_client(
        &db,
        org,
        client_id,
        &changes.assignments(&secret_hash),
        &groups,
        ctx.now,
    )
    .await
    .map_err(|e| group_race(e, fields))?
    .ok_or_else(|| ApiError::not_found("client"))?;
    let shown = (client.secret_hash.as_deref() == Some(secret_hash.as_str())).then_some(secret);
    Ok(http::json(200, &view(client, shown))?)
}

pub async fn delete(ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    if !store::clients::delete_client(&db, org, client_id).await? {
        return Err(ApiError::not_found("client").into());
    }
    no_content()
}

/// POST …/secret: a new secret replaces the old one at once (the old one stops working). One
/// statement that writes the secret and nothing else.
pub async fn rotate_secret(ctx: &Ctx, org: &str, client_id: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let secret = crypto::random_token("cs_");
    let secret_hash = crypto::token_hash(&secret);
    let client = store::clients::set_secret(&db, org, client_id, &secret_hash, ctx.now)
        .await?
        .ok_or_else(|| ApiError::not_found("client"))?;
    if client.secret_hash.as_deref() != Some(secret_hash.as_str()) {
        return Err(ApiError::invalid_request(
            "a public client (token_endpoint_auth_method none) has no secret",
        )
        .into());
    }
    Ok(http::json(200, &view(client, Some(secret)))?)
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
        let s = settings(&fields(json!({
            "client_id": "rocketchat", "client_name": "Rocket.Chat",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["https://chat.acme.eu/_oauth/clavex"],
            "scopes": ["openid", "profile", "email"],
            "token_endpoint_auth_method": "client_secret_post"
        })))
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
        let s = settings(&fields(
            json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"]}),
        ))
        .unwrap();
        assert_eq!(s.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(s.grant_types, strings(&["authorization_code"]));
        assert_eq!(s.scopes, strings(&["openid", "profile", "email"]));
        assert!(s.post_logout_redirect_uris.is_empty());
    }

    #[test]
    fn a_patch_writes_only_the_members_sent_and_put_all() {
        let patch = changes(&fields(json!({"require_mfa": true}))).unwrap();
        assert_eq!(patch.assignments("h").columns(), ["require_mfa"]);
        let rename = changes(&fields(json!({"client_name": "New"}))).unwrap();
        assert_eq!(rename.assignments("h").columns(), ["client_name"]);
        assert_eq!(rename.role_mappings, None);
        assert_eq!(rename.allowed_groups, None);
        let err = settings(&fields(json!({"client_name": "New"}))).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("redirect_uris"));
        let put = ClientChanges::from(
            settings(&fields(
                json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"]}),
            ))
            .unwrap(),
        );
        // Every column (the secret with the method); the group settings are written apart.
        assert_eq!(put.assignments("h").columns().len(), 14);
        assert_eq!(put.allowed_groups, Some(vec![]));
    }

    #[test]
    fn switching_the_auth_method_settles_the_secret_in_the_same_write() {
        let public = changes(&fields(json!({"token_endpoint_auth_method": "none"}))).unwrap();
        assert_eq!(
            public.assignments("h").get("secret_hash"),
            Some(&SqlValue::Null)
        );
        let secret = changes(&fields(
            json!({"token_endpoint_auth_method": "client_secret_post"}),
        ))
        .unwrap();
        // Only a client without a secret gets this one: an existing secret is kept.
        assert_eq!(
            secret.assignments("h").get("secret_hash"),
            Some(&SqlValue::IfNull("h".into()))
        );
        let other = changes(&fields(json!({"scopes": ["openid"]}))).unwrap();
        assert_eq!(other.assignments("h").get("secret_hash"), None);
    }

    #[test]
    fn equal_claim_names_are_refused_when_both_are_sent() {
        let err = changes(&fields(json!({"groups_claim": "x", "roles_claim": "X"}))).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("roles_claim"));
        // One alone is compared with the stored other by the database (migrations/0005f).
        assert!(changes(&fields(json!({"roles_claim": "groups"}))).is_ok());
        let err = settings(&fields(
            json!({"client_name": "A", "redirect_uris": ["https://a.example/cb"],
            "roles_claim": "groups"}),
        ))
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("roles_claim"));
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
            let err = settings(&fields(body)).expect_err(&format!("{member}={value}"));
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
            attributes_in_id_token: false,
            role_mappings: vec![],
            allowed_groups: vec![],
            require_mfa: false,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        }
    }

    #[test]
    fn backchannel_logout_uri_is_https_or_loopback_and_empty_clears_it() {
        let base = json!({"client_name": "n", "redirect_uris": ["https://app.example/cb"]});
        let with = |uri: serde_json::Value| {
            let mut body = base.clone();
            body["backchannel_logout_uri"] = uri;
            settings(&fields(body))
        };
        let s = with(json!("https://app.example/bcl")).unwrap();
        assert_eq!(
            s.backchannel_logout_uri.as_deref(),
            Some("https://app.example/bcl")
        );
        assert!(!s.backchannel_logout_session_required);
        assert_eq!(
            with(json!("http://127.0.0.1:4000/bcl"))
                .unwrap()
                .backchannel_logout_uri
                .as_deref(),
            Some("http://127.0.0.1:4000/bcl")
        );
        assert_eq!(with(json!("")).unwrap().backchannel_logout_uri, None);
        for bad in [
            "http://app.example/bcl",
            "https://app.example/bcl#x",
            "bcl",
            "ftp://a.example/",
        ] {
            let err = with(json!(bad)).expect_err(bad);
            assert_eq!(
                err.field.as_deref(),
                Some("backchannel_logout_uri"),
                "{bad}"
            );
        }
        let clear = changes(&fields(json!({"backchannel_logout_uri": ""}))).unwrap();
        assert_eq!(clear.assignments("h").columns(), ["backchannel_logout_uri"]);
        let required = changes(&fields(
            json!({"backchannel_logout_session_required": true}),
        ))
        .unwrap();
        assert_eq!(required.backchannel_logout_session_required, Some(true));
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
        let mut s = settings(&fields(
            json!({"client_name": "App", "redirect_uris": ["https://app.example/cb"],
            "role_mappings": [{"group": "CHAT-admins", "role": "admin"}],
            "allowed_groups": ["Staff", "staff"], "roles_claim": "rc_roles"}),
        ))
        .unwrap();
        assert_eq!(
            (s.groups_claim.as_str(), s.roles_claim.as_str()),
            ("groups", "rc_roles")
        );
        assert_eq!(s.allowed_groups, strings(&["Staff"]));
        canonical_groups(
            &mut s.role_mappings,
            &mut s.allowed_groups,
            &strings(&["chat-admins", "staff"]),
        )
        .unwrap();
        assert_eq!(s.role_mappings[0].group, "chat-admins");
        assert_eq!(s.allowed_groups, strings(&["staff"]));
        let mut t = s.clone();
        let err = canonical_groups(
            &mut t.role_mappings,
            &mut t.allowed_groups,
            &strings(&["staff"]),
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("role_mappings"));
        let patched = changes(&fields(json!({"groups_in_id_token": true}))).unwrap();
        assert_eq!(patched.groups_in_id_token, Some(true));
        assert_eq!(
            patched.role_mappings, None,
            "a PATCH without them keeps them"
        );
        let cleared = changes(&fields(json!({"allowed_groups": []}))).unwrap();
        assert_eq!(cleared.allowed_groups, Some(vec![]));
    }
}
