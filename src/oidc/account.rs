//! The account page (issue 16, item 2): GET /{org}/account shows who is signed in and three
//! forms — change the password (POST /{org}/account/password), get new recovery codes (POST
//! /{org}/account/mfa/recovery-codes), turn off the second factor (POST
//! /{org}/account/mfa/remove; enrolment stays at /{org}/account/mfa) and sign out everywhere
//! (POST /{org}/account/sign-out-everywhere). No JavaScript.
//!
//! Everything needs the browser's live SSO session (oidc/sso.rs). Each form carries a sealed
//! state (oidc/form_state.rs) for its own step, bound to the CSRF cookie, to that session and to
//! its user: a form posted from another site, under another session (another user's), after a
//! sign-out, or to another form's action is refused with an error page and changes nothing. A
//! guess of the current password or a code is counted before it is checked, like a login
//! (oidc/attempts.rs). The rules are in protocol/account.rs.

use serde_json::json;
use worker::{Request, Response, Result};

use crate::edge::audit::{self, detail};
use crate::edge::context::{Ctx, now_millis};
use crate::edge::password::hash_password;
use crate::edge::store::account as store;
use crate::edge::store::mfa as mfa_store;
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::User;
use crate::oidc::attempts::{Attempt, Verdict, account_of};
use crate::oidc::form_state::{Authenticated, FormState, Step, StepKind, seal_state};
use crate::oidc::forms::{Submission, append_cookie, csrf_token, respond, submitted};
use crate::oidc::login::signs_in_user;
use crate::oidc::request::{Accept, page_request};
use crate::oidc::sso::{self, Current};
use crate::oidc::{backchannel, device, pages};
use crate::protocol::account::{TotpRemoval, new_password, totp_removal, waives_current_password};
use crate::protocol::audit::Kind;
use crate::protocol::logout_token::Ended;
use crate::protocol::mfa::{PWD, Policy};
use crate::protocol::throttle::in_words;
use crate::ui::{self, AccountPage};

const TITLE: &str = "Your account";
/// How long the account page's forms may be posted after it was shown.
const ACCOUNT_FORM_SECONDS: i64 = 15 * 60;
/// The refusal of "set a password" in a passwordless organization (`Organization::passwordless`).
const NO_PASSWORDS: &str =
    "Your organization does not use passwords: a password cannot be set or changed.";

fn too_many(wait: i64) -> String {
    format!("Too many failed attempts. Try again in {}.", in_words(wait))
}

fn signed_out(org: &Organization) -> Result<Response> {
    pages::error(
        org,
        401,
        TITLE,
        "You are not signed in here. Sign in to one of your organization's applications first, then open this page again.",
        "login_required",
        None,
    )
}

/// Who the page is for: the user, the session it is shown under (the hash of its id) and the
/// authentication that session carries.
pub(crate) struct Viewer<'a> {
    pub(crate) user: &'a User,
    session_hash: String,
    pub(crate) auth_time: i64,
    factors: u8,
}

impl<'a> Viewer<'a> {
    pub(crate) fn of(current: &'a Current) -> Self {
        Viewer {
            user: &current.user,
            session_hash: current.id_hash(),
            auth_time: current.session.auth_time,
            factors: current.session.factors,
        }
    }
}

/// What to say at the top of the page.
#[derive(Default)]
pub(crate) struct Said<'a> {
    pub(crate) notice: Option<&'a str>,
    pub(crate) error: Option<&'a str>,
}

