//! The end of an authorization: a code (or an error) sent back to the client's redirect URI,
//! always with `state` and `iss` (RFC 6749 §4.1.2, RFC 9207).

use worker::{Response, Result};

use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::clients::{Client, get_client};
use crate::edge::store::users::{User, get_user};
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::code::{CodeGrant, redirect_uri_hash};
use crate::protocol::error::{ErrorCode, OAuthError};
use crate::protocol::groups::may_sign_in;
use crate::protocol::redirect::with_params;

/// Mint a code bound to the request and the user and redirect to the client. The code is the
/// sealed record itself (protocol/code.rs): nothing is stored, so the client's server can redeem
/// it at whichever location it reaches. `status` is 302 after a GET, 303 after a form POST.
pub fn code(
    ctx: &Ctx,
    org: &str,
    req: &AuthorizeRequest,
    user_id: &str,
    auth_time: i64,
    factors: u8,
    status: u16,
) -> Result<Response> {
    let grant = CodeGrant {
        factors,
        client_id: req.client_id.clone(),
        redirect_uri_hash: redirect_uri_hash(&req.redirect_uri),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        user_id: user_id.to_string(),
        auth_time,
        issued_at: ctx.now,
        claims: req.claims.clone(),
    };
    let code = grant.seal(&ctx.config.key_encryption_secret, org);
    crate::edge::audit::note(
        ctx,
        crate::protocol::audit::Kind::CodeIssued,
        org,
        Some(user_id),
        Some(&req.client_id),
        crate::edge::audit::detail([("scope", serde_json::json!(req.scope))]),
    );
    let issuer = ctx.config.issuer(org);
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &req.state {
        params.push(("state", state));
    }
    params.push(("iss", &issuer));
    http::redirect(&with_params(&req.redirect_uri, &params), status)
}

/// Whether `user` may sign in to `client` (its `allowed_groups`), else the error to send back:
/// `access_denied` (RFC 6749 §4.1.2.1: "The resource owner or authorization server denied the
/// request") — Rocket.Chat cannot refuse users itself, so the identity provider must. A refusal
/// is an audit event (`signin.denied`).
///
/// `user` and `client` usually come from the nearest replica, which may lag a membership added
/// or a restriction lifted moments ago; a refusal is therefore asked of the primary before it is
/// given (two reads, on the refusal path only), as every other refusal that rests on a replica's
/// read is. An admission needs no second look: the code it leads to is judged again at the
/// primary when it is redeemed (store/grants.rs `claim_code_and_issue`).
pub async fn admits(
    ctx: &Ctx,
    org: &str,
    client: &Client,
    user: &User,
) -> Result<std::result::Result<(), OAuthError>> {
    if may_sign_in(&client.allowed_groups, &user.groups) {
        return Ok(Ok(()));
    }
    let primary = ctx.primary()?;
    let fresh_client = get_client(&primary, org, &client.client_id).await?;
    let fresh_user = get_user(&primary, org, &user.id).await?;
    if let (Some(c), Some(u)) = (&fresh_client, &fresh_user)
        && may_sign_in(&c.allowed_groups, &u.groups)
    {
        return Ok(Ok(()));
    }
    crate::edge::audit::note(
        ctx,
        crate::protocol::audit::Kind::SignInDenied,
        org,
        Some(&user.id),
        Some(&client.client_id),
        Default::default(),
    );
    Ok(Err(OAuthError::new(
        ErrorCode::AccessDenied,
        "the user is not in a group allowed to use this application",
    )))
}

/// Redirect an error to the client's (already validated) redirect URI.
pub fn error(
    ctx: &Ctx,
    org: &str,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
    status: u16,
) -> Result<Response> {
    let issuer = ctx.config.issuer(org);
    let mut params = vec![
        ("error", err.code.as_str()),
        ("error_description", err.description.as_str()),
    ];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", &issuer));
    http::redirect(&with_params(redirect_uri, &params), status)
}
