//! The page of a one-time link (issue 16, items 3 and 4): GET /{org}/setup/{token} shows whose
//! account the link is for and its form; the POST uses the link.
//!
//! The GET changes nothing — mail scanners and link previews open links — so only the POST
//! claims. The POST is a form of this page (CSRF cookie and sealed state, oidc/forms.rs), and
//! the state names the link (the hash of its token), so a state shown for one link is refused at
//! another's address. The new password goes through the password policy before anything is
//! used; then the link is claimed in one batch at the D1 primary that also stores the password
//! (edge/store/links.rs `claim`): of any number of concurrent POSTs of one link, exactly one sets
//! its password, and the others get the "already used" page.
//!
//! After a claim the sign-in rules decide (protocol/links.rs `after_claim`): with the password
//! as the only factor needed, the browser is signed in (an SSO session with `pwd`) and goes to
//! the account page; where the organization requires a second factor the user has not got, the
//! enrolment follows (oidc/mfa.rs), and the session starts once it is done; a user who still has
//! a second factor signs in as usual, since the link proves nothing about that factor.
//!
//! A link that resets the password can be finished with a passkey instead (POST
//! /{org}/setup/{token}/passkey, its own form on the same page): the registration is verified,
//! then the link is claimed the same way, with the passkey's insert added to the claim's batch
//! (`store::links::Claim::guarded`), so the passkey exists only if that claim won. A password the
//! link resets is removed in the same batch (the account then signs in with the passkey), and a
//! user-verified passkey counts as both factors when the sign-in rules decide what follows.

use serde_json::json;
use worker::{Method, Request, Response, Result};

use crate::crypto::{b64url, random_bytes, secure_eq, token_hash};
use crate::edge::audit::{self, detail};
use crate::edge::context::{Ctx, now_millis};
use crate::edge::http;
use crate::edge::password::hash_password;
use crate::edge::store::links::{self, Claim, ClaimedLink, Finish, Peeked};
use crate::edge::store::orgs::Organization;
use crate::edge::store::passkeys as store_passkeys;
use crate::oidc::form_state::{Authenticated, FormState, Step, StepKind, seal_state};
use crate::oidc::forms::{
    Submission, append_cookie, refused_state, respond, respond_with_script, seal_for_page,
};
use crate::oidc::request::{Accept, page_request};
use crate::oidc::{backchannel, device, pages, passkeys, screens, sso};
use crate::protocol::account::new_password;
use crate::protocol::audit::Kind;
use crate::protocol::dates;
use crate::protocol::links::{AfterClaim, Purpose, Unusable, after_claim, standing, well_formed};
use crate::protocol::logout_token::Ended;
use crate::protocol::mfa::{PWD, Policy, passkey_factors};
use crate::ui::{self, LinkPasskey, SetupLinkPage};

const TITLE: &str = "Account link";
/// How long the page's form may be posted after it was shown (the link's own expiry is checked
/// again by the claim).
const FORM_SECONDS: i64 = 30 * 60;
/// The refusal of a password posted to a passwordless organization's link
/// (with passkeys allowed, and without).
const PASSKEY_ONLY: &str = "Your organization does not use passwords: register a passkey below.";
const NO_PASSWORDS: &str = "Your organization does not use passwords: sign in with one of the other ways your application offers.";

/// GET or POST /{org}/setup/{token}.
pub async fn handle(req: Request, ctx: &Ctx, slug: &str, token: &str) -> Result<Response> {
    match req.method() {
        Method::Get => show(req, ctx, slug, token).await,
        Method::Post => submit(req, ctx, slug, token).await,
        _ => http::method_not_allowed("GET, POST"),
    }
}

/// The page for a link that cannot be used: what happened, and "ask your administrator".
fn unusable(org: &Organization, why: Unusable) -> Result<Response> {
    pages::error(
        org,
        why.status(),
        why.title(),
        why.description(),
        why.reason(),
        None,
    )
}

fn heading(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Setup => "Set up your account",
        Purpose::Recovery => "Recover your account",
        Purpose::ResetPassword => "Choose a new password",
    }
}