/// The page with a fresh sealed state for each form.
pub(crate) async fn page(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    viewer: &Viewer<'_>,
    said: Said<'_>,
    status: u16,
) -> Result<Response> {
    let (csrf, set_cookie) = csrf_token(ctx, req, &org.slug);
    let seal = |step: Step| {
        let state = FormState {
            step,
            interaction: None,
            authenticated: Some(Authenticated {
                user_id: viewer.user.id.clone(),
                auth_time: viewer.auth_time,
                factors: viewer.factors,
                in_this_interaction: false,
            }),
            session: Some(viewer.session_hash.clone()),
            csrf: csrf.clone(),
            expires_at: ctx.now + ACCOUNT_FORM_SECONDS,
        };
        seal_state(&ctx.config.key_encryption_secret, &org.slug, &state)
    };
    let passkeys = crate::oidc::passkeys::section(ctx, org, viewer, &seal).await?;
    let slug = &org.slug;
    let policy = Policy::parse(&org.mfa);
    let enrol_link = format!("/{slug}/account/mfa");
    let html = ui::render(&AccountPage {
        brand: &pages::brand(org),
        username: &viewer.user.username,
        email: &viewer.user.email,
        notice: said.notice,
        error: said.error,
        csrf_token: &csrf,
        password_action: &format!("/{slug}/account/password"),
        password_state: &seal(Step::ChangePassword),
        has_password: viewer.user.password_hash.is_some(),
        may_set_password: !org.passwordless(),
        set_needs_sign_in: viewer.user.password_hash.is_none() && !recent(ctx, viewer),
        current_password_waived: waives_current_password(viewer.factors, recent(ctx, viewer)),
        totp_on: viewer.user.totp_secret_sealed.is_some(),
        may_remove: match totp_removal(&org.mfa, org.passkeys) {
            TotpRemoval::Allowed => true,
            TotpRemoval::WhilePasskeyRemains => {
                passkeys.as_ref().is_some_and(|p| !p.rows.is_empty())
            }
            TotpRemoval::Refused => false,
        },
        remove_action: &format!("/{slug}/account/mfa/remove"),
        remove_state: &seal(Step::RemoveTotp),
        renew_action: &format!("/{slug}/account/mfa/recovery-codes"),
        renew_state: &seal(Step::RenewRecoveryCodes),
        enrol_link: (policy != Some(Policy::Off)).then_some(enrol_link.as_str()),
        sign_out_action: &format!("/{slug}/account/sign-out-everywhere"),
        sign_out_state: &seal(Step::SignOutEverywhere),
        passkeys: passkeys.as_ref(),
        script: crate::ui::passkey::SCRIPT,
    });
    if passkeys.is_some() {
        return crate::oidc::forms::respond_with_script(status, html, set_cookie);
    }
    respond(status, html, set_cookie)
}

/// GET /{org}/account.
pub async fn handle_page(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    if req.method() != worker::Method::Get {
        return crate::edge::http::method_not_allowed("GET");
    }
    let (org, _) = match page_request(&mut req, ctx, slug, Accept::GetOrPostSingle, TITLE).await? {
        Ok(parts) => parts,
        Err(resp) => return Ok(resp),
    };
    let Some(current) = sso::current(ctx, slug, &req).await? else {
        // Not signed in here: sign in (every rule of a sign-in applies), then come back.
        return crate::edge::http::redirect(
            &crate::oidc::account_client::sign_in_path(ctx, slug),
            302,
        );
    };
    page(ctx, &req, &org, &Viewer::of(&current), Said::default(), 200).await
}

/// GET /{org}/account/signed-in: where the account page's own sign-in lands with a code nobody
/// will redeem (oidc/account_client.rs); the session it started is what counts. On to the page,
/// without the code in the address.
pub async fn handle_signed_in(req: Request, _ctx: &Ctx, slug: &str) -> Result<Response> {
    if req.method() != worker::Method::Get {
        return crate::edge::http::method_not_allowed("GET");
    }
    crate::edge::http::redirect(&format!("/{slug}/account"), 303)
}

/// A posted account form: from our origin, its state for `step`, shown under this browser's live
/// session to that session's user. `Err` is the error page; nothing was changed.
pub(crate) async fn posted(
    req: &mut Request,
    ctx: &Ctx,
    slug: &str,
    step: StepKind,
) -> Result<std::result::Result<(Submission, Current), Response>> {
    let submission = match submitted(req, ctx, slug, TITLE, step).await? {
        Ok(s) => s,
        Err(resp) => return Ok(Err(resp)),
    };
    let Some(current) = sso::current(ctx, slug, req).await? else {
        return signed_out(&submission.org).map(Err);
    };
    let state = &submission.state;
    let same_user = state
        .authenticated
        .as_ref()
        .is_some_and(|a| a.user_id == current.user.id);
    if !(state.shown_under(Some(&current.id_hash())) && same_user) {
        return crate::oidc::forms::session_changed(&submission.org, TITLE).map(Err);
    }
    Ok(Ok((submission, current)))
}

