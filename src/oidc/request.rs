//! Reading OIDC requests: form bodies, the organization, and JSON error responses. Errors are
//! turned into HTTP here, in one place.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::{D1Result, Method, Request, Response, Result};

use crate::edge::audit;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::clients::Client;
use crate::edge::store::database::{Db, Stmt};
use crate::edge::store::orgs::{Organization, get_org};
use crate::protocol::audit::Kind;
use crate::protocol::client_auth;
use crate::protocol::error::{ErrorCode, OAuthError};
use crate::protocol::form::Form;

/// Bodies larger than this are refused before parsing: no legitimate OIDC form comes close.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// An `application/x-www-form-urlencoded` body (RFC 6749 §3.2 requires it at the token endpoint).
pub async fn form_body(req: &mut Request) -> std::result::Result<Form, OAuthError> {
    let content_type = req
        .headers()
        .get("Content-Type")
        .ok()
        .flatten()
        .unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/x-www-form-urlencoded" {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let body = req
        .text()
        .await
        .map_err(|_| OAuthError::invalid_request("the body could not be read"))?;
    if body.len() > MAX_FORM_BYTES {
        return Err(OAuthError::invalid_request("the body is too large"));
    }
    Ok(Form::parse(&body))
}

/// RFC 6749 §3.1/§3.2: "Request and response parameters MUST NOT be included more than once."
pub fn refuse_repeats(form: &Form) -> std::result::Result<(), OAuthError> {
    match form.any_repeated() {
        None => Ok(()),
        Some(name) => Err(OAuthError::invalid_request(format!(
            "the parameter {name} is repeated"
        ))),
    }
}

pub fn query(req: &Request) -> Result<Form> {
    Ok(Form::parse(req.url()?.query().unwrap_or("")))
}

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// How long an isolate keeps an organization it has read (name and branding change rarely;
/// this saves a D1 read on discovery, JWKS and every page).
const ORG_CACHE_SECONDS: i64 = 30;

thread_local! {
    static ORG_CACHE: RefCell<HashMap<String, (Organization, i64)>> = RefCell::new(HashMap::new());
}

/// The organization, from this isolate's cache when fresh. Unknown slugs are not cached, so an
/// organization is usable as soon as it is created.
pub async fn organization(ctx: &Ctx, slug: &str) -> Result<Option<Organization>> {
    let cached = ORG_CACHE.with(|c| {
        c.borrow()
            .get(slug)
            .filter(|(_, at)| ctx.now - at < ORG_CACHE_SECONDS)
            .map(|(o, _)| o.clone())
    });
    if cached.is_some() {
        return Ok(cached);
    }
    // A replica may not have an organization created moments ago: a miss asks the primary.
    let org = ctx
        .found(|db| async move { get_org(&db, slug).await })
        .await?;
    if let Some(org) = &org {
        remember_organization(org, ctx.now);
    }
    Ok(org)
}

/// Whether this isolate holds a fresh copy of the organization (oidc/prime.rs reads it with
/// the request's other reads when it does not).
pub fn organization_cached(ctx: &Ctx, slug: &str) -> bool {
    ORG_CACHE.with(|c| {
        c.borrow()
            .get(slug)
            .is_some_and(|(_, at)| ctx.now - at < ORG_CACHE_SECONDS)
    })
}

/// Keep an organization as read now.
pub fn remember_organization(org: &Organization, now: i64) {
    ORG_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(org.slug.clone(), (org.clone(), now));
    });
}

/// The organization as this isolate last read it, however old, without any storage call: for
/// branding an error page when storage itself is what failed.
pub fn cached_organization(slug: &str) -> Option<Organization> {
    ORG_CACHE.with(|c| c.borrow().get(slug).map(|(o, _)| o.clone()))
}

/// Drop a cached organization (the admin API calls this after changing or deleting one, so the
/// isolate that made the change never serves the old version).
pub fn forget_organization(slug: &str) {
    ORG_CACHE.with(|c| c.borrow_mut().remove(slug));
}

