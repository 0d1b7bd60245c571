//! What every sign-in page with a form shares: the browser's CSRF token, sealing the page's
//! state (oidc/form_state.rs), and checking a submission — POST from our own origin, a state
//! sealed here for this browser, for this step, not expired.

use worker::{D1Result, Headers, Request, Response, Result};

use crate::crypto::random_token;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::clients::Client;
use crate::edge::store::database::{Db, Stmt};
use crate::edge::store::orgs::Organization;
use crate::oidc::form_state::{FormState, StateError, StepKind, open_state, seal_state};
use crate::oidc::request::{Accept, Ahead, header, page_request_for};
use crate::oidc::{cookies, pages};
use crate::protocol::form::Form;
use crate::protocol::lifetimes::LOGIN_FORM_SECONDS;
use crate::protocol::origin::{origin_of, same_origin};

/// The browser's CSRF token: the existing cookie, or a new one (with its Set-Cookie).
pub fn csrf_token(ctx: &Ctx, req: &Request, org: &str) -> (String, Option<String>) {
    match cookies::read(header(req, "Cookie").as_deref(), cookies::CSRF) {
        Some(existing) => (existing, None),
        None => {
            let token = random_token("");
            let cookie = cookies::set(
                cookies::CSRF,
                &token,
                org,
                ctx.config.secure_cookies(),
                LOGIN_FORM_SECONDS,
            );
            (token, Some(cookie))
        }
    }
}

/// A page's sealed state, bound to this browser's CSRF token, valid for `lifetime` seconds.
pub struct Sealed {
    pub state: String,
    pub csrf: String,
    pub set_cookie: Option<String>,
}

pub fn seal_for_page(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    mut state: FormState,
    lifetime: i64,
) -> Sealed {
    let (csrf, set_cookie) = csrf_token(ctx, req, &org.slug);
    state.csrf = csrf.clone();
    state.expires_at = ctx.now + lifetime;
    Sealed {
        state: seal_state(&ctx.config.key_encryption_secret, &org.slug, &state),
        csrf,
        set_cookie,
    }
}

/// An HTML page, with the CSRF cookie if it is new.
pub fn respond(status: u16, html: String, set_cookie: Option<String>) -> Result<Response> {
    let resp = http::html(status, html)?;
    match set_cookie {
        Some(c) => append_cookie(resp, &c),
        None => Ok(resp),
    }
}

/// An HTML page that runs the passkey script (ui/passkey.rs), allowed by its hash.
pub fn respond_with_script(
    status: u16,
    html: String,
    set_cookie: Option<String>,
) -> Result<Response> {
    let resp = http::html_with_csp(status, html, &crate::ui::passkey::csp())?;
    match set_cookie {
        Some(c) => append_cookie(resp, &c),
        None => Ok(resp),
    }
}

pub fn append_cookie(resp: Response, cookie: &str) -> Result<Response> {
    let headers: Headers = resp.headers().clone();
    headers.append("Set-Cookie", cookie)?;
    Ok(resp.with_headers(headers))
}

/// The error page for a form POST that did not come from our own pages (Origin, else Referer),
/// if it did not.
pub fn cross_site(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    title: &str,
) -> Result<Option<Response>> {
    let expected = origin_of(&ctx.config.issuer(&org.slug)).unwrap_or_default();
    let origin = header(req, "Origin");
    let referer = header(req, "Referer");
    if same_origin(origin.as_deref(), referer.as_deref(), &expected) {
        return Ok(None);
    }
    pages::error(
        org,
        403,
        title,
        "This form was sent from another site. Start again from the application.",
        "invalid_request",
        None,
    )
    .map(Some)
}

/// A submitted form: POST from our origin, with a state sealed for this browser and `step`.
pub struct Submission {
    pub org: Organization,
    pub form: Form,
    pub state: FormState,
    /// The result of the read `submitted_with`'s `read_of` named, made at the replica.
    pub ahead: Option<D1Result>,
}

/// The field that carries the sealed state: `request` on the login and consent forms (their
/// historical name), `state` on the others.
fn state_field(step: StepKind) -> &'static str {
    match step {
        StepKind::Login | StepKind::Consent => "request",
        _ => "state",
    }
}

