//! The second factor's forms: the challenge (POST /{org}/mfa), the enrolment with its
//! server-rendered QR code (POST /{org}/mfa/enrol), the recovery codes shown once (POST
//! /{org}/mfa/finish), and the account page where a user enrols by choice (/{org}/account/mfa:
//! the SSO session and a fresh password). All work without JavaScript.
//!
//! Each form's state (oidc/form_state.rs) names its step, the authentication so far and the SSO
//! session it was shown under; what a completed factor leads to is decided by the gate
//! (oidc/interaction.rs). Every guess of a code is counted before it is answered
//! (oidc/attempts.rs).

use serde_json::json;
use worker::{Request, Response, Result};

use crate::crypto::{b64url, b64url_decode, random_bytes};
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::store::mfa as store;
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::{User, get_user};
use crate::oidc::attempts::{Attempt, Verdict, account_of};
use crate::oidc::factor_secrets::{enrolment, open_secret, recovery_hashes};
use crate::oidc::form_state::{Authenticated, FormState, Step, StepKind, open_state};
use crate::oidc::forms::{
    Submission, registered_client, respond, seal_for_page, session_changed, submitted,
};
use crate::oidc::interaction::{self, Continue, Origin};
use crate::oidc::request::{Accept, header, page_request};
use crate::oidc::sso::{self, Current};
use crate::oidc::{cookies, device, pages, screens};
use crate::protocol::audit::Kind;
use crate::protocol::mfa::{self, OTP, PWD, Policy};
use crate::protocol::throttle::in_words;
use crate::ui::{self, AccountPasswordPage};

const TITLE: &str = "Sign-in could not continue";
const INVALID_CODE: &str =
    "That code is not valid. Enter the current code from your app, or a recovery code.";

fn too_many(wait: i64) -> String {
    format!("Too many failed attempts. Try again in {}.", in_words(wait))
}

/// A second-factor form, checked: its state for this step, shown under the browser's current
/// session if it was shown under one, with an authentication, and its user still enabled.
pub(crate) struct Posted {
    pub org: Organization,
    pub form: crate::protocol::form::Form,
    pub state: FormState,
    pub authenticated: Authenticated,
    pub user: User,
    /// The session the form was shown under (a step-up), if any.
    current: Option<Current>,
}

pub(crate) async fn posted(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    step: StepKind,
) -> Result<std::result::Result<Posted, Response>> {
    let Submission {
        org, form, state, ..
    } = match submitted(req, ctx, slug, TITLE, step).await? {
        Ok(s) => s,
        Err(resp) => return Ok(Err(resp)),
    };
    let Some(authenticated) = state.authenticated.clone() else {
        return session_changed(&org, TITLE).map(Err);
    };
    let current = match &state.session {
        None => None,
        Some(_) => {
            let current = sso::current(ctx, slug, req).await?;
            let hash = current.as_ref().map(Current::id_hash);
            if !state.shown_under(hash.as_deref()) {
                return session_changed(&org, TITLE).map(Err);
            }
            current
        }
    };
    let user_id = authenticated.user_id.as_str();
    let user = ctx
        .found(|db| async move { get_user(&db, slug, user_id).await })
        .await?;
    let Some(user) = user.filter(|u| !u.disabled) else {
        let page = pages::error(
            &org,
            400,
            TITLE,
            "This account can no longer sign in.",
            "access_denied",
            None,
        )?;
        return Ok(Err(page));
    };
    Ok(Ok(Posted {
        org,
        form,
        state,
        authenticated,
        user,
        current,
    }))
}