/// The current password, guessed under the account's limits.
pub(crate) async fn check_password(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    user: &User,
    password: &str,
) -> Result<Verdict> {
    let trusted = device::knows(ctx, req, &org.slug, &user.id);
    // A right password resets the account's failures only when no second factor protects it
    // (as at login: the count must not be reset between guesses of a code).
    let reset = user.totp_secret_sealed.is_none();
    let (verdict, _) = Attempt::new(ctx, org, account_of(&user.id), trusted)
        .guess(ctx, reset, || async {
            Ok((signs_in_user(ctx, &org.slug, user, password).await?, ()))
        })
        .await?;
    Ok(verdict)
}

/// The confirmation of a second-factor change: the password, or — when one is given — a TOTP
/// or recovery code, each counted like a sign-in. The verdict, and what to say if it is wrong.
async fn password_or_code(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    user: &User,
    form: &crate::protocol::form::Form,
) -> Result<(Verdict, &'static str)> {
    let code = form.first("code").unwrap_or("").trim();
    if code.is_empty() {
        let password = form.first("password").unwrap_or("");
        let verdict = check_password(ctx, req, org, user, password).await?;
        return Ok((verdict, "The password is incorrect."));
    }
    let trusted = device::knows(ctx, req, &org.slug, &user.id);
    let attempt =
        Attempt::new(ctx, org, account_of(&user.id), trusted).one_time_code(ctx, org, &user.id);
    let (verdict, _) = crate::oidc::mfa::check_code(ctx, org, user, code, &attempt).await?;
    Ok((verdict, "That code is not valid."))
}

/// The page again after a refused guess: 401 with the wrong-guess message, or 429 (with
/// Retry-After) when the account is waiting out failures.
pub(crate) async fn refused_guess(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    viewer: &Viewer<'_>,
    verdict: Verdict,
    wrong: &str,
) -> Result<Response> {
    match verdict {
        Verdict::Throttled { wait } => {
            audit::note(
                ctx,
                Kind::SignInThrottled,
                &org.slug,
                Some(&viewer.user.id),
                None,
                detail([("retry_after", json!(wait)), ("page", json!("account"))]),
            );
            let message = too_many(wait);
            let said = Said {
                error: Some(&message),
                ..Said::default()
            };
            let resp = page(ctx, req, org, viewer, said, 429).await?;
            resp.headers().set("Retry-After", &wait.to_string())?;
            Ok(resp)
        }
        Verdict::Wrong { wait } => {
            audit::note(
                ctx,
                Kind::SignInFailed,
                &org.slug,
                Some(&viewer.user.id),
                None,
                detail([("page", json!("account"))]),
            );
            let message = match wait {
                None => wrong.to_string(),
                Some(w) => format!("{wrong} {}", too_many(w)),
            };
            let said = Said {
                error: Some(&message),
                ..Said::default()
            };
            page(ctx, req, org, viewer, said, 401).await
        }
        Verdict::Accepted => unreachable!("only refusals are shown here"),
    }
}

/// Whether the session's sign-in is recent enough to add a way of signing in without proving
/// a password again (the same bound as adding a passkey).
fn recent(ctx: &Ctx, viewer: &Viewer<'_>) -> bool {
    ctx.now - viewer.auth_time <= crate::oidc::passkeys::FRESH_SECONDS
}

