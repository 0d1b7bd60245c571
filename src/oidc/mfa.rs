//! The second factor of a sign-in: after a correct password (or with an SSO session that lacks
//! a required factor), ask for a TOTP or recovery code, or enrol the user; then finish the
//! sign-in — start the SSO session with the factors used and send the code to the client.
//!
//! Pages: the challenge (POST /{org}/mfa), the enrolment with its server-rendered QR code
//! (POST /{org}/mfa/enrol), the recovery codes shown once (POST /{org}/mfa/finish), and the
//! account page where a user enrols by choice (/{org}/account/mfa: the SSO session and a fresh
//! password). All work without JavaScript.

use serde_json::json;
use worker::{Request, Response, Result};

use crate::crypto::{b64url, b64url_decode, derive_key, open, random_bytes, seal};
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::store::clients::Client;
use crate::edge::store::mfa as store;
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::{User, get_user};
use crate::oidc::login::{append_cookie, csrf_token, registered_client, signs_in_user};
use crate::oidc::login_throttle::Gate;
use crate::oidc::mfa_state::{MFA_FORM_SECONDS, Pending, Stage, open_pending, seal_pending};
use crate::oidc::request::{Accept, header, page_request};
use crate::oidc::{consent, cookies, issue, pages, sso};
use crate::protocol::audit::Kind;
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::mfa::{self, OTP, Policy, Step};
use crate::ui::{self, AccountPasswordPage, EnrolPage, MfaPage, RecoveryPage};

const SECRETS_PURPOSE: &str = "totp-secrets";
const INVALID_CODE: &str =
    "That code is not valid. Enter the current code from your app, or a recovery code.";

/// The page for a form in the wrong stage or without its sign-in: nothing to do but start over.
fn start_again(org: &Organization) -> Result<Response> {
    pages::error(
        org,
        400,
        "Sign-in could not continue",
        "Start again from the application.",
        "invalid_request",
        None,
    )
}

/// Whether this sign-in needs a second factor (organization policy, client, `acr_values`).
pub fn required(
    org: &Organization,
    client: Option<&Client>,
    request: Option<&AuthorizeRequest>,
) -> bool {
    let policy = Policy::parse(&org.mfa).unwrap_or(Policy::Off);
    mfa::required(
        policy,
        client.is_some_and(|c| c.require_mfa),
        request.and_then(|r| r.acr_values.as_deref()),
    )
}

/// A sign-in in progress: who, for which client's request, since when, with which factors.
#[derive(Clone, Copy)]
pub struct SignIn<'a> {
    pub org: &'a Organization,
    pub client: &'a Client,
    pub request: &'a AuthorizeRequest,
    pub user: &'a User,
    /// When the password was checked.
    pub auth_time: i64,
    pub factors: u8,
}

/// After the password: finish, or ask for (or set up) the second factor.
pub async fn after_password(ctx: &Ctx, req: &Request, sign_in: SignIn<'_>) -> Result<Response> {
    let SignIn {
        org,
        client,
        request,
        user,
        auth_time,
        factors,
    } = sign_in;
    let needed = required(org, Some(client), Some(request));
    let pending = |stage| Pending {
        request: Some(request.clone()),
        user_id: user.id.clone(),
        auth_time,
        factors,
        stage,
        csrf: String::new(),
        expires_at: ctx.now + MFA_FORM_SECONDS,
    };
    match mfa::next_step(factors, user.totp_secret_sealed.is_some(), needed) {
        Step::Done => finish(ctx, req, sign_in).await,
        Step::Challenge => show_challenge(
            ctx,
            req,
            org,
            &client.client_name,
            pending(Stage::Challenge),
            None,
            200,
        ),
        Step::Enrol => {
            let secret = b64url(&random_bytes::<20>());
            let stage = Stage::Enrol {
                secret,
                required: true,
            };
            show_enrol(ctx, req, org, user, pending(stage), None, 200)
        }
    }
}

