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
//! Another way to finish a link (a passkey instead of a password) claims it the same way, with
//! its own writes added to the claim's batch (`store::links::Claim::guarded`).

use serde_json::json;
use worker::{Method, Request, Response, Result};

use crate::crypto::{b64url, random_bytes, secure_eq, token_hash};
use crate::edge::audit::{self, detail};
use crate::edge::context::{Ctx, now_millis};
use crate::edge::http;
use crate::edge::password::hash_password;
use crate::edge::store::links::{self, Claim, ClaimedLink, Peeked};
use crate::edge::store::orgs::Organization;
use crate::oidc::form_state::{Authenticated, FormState, Step, StepKind};
use crate::oidc::forms::{Submission, append_cookie, refused_state, respond, seal_for_page};
use crate::oidc::request::{Accept, page_request};
use crate::oidc::{device, pages, screens, sso};
use crate::protocol::account::new_password;
use crate::protocol::audit::Kind;
use crate::protocol::links::{AfterClaim, Purpose, Unusable, after_claim, standing, well_formed};
use crate::protocol::mfa::{PWD, Policy};
use crate::ui::{self, SetupLinkPage};

const TITLE: &str = "Account link";
/// How long the page's form may be posted after it was shown (the link's own expiry is checked
/// again by the claim).
const FORM_SECONDS: i64 = 30 * 60;

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
    });
    respond(status, html, sealed.set_cookie)
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
    // leaves the link as it was.
    let new = if *password {
        match new_password(
            "",
            form.first("new_password").unwrap_or(""),
            form.first("confirm_password").unwrap_or(""),
        ) {
            Ok(n) => Some(n),
            Err(refused) => {
                let peeked = read(ctx, slug, token).await?;
                if let Err(why) = standing(peeked.as_ref().map(Peeked::standing), ctx.now) {
                    return unusable(&org, why);
                }
                let Some(peeked) = peeked else {
                    return unusable(&org, Unusable::Unknown);
                };
                return form_page(
                    ctx,
                    &req,
                    &org,
                    token,
                    &peeked,
                    Some(&refused.message()),
                    400,
                );
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
    let Some(claimed) = links::claim(&db, claim, hash.as_deref(), now_millis(), Vec::new()).await?
    else {
        // Lost: used (perhaps a moment ago, by a concurrent request), superseded, expired, or the
        // account disabled. Which one is read at the primary, for the page.
        let link = links::peek(&db, slug, token).await?;
        let why = standing(link.as_ref().map(Peeked::standing), ctx.now)
            .err()
            .unwrap_or(Unusable::Used);
        note_refused(ctx, slug, link.as_ref(), why);
        return unusable(&org, why);
    };
    after(ctx, &req, &org, claimed).await
}

/// What follows a won claim (protocol/links.rs `after_claim`).
async fn after(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    claimed: ClaimedLink,
) -> Result<Response> {
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
        ]),
    );
    let policy = Policy::parse(&org.mfa).unwrap_or(Policy::Off);
    match after_claim(resets.password, user.totp_secret_sealed.is_some(), policy) {
        AfterClaim::SignedIn => signed_in(ctx, req, org, &user.id, PWD).await,
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
                    factors: PWD,
                    in_this_interaction: true,
                }),
                session: None,
                csrf: String::new(),
                expires_at: 0,
            };
            screens::enrol(ctx, req, org, user, state, None, 200)
        }
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
    let (cookie, _, _) = sso::start(ctx, slug, user_id, ctx.now, factors).await?;
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
