//! Where every sign-in path goes once it knows who authenticated: it asks the gate
//! (protocol/gate.rs) with the client, user and policy as stored now, and carries out the answer
//! — the login form, the second factor, consent, an error for the client, or a code. Authorize,
//! the login POST, the second-factor POSTs and the consent POST all end here, so the decision is
//! made in one place, at the moment of issuing.

use serde_json::json;
use worker::{Request, Response, Result};

use crate::crypto::{b64url, random_bytes};
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::store::clients::{Client, get_client};
use crate::edge::store::orgs::Organization;
use crate::edge::store::users::{User, get_user};
use crate::oidc::form_state::{Authenticated, FormState, Interaction, Step};
use crate::oidc::forms::append_cookie;
use crate::oidc::sso::Current;
use crate::oidc::{device, issue, screens, sso};
use crate::protocol::account::session_started_ms;
use crate::protocol::audit::Kind;
use crate::protocol::error::ErrorCode;
use crate::protocol::gate::{self, ClientFacts, Decision, Input, UserFacts};
use crate::protocol::mfa::{self, PWD, Policy};

/// Where the authentication came from.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// The browser's SSO session: a sign-in it completes upgrades that session.
    Session(&'a Current),
    /// A sign-in made in this interaction (a password just typed, perhaps a second factor after
    /// it): completing it starts a new session, replacing any the browser had.
    Fresh,
}

/// What the caller knows.
pub struct Continue<'a> {
    pub org: &'a Organization,
    pub client: &'a Client,
    pub interaction: &'a Interaction,
    pub authenticated: Option<Authenticated>,
    /// The authenticated user as stored now.
    pub user: Option<&'a User>,
    pub origin: Origin<'a>,
    /// The user allowed the request on the consent page just now.
    pub consented: bool,
    /// 302 after a GET, 303 after a form POST.
    pub status: u16,
}

pub async fn proceed(ctx: &Ctx, req: &Request, c: Continue<'_>) -> Result<Response> {
    let decision = ask(ctx, &c, c.client, c.user);
    // The client and user usually come from the nearest replica, which may lag a membership
    // added or a restriction lifted moments ago: a refusal for allowed_groups is asked again of
    // the primary before it is given (two reads, on the refusal path only). An admission needs
    // no second look: the code is judged again at the primary when it is redeemed.
    let is_denied =
        |d: &Decision| matches!(d, Decision::Refuse(e) if e.code == ErrorCode::AccessDenied);
    if is_denied(&decision) {
        let primary = ctx.primary()?;
        let slug = c.org.slug.as_str();
        let client = get_client(&primary, slug, &c.client.client_id).await?;
        let user = match c.user {
            Some(u) => get_user(&primary, slug, &u.id).await?,
            None => None,
        };
        if let Some(client) = &client {
            let again = ask(ctx, &c, client, user.as_ref());
            if !is_denied(&again) {
                return carry_out(ctx, req, &c, again).await;
            }
        }
    }
    carry_out(ctx, req, &c, decision).await
}

/// The gate's answer for what `c` knows, with `client` and `user` as read.
fn ask(ctx: &Ctx, c: &Continue<'_>, client: &Client, user: Option<&User>) -> Decision {
    gate::decide(&Input {
        request: &c.interaction.request,
        hint_sub: c.interaction.hint_sub.as_deref(),
        authentication: c.authenticated.as_ref().map(Authenticated::view),
        user: user.map(|u| UserFacts {
            id: &u.id,
            disabled: u.disabled,
            enrolled: u.totp_secret_sealed.is_some(),
            passkey: u.has_passkey && c.org.passkeys,
            groups: &u.groups,
        }),
        client: ClientFacts {
            require_mfa: client.require_mfa,
            allowed_groups: &client.allowed_groups,
        },
        policy: Policy::parse(&c.org.mfa).unwrap_or(Policy::Off),
        consented: c.consented,
        now: ctx.now,
    })
}