pub async fn submitted(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    title: &str,
    step: StepKind,
) -> Result<std::result::Result<Submission, Response>> {
    submitted_with(req, ctx, slug, title, step, |_, _| Ok(None)).await
}

/// `submitted`, where `read_of` names the endpoint's own replica read from the form (the user a
/// login form names), made in the same round trip as the organization and the client.
pub async fn submitted_with(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    title: &str,
    step: StepKind,
    read_of: impl FnOnce(&Db, &Form) -> Result<Option<Stmt>>,
) -> Result<std::result::Result<Submission, Response>> {
    // The state is opened as soon as the body is read (it needs no storage), so that the client
    // it is for is read in the same round trip as the organization (oidc/prime.rs).
    let cookie_csrf = cookies::read(header(req, "Cookie").as_deref(), cookies::CSRF);
    let replica = ctx.replica()?;
    let mut opened = Err(StateError::Invalid);
    let mut refused = None;
    let ahead_of = |form: &Form| {
        opened = open_state(
            &ctx.config.key_encryption_secret,
            slug,
            form.first(state_field(step)).unwrap_or(""),
            cookie_csrf.as_deref(),
            form.first("csrf_token"),
            ctx.now,
            step,
        );
        let client_id = opened
            .as_ref()
            .ok()
            .and_then(|s| s.interaction.as_ref())
            .map(|i| i.request.client_id.clone());
        // Only a form whose state opened reads anything of its own.
        let read = if opened.is_ok() {
            read_of(&replica, form).unwrap_or_else(|e| {
                refused = Some(e);
                None
            })
        } else {
            None
        };
        Ahead { client_id, read }
    };
    let (org, form, ahead) =
        match page_request_for(req, ctx, slug, Accept::PostOnly, title, ahead_of).await? {
            Ok(parts) => parts,
            Err(resp) => return Ok(Err(resp)),
        };
    if let Some(e) = refused {
        return Err(e);
    }
    if let Some(page) = cross_site(ctx, req, &org, title)? {
        return Ok(Err(page));
    }
    match opened {
        Ok(state) => Ok(Ok(Submission {
            org,
            form,
            state,
            ahead,
        })),
        Err(e) => refused_state(&org, title, e).map(Err),
    }
}

/// The page for a state that cannot be used here.
pub fn refused_state(org: &Organization, title: &str, e: StateError) -> Result<Response> {
    let (status, description) = match e {
        StateError::CsrfMismatch => (
            403,
            "The form could not be verified (missing or mismatched security token). Enable cookies and start again from the application.",
        ),
        StateError::Expired => (
            400,
            "This page has expired. Start again from the application.",
        ),
        StateError::Invalid | StateError::WrongStep => (
            400,
            "This form is not valid here. Start again from the application.",
        ),
    };
    pages::error(org, status, title, description, "invalid_request", None)
}

/// The page for a state shown under another SSO session than the browser's now (signed out,
/// or signed in as someone else since).
pub fn session_changed(org: &Organization, title: &str) -> Result<Response> {
    pages::error(
        org,
        400,
        title,
        "You signed out or signed in as someone else since this page was shown. Start again from the application.",
        "invalid_request",
        None,
    )
}

/// The client a submitted form is for. It may have changed since the form was shown: it must
/// still exist and still have the redirect URI before anything is sent there. `Err` is the page.
pub async fn registered_client(
    ctx: &Ctx,
    org: &Organization,
    client_id: &str,
    redirect_uri: &str,
) -> Result<std::result::Result<Client, Response>> {
    let slug = org.slug.as_str();
    let found = crate::oidc::client_cache::client(ctx, slug, client_id, |c| {
        c.redirect_uris.iter().any(|r| r == redirect_uri)
    })
    .await?;
    let Some(client) = found else {
        let page = pages::error(
            org,
            400,
            "Unknown application",
            "The application is no longer registered.",
            "invalid_client",
            None,
        )?;
        return Ok(Err(page));
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        let page = pages::error(
            org,
            400,
            "This application's redirect URI is not registered",
            "The redirect URI is no longer registered for this application.",
            "error_uri_mismatch",
            Some(redirect_uri),
        )?;
        return Ok(Err(page));
    }
    Ok(Ok(client))
}
