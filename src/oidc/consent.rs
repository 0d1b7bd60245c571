//! The consent page (for prompt=consent) and POST /{org}/consent. Clients are registered by the
//! organization's admin, so consent is otherwise implied; a client that asks with
//! prompt=consent gets an explicit Allow/Deny page.

use worker::{Request, Response, Result};

use crate::edge::context::Ctx;
use crate::edge::store::orgs::Organization;
use crate::oidc::login::{Submitted, form_parts, submitted_form};
use crate::oidc::{issue, pages, sso};
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::error::{ErrorCode, OAuthError};
use crate::ui::{self, ConsentPage, describe_scope};

pub fn show(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    username: &str,
    request: &AuthorizeRequest,
) -> Result<Response> {
    let parts = form_parts(ctx, req, org, request, "consent");
    let permissions = request
        .scope
        .split(' ')
        .filter_map(describe_scope)
        .collect();
    let html = ui::render(&ConsentPage {
        brand: &parts.brand,
        client_name,
        username,
        permissions,
        action: &parts.action,
        request: &parts.sealed,
        csrf_token: &parts.csrf,
    });
    parts.respond(200, html)
}

pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Submitted {
        org,
        form,
        request,
        client,
    } = match submitted_form(&mut req, ctx, slug, "Consent could not continue").await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let Some((session, user)) = sso::current(ctx, slug, &req).await? else {
        return pages::error(
            &org,
            400,
            "Your session has ended",
            "Sign in again from the application.",
            "login_required",
            None,
        );
    };
    if let Err(denied) = issue::admits(ctx, slug, &client, &user).await? {
        return issue::error(
            ctx,
            slug,
            &request.redirect_uri,
            request.state.as_deref(),
            &denied,
            303,
        );
    }
    match form.first("decision") {
        Some("allow") => issue::code(
            ctx,
            slug,
            &request,
            &user.id,
            session.auth_time,
            session.factors,
            303,
        ),
        _ => {
            let denied = OAuthError::new(ErrorCode::AccessDenied, "the user denied the request");
            issue::error(
                ctx,
                slug,
                &request.redirect_uri,
                request.state.as_deref(),
                &denied,
                303,
            )
        }
    }
}