/// The common start of the token, revocation and introspection endpoints: POST only, a known
/// organization, a form body and an authenticated client. `Err` is the response to send.
pub struct ClientRequest {
    pub form: Form,
    pub client: Client,
    pub issuer: String,
    /// The result of the read `client_request`'s `ahead_of` named, made at the replica.
    pub ahead: Option<D1Result>,
}

/// `signs`: the endpoint signs tokens (the token endpoint), so the organization's signing key is
/// read with the organization and the client when this isolate lacks them; `ahead_of`: the
/// endpoint's own replica read, when the form alone names it (a refresh token), read in the same
/// round trip (oidc/prime.rs) and handed back as `ClientRequest::ahead`.
pub async fn client_request(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    signs: bool,
    ahead_of: impl FnOnce(&Db, &Form) -> Result<Option<Stmt>>,
) -> Result<std::result::Result<ClientRequest, Response>> {
    if req.method() != Method::Post {
        return http::method_not_allowed("POST").map(Err);
    }
    // The body is read before any storage call, so that the client it names can be read in the
    // same round trip as the organization.
    let form = form_body(req)
        .await
        .and_then(|f| refuse_repeats(&f).map(|()| f));
    let presented = form
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|f| client_auth::presented(header(req, "Authorization").as_deref(), f));
    let ahead = match &form {
        Ok(f) if presented.is_ok() => ahead_of(&ctx.replica()?, f)?,
        _ => None,
    };
    let needs = crate::oidc::prime::Needs {
        client_id: presented.as_ref().ok().map(|p| p.client_id.as_str()),
        signing_key: signs,
        ahead,
    };
    let ahead = crate::oidc::prime::prime(ctx, slug, needs).await?;
    if organization(ctx, slug).await?.is_none() {
        return unknown_org_json().map(Err);
    }
    let issuer = ctx.config.issuer(slug);
    let (form, presented) = match (form, presented) {
        (Ok(f), Ok(p)) => (f, p),
        (Err(e), _) | (_, Err(e)) => return oauth_error(&e, &issuer).map(Err),
    };
    // The client from the nearest replica; from the primary when the replica's copy refuses the
    // credentials, which it may only because it lags (a client just created or a secret just
    // rotated). A rotated-out secret keeps working where a replica lags, for that lag at most.
    //
    // Failures are not throttled. Every client secret is generated by Clavex with 256 random
    // bits (admin/clients.rs: no API sets one of an admin's choosing), so guessing is hopeless
    // and a lock would only ever hurt the real client: keyed per client and address, it let
    // anyone behind the relying party's egress address (a cloud NAT, a serverless platform)
    // lock its server out of the token endpoint with a few wrong secrets. Failures are still
    // recorded in the audit trail, and the comparison stays constant-time (client_auth::verify).
    let client_id = presented.client_id.as_str();
    // The account page's client signs browsers in and nothing else: its codes are never
    // redeemed, and it has no tokens to introspect or revoke (oidc/account_client.rs).
    let found = if client_id == crate::oidc::account_client::ACCOUNT_CLIENT_ID {
        None
    } else {
        crate::oidc::client_cache::client(ctx, slug, client_id, |c| {
            client_auth::verify(&presented, c.secret_hash.as_deref()).is_ok()
        })
        .await?
    };
    let Some(client) = found else {
        return oauth_error(
            &OAuthError::invalid_client("client authentication failed"),
            &issuer,
        )
        .map(Err);
    };
    if let Err(e) = client_auth::verify(&presented, client.secret_hash.as_deref()) {
        audit::note(
            ctx,
            Kind::ClientAuthFailed,
            slug,
            None,
            Some(client_id),
            Default::default(),
        );
        return oauth_error(&e, &issuer).map(Err);
    }
    Ok(Ok(ClientRequest {
        form,
        client,
        issuer,
        ahead,
    }))
}

