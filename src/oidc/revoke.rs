//! POST /{org}/revoke — token revocation (RFC 7009). Revoking a refresh token revokes its whole
//! grant, access tokens included (§2.1: the server "SHOULD also invalidate all access tokens
//! based on the same authorization grant"); revoking an access token ends just that token.

use worker::{Request, Response, Result};

use crate::crypto::token_hash;
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::grants::{self, TokenKind};
use crate::oidc::request::{ClientRequest, client_request, oauth_error};
use crate::protocol::audit::Kind;
use crate::protocol::error::OAuthError;
use serde_json::json;

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
    let token = match form.one("token") {
        Ok(Some(t)) => t,
        _ => return oauth_error(&OAuthError::invalid_request("token is missing"), &issuer),
    };
    let hash = &token_hash(token);
    // The owner from the nearest replica, or from the primary when the replica has no such
    // token (it may be newer than the replica); then the one write, at the primary. The hint
    // only orders look-ups (§2.1): both kinds are looked up together.
    let found = ctx
        .found(|db| async move { grants::owner(&db, hash).await })
        .await?;
    if let Some((kind, grant_id, org, client_id)) = found
        && org == slug
        && client_id == client.client_id
    {
        let db = ctx.primary()?;
        let what = match kind {
            TokenKind::Access => {
                grants::delete_access(&db, hash).await?;
                "access_token"
            }
            TokenKind::Refresh => {
                grants::revoke_grant(&db, &grant_id, ctx.now).await?;
                "refresh_token and its grant"
            }
        };
        let note = detail([("revoked", json!(what)), ("grant_id", json!(grant_id))]);
        audit::note(
            ctx,
            Kind::TokenRevoked,
            slug,
            None,
            Some(&client.client_id),
            note,
        );
    }
    // §2.2: 200 whether or not the token existed (an invalid token is not an error), and a
    // token of another client is left alone without saying so.
    http::no_store(http::json(200, &serde_json::json!({}))?)
}