/// Start the SSO session with the factors used, then send the client its code (or the consent
/// page, or `access_denied` when the user is not in its groups).
pub async fn finish(ctx: &Ctx, req: &Request, sign_in: SignIn<'_>) -> Result<Response> {
    let SignIn {
        org,
        client,
        request,
        user,
        ..
    } = sign_in;
    let slug = org.slug.as_str();
    let session_cookie = sso::start(ctx, slug, &user.id, sign_in.factors).await?;
    let resp = if let Err(denied) = issue::admits(ctx, slug, client, user).await? {
        issue::error(
            ctx,
            slug,
            &request.redirect_uri,
            request.state.as_deref(),
            &denied,
            303,
        )?
    } else if request.prompt.consent {
        consent::show(ctx, req, org, &client.client_name, &user.username, request)?
    } else {
        issue::code(
            ctx,
            slug,
            request,
            &user.id,
            sign_in.auth_time,
            sign_in.factors,
            303,
        )?
    };
    append_cookie(resp, &session_cookie)
}

/// The sealed state and this browser's CSRF token (a new cookie when it has none).
fn seal_for_page(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    mut pending: Pending,
) -> (String, String, Option<String>) {
    let (csrf, set_cookie) = csrf_token(ctx, req, &org.slug);
    pending.csrf = csrf.clone();
    pending.expires_at = ctx.now + MFA_FORM_SECONDS;
    (
        seal_pending(&ctx.config.key_encryption_secret, &org.slug, &pending),
        csrf,
        set_cookie,
    )
}

fn respond(status: u16, html: String, set_cookie: Option<String>) -> Result<Response> {
    let resp = crate::edge::http::html(status, html)?;
    match set_cookie {
        Some(c) => append_cookie(resp, &c),
        None => Ok(resp),
    }
}

fn show_challenge(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    pending: Pending,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    let (state, csrf, set_cookie) = seal_for_page(ctx, req, org, pending);
    let brand = pages::brand(org);
    let action = format!("/{}/mfa", org.slug);
    let html = ui::render(&MfaPage {
        brand: &brand,
        client_name,
        action: &action,
        state: &state,
        csrf_token: &csrf,
        error,
    });
    respond(status, html, set_cookie)
}

fn show_enrol(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    user: &User,
    pending: Pending,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    let Stage::Enrol { secret, required } = &pending.stage else {
        return start_again(org);
    };
    let bytes = b64url_decode(secret).unwrap_or_default();
    let uri = mfa::otpauth_uri(&org.name, &user.username, &bytes);
    let qr = mfa::qr_svg(&uri);
    let grouped: Vec<String> = mfa::base32(&bytes)
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let required = *required;
    let (state, csrf, set_cookie) = seal_for_page(ctx, req, org, pending);
    let brand = pages::brand(org);
    let action = format!("/{}/mfa/enrol", org.slug);
    let html = ui::render(&EnrolPage {
        brand: &brand,
        required,
        qr_svg: &qr,
        secret: &grouped.join(" "),
        action: &action,
        state: &state,
        csrf_token: &csrf,
        error,
    });
    respond(status, html, set_cookie)
}

/// A form of these pages, checked: POST from our origin (page_request + the login form's Origin
/// check), a pending sign-in sealed for this browser, in the expected stage, and its user.
struct Posted {
    org: Organization,
    form: crate::protocol::form::Form,
    pending: Pending,
    user: User,
}