/// Go on with the sign-in after a factor was given: back to the gate, with the authentication
/// as it now stands. On the account pages (no authorization to continue), a message.
pub(crate) async fn go_on(ctx: &Ctx, req: &Request, posted: Posted) -> Result<Response> {
    let Posted {
        org,
        state,
        authenticated,
        user,
        current,
        ..
    } = posted;
    let Some(interaction) = state.interaction else {
        if let Some(current) = &current {
            // The account page's enrolment: the session now has the factor too.
            let (cookie, _) = sso::upgrade(ctx, &org.slug, current, authenticated.factors).await?;
            let resp = pages::message(
                &org,
                "Two-step verification is on",
                "From now on you will be asked for a code from your app when you sign in.",
            )?;
            return crate::oidc::forms::append_cookie(resp, &cookie);
        }
        // The enrolment that followed a one-time link (oidc/setup_link.rs): the password was set
        // in this interaction and the factor just added, and no session was started before
        // both were given: it starts now, with both.
        if authenticated.in_this_interaction && state.session.is_none() {
            return crate::oidc::setup_link::signed_in(
                ctx,
                req,
                &org,
                &authenticated.user_id,
                authenticated.factors,
            )
            .await;
        }
        return pages::message(
            &org,
            "Two-step verification is on",
            "From now on you will be asked for a code from your app when you sign in.",
        );
    };
    let request = &interaction.request;
    let client =
        match registered_client(ctx, &org, &request.client_id, &request.redirect_uri).await? {
            Ok(c) => c,
            Err(page) => return Ok(page),
        };
    interaction::proceed(
        ctx,
        req,
        Continue {
            org: &org,
            client: &client,
            interaction: &interaction,
            authenticated: Some(authenticated),
            user: Some(&user),
            origin: match &current {
                Some(c) => Origin::Session(c),
                None => Origin::Fresh,
            },
            consented: false,
            status: 303,
        },
    )
    .await
}

/// The name of the client the posted sign-in is for, as the second-factor page shows it; `Err`:
/// the error page (no sign-in to continue, or the client no longer has its redirect URI).
async fn client_name(ctx: &Ctx, posted: &Posted) -> Result<std::result::Result<String, Response>> {
    let Some(i) = &posted.state.interaction else {
        return session_changed(&posted.org, TITLE).map(Err);
    };
    Ok(registered_client(
        ctx,
        &posted.org,
        &i.request.client_id,
        &i.request.redirect_uri,
    )
    .await?
    .map(|c| c.client_name))
}

/// The second-factor page again, with `message`, for the same sign-in (a fresh code form and,
/// where the user has one, a fresh passkey challenge): after a refused passkey.
pub(crate) async fn ask_again(
    ctx: &Ctx,
    req: &Request,
    posted: &Posted,
    message: &str,
    status: u16,
) -> Result<Response> {
    let client_name = match client_name(ctx, posted).await? {
        Ok(name) => name,
        Err(page) => return Ok(page),
    };
    let mut state = posted.state.clone();
    state.step = Step::Challenge;
    screens::challenge(
        ctx,
        req,
        &posted.org,
        &client_name,
        &posted.user,
        state,
        Some(message),
        status,
    )
}

/// POST /{org}/mfa: check a TOTP or recovery code, counted before it is answered; a code is
/// accepted once (a TOTP step must be later than the last accepted, a recovery code unused).
pub async fn handle_challenge(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let mut posted = match posted(&mut req, ctx, slug, StepKind::Challenge).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let client_name = match client_name(ctx, &posted).await? {
        Ok(name) => name,
        Err(page) => return Ok(page),
    };
    let code = posted.form.first("code").unwrap_or("").trim().to_string();
    let (org, user) = (&posted.org, &posted.user);
    let trusted = device::knows(ctx, &req, slug, &user.id);
    let attempt =
        Attempt::new(ctx, org, account_of(&user.id), trusted).one_time_code(ctx, org, &user.id);
    let verdict = check_code(ctx, org, user, &code, &attempt).await?;
    let client_id = posted
        .state
        .interaction
        .as_ref()
        .map(|i| i.request.client_id.clone());
    match verdict {
        (Verdict::Accepted, factor) => {
            audit::note(
                ctx,
                Kind::SecondFactorPassed,
                slug,
                Some(&user.id),
                client_id.as_deref(),
                detail([("factor", json!(factor))]),
            );
            posted.authenticated.factors |= OTP;
            go_on(ctx, &req, posted).await
        }
        (Verdict::Wrong { wait }, _) => {
            audit::note(
                ctx,
                Kind::SignInFailed,
                slug,
                Some(&user.id),
                client_id.as_deref(),
                detail([("factor", json!("second"))]),
            );
            let message = match wait {
                None => INVALID_CODE.to_string(),
                Some(w) => format!("{INVALID_CODE} {}", too_many(w)),
            };
            let state = posted.state.clone();
            screens::challenge(
                ctx,
                &req,
                &posted.org,
                &client_name,
                &posted.user,
                state,
                Some(&message),
                401,
            )
        }
        (Verdict::Throttled { wait }, _) => {
            let note = detail([("retry_after", json!(wait)), ("factor", json!("second"))]);
            audit::note(
                ctx,
                Kind::SignInThrottled,
                slug,
                Some(&user.id),
                client_id.as_deref(),
                note,
            );
            let state = posted.state.clone();
            let resp = screens::challenge(
                ctx,
                &req,
                &posted.org,
                &client_name,
                &posted.user,
                state,
                Some(&too_many(wait)),
                429,
            )?;
            resp.headers().set("Retry-After", &wait.to_string())?;
            Ok(resp)
        }
    }
}

