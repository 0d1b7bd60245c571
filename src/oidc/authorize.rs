//! GET/POST /{org}/authorize — the authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2).
//! Validate the request, then issue a code from the SSO session, or show the login or consent
//! page, or send an error back to the client.

use worker::{Request, Response, Result};

use crate::edge::audit;
use crate::edge::context::Ctx;
use crate::edge::store::clients::get_client;
use crate::oidc::request::{Accept, page_request};
use crate::oidc::{consent, issue, login, pages, signer, sso};
use crate::protocol::audit::Kind;
use crate::protocol::authorize::{self, AuthorizeError, ClientRegistration};
use crate::protocol::error::{ErrorCode, OAuthError};
use crate::protocol::mfa;
use crate::protocol::session::{self, Next, SessionView};

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (org, params) = match page_request(
        &mut req,
        ctx,
        slug,
        Accept::GetOrPost,
        "The sign-in request is not valid",
    )
    .await?
    {
        Ok(parts) => parts,
        Err(resp) => return Ok(resp),
    };
    let client_id = match authorize::client_id(&params) {
        Ok(id) => id,
        Err(AuthorizeError::Fatal(f)) => return pages::fatal(&org, &f),
        Err(AuthorizeError::Redirect(_)) => unreachable!("client_id errors are never redirected"),
    };
    // The client from the nearest replica — from the primary when the replica lacks it or the
    // redirect URI asked for (a client just registered or changed must work at once).
    let asked_uri = params.first("redirect_uri");
    let registered = |c: &crate::edge::store::clients::Client| {
        asked_uri.is_none_or(|uri| c.redirect_uris.iter().any(|r| r == uri))
    };
    let Some(client) = ctx
        .fresh(
            |db| async move { get_client(&db, slug, client_id).await },
            registered,
        )
        .await?
    else {
        let AuthorizeError::Fatal(f) = authorize::unknown_client(client_id) else {
            unreachable!()
        };
        return pages::fatal(&org, &f);
    };
    let registration = ClientRegistration {
        client_id: &client.client_id,
        redirect_uris: &client.redirect_uris,
        grant_types: &client.grant_types,
        scopes: &client.scopes,
        public: client.is_public(),
    };
    let request = match authorize::validate(&params, &registration) {
        Ok(r) => r,
        Err(AuthorizeError::Fatal(f)) => return pages::fatal(&org, &f),
        Err(AuthorizeError::Redirect(e)) => {
            return issue::error(
                ctx,
                slug,
                &e.redirect_uri,
                e.state.as_deref(),
                &e.error,
                302,
            );
        }
    };
    let redirect_error = |err: OAuthError| {
        issue::error(
            ctx,
            slug,
            &request.redirect_uri,
            request.state.as_deref(),
            &err,
            302,
        )
    };

    // id_token_hint must be an ID token this organization signed; its `sub` names the user the
    // client expects (Core §3.1.2.1).
    let hint_sub = match &request.id_token_hint {
        None => None,
        Some(hint) => match signer::verify_own(ctx, slug, &ctx.config.issuer(slug), hint).await? {
            Some(claims) => claims["sub"].as_str().map(str::to_string),
            None => {
                return redirect_error(OAuthError::invalid_request(
                    "id_token_hint is not an ID token issued here",
                ));
            }
        },
    };
    let current = sso::current(ctx, slug, &req).await?;
    let view = current.as_ref().map(|(s, u)| SessionView {
        user_id: &u.id,
        auth_time: s.auth_time,
    });
    match session::decide(&request, view.as_ref(), hint_sub.as_deref(), ctx.now) {
        Next::IssueCode | Next::ShowConsent
            if current.as_ref().is_some_and(|(s, u)| {
                mfa::next_step(
                    s.factors,
                    u.totp_secret_sealed.is_some(),
                    crate::oidc::mfa::required(&org, Some(&client), Some(&request)),
                ) != mfa::Step::Done
            }) =>
        {
            // The session lacks a second factor this sign-in needs: prompt=none cannot ask for
            // it (Core §3.1.2.6 interaction_required); otherwise ask now, without the password.
            let (s, u) = current.as_ref().expect("checked above");
            if request.prompt.none {
                return redirect_error(OAuthError::new(
                    ErrorCode::InteractionRequired,
                    "a second factor is required and the session has none",
                ));
            }
            let sign_in = crate::oidc::mfa::SignIn {
                org: &org,
                client: &client,
                request: &request,
                user: u,
                auth_time: s.auth_time,
                factors: s.factors,
            };
            crate::oidc::mfa::after_password(ctx, &req, sign_in).await
        }
        Next::IssueCode => {
            let (s, u) = current.as_ref().expect("IssueCode implies a session");
            // An SSO session never gives a code for a client the user may not use.
            if let Err(denied) = issue::admits(ctx, slug, &client, u).await? {
                return redirect_error(denied);
            }
            audit::note(
                ctx,
                Kind::SignInSso,
                slug,
                Some(&u.id),
                Some(&client.client_id),
                Default::default(),
            );
            issue::code(ctx, slug, &request, &u.id, s.auth_time, s.factors, 302)
        }
        Next::ShowLogin => login::show(ctx, &req, &org, &client.client_name, &request, None, 200),
        Next::ShowConsent => {
            let (_, u) = current.as_ref().expect("ShowConsent implies a session");
            if let Err(denied) = issue::admits(ctx, slug, &client, u).await? {
                return redirect_error(denied);
            }
            consent::show(ctx, &req, &org, &client.client_name, &u.username, &request)
        }
        Next::Fail(err) => redirect_error(err),
    }
}