async fn posted(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
) -> Result<std::result::Result<Posted, Response>> {
    let title = "Sign-in could not continue";
    let (org, form) = match page_request(req, ctx, slug, Accept::PostOnly, title).await? {
        Ok(parts) => parts,
        Err(resp) => return Ok(Err(resp)),
    };
    if let Some(page) = crate::oidc::login::cross_site(ctx, req, &org, title)? {
        return Ok(Err(page));
    }
    let cookie_csrf = cookies::read(header(req, "Cookie").as_deref(), cookies::CSRF);
    let Some(pending) = open_pending(
        &ctx.config.key_encryption_secret,
        slug,
        form.first("state").unwrap_or(""),
        cookie_csrf.as_deref(),
        form.first("csrf_token"),
        ctx.now,
    ) else {
        let page = pages::error(
            &org,
            400,
            title,
            "This step has expired or is not valid. Start again from the application.",
            "invalid_request",
            None,
        )?;
        return Ok(Err(page));
    };
    let user_id = pending.user_id.as_str();
    let user = ctx
        .found(|db| async move { get_user(&db, slug, user_id).await })
        .await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        let page = pages::error(
            &org,
            400,
            title,
            "This account can no longer sign in.",
            "access_denied",
            None,
        )?;
        return Ok(Err(page));
    };
    Ok(Ok(Posted {
        org,
        form,
        pending,
        user,
    }))
}

/// POST /{org}/mfa: check a TOTP or recovery code. Wrong codes count toward login throttling;
/// a code is accepted once (its step must be later than the last accepted, at the primary).
pub async fn handle_challenge(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Posted {
        org,
        form,
        pending,
        user,
    } = match posted(&mut req, ctx, slug).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    if pending.stage != Stage::Challenge {
        return start_again(&org);
    }
    let Some(request) = pending.request.clone() else {
        return start_again(&org);
    };
    let client = match registered_client(ctx, &org, &request).await? {
        Ok(c) => c,
        Err(page) => return Ok(page),
    };
    let gate = Gate::open(ctx, &org, &user.username).await?;
    if let Some(wait) = gate.locked_for(ctx.now_ms) {
        let note = detail([("retry_after", json!(wait)), ("factor", json!("second"))]);
        audit::note(
            ctx,
            Kind::SignInThrottled,
            slug,
            Some(&user.id),
            Some(&client.client_id),
            note,
        );
        let message = format!(
            "Too many failed attempts. Try again in {}.",
            crate::protocol::throttle::in_words(wait)
        );
        let resp = show_challenge(
            ctx,
            &req,
            &org,
            &client.client_name,
            pending,
            Some(&message),
            429,
        )?;
        resp.headers().set("Retry-After", &wait.to_string())?;
        return Ok(resp);
    }
    let code = form.first("code").unwrap_or("").trim();
    let used = accept_code(ctx, &org, &user, code).await?;
    let Some(factor) = used else {
        let wait = gate.failed(ctx, &org, Some(&user)).await?;
        audit::note(
            ctx,
            Kind::SignInFailed,
            slug,
            Some(&user.id),
            Some(&client.client_id),
            detail([("factor", json!("second"))]),
        );
        let message = match wait {
            None => INVALID_CODE.to_string(),
            Some(w) => format!(
                "{INVALID_CODE} Too many failed attempts. Try again in {}.",
                crate::protocol::throttle::in_words(w)
            ),
        };
        return show_challenge(
            ctx,
            &req,
            &org,
            &client.client_name,
            pending,
            Some(&message),
            401,
        );
    };
    gate.succeeded(ctx, &org, &user).await?;
    audit::note(
        ctx,
        Kind::SignInSucceeded,
        slug,
        Some(&user.id),
        Some(&client.client_id),
        detail([("factor", json!(factor))]),
    );
    let sign_in = SignIn {
        org: &org,
        client: &client,
        request: &request,
        user: &user,
        auth_time: pending.auth_time,
        factors: pending.factors | OTP,
    };
    finish(ctx, &req, sign_in).await
}

/// Accept `code` for `user` once: a TOTP code for a step after the last accepted one, or an
/// unused recovery code. Which kind was used.
async fn accept_code(
    ctx: &Ctx,
    org: &Organization,
    user: &User,
    code: &str,
) -> Result<Option<&'static str>> {
    let db = ctx.primary()?;
    if mfa::is_recovery_shaped(code) {
        let used =
            store::consume_recovery(&db, &user.id, &mfa::recovery_hash(code), ctx.now).await?;
        return Ok(used.then_some("recovery_code"));
    }
    let Some(secret) = user
        .totp_secret_sealed
        .as_deref()
        .and_then(|s| open_secret(ctx, &user.id, s))
    else {
        return Ok(None);
    };
    let Some(step) = mfa::matching_step(&secret, code, ctx.now) else {
        return Ok(None);
    };
    let fresh = store::consume_step(&db, &org.slug, &user.id, step).await?;
    Ok(fresh.then_some("totp"))
}