/// Which methods a browser-facing endpoint takes.
pub enum Accept {
    /// Query (GET) or form body (POST): OIDC Core §3.1.2.1 for /authorize. Repeated parameters
    /// are left to the endpoint, which reports them at the client's redirect URI once it is known.
    GetOrPost,
    /// Like `GetOrPost`, refusing repeated parameters with an error page: RP-Initiated Logout §2.
    GetOrPostSingle,
    /// Form body only, repeated parameters refused: the login and consent forms.
    PostOnly,
}

/// The start of every browser-facing endpoint: the method, the organization (else a 404 page)
/// and the parameters (else an error page titled `title`). `Err` is the response to send. The
/// client a `client_id` parameter names is read with the organization (oidc/prime.rs).
pub async fn page_request(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    accept: Accept,
    title: &str,
) -> Result<std::result::Result<(Organization, Form), Response>> {
    let named = |form: &Form| Ahead {
        client_id: form.first("client_id").map(str::to_string),
        read: None,
    };
    Ok(page_request_for(req, ctx, slug, accept, title, named)
        .await?
        .map(|(org, form, _)| (org, form)))
}

/// What a browser-facing request will read besides its organization: the client it is for, and
/// its own replica read when the parameters alone name it (the user a login form names).
pub struct Ahead {
    pub client_id: Option<String>,
    pub read: Option<Stmt>,
}

/// `page_request`, where `ahead_of` names the client the parameters are for (a form carries it
/// in its sealed state) and the request's own read, so that they are read in the same round trip
/// as the organization (oidc/prime.rs); that read's result comes back third.
pub async fn page_request_for(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    accept: Accept,
    title: &str,
    ahead_of: impl FnOnce(&Form) -> Ahead,
) -> Result<std::result::Result<(Organization, Form, Option<D1Result>), Response>> {
    let method = req.method();
    let allowed = match accept {
        Accept::GetOrPost | Accept::GetOrPostSingle => {
            method == Method::Get || method == Method::Post
        }
        Accept::PostOnly => method == Method::Post,
    };
    if !allowed {
        let allow = if matches!(accept, Accept::PostOnly) {
            "POST"
        } else {
            "GET, POST"
        };
        return http::method_not_allowed(allow).map(Err);
    }
    let single = !matches!(accept, Accept::GetOrPost);
    let params = if method == Method::Get {
        Ok(query(req)?)
    } else {
        form_body(req).await
    }
    .and_then(|form| {
        if single {
            refuse_repeats(&form)?;
        }
        Ok(form)
    });
    let ahead = match params.as_ref() {
        Ok(form) => ahead_of(form),
        Err(_) => Ahead {
            client_id: None,
            read: None,
        },
    };
    let needs = crate::oidc::prime::Needs {
        client_id: ahead.client_id.as_deref(),
        signing_key: false,
        ahead: ahead.read,
    };
    let read = crate::oidc::prime::prime(ctx, slug, needs).await?;
    let Some(org) = organization(ctx, slug).await? else {
        return crate::oidc::pages::unknown_org().map(Err);
    };
    match params {
        Ok(form) => Ok(Ok((org, form, read))),
        Err(e) => {
            crate::oidc::pages::error(&org, 400, title, &e.description, e.code.as_str(), None)
                .map(Err)
        }
    }
}

/// A JSON error from the token, revocation or introspection endpoint (RFC 6749 §5.2), never
/// cached. `invalid_client` carries the Basic challenge RFC 6749 §5.2 asks for.
pub fn oauth_error(err: &OAuthError, issuer: &str) -> Result<Response> {
    let resp = http::no_store(http::json(err.code.status(), &err.to_json())?)?;
    if err.code == ErrorCode::InvalidClient {
        resp.headers()
            .set("WWW-Authenticate", &format!("Basic realm=\"{issuer}\""))?;
    }
    Ok(resp)
}

/// 404 for an organization that does not exist, as JSON (API-style endpoints).
pub fn unknown_org_json() -> Result<Response> {
    http::api_error(404, "not_found", "no such organization", None)
}
