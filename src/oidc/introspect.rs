//! POST /{org}/introspect — token introspection (RFC 7662). Only confidential clients may
//! introspect, and only tokens issued to them: anything else is `{"active": false}` (§2.2).

use serde_json::json;
use worker::{Request, Response, Result};

use crate::crypto::token_hash;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::grants::find_live;
use crate::oidc::request::{ClientRequest, client_request, oauth_error};
use crate::protocol::error::OAuthError;

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let ClientRequest {
        form,
        client,
        issuer,
        ..
    } = match client_request(&mut req, ctx, slug, false, |_, _| Ok(None)).await? {
        Ok(r) => r,
        Err(resp) => return Ok(resp),
    };
    if client.is_public() {
        return oauth_error(
            &OAuthError::invalid_client("public clients may not introspect tokens"),
            &issuer,
        );
    }
    let Ok(Some(token)) = form.one("token") else {
        return oauth_error(&OAuthError::invalid_request("token is missing"), &issuer);
    };
    let hash = token_hash(token);
    // At the primary, in one round trip: a resource server asks in order to learn whether a
    // token still holds, so a revocation must show here at once, wherever it was made.
    let (access, refresh) = find_live(&ctx.primary()?, &hash, ctx.now).await?;
    let mine = |org: &str, client_id: &str| org == slug && client_id == client.client_id;
    let body = if let Some(a) = access.filter(|a| mine(&a.user.org, &a.client_id)) {
        json!({
            "active": true, "token_type": "Bearer", "scope": a.scope, "client_id": a.client_id,
            "username": a.user.username, "sub": a.user.id, "aud": a.client_id, "iss": issuer,
            "iat": a.issued_at, "exp": a.expires_at,
        })
    } else if let Some(r) = refresh.filter(|r| mine(&r.org, &r.client_id)) {
        json!({
            "active": true, "token_type": "refresh_token", "scope": r.scope, "client_id": r.client_id,
            "username": r.username, "sub": r.user_id, "aud": r.client_id, "iss": issuer,
            "iat": r.created_at, "exp": r.expires_at,
        })
    } else {
        json!({ "active": false })
    };
    http::no_store(http::json(200, &body)?)
}