/// The link's page with its form.
fn form_page(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    token: &str,
    link: &Peeked,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    let state = FormState {
        step: Step::SetupLink {
            link: token_hash(token),
            password: link.reset_password,
        },
        interaction: None,
        authenticated: None,
        session: None,
        csrf: String::new(),
        expires_at: 0,
    };
    let sealed = seal_for_page(ctx, req, org, state, FORM_SECONDS);
    let action = format!("/{}/setup/{token}", org.slug);
    let passkey = passkey_offer(ctx, org, token, link, &sealed.csrf);
    let expires = dates::day_and_time(link.expires_at);
    let html = ui::render(&SetupLinkPage {
        brand: &pages::brand(org),
        heading: heading(link.purpose()),
        username: &link.username,
        email: &link.email,
        error,
        action: &action,
        state: &sealed.state,
        csrf_token: &sealed.csrf,
        password: link.reset_password,
        second_factor: link.reset_second_factor,
        expires: &expires,
        passkey: passkey.as_ref(),
        passwordless: link.reset_password && org.passwordless(),
        script: ui::passkey::SCRIPT,
    });
    if passkey.is_some() {
        respond_with_script(status, html, sealed.set_cookie)
    } else {
        respond(status, html, sealed.set_cookie)
    }
}

/// The "Register a passkey" form of a link that resets the password (only such a link may give
/// its holder a way to sign in, store/links.rs `Finish`), where the organization allows
/// passkeys; its state is sealed under the page's CSRF token like the password form's.
fn passkey_offer(
    ctx: &Ctx,
    org: &Organization,
    token: &str,
    link: &Peeked,
    csrf: &str,
) -> Option<LinkPasskey> {
    if !org.passkeys || !link.reset_password {
        return None;
    }
    let challenge = passkeys::new_challenge();
    let state = FormState {
        step: Step::SetupLinkPasskey {
            link: token_hash(token),
            challenge: challenge.clone(),
        },
        interaction: None,
        authenticated: None,
        session: None,
        csrf: csrf.to_string(),
        expires_at: ctx.now + FORM_SECONDS,
    };
    Some(LinkPasskey {
        action: format!("/{}/setup/{token}/passkey", org.slug),
        state: seal_state(&ctx.config.key_encryption_secret, &org.slug, &state),
        challenge,
        rp_id: passkeys::relying_party(ctx, &org.slug).0,
        rp_name: org.name.clone(),
        user_handle: b64url(link.user_id.as_bytes()),
        user_name: link.username.clone(),
        exclude: link.credential_ids.clone(),
    })
}

/// The link as stored: at the nearest replica, and at the primary when the replica does not
/// have it (a link made a moment ago elsewhere).
async fn read(ctx: &Ctx, slug: &str, token: &str) -> Result<Option<Peeked>> {
    ctx.found(|db| async move { links::peek(&db, slug, token).await })
        .await
}

/// Record a refusal of a link that exists (an unknown token names no one).
fn note_refused(ctx: &Ctx, slug: &str, link: Option<&Peeked>, why: Unusable) {
    if let Some(link) = link {
        audit::note(
            ctx,
            Kind::LinkRefused,
            slug,
            Some(&link.user_id),
            None,
            detail([
                ("reason", json!(why.reason())),
                ("purpose", json!(link.purpose)),
            ]),
        );
    }
}

async fn show(mut req: Request, ctx: &Ctx, slug: &str, token: &str) -> Result<Response> {
    let (org, _) = match page_request(&mut req, ctx, slug, Accept::GetOrPostSingle, TITLE).await? {
        Ok(parts) => parts,
        Err(resp) => return Ok(resp),
    };
    if !well_formed(token) {
        return unusable(&org, Unusable::Unknown);
    }
    let link = read(ctx, slug, token).await?;
    if let Err(why) = standing(link.as_ref().map(Peeked::standing), ctx.now) {
        note_refused(ctx, slug, link.as_ref(), why);
        return unusable(&org, why);
    }
    let link = link.expect("a usable link exists");
    form_page(ctx, &req, &org, token, &link, None, 200)
}