/// POST /{org}/account/password: the new password through the policy first (a form that cannot
/// succeed spends no guess), then the current one, counted; then the new hash is stored with the
/// user's other sessions ended and every grant revoked, the relying parties told, and this
/// browser given a fresh session. A user without a password (a passkey account) sets one with
/// no current password to give, but only within `FRESH_SECONDS` of signing in: a session cookie
/// taken later must not be enough to add a password to the account. Within the same time, a
/// sign-in with a passkey or a second factor waives the current password too
/// (protocol/account.rs `waives_current_password`). A passwordless
/// organization (`Organization::passwordless`) takes none.
pub async fn handle_password(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (Submission { org, form, .. }, current) =
        match posted(&mut req, ctx, slug, StepKind::ChangePassword).await? {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
    let viewer = Viewer::of(&current);
    let user = &current.user;
    if org.passwordless() {
        let said = Said {
            error: Some(NO_PASSWORDS),
            ..Said::default()
        };
        return page(ctx, &req, &org, &viewer, said, 403).await;
    }
    let current_password = form.first("current_password").unwrap_or("");
    let new = match new_password(
        current_password,
        form.first("new_password").unwrap_or(""),
        form.first("confirm_password").unwrap_or(""),
    ) {
        Ok(n) => n,
        Err(refused) => {
            let message = refused.message();
            let said = Said {
                error: Some(&message),
                ..Said::default()
            };
            return page(ctx, &req, &org, &viewer, said, 400).await;
        }
    };
    let waived = current_password.is_empty()
        && waives_current_password(viewer.factors, recent(ctx, &viewer));
    if user.password_hash.is_none() {
        if !recent(ctx, &viewer) {
            let said = Said {
                error: Some(
                    "Setting a password needs a recent sign-in: sign out, sign in again with your passkey, then set it.",
                ),
                ..Said::default()
            };
            return page(ctx, &req, &org, &viewer, said, 401).await;
        }
    } else if waived {
        // A recent passkey or second-factor check stands for the current password. One typed
        // all the same is checked (and counted) below, like any other.
    } else {
        let verdict = check_password(ctx, &req, &org, user, current_password).await?;
        if verdict != Verdict::Accepted {
            return refused_guess(
                ctx,
                &req,
                &org,
                &viewer,
                verdict,
                "The current password is incorrect.",
            )
            .await;
        }
    }
    let hash = hash_password(&new).await?;
    // Told before the grants are revoked: the targets are the live grants (store/grants.rs).
    backchannel::announce(ctx, slug, &user.id, Ended::User).await;
    let not_before = now_millis();
    if !store::change_password(&ctx.primary()?, slug, &user.id, &hash, not_before, ctx.now).await? {
        return signed_out(&org);
    }
    audit::note(
        ctx,
        Kind::PasswordChanged,
        slug,
        Some(&user.id),
        None,
        Default::default(),
    );
    // This browser stays signed in: a new session (new id, started after the not-before time),
    // authenticated by the password just given, with the factors the old one had.
    // A password set where there was none, or changed without the current one, proved nothing
    // now: the session keeps its sign-in time and factors, so it cannot stretch a session's
    // freshness.
    let had_password = user.password_hash.is_some();
    let (auth_time, factors) = if had_password && !waived {
        (ctx.now, current.session.factors | PWD)
    } else {
        (viewer.auth_time, current.session.factors)
    };
    sso::forget(ctx, slug, &req).await?;
    let sso::Started {
        cookie,
        hash: session_hash,
        ..
    } = sso::start(ctx, slug, &user.id, auth_time, factors).await?;
    let mut updated = user.clone();
    updated.password_hash = Some(hash);
    let fresh = Viewer {
        user: &updated,
        session_hash,
        auth_time,
        factors,
    };
    let said = Said {
        notice: Some(if had_password {
            "Your password was changed. You are still signed in here; every other device and application was signed out."
        } else {
            "Your password was set. You are still signed in here; every other device and application was signed out."
        }),
        ..Said::default()
    };
    let resp = page(ctx, &req, &org, &fresh, said, 200).await?;
    append_cookie(resp, &cookie)
}

/// POST /{org}/account/sign-out-everywhere: every session of the user ends at every location
/// (the not-before time), every grant is revoked, every relying party holding one is told
/// (back-channel logout by `sub`), and this browser's cookies are cleared.
pub async fn handle_sign_out(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (Submission { org, .. }, current) =
        match posted(&mut req, ctx, slug, StepKind::SignOutEverywhere).await? {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
    let user_id = current.user.id.as_str();
    backchannel::announce(ctx, slug, user_id, Ended::User).await;
    let not_before = now_millis();
    store::sign_out_everywhere(&ctx.primary()?, slug, user_id, not_before, ctx.now).await?;
    let (clear, _) = sso::end(ctx, slug, &req).await?;
    audit::note(
        ctx,
        Kind::LogoutEverywhere,
        slug,
        Some(user_id),
        None,
        detail([("by", json!("user"))]),
    );
    let resp = pages::message(
        &org,
        "Signed out everywhere",
        "Every session of yours has ended, on every device and in every application. Sign in again to continue.",
    )?;
    let resp = append_cookie(resp, &clear[0])?;
    append_cookie(resp, &clear[1])
}

/// POST /{org}/account/mfa/remove: refused where the organization requires a second factor and
/// no passkey would stand in for it (protocol/account.rs `totp_removal`); otherwise the password
/// or a current code (TOTP or recovery), counted, then the factor and its recovery codes are
/// removed — where a passkey must remain, only if it still does at the primary.
pub async fn handle_remove_totp(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (Submission { org, form, .. }, current) =
        match posted(&mut req, ctx, slug, StepKind::RemoveTotp).await? {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
    let viewer = Viewer::of(&current);
    let user = &current.user;
    let removal = totp_removal(&org.mfa, org.passkeys);
    // Asked before the password is: no guess is spent on a removal that cannot happen. (The
    // removal's own statement decides again, for a passkey removed at this very moment.)
    let no_passkey = removal == TotpRemoval::WhilePasskeyRemains
        && crate::edge::store::passkeys::list(&ctx.primary()?, slug, &user.id)
            .await?
            .is_empty();
    if removal == TotpRemoval::Refused || no_passkey {
        return pages::error(
            &org,
            403,
            "Two-step verification is required",
            "Your organization requires two-step verification, so it cannot be turned off. If you lost your device, ask your administrator to reset it.",
            "access_denied",
            None,
        );
    }
    if user.totp_secret_sealed.is_none() {
        let said = Said {
            notice: Some("Two-step verification is not on."),
            ..Said::default()
        };
        return page(ctx, &req, &org, &viewer, said, 200).await;
    }
    let (verdict, wrong) = password_or_code(ctx, &req, &org, user, &form).await?;
    if verdict != Verdict::Accepted {
        return refused_guess(ctx, &req, &org, &viewer, verdict, wrong).await;
    }
    let while_passkey = removal == TotpRemoval::WhilePasskeyRemains;
    if !mfa_store::reset(&ctx.primary()?, slug, &user.id, while_passkey).await? {
        // Required, and no passkey left to stand in for it (or removed at this moment).
        let said = Said {
            error: Some(
                "Your organization requires two-step verification, and your authenticator app is your only second factor. Add a passkey before you turn it off.",
            ),
            ..Said::default()
        };
        return page(ctx, &req, &org, &viewer, said, 409).await;
    }
    audit::note(
        ctx,
        Kind::MfaRemoved,
        slug,
        Some(&user.id),
        None,
        Default::default(),
    );
    let mut without = user.clone();
    without.totp_secret_sealed = None;
    let viewer = Viewer {
        user: &without,
        ..viewer
    };
    let said = Said {
        notice: Some("Two-step verification is off."),
        ..Said::default()
    };
    page(ctx, &req, &org, &viewer, said, 200).await
}

/// POST /{org}/account/mfa/recovery-codes: the password or a current code, counted; then ten new
/// recovery codes under a new key replace every earlier one (used or not), shown once.
pub async fn handle_recovery_codes(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let (Submission { org, form, .. }, current) =
        match posted(&mut req, ctx, slug, StepKind::RenewRecoveryCodes).await? {
            Ok(p) => p,
            Err(resp) => return Ok(resp),
        };
    let viewer = Viewer::of(&current);
    let user = &current.user;
    let (Some(_), Some(secret_id)) = (&user.totp_secret_sealed, &user.totp_secret_id) else {
        let said = Said {
            notice: Some("Two-step verification is not on."),
            ..Said::default()
        };
        return page(ctx, &req, &org, &viewer, said, 200).await;
    };
    let (verdict, wrong) = password_or_code(ctx, &req, &org, user, &form).await?;
    if verdict != Verdict::Accepted {
        return refused_guess(ctx, &req, &org, &viewer, verdict, wrong).await;
    }
    let codes: Vec<String> = (0..crate::protocol::mfa::RECOVERY_CODES)
        .map(|_| crate::protocol::mfa::recovery_code(crate::crypto::random_bytes::<8>()))
        .collect();
    let (key_sealed, hashes) = crate::oidc::factor_secrets::recovery_set(ctx, &user.id, &codes);
    let db = ctx.primary()?;
    if !mfa_store::renew_recovery_codes(&db, slug, &user.id, secret_id, &key_sealed, &hashes)
        .await?
    {
        // Reset or enrolled again since the page was read: nothing was changed.
        return pages::error(
            &org,
            409,
            TITLE,
            "Your two-step verification changed since this page was shown. Open your account page again.",
            "invalid_request",
            None,
        );
    }
    audit::note(
        ctx,
        Kind::RecoveryCodesRenewed,
        slug,
        Some(&user.id),
        None,
        Default::default(),
    );
    let html = ui::render(&ui::AccountCodesPage {
        brand: &pages::brand(&org),
        codes: &codes,
        back: &format!("/{slug}/account"),
    });
    crate::edge::http::html(200, html)
}