/// Judge `code` for `user` under `attempt`: reserved first, then checked — a recovery code by
/// consuming it at the primary, a TOTP code here and its step consumed at the primary (a code
/// already used is a wrong guess like any other). Which kind of code it was.
pub(crate) async fn check_code(
    ctx: &Ctx,
    org: &Organization,
    user: &User,
    code: &str,
    attempt: &Attempt,
) -> Result<(Verdict, &'static str)> {
    let db = ctx.primary()?;
    if mfa::is_recovery_shaped(code) {
        // The forms the code may be stored in, before the attempt is reserved: a key no configured
        // secret opens fails here, loudly and without counting a guess (edge/sealed.rs).
        let hashes = recovery_hashes(ctx, org, user, code).await?;
        let (verdict, _) = attempt
            .guess(ctx, true, || async {
                Ok((
                    store::consume_recovery(&db, &user.id, &hashes, ctx.now).await?,
                    (),
                ))
            })
            .await?;
        return Ok((verdict, "recovery_code"));
    }
    // Opened before the attempt is reserved, like the recovery-code key above.
    let secret = open_secret(ctx, org, user).await?;
    let (verdict, _) = attempt
        .guess(ctx, true, || async {
            let step = secret
                .as_deref()
                .and_then(|secret| mfa::matching_step(secret, code, ctx.now));
            let Some(step) = step else {
                return Ok((false, ()));
            };
            // Only for the enrolment whose secret the code was checked against (finding 12).
            let secret_id = user.totp_secret_id.as_deref();
            Ok((
                store::consume_step(&db, &org.slug, &user.id, secret_id, step).await?,
                (),
            ))
        })
        .await?;
    Ok((verdict, "totp"))
}

/// POST /{org}/mfa/enrol: confirm the new secret with one code, store it sealed with ten
/// recovery codes (hashed), and show those codes once.
pub async fn handle_enrol(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let posted = match posted(&mut req, ctx, slug, StepKind::Enrol).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    let Step::Enrol { secret, .. } = &posted.state.step else {
        return session_changed(&posted.org, TITLE);
    };
    let bytes = b64url_decode(secret).unwrap_or_default();
    let code = posted.form.first("code").unwrap_or("").trim();
    let Some(step) = mfa::matching_step(&bytes, code, ctx.now) else {
        return screens::enrol(
            ctx,
            &req,
            &posted.org,
            &posted.user,
            posted.state.clone(),
            Some(
                "That code does not match. Check the app shows this account and try the current code.",
            ),
            400,
        );
    };
    let user = &posted.user;
    let codes: Vec<String> = (0..mfa::RECOVERY_CODES)
        .map(|_| mfa::recovery_code(random_bytes::<8>()))
        .collect();
    let factor = enrolment(ctx, &user.id, &bytes, &codes);
    if !store::enrol(&ctx.primary()?, slug, &user.id, &factor, step, ctx.now).await? {
        return pages::error(
            &posted.org,
            409,
            "Two-step verification is already set up",
            "This account already has a second factor. Sign in again from the application.",
            "invalid_request",
            None,
        );
    }
    let client_id = posted
        .state
        .interaction
        .as_ref()
        .map(|i| i.request.client_id.clone());
    audit::note(
        ctx,
        Kind::MfaEnrolled,
        slug,
        Some(&user.id),
        client_id.as_deref(),
        Default::default(),
    );
    let mut authenticated = posted.authenticated.clone();
    authenticated.factors |= OTP;
    let done = FormState {
        step: Step::Finish,
        authenticated: Some(authenticated),
        ..posted.state.clone()
    };
    screens::recovery(ctx, &req, &posted.org, &codes, done)
}

/// POST /{org}/mfa/finish: after the recovery codes, go on with the sign-in (or end the
/// account page's enrolment).
pub async fn handle_finish(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let posted = match posted(&mut req, ctx, slug, StepKind::Finish).await? {
        Ok(p) => p,
        Err(resp) => return Ok(resp),
    };
    if !mfa::has_second_factor(posted.authenticated.factors) {
        return session_changed(&posted.org, TITLE);
    }
    go_on(ctx, &req, posted).await
}