async fn carry_out(
    ctx: &Ctx,
    req: &Request,
    c: &Continue<'_>,
    decision: Decision,
) -> Result<Response> {
    let slug = c.org.slug.as_str();
    let request = &c.interaction.request;
    let session_of = |origin: Origin| match origin {
        Origin::Session(current) => Some(current.id_hash()),
        Origin::Fresh => None,
    };
    // A link confirmed by signing in (oidc/federation_link.rs) is written only now, when the
    // gate has every factor it asks of this user, before the session or the code.
    if let (Some(link), Decision::Issue(_) | Decision::AskConsent, Some(a)) =
        (&c.interaction.link, &decision, &c.authenticated)
        && let Some(page) =
            crate::oidc::federation_link::create(ctx, c.org, link, &a.user_id).await?
    {
        return Ok(page);
    }
    match decision {
        Decision::ShowLogin if c.interaction.idp_hint.is_some() => {
            let hint = c.interaction.idp_hint.as_deref().unwrap_or_default();
            crate::oidc::federation::begin(ctx, c.org, hint, c.interaction, c.status).await
        }
        Decision::ShowLogin => screens::login(
            ctx,
            req,
            c.org,
            &c.client.client_name,
            c.interaction,
            None,
            200,
        ),
        Decision::Refuse(err) => {
            if err.code == ErrorCode::AccessDenied {
                audit::note(
                    ctx,
                    Kind::SignInDenied,
                    slug,
                    c.user.map(|u| u.id.as_str()),
                    Some(&c.client.client_id),
                    Default::default(),
                );
            }
            issue::error(
                ctx,
                c.org,
                &request.redirect_uri,
                request.state.as_deref(),
                &err,
                request.response_mode,
                c.status,
            )
        }
        Decision::AskSecondFactor | Decision::EnrolSecondFactor => {
            let (Some(authenticated), Some(user)) = (c.authenticated.clone(), c.user) else {
                unreachable!("the gate asks for a second factor only of an authenticated user")
            };
            let enrol = decision == Decision::EnrolSecondFactor;
            let state = FormState {
                step: if enrol {
                    Step::Enrol {
                        secret: b64url(&random_bytes::<20>()),
                        required: true,
                    }
                } else {
                    Step::Challenge
                },
                interaction: Some(c.interaction.clone()),
                authenticated: Some(authenticated),
                session: session_of(c.origin),
                csrf: String::new(),
                expires_at: 0,
            };
            if enrol {
                screens::enrol(ctx, req, c.org, user, state, None, 200)
            } else {
                screens::challenge(
                    ctx,
                    req,
                    c.org,
                    &c.client.client_name,
                    user,
                    state,
                    None,
                    200,
                )
            }
        }
        Decision::AskConsent => {
            let (Some(authenticated), Some(user)) = (c.authenticated.clone(), c.user) else {
                unreachable!("the gate asks for consent only of an authenticated user")
            };
            let Established {
                cookies,
                session_hash,
                ..
            } = establish(
                ctx,
                req,
                slug,
                &c.client.client_id,
                &authenticated,
                c.origin,
            )
            .await?;
            let state = FormState {
                step: Step::Consent,
                // The pending link, if any, is written: the consent page carries none.
                interaction: Some(Interaction {
                    link: None,
                    ..c.interaction.clone()
                }),
                authenticated: Some(authenticated),
                session: Some(session_hash),
                csrf: String::new(),
                expires_at: 0,
            };
            let resp = screens::consent(
                ctx,
                req,
                c.org,
                &c.client.client_name,
                &user.username,
                state,
            )?;
            with_cookies(resp, &cookies)
        }
        Decision::Issue(issuance) => {
            let authenticated = c
                .authenticated
                .clone()
                .expect("the gate issues only with an authentication");
            let Established {
                cookies,
                sid,
                started_ms,
                ..
            } = establish(
                ctx,
                req,
                slug,
                &c.client.client_id,
                &authenticated,
                c.origin,
            )
            .await?;
            if matches!(c.origin, Origin::Session(_)) && cookies.is_empty() {
                audit::note(
                    ctx,
                    Kind::SignInSso,
                    slug,
                    Some(issuance.user_id()),
                    Some(&c.client.client_id),
                    Default::default(),
                );
            }
            let resp = issue::code(ctx, c.org, &issuance, sid.as_deref(), started_ms, c.status)?;
            with_cookies(resp, &cookies)
        }
    }
}

/// The SSO session of a sign-in whose factors are all given: a new one for a fresh sign-in
/// (recorded as `signin.succeeded`, and this browser remembered for the account), the same one
/// when the session already had these factors, or the session upgraded when a step-up added
/// one.
async fn establish(
    ctx: &Ctx,
    req: &Request,
    slug: &str,
    client_id: &str,
    authenticated: &Authenticated,
    origin: Origin<'_>,
) -> Result<Established> {
    let amr = json!(mfa::amr(authenticated.factors));
    match origin {
        Origin::Session(current) if current.user.id == authenticated.user_id => {
            let started_ms =
                session_started_ms(current.session.started_ms, current.session.auth_time);
            if authenticated.factors & !current.session.factors == 0 {
                return Ok(Established {
                    cookies: Vec::new(),
                    session_hash: current.id_hash(),
                    sid: current.session.sid.clone(),
                    started_ms,
                });
            }
            let (cookie, hash) = sso::upgrade(ctx, slug, current, authenticated.factors).await?;
            audit::note(
                ctx,
                Kind::SignInSucceeded,
                slug,
                Some(&authenticated.user_id),
                Some(client_id),
                detail([("amr", amr), ("step_up", json!(true))]),
            );
            // A step-up keeps the session's start: the session ended by a sign-out everywhere
            // stays ended, whatever factor is added to it.
            Ok(Established {
                cookies: vec![cookie],
                session_hash: hash,
                sid: current.session.sid.clone(),
                started_ms,
            })
        }
        _ => {
            sso::forget(ctx, slug, req).await?;
            let started = sso::start(
                ctx,
                slug,
                &authenticated.user_id,
                authenticated.auth_time,
                authenticated.factors,
            )
            .await?;
            audit::note(
                ctx,
                Kind::SignInSucceeded,
                slug,
                Some(&authenticated.user_id),
                Some(client_id),
                detail([("amr", amr)]),
            );
            let mut cookies = vec![started.cookie];
            if authenticated.factors & PWD != 0 {
                cookies.push(device::remember(ctx, req, slug, &authenticated.user_id));
            }
            Ok(Established {
                cookies,
                session_hash: started.hash,
                sid: started.sid,
                started_ms: started.started_ms,
            })
        }
    }
}

/// What `establish` did: the Set-Cookie values to send (none when the session stays as it was),
/// and the session the sign-in goes on under — its id's hash (for a consent form), its public
/// `sid` and when it started (unix ms; for a code, see protocol/code.rs).
struct Established {
    cookies: Vec<String>,
    session_hash: String,
    sid: Option<String>,
    started_ms: i64,
}

fn with_cookies(mut resp: Response, cookies: &[String]) -> Result<Response> {
    for cookie in cookies {
        resp = append_cookie(resp, cookie)?;
    }
    Ok(resp)
}
