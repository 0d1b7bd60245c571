//! GET/POST /{org}/userinfo (OIDC Core §5.3) with a bearer token (RFC 6750 §2): in the
//! Authorization header, an `access_token` form body, or an `access_token` query parameter —
//! exactly one of them.

use worker::{Method, Request, Response, Result};

use crate::crypto::token_hash;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::d1::first_row;
use crate::edge::store::grants::{AccessGrant, access_query, find_access};
use crate::edge::store::groups::RoleMapRow;
use crate::edge::store::users::User;
use crate::oidc::prime::{Needs, prime};
use crate::oidc::request::{header, organization, query, unknown_org_json};
use crate::protocol::claims::{UserProfile, userinfo};
use crate::protocol::form::Form;
use crate::protocol::groups::{ClaimSettings, GroupClaims, RoleMapping, roles_for};

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let method = req.method();
    if method != Method::Get && method != Method::Post {
        return http::method_not_allowed("GET, POST");
    }
    let realm = ctx.config.issuer(slug);
    let from_header =
        header(&req, "Authorization").and_then(|h| crate::protocol::bearer::from_authorization(&h));
    let params = query(&req)?;
    // RFC 6750 §2.3 / RFC 6749 §3.1: a parameter given twice is a malformed request.
    if let Some(name) = params.any_repeated() {
        let description = format!("the parameter {name} is repeated");
        return challenge(&realm, Some(("invalid_request", &description)), 400);
    }
    let from_query = params.first("access_token").map(str::to_string);
    let content_type = header(&req, "Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let from_body = if method == Method::Post
        && content_type.starts_with("application/x-www-form-urlencoded")
    {
        let body = Form::parse(&req.text().await.unwrap_or_default());
        if let Some(name) = body.any_repeated() {
            let description = format!("the parameter {name} is repeated");
            return challenge(&realm, Some(("invalid_request", &description)), 400);
        }
        body.first("access_token").map(str::to_string)
    } else {
        None
    };
    let presented: Vec<String> = [from_header, from_query, from_body]
        .into_iter()
        .flatten()
        .collect();
    let token = match presented.as_slice() {
        [] => return challenge(&realm, None, 401),
        [one] => one,
        // RFC 6750 §2: "Clients MUST NOT use more than one method to transmit the token".
        _ => {
            return challenge(
                &realm,
                Some(("invalid_request", "send the access token one way only")),
                400,
            );
        }
    };
    // At the nearest replica; a token it does not have (yet) is looked up at the primary, so a
    // token issued moments ago elsewhere works at once. A revocation reaches this read within
    // the replica's lag.
    let hash = &token_hash(token);
    // The token is read with the organization when this isolate lacks it, in one replica round
    // trip (oidc/prime.rs).
    let needs = Needs {
        ahead: Some(access_query(&ctx.replica()?, hash, ctx.now)?),
        ..Needs::default()
    };
    let at_replica = match prime(ctx, slug, needs).await? {
        Some(read) => first_row::<AccessGrant>(&read)?,
        None => None,
    };
    if organization(ctx, slug).await?.is_none() {
        return unknown_org_json();
    }
    let found = match at_replica {
        Some(access) => Some(access),
        None => find_access(&ctx.primary()?, hash, ctx.now).await?,
    };
    let Some(access) = found.filter(|a| a.user.org == slug) else {
        return challenge(
            &realm,
            Some((
                "invalid_token",
                "the access token is invalid, expired or revoked",
            )),
            401,
        );
    };
    let mappings = mappings(&access.role_map);
    let groups = GroupClaims {
        settings: ClaimSettings {
            groups_claim: &access.groups_claim,
            roles_claim: &access.roles_claim,
            in_id_token: false,
            attributes_in_id_token: false,
        },
        groups: &access.user.groups,
        roles: roles_for(&mappings, &access.user.groups),
    };
    let claims = userinfo(
        &profile(&access.user),
        &access.scope,
        access.claims.as_deref(),
        &groups,
    );
    http::no_store(http::json(200, &claims)?)
}

/// A role map as read with the token, in the admin's order.
fn mappings(rows: &[RoleMapRow]) -> Vec<RoleMapping> {
    let mut rows: Vec<&RoleMapRow> = rows.iter().collect();
    rows.sort_by_key(|m| m.position);
    rows.into_iter()
        .map(|m| RoleMapping {
            group: m.group.clone(),
            role: m.role.clone(),
        })
        .collect()
}

/// The user as the claim rules see it.
pub fn profile(user: &User) -> UserProfile<'_> {
    UserProfile {
        sub: &user.id,
        username: &user.username,
        email: &user.email,
        name: user.name.as_deref(),
        picture: user.picture.as_deref(),
        email_verified: user.email_verified,
        updated_at: user.updated_at,
        claims: &user.claims,
        attributes: &user.attributes,
    }
}

/// RFC 6750 §3: the WWW-Authenticate challenge, with the error when the request had a token.
fn challenge(realm: &str, error: Option<(&str, &str)>, status: u16) -> Result<Response> {
    let (value, body) = match error {
        None => (
            format!("Bearer realm=\"{realm}\""),
            serde_json::json!({ "error": "invalid_token", "error_description": "an access token is required" }),
        ),
        Some((code, description)) => (
            format!(
                "Bearer realm=\"{realm}\", error=\"{code}\", error_description=\"{description}\""
            ),
            serde_json::json!({ "error": code, "error_description": description }),
        ),
    };
    let resp = http::no_store(http::json(status, &body)?)?;
    resp.headers().set("WWW-Authenticate", &value)?;
    Ok(resp)
}
