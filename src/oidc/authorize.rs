//! GET/POST /{org}/authorize — the authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2).
//! Validate the request, then let the gate (oidc/interaction.rs) decide with the browser's SSO
//! session: a code, the login, second-factor or consent page, or an error for the client.

use worker::{Request, Response, Result};

use crate::edge::context::Ctx;
use crate::edge::store::d1::first_row;
use crate::edge::store::users::{User, get_user, get_user_statement};
use crate::oidc::form_state::{Authenticated, Interaction};
use crate::oidc::interaction::{self, Continue, Origin};
use crate::oidc::request::{Accept, Ahead, page_request_for};
use crate::oidc::{client_cache, issue, pages, signer, sso};
use crate::protocol::authorize::{self, AuthorizeError, ClientRegistration};
use crate::protocol::error::OAuthError;
use crate::protocol::form::Form;

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    // The browser's SSO session first (KV), so that its user is read with the organization and
    // the client in one replica round trip (oidc/prime.rs).
    let cookie = sso::cookie_session(ctx, slug, &req).await?;
    let replica = ctx.replica()?;
    let user_read = match &cookie {
        Some((_, session)) => Some(get_user_statement(&replica, slug, &session.user_id)?),
        None => None,
    };
    let ahead_of = |form: &Form| Ahead {
        client_id: form.first("client_id").map(str::to_string),
        read: user_read,
    };
    let (org, params, user_at_replica) = match page_request_for(
        &mut req,
        ctx,
        slug,
        Accept::GetOrPost,
        "The sign-in request is not valid",
        ahead_of,
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
    let Some(client) = client_cache::client(ctx, slug, client_id, registered).await? else {
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
                &org,
                &e.redirect_uri,
                e.state.as_deref(),
                &e.error,
                e.response_mode,
                302,
            );
        }
    };
    let redirect_error = |err: OAuthError| {
        issue::error(
            ctx,
            &org,
            &request.redirect_uri,
            request.state.as_deref(),
            &err,
            request.response_mode,
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
    // `idp_hint` (like Keycloak's kc_idp_hint): a connection id of this organization sends the
    // person straight to that upstream where the login form would be shown; anything else is
    // ignored and the form is shown.
    let idp_hint = params
        .first("idp_hint")
        .filter(|id| org.connection_buttons.iter().any(|b| b.id == *id))
        .map(str::to_string);
    let interaction = Interaction {
        request,
        hint_sub,
        idp_hint,
        link: None,
    };
    let current = match cookie {
        Some(cookie) => {
            // A user the replica does not have yet (created moments ago elsewhere) is asked of
            // the primary, as `sso::current` does.
            let at_replica = match &user_at_replica {
                Some(read) => first_row::<User>(read)?,
                None => None,
            };
            let user = match at_replica {
                Some(user) => Some(user),
                None => get_user(&ctx.primary()?, slug, &cookie.1.user_id).await?,
            };
            sso::current_of(cookie, user)
        }
        None => None,
    };
    let authenticated = current.as_ref().map(|c| Authenticated {
        user_id: c.user.id.clone(),
        auth_time: c.session.auth_time,
        factors: c.session.factors,
        in_this_interaction: false,
    });
    interaction::proceed(
        ctx,
        &req,
        Continue {
            org: &org,
            client: &client,
            interaction: &interaction,
            authenticated,
            user: current.as_ref().map(|c| &c.user),
            origin: match &current {
                Some(c) => Origin::Session(c),
                None => Origin::Fresh,
            },
            consented: false,
            status: 302,
        },
    )
    .await
}
