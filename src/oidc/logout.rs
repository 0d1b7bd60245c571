//! GET/POST /{org}/logout — RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0).
//! Ends the browser's SSO session, then redirects only to a `post_logout_redirect_uri` the
//! client registered, compared exactly; anything else gets a page, never a redirect. Relying
//! parties with a `backchannel_logout_uri` are told (oidc/backchannel.rs).

use worker::{Request, Response, Result};

use crate::edge::context::Ctx;
use crate::edge::http;
use crate::oidc::request::{Accept, page_request};
use crate::oidc::{backchannel, forms, pages, signer, sso};
use crate::protocol::logout_token::Ended;
use crate::protocol::redirect::with_params;

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (org, params) = match page_request(
        &mut req,
        ctx,
        slug,
        Accept::GetOrPostSingle,
        "Sign-out request not valid",
    )
    .await?
    {
        Ok(parts) => parts,
        Err(resp) => return Ok(resp),
    };
    let issuer = ctx.config.issuer(slug);
    // The client: named by client_id, or the audience of a valid id_token_hint.
    let hint_aud = match params.first("id_token_hint") {
        None => None,
        Some(hint) => match signer::verify_own(ctx, slug, &issuer, hint).await? {
            Some(claims) => claims["aud"].as_str().map(str::to_string),
            None => {
                return pages::error(
                    &org,
                    400,
                    "Sign-out request not valid",
                    "The id_token_hint was not issued here.",
                    "invalid_request",
                    None,
                );
            }
        },
    };
    let client_id = params
        .first("client_id")
        .map(str::to_string)
        .or(hint_aud.clone());
    if let (Some(named), Some(aud)) = (params.first("client_id"), hint_aud.as_deref())
        && named != aud
    {
        return pages::error(
            &org,
            400,
            "Sign-out request not valid",
            "client_id does not match the id_token_hint.",
            "invalid_request",
            None,
        );
    }
    let target = match params.first("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let client = match &client_id {
                Some(id) => {
                    let id = id.as_str();
                    crate::oidc::client_cache::client(ctx, slug, id, |c| {
                        c.post_logout_redirect_uris.iter().any(|r| r == uri)
                    })
                    .await?
                }
                None => None,
            };
            match client {
                Some(c) if c.post_logout_redirect_uris.iter().any(|r| r == uri) => {
                    Some(uri.to_string())
                }
                _ => {
                    return pages::error(
                        &org,
                        400,
                        "This sign-out redirect is not registered",
                        "The application asked to return to an address it has not registered as a post_logout_redirect_uri.",
                        "invalid_request",
                        Some(uri),
                    );
                }
            }
        }
    };
    let (clear_cookies, ended) = sso::end(ctx, slug, &req).await?;
    if let Some(session) = &ended {
        crate::edge::audit::note(
            ctx,
            crate::protocol::audit::Kind::Logout,
            slug,
            Some(&session.user_id),
            client_id.as_deref(),
            Default::default(),
        );
        // Every relying party holding a grant of this user is told which session ended
        // (Back-Channel Logout 1.0), the one that asked for this logout included.
        backchannel::announce(
            ctx,
            slug,
            &session.user_id,
            Ended::Session(session.sid.as_deref()),
        )
        .await;
    }
    let resp = match target {
        Some(uri) => {
            let params: Vec<(&str, &str)> = params
                .first("state")
                .map(|s| vec![("state", s)])
                .unwrap_or_default();
            http::redirect(&with_params(&uri, &params), 302)?
        }
        None => pages::message(&org, "Signed out", "You are signed out.")?,
    };
    let resp = forms::append_cookie(resp, &clear_cookies[0])?;
    forms::append_cookie(resp, &clear_cookies[1])
}
