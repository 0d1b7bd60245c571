//! The sign-in pages, rendered with their sealed state: the login form, consent, the second
//! factor's challenge and enrolment, and the recovery codes. Rendering only: what comes next is
//! decided by the gate (oidc/interaction.rs), and the POST handlers live with their endpoints.

use worker::{Request, Response, Result};

use crate::crypto::b64url_decode;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::User;
use crate::oidc::form_state::seal_state;
use crate::oidc::form_state::{FormState, Interaction, Step};
use crate::oidc::forms::{respond, seal_for_page};
use crate::oidc::pages;
use crate::protocol::lifetimes::LOGIN_FORM_SECONDS;
use crate::protocol::mfa;
use crate::ui::{
    self, ConsentPage, EnrolPage, LoginPage, MfaPage, MfaPasskey, RecoveryPage, describe_scope,
};

/// Long enough to fetch a phone and scan a code; short enough that a forgotten tab is useless.
pub const MFA_FORM_SECONDS: i64 = 10 * 60;

/// The login form for `interaction`. The name typed before (or the `login_hint`) is kept.
pub fn login(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    interaction: &Interaction,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    let state = FormState {
        step: Step::Login,
        interaction: Some(interaction.clone()),
        authenticated: None,
        session: None,
        csrf: String::new(),
        expires_at: 0,
    };
    let sealed = seal_for_page(ctx, req, org, state, LOGIN_FORM_SECONDS);
    // The passkey form's own state, with the challenge: bound to the same CSRF cookie, the
    // organization and the same expiry; claimed once when posted (oidc/passkeys.rs).
    let passkey = org
        .passkeys
        .then(|| crate::oidc::passkeys::sign_in_offer(ctx, org, interaction, &sealed.csrf));
    let brand = pages::brand(org);
    let action = format!("/{}/login", org.slug);
    let forgot =
        crate::edge::email::configured(ctx).then(|| format!("/{}/forgot-password", org.slug));
    // The links carry the same sealed state as the form (oidc/federation.rs opens it).
    let connections: Vec<(String, String)> = org
        .connection_buttons
        .iter()
        .map(|b| {
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("request", &sealed.state)
                .finish();
            (
                format!("/{}/connections/{}/start?{query}", org.slug, b.id),
                b.label.clone(),
            )
        })
        .collect();
    let html = ui::render(&LoginPage {
        brand: &brand,
        client_name,
        action: &action,
        request: &sealed.state,
        csrf_token: &sealed.csrf,
        username: interaction.request.login_hint.as_deref().unwrap_or(""),
        error,
        // Where second factors are optional, the page says where to set one up (after signing in).
        account_mfa: (org.mfa == "optional")
            .then(|| format!("/{}/account/mfa", org.slug))
            .as_deref(),
        connections: &connections,
        password_signin: org.password_signin,
        forgot_password: forgot.as_deref(),
        passkey: passkey.as_ref(),
        script: crate::ui::passkey::SCRIPT,
    });
    if passkey.is_some() {
        return crate::oidc::forms::respond_with_script(status, html, sealed.set_cookie);
    }
    respond(status, html, sealed.set_cookie)
}

/// The consent page. `state` names the authentication and the session it is shown under.
pub fn consent(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    username: &str,
    state: FormState,
) -> Result<Response> {
    let permissions = state
        .interaction
        .as_ref()
        .map(|i| {
            i.request
                .scope
                .split(' ')
                .filter_map(describe_scope)
                .collect()
        })
        .unwrap_or_default();
    let sealed = seal_for_page(ctx, req, org, state, LOGIN_FORM_SECONDS);
    let brand = pages::brand(org);
    let action = format!("/{}/consent", org.slug);
    let html = ui::render(&ConsentPage {
        brand: &brand,
        client_name,
        username,
        permissions,
        action: &action,
        request: &sealed.state,
        csrf_token: &sealed.csrf,
    });
    respond(200, html, sealed.set_cookie)
}

/// Ask for the user's second factor: a TOTP or recovery code where they have TOTP, and "Use a
/// passkey" where they have a passkey the organization accepts (its own form and challenge,
/// sealed with the same authentication, interaction and session as the code form).
#[allow(clippy::too_many_arguments)]
pub fn challenge(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    user: &User,
    state: FormState,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    // Not after a passkey sign-in: the same kind of proof twice is not a second factor.
    let first_was_passkey = state
        .authenticated
        .as_ref()
        .is_some_and(|a| a.factors & mfa::PASSKEY != 0);
    let offer =
        org.passkeys && user.has_passkey && state.interaction.is_some() && !first_was_passkey;
    let passkey_state = offer.then(|| {
        let challenge = crate::oidc::passkeys::new_challenge();
        let mut s = state.clone();
        s.step = Step::ChallengePasskey {
            challenge: challenge.clone(),
        };
        (s, challenge)
    });
    let sealed = seal_for_page(ctx, req, org, state, MFA_FORM_SECONDS);
    let passkey = passkey_state.map(|(mut s, challenge)| {
        s.csrf = sealed.csrf.clone();
        s.expires_at = ctx.now + MFA_FORM_SECONDS;
        MfaPasskey {
            action: format!("/{}/mfa/passkey", org.slug),
            state: seal_state(&ctx.config.key_encryption_secret, &org.slug, &s),
            challenge,
            rp_id: crate::oidc::passkeys::relying_party(ctx, &org.slug).0,
        }
    });
    let brand = pages::brand(org);
    let action = format!("/{}/mfa", org.slug);
    let with_script = passkey.is_some();
    let html = ui::render(&MfaPage {
        brand: &brand,
        client_name,
        action: &action,
        state: &sealed.state,
        csrf_token: &sealed.csrf,
        error,
        totp: user.totp_secret_sealed.is_some() || !with_script,
        passkey,
        script: ui::passkey::SCRIPT,
    });
    if with_script {
        crate::oidc::forms::respond_with_script(status, html, sealed.set_cookie)
    } else {
        respond(status, html, sealed.set_cookie)
    }
}

/// The enrolment page: the new secret as a QR code rendered here and as text.
pub fn enrol(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    user: &User,
    state: FormState,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    let Step::Enrol { secret, required } = &state.step else {
        return pages::error(
            org,
            400,
            "Sign-in could not continue",
            "Start again from the application.",
            "invalid_request",
            None,
        );
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
    let sealed = seal_for_page(ctx, req, org, state, MFA_FORM_SECONDS);
    let brand = pages::brand(org);
    let action = format!("/{}/mfa/enrol", org.slug);
    let html = ui::render(&EnrolPage {
        brand: &brand,
        required,
        qr_svg: &qr,
        secret: &grouped.join(" "),
        action: &action,
        state: &sealed.state,
        csrf_token: &sealed.csrf,
        error,
    });
    respond(status, html, sealed.set_cookie)
}

/// The recovery codes, shown once, never cached; the form goes on with the sign-in.
pub fn recovery(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    codes: &[String],
    state: FormState,
) -> Result<Response> {
    let sealed = seal_for_page(ctx, req, org, state, MFA_FORM_SECONDS);
    let brand = pages::brand(org);
    let action = format!("/{}/mfa/finish", org.slug);
    let html = ui::render(&RecoveryPage {
        brand: &brand,
        codes,
        action: &action,
        state: &sealed.state,
        csrf_token: &sealed.csrf,
    });
    http::no_store(respond(200, html, sealed.set_cookie)?)
}