/// GET/POST /{org}/account/mfa: a signed-in user sets up a second factor by choice — the SSO
/// session, then the password again (counted like a login; so a borrowed, signed-in browser
/// cannot add an attacker's authenticator), then the enrolment page.
pub async fn handle_account(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let title = "Two-step verification";
    let (org, form) =
        match page_request(&mut req, ctx, slug, Accept::GetOrPostSingle, title).await? {
            Ok(parts) => parts,
            Err(resp) => return Ok(resp),
        };
    let Some(current) = sso::current(ctx, slug, &req).await? else {
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
    let user = &current.user;
    let already_on = || {
        pages::message(
            &org,
            title,
            "Two-step verification is already on for your account. To move it to another device, ask your administrator to reset it.",
        )
    };
    let from_session = Authenticated {
        user_id: user.id.clone(),
        auth_time: current.session.auth_time,
        factors: current.session.factors,
        in_this_interaction: false,
    };
    let password_step = FormState {
        step: Step::AccountPassword,
        interaction: None,
        authenticated: Some(from_session.clone()),
        session: Some(current.id_hash()),
        csrf: String::new(),
        expires_at: 0,
    };
    let show_password = |error: Option<&str>, status: u16| {
        let sealed = seal_for_page(
            ctx,
            &req,
            &org,
            password_step.clone(),
            screens::MFA_FORM_SECONDS,
        );
        let brand = pages::brand(&org);
        let action = format!("/{}/account/mfa", org.slug);
        let html = ui::render(&AccountPasswordPage {
            brand: &brand,
            username: &user.username,
            action: &action,
            state: &sealed.state,
            csrf_token: &sealed.csrf,
            error,
        });
        respond(status, html, sealed.set_cookie)
    };
    if req.method() == worker::Method::Get {
        if user.totp_secret_sealed.is_some() {
            return already_on();
        }
        return show_password(None, 200);
    }
    if let Some(page) = crate::oidc::forms::cross_site(ctx, &req, &org, title)? {
        return Ok(page);
    }
    let cookie_csrf = cookies::read(header(&req, "Cookie").as_deref(), cookies::CSRF);
    let opened = open_state(
        &ctx.config.key_encryption_secret,
        slug,
        form.first("state").unwrap_or(""),
        cookie_csrf.as_deref(),
        form.first("csrf_token"),
        ctx.now,
        StepKind::AccountPassword,
    );
    let shown_here = opened.as_ref().is_ok_and(|s| {
        s.shown_under(Some(&current.id_hash()))
            && s.authenticated
                .as_ref()
                .is_some_and(|a| a.user_id == user.id)
    });
    if !shown_here {
        return pages::error(
            &org,
            400,
            title,
            "This page has expired. Open it again.",
            "invalid_request",
            None,
        );
    }
    if user.totp_secret_sealed.is_some() {
        return already_on();
    }
    let password = form.first("password").unwrap_or("");
    let trusted = device::knows(ctx, &req, slug, &user.id);
    let (verdict, _) = Attempt::new(ctx, &org, account_of(&user.id), trusted)
        .guess(ctx, true, || async {
            let right = crate::oidc::login::signs_in_user(ctx, slug, user, password).await?;
            Ok((right, ()))
        })
        .await?;
    match verdict {
        Verdict::Throttled { wait } => {
            let resp = show_password(Some(&too_many(wait)), 429)?;
            resp.headers().set("Retry-After", &wait.to_string())?;
            Ok(resp)
        }
        Verdict::Wrong { wait } => {
            audit::note(
                ctx,
                Kind::SignInFailed,
                slug,
                Some(&user.id),
                None,
                detail([("page", json!("account"))]),
            );
            let message = match wait {
                None => "Incorrect password.".to_string(),
                Some(w) => format!("Incorrect password. {}", too_many(w)),
            };
            show_password(Some(&message), 401)
        }
        Verdict::Accepted => {
            let enrol = FormState {
                step: Step::Enrol {
                    secret: b64url(&random_bytes::<20>()),
                    required: false,
                },
                authenticated: Some(Authenticated {
                    factors: from_session.factors | PWD,
                    ..from_session
                }),
                ..password_step.clone()
            };
            screens::enrol(ctx, &req, &org, user, enrol, None, 200)
        }
    }
}
