//! POST /{org}/consent: the answer to the consent page (shown by the gate for prompt=consent,
//! oidc/screens.rs). The page's state is bound to the SSO session it was shown under: posted
//! after a logout, or after someone else signed in, it is refused. "Allow" goes back to the
//! gate with the session and the client and policy as they are now, so a consent page opened
//! before the admin required a second factor asks for it rather than issuing a code.

use worker::{Request, Response, Result};

use crate::edge::context::Ctx;
use crate::oidc::form_state::{Authenticated, StepKind};
use crate::oidc::forms::{Submission, registered_client, session_changed, submitted};
use crate::oidc::interaction::{self, Continue, Origin};
use crate::oidc::{issue, pages, sso};
use crate::protocol::error::{ErrorCode, OAuthError};

const TITLE: &str = "Consent could not continue";

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Submission {
        org, form, state, ..
    } = match submitted(&mut req, ctx, slug, TITLE, StepKind::Consent).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let Some(current) = sso::current(ctx, slug, &req).await? else {
        return pages::error(
            &org,
            400,
            "Your session has ended",
            "Sign in again from the application.",
            "login_required",
            None,
        );
    };
    let (Some(interaction), Some(shown)) = (&state.interaction, &state.authenticated) else {
        return session_changed(&org, TITLE);
    };
    if !state.shown_under(Some(&current.id_hash())) || shown.user_id != current.user.id {
        return session_changed(&org, TITLE);
    }
    let request = &interaction.request;
    let client =
        match registered_client(ctx, &org, &request.client_id, &request.redirect_uri).await? {
            Ok(c) => c,
            Err(page) => return Ok(page),
        };
    if form.first("decision") != Some("allow") {
        let denied = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
        return issue::error(
            ctx,
            &org,
            &request.redirect_uri,
            request.state.as_deref(),
            &denied,
            request.response_mode,
            303,
        );
    }
    // The session as it is now (a step-up since the page was shown counts); whether it was
    // authenticated during this interaction is what the page recorded when it was shown.
    let authenticated = Authenticated {
        user_id: current.user.id.clone(),
        auth_time: current.session.auth_time,
        factors: current.session.factors,
        in_this_interaction: shown.in_this_interaction,
    };
    interaction::proceed(
        ctx,
        &req,
        Continue {
            org: &org,
            client: &client,
            interaction,
            authenticated: Some(authenticated),
            user: Some(&current.user),
            origin: Origin::Session(&current),
            consented: true,
            status: 303,
        },
    )
    .await
}
