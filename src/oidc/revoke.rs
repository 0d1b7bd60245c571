//! POST /{org}/revoke — token revocation (RFC 7009). Revoking a refresh token revokes its whole
//! grant, access tokens included (§2.1: the server "SHOULD also invalidate all access tokens
//! based on the same authorization grant"); revoking an access token ends just that token.

use worker::{Method, Request, Response, Result};

use crate::crypto::token_hash;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::grants;
use crate::oidc::request::{form_body, oauth_error, organization, unknown_org_json};
use crate::oidc::token::authenticate;
use crate::protocol::error::OAuthError;

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    if req.method() != Method::Post {
        return http::method_not_allowed("POST");
    }
    if organization(ctx, slug).await?.is_none() {
        return unknown_org_json();
    }
    let issuer = ctx.config.issuer(slug);
    let form = match form_body(&mut req).await {
        Ok(f) => f,
        Err(e) => return oauth_error(&e, &issuer),
    };
    let client = match authenticate(ctx, slug, &req, &form).await? {
        Ok(c) => c,
        Err(e) => return oauth_error(&e, &issuer),
    };
    let token = match form.one("token") {
        Ok(Some(t)) => t,
        _ => return oauth_error(&OAuthError::invalid_request("token is missing"), &issuer),
    };
    let hash = token_hash(token);
    let db = ctx.db()?;
    // The hint only orders the look-ups (§2.1); both kinds are tried.
    let refresh_first = form.first("token_type_hint") == Some("refresh_token");
    let owns = |owner: &(String, String, String)| owner.1 == slug && owner.2 == client.client_id;
    for kind in if refresh_first {
        ["refresh", "access"]
    } else {
        ["access", "refresh"]
    } {
        if kind == "access" {
            if grants::access_owner(&db, &hash)
                .await?
                .filter(owns)
                .is_some()
            {
                grants::delete_access(&db, &hash).await?;
                break;
            }
        } else if let Some((grant_id, _, _)) = grants::refresh_owner(&db, &hash).await?.filter(owns)
        {
            grants::revoke_grant(&db, &grant_id, ctx.now).await?;
            break;
        }
    }
    // §2.2: 200 whether or not the token existed (an invalid token is not an error), and a
    // token of another client is left alone without saying so.
    http::no_store(http::json(200, &serde_json::json!({}))?)
}