async fn submit(mut req: Request, ctx: &Ctx, slug: &str, token: &str) -> Result<Response> {
    let Submission {
        org, form, state, ..
    } = match crate::oidc::forms::submitted(&mut req, ctx, slug, TITLE, StepKind::SetupLink).await?
    {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let Step::SetupLink { link, password } = &state.step else {
        return unusable(&org, Unusable::Unknown);
    };
    // The state names the link it was shown for: another link's page posted here is refused.
    if !well_formed(token) || !secure_eq(link, &token_hash(token)) {
        return refused_state(&org, TITLE, crate::oidc::form_state::StateError::WrongStep);
    }
    // The new password through the policy before the link is used: a form that cannot succeed
    // leaves the link as it was. In a passwordless organization no password is taken (the
    // setting is read now, not when the page was shown).
    let new = if *password {
        let checked = if org.passwordless() {
            Err(if org.passkeys {
                PASSKEY_ONLY
            } else {
                NO_PASSWORDS
            }
            .to_string())
        } else {
            new_password(
                "",
                form.first("new_password").unwrap_or(""),
                form.first("confirm_password").unwrap_or(""),
            )
            .map_err(|refused| refused.message())
        };
        match checked {
            Ok(n) => Some(n),
            Err(message) => {
                let peeked = read(ctx, slug, token).await?;
                if let Err(why) = standing(peeked.as_ref().map(Peeked::standing), ctx.now) {
                    return unusable(&org, why);
                }
                let Some(peeked) = peeked else {
                    return unusable(&org, Unusable::Unknown);
                };
                return form_page(ctx, &req, &org, token, &peeked, Some(&message), 400);
            }
        }
    } else {
        None
    };
    let hash = match &new {
        Some(n) => Some(hash_password(n).await?),
        None => None,
    };
    let db = ctx.primary()?;
    let claim = Claim::new(slug, token, ctx.now);
    let finish = match &hash {
        Some(h) => Finish::Password(h),
        None => Finish::Nothing,
    };
    let Some(claimed) = links::claim(&db, claim, finish, now_millis(), Vec::new()).await? else {
        return lost(ctx, &org, slug, token).await;
    };
    let proved = hash.is_some().then_some(PWD);
    after(ctx, &req, &org, claimed, proved, None).await
}

/// The page for a claim that lost: used (perhaps a moment ago, by a concurrent request),
/// superseded, expired, or the account disabled. Which one is read at the primary.
async fn lost(ctx: &Ctx, org: &Organization, slug: &str, token: &str) -> Result<Response> {
    let link = links::peek(&ctx.primary()?, slug, token).await?;
    let why = standing(link.as_ref().map(Peeked::standing), ctx.now)
        .err()
        .unwrap_or(Unusable::Used);
    note_refused(ctx, slug, link.as_ref(), why);
    unusable(org, why)
}

/// POST /{org}/setup/{token}/passkey: the link finished with a passkey instead of a password.
/// The registration is verified against the challenge the page's state carries, then the link
/// is claimed in one batch at the primary that also stores the passkey (and removes a password
/// the link resets): of concurrent or replayed posts exactly one claims the link, and the
/// passkey exists only if its claim won. A credential registered already fails the whole batch,
/// leaving the link unused.
pub async fn handle_passkey(
    mut req: Request,
    ctx: &Ctx,
    slug: &str,
    token: &str,
) -> Result<Response> {
    if req.method() != Method::Post {
        return http::method_not_allowed("POST");
    }
    let Submission {
        org, form, state, ..
    } = match crate::oidc::forms::submitted(&mut req, ctx, slug, TITLE, StepKind::SetupLinkPasskey)
        .await?
    {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    let Step::SetupLinkPasskey { link, challenge } = &state.step else {
        return unusable(&org, Unusable::Unknown);
    };
    if !well_formed(token) || !secure_eq(link, &token_hash(token)) {
        return refused_state(&org, TITLE, crate::oidc::form_state::StateError::WrongStep);
    }
    if !org.passkeys {
        return passkeys::passkeys_off(&org);
    }
    let verified =
        match passkeys::verify_new(ctx, slug, challenge, form.first("credential").unwrap_or("")) {
            Ok(v) => v,
            Err(reason) => {
                let peeked = read(ctx, slug, token).await?;
                audit::note(
                    ctx,
                    Kind::PasskeyRefused,
                    slug,
                    peeked.as_ref().map(|p| p.user_id.as_str()),
                    None,
                    detail([("reason", json!(reason)), ("ceremony", json!("link"))]),
                );
                let Some(peeked) = peeked.filter(|p| standing(Some(p.standing()), ctx.now).is_ok())
                else {
                    return lost(ctx, &org, slug, token).await;
                };
                return form_page(
                    ctx,
                    &req,
                    &org,
                    token,
                    &peeked,
                    Some("The passkey could not be registered. Try again."),
                    400,
                );
            }
        };
    let db = ctx.primary()?;
    let claim = Claim::new(slug, token, ctx.now);
    // The organization and user of the row come from the claimed link, not from here.
    let insert = store_passkeys::insert_for_link(&db, &claim, &verified.row(slug, "", ctx.now))?;
    let claimed = match links::claim(&db, claim, Finish::Passkey, now_millis(), vec![insert]).await
    {
        Ok(Some(c)) => c,
        Ok(None) => return lost(ctx, &org, slug, token).await,
        Err(e) if store_passkeys::is_duplicate_credential(&e) => {
            let peeked = read(ctx, slug, token).await?;
            let Some(peeked) = peeked else {
                return unusable(&org, Unusable::Unknown);
            };
            return form_page(
                ctx,
                &req,
                &org,
                token,
                &peeked,
                Some("That passkey is already registered. Use another one, or set a password."),
                409,
            );
        }
        Err(e) => return Err(e),
    };
    audit::note(
        ctx,
        Kind::PasskeyAdded,
        slug,
        Some(&claimed.user().id),
        None,
        detail([
            ("passkey", json!(verified.id)),
            ("name", json!(verified.name)),
            ("via", json!("link")),
        ]),
    );
    let factors = passkey_factors(verified.user_verified(), verified.synced());
    after(ctx, &req, &org, claimed, Some(factors), Some(verified.name)).await
}

/// What follows a won claim (protocol/links.rs `after_claim`).
/// `proved`: the factor bits of what the page was given (`PWD` for a new password, a passkey's
/// bits), `None` for nothing; `passkey`: the name of a passkey registered instead of a password.
async fn after(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    mut claimed: ClaimedLink,
    proved: Option<u8>,
    passkey: Option<&str>,
) -> Result<Response> {
    // The claim ended the user's grants (and sessions): the relying parties holding them that
    // asked to be told are sent logout tokens, as after a password change.
    let held = claimed.take_logout_targets();
    backchannel::announce_held(ctx, &org.slug, &claimed.user().id, Ended::User, held).await;
    let user = claimed.user();
    let resets = claimed.resets();
    audit::note(
        ctx,
        Kind::LinkUsed,
        &org.slug,
        Some(&user.id),
        None,
        detail([
            ("purpose", json!(claimed.purpose().as_str())),
            ("resets", json!(resets.names())),
            (
                "with",
                json!(if passkey.is_some() {
                    "passkey"
                } else if proved.is_some() {
                    "password"
                } else {
                    "nothing"
                }),
            ),
        ]),
    );
    let policy = Policy::parse(&org.mfa).unwrap_or(Policy::Off);
    let factors = proved.unwrap_or(PWD);
    match after_claim(proved, user.totp_secret_sealed.is_some(), policy) {
        AfterClaim::SignedIn => signed_in(ctx, req, org, &user.id, factors).await,
        AfterClaim::Enrol => {
            let state = FormState {
                step: Step::Enrol {
                    secret: b64url(&random_bytes::<20>()),
                    required: true,
                },
                interaction: None,
                authenticated: Some(Authenticated {
                    user_id: user.id.clone(),
                    auth_time: ctx.now,
                    factors,
                    in_this_interaction: true,
                }),
                session: None,
                csrf: String::new(),
                expires_at: 0,
            };
            screens::enrol(ctx, req, org, user, state, None, 200)
        }
        AfterClaim::SignInWithCode if passkey.is_some() => pages::message(
            org,
            "Your passkey is registered",
            "Sign in to your application with it. You will also be asked for the code from your authenticator app, as before.",
        ),
        AfterClaim::SignInWithCode => pages::message(
            org,
            "Your new password is set",
            "Sign in to your application with it. You will also be asked for the code from your authenticator app, as before.",
        ),
        AfterClaim::SignInAgain => pages::message(
            org,
            "Two-step verification was removed",
            "Sign in to your application with your password as usual. Where your organization requires two-step verification, you will be asked to set it up again.",
        ),
    }
}

/// The end of a link's sign-in (also of the enrolment that followed one, oidc/mfa.rs): a new
/// SSO session for this browser with `factors`, replacing any it had, and the account page.
pub async fn signed_in(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    user_id: &str,
    factors: u8,
) -> Result<Response> {
    let slug = org.slug.as_str();
    sso::forget(ctx, slug, req).await?;
    let cookie = sso::start(ctx, slug, user_id, ctx.now, factors)
        .await?
        .cookie;
    audit::note(
        ctx,
        Kind::SignInSucceeded,
        slug,
        Some(user_id),
        None,
        detail([
            ("amr", json!(crate::protocol::mfa::amr(factors))),
            ("via", json!("link")),
        ]),
    );
    let resp = http::redirect(&format!("/{slug}/account"), 303)?;
    let resp = append_cookie(resp, &cookie)?;
    append_cookie(resp, &device::remember(ctx, req, slug, user_id))
}