fn secrets_key(ctx: &Ctx) -> [u8; 32] {
    derive_key(&ctx.config.key_encryption_secret, SECRETS_PURPOSE)
}

/// TOTP secrets are stored only sealed, bound to their user (associated data).
fn seal_secret(ctx: &Ctx, user_id: &str, secret: &[u8]) -> String {
    seal(&secrets_key(ctx), secret, user_id.as_bytes())
}

fn open_secret(ctx: &Ctx, user_id: &str, sealed: &str) -> Option<Vec<u8>> {
    open(&secrets_key(ctx), sealed, user_id.as_bytes())
}

/// POST /{org}/mfa/enrol: confirm the new secret with one code, store it sealed with ten
/// recovery codes (hashed), and show those codes once.
pub async fn handle_enrol(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Posted {
        org,
        form,
        pending,
        user,
    } = match posted(&mut req, ctx, slug).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let Stage::Enrol { secret, .. } = &pending.stage else {
        return start_again(&org);
    };
    let bytes = b64url_decode(secret).unwrap_or_default();
    let code = form.first("code").unwrap_or("").trim();
    let Some(step) = mfa::matching_step(&bytes, code, ctx.now) else {
        return show_enrol(
            ctx,
            &req,
            &org,
            &user,
            pending.clone(),
            Some(
                "That code does not match. Check the app shows this account and try the current code.",
            ),
            400,
        );
    };
    let codes: Vec<String> = (0..mfa::RECOVERY_CODES)
        .map(|_| mfa::recovery_code(random_bytes::<8>()))
        .collect();
    let hashes: Vec<String> = codes.iter().map(|c| mfa::recovery_hash(c)).collect();
    let sealed = seal_secret(ctx, &user.id, &bytes);
    if !store::enrol(
        &ctx.primary()?,
        slug,
        &user.id,
        &sealed,
        step,
        &hashes,
        ctx.now,
    )
    .await?
    {
        return pages::error(
            &org,
            409,
            "Two-step verification is already set up",
            "This account already has a second factor. Sign in again from the application.",
            "invalid_request",
            None,
        );
    }
    let client_id = pending.request.as_ref().map(|r| r.client_id.clone());
    audit::note(
        ctx,
        Kind::MfaEnrolled,
        slug,
        Some(&user.id),
        client_id.as_deref(),
        Default::default(),
    );
    let done = Pending {
        stage: Stage::Finish,
        factors: pending.factors | OTP,
        ..pending
    };
    let (state, csrf, set_cookie) = seal_for_page(ctx, &req, &org, done);
    let brand = pages::brand(&org);
    let action = format!("/{}/mfa/finish", org.slug);
    let html = ui::render(&RecoveryPage {
        brand: &brand,
        codes: &codes,
        action: &action,
        state: &state,
        csrf_token: &csrf,
    });
    let resp = respond(200, html, set_cookie)?;
    // The codes are on this page only: never cached anywhere.
    crate::edge::http::no_store(resp)
}

/// POST /{org}/mfa/finish: after the recovery codes, finish the sign-in (or the account page).
pub async fn handle_finish(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Posted {
        org, pending, user, ..
    } = match posted(&mut req, ctx, slug).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    if pending.stage != Stage::Finish || !mfa::has_second_factor(pending.factors) {
        return start_again(&org);
    }
    let Some(request) = pending.request.clone() else {
        return pages::message(
            &org,
            "Two-step verification is on",
            "From now on you will be asked for a code from your app when you sign in.",
        );
    };
    let client = match registered_client(ctx, &org, &request).await? {
        Ok(c) => c,
        Err(page) => return Ok(page),
    };
    let sign_in = SignIn {
        org: &org,
        client: &client,
        request: &request,
        user: &user,
        auth_time: pending.auth_time,
        factors: pending.factors,
    };
    finish(ctx, &req, sign_in).await
}

