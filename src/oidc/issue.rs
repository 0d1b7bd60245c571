//! The end of an authorization: a code (or an error) sent back to the client's redirect URI,
//! always with `state` and `iss` (RFC 6749 §4.1.2, RFC 9207), in the response mode the request
//! asked for: a redirect with the parameters in the query, or for `form_post` a page that POSTs
//! them (OAuth 2.0 Form Post Response Mode §2).

use worker::{Response, Result};

use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::orgs::Organization;
use crate::oidc::pages;
use crate::protocol::code::{CodeGrant, redirect_uri_hash};
use crate::protocol::error::OAuthError;
use crate::protocol::gate::Issuance;
use crate::protocol::redirect::with_params;
use crate::protocol::response_mode::ResponseMode;
use crate::ui::form_post;

/// Mint a code and send it to the client. Only the gate (protocol/gate.rs) can make the
/// `Issuance` this takes, so no path reaches a code without every check the gate makes. The code
/// is the sealed record itself (protocol/code.rs): nothing is stored, so the client's server can
/// redeem it at whichever location it reaches. `sid` is the SSO session's public id (for the ID
/// token and back-channel logout). `status` is 302 after a GET, 303 after a form POST (a
/// form_post page is always 200).
pub fn code(
    ctx: &Ctx,
    org: &Organization,
    issuance: &Issuance,
    sid: Option<&str>,
    session_started_ms: i64,
    status: u16,
) -> Result<Response> {
    let slug = org.slug.as_str();
    let req = issuance.request();
    let grant = CodeGrant {
        factors: issuance.factors(),
        acr: issuance.acr(),
        client_id: req.client_id.clone(),
        redirect_uri_hash: redirect_uri_hash(&req.redirect_uri),
        scope: req.scope.clone(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        user_id: issuance.user_id().to_string(),
        auth_time: issuance.auth_time(),
        issued_at: ctx.now,
        claims: req.claims.clone(),
        sid: sid.map(str::to_string),
        session_started_ms: Some(session_started_ms),
    };
    let code = grant.seal(&ctx.config.key_encryption_secret, slug);
    crate::edge::audit::note(
        ctx,
        crate::protocol::audit::Kind::CodeIssued,
        slug,
        Some(issuance.user_id()),
        Some(&req.client_id),
        crate::edge::audit::detail([("scope", serde_json::json!(req.scope))]),
    );
    let issuer = ctx.config.issuer(slug);
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &req.state {
        params.push(("state", state));
    }
    params.push(("iss", &issuer));
    deliver(org, &req.redirect_uri, req.response_mode, &params, status)
}

/// Send an error to the client's (already validated) redirect URI, in `mode`.
pub fn error(
    ctx: &Ctx,
    org: &Organization,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
    mode: ResponseMode,
    status: u16,
) -> Result<Response> {
    let issuer = ctx.config.issuer(&org.slug);
    let mut params = vec![
        ("error", err.code.as_str()),
        ("error_description", err.description.as_str()),
    ];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", &issuer));
    deliver(org, redirect_uri, mode, &params, status)
}

fn deliver(
    org: &Organization,
    redirect_uri: &str,
    mode: ResponseMode,
    params: &[(&str, &str)],
    status: u16,
) -> Result<Response> {
    match mode {
        ResponseMode::Query => http::redirect(&with_params(redirect_uri, params), status),
        // The page carries a code: http::html_with_csp sends it with `Cache-Control: no-store`.
        ResponseMode::FormPost => {
            let (body, csp) = form_post::page(&pages::brand(org), redirect_uri, params);
            http::html_with_csp(200, body, &csp)
        }
    }
}