/// GET/POST /{org}/account/mfa: a signed-in user sets up a second factor by choice — the SSO
/// session, then the password again (so a borrowed, signed-in browser cannot add its owner's
/// attacker's authenticator), then the enrolment page.
pub async fn handle_account(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let title = "Two-step verification";
    let (org, form) =
        match page_request(&mut req, ctx, slug, Accept::GetOrPostSingle, title).await? {
            Ok(parts) => parts,
            Err(resp) => return Ok(resp),
        };
    let Some((session, user)) = sso::current(ctx, slug, &req).await? else {
        return pages::error(
            &org,
            401,
            title,
            "Sign in to one of your organization's applications first, then open this page again.",
            "login_required",
            None,
        );
    };
    if Policy::parse(&org.mfa) == Some(Policy::Off) {
        return pages::error(
            &org,
            403,
            title,
            "Your organization has not turned on two-step verification.",
            "access_denied",
            None,
        );
    }
    if user.totp_secret_sealed.is_some() {
        return pages::message(
            &org,
            title,
            "Two-step verification is already on for your account. To move it to another device, ask your administrator to reset it.",
        );
    }
    let password_step = Pending {
        request: None,
        user_id: user.id.clone(),
        auth_time: session.auth_time,
        factors: session.factors,
        stage: Stage::Password,
        csrf: String::new(),
        expires_at: 0,
    };
    let show_password = |error: Option<&str>, status: u16| {
        let (state, csrf, set_cookie) = seal_for_page(ctx, &req, &org, password_step.clone());
        let brand = pages::brand(&org);
        let action = format!("/{}/account/mfa", org.slug);
        let html = ui::render(&AccountPasswordPage {
            brand: &brand,
            username: &user.username,
            action: &action,
            state: &state,
            csrf_token: &csrf,
            error,
        });
        respond(status, html, set_cookie)
    };
    if req.method() == worker::Method::Get {
        return show_password(None, 200);
    }
    if let Some(page) = crate::oidc::login::cross_site(ctx, &req, &org, title)? {
        return Ok(page);
    }
    let cookie_csrf = cookies::read(header(&req, "Cookie").as_deref(), cookies::CSRF);
    let opened = open_pending(
        &ctx.config.key_encryption_secret,
        slug,
        form.first("state").unwrap_or(""),
        cookie_csrf.as_deref(),
        form.first("csrf_token"),
        ctx.now,
    );
    if !opened.is_some_and(|p| p.stage == Stage::Password && p.user_id == user.id) {
        return pages::error(
            &org,
            400,
            title,
            "This page has expired. Open it again.",
            "invalid_request",
            None,
        );
    }
    let gate = Gate::open(ctx, &org, &user.username).await?;
    if let Some(wait) = gate.locked_for(ctx.now_ms) {
        let message = format!(
            "Too many failed attempts. Try again in {}.",
            crate::protocol::throttle::in_words(wait)
        );
        let resp = show_password(Some(&message), 429)?;
        resp.headers().set("Retry-After", &wait.to_string())?;
        return Ok(resp);
    }
    if !signs_in_user(ctx, slug, &user, form.first("password").unwrap_or("")).await? {
        gate.failed(ctx, &org, Some(&user)).await?;
        audit::note(
            ctx,
            Kind::SignInFailed,
            slug,
            Some(&user.id),
            None,
            detail([("page", json!("account"))]),
        );
        return show_password(Some("Incorrect password."), 401);
    }
    gate.succeeded(ctx, &org, &user).await?;
    let secret = b64url(&random_bytes::<20>());
    let enrol = Pending {
        stage: Stage::Enrol {
            secret,
            required: false,
        },
        auth_time: ctx.now,
        ..password_step
    };
    show_enrol(ctx, &req, &org, &user, enrol, None, 200)
}
