//! Confirming a link by signing in once (issue 17, item 3): an upstream account with no link
//! here, which the connection may neither create a user for nor link by a verified e-mail
//! address, is offered to be linked to the account of whoever signs in once with a username and
//! password — "otherwise ask the person to sign in to their existing Clavex account once to
//! confirm the link". Only where the organization accepts passwords (`password_signin`);
//! elsewhere the callback keeps refusing with a page that says why.
//!
//! - The callback (oidc/federation.rs) shows the page with the upstream account (connection,
//!   `sub`), the authorization being worked on, a random id and an expiry (10 min) in a sealed
//!   form state (oidc/form_state.rs `Step::ConfirmLink`): sealed for this organization, bound to
//!   this browser's CSRF cookie. The page never names the account holding the upstream's e-mail
//!   address, nor says whether one does; the person names their own account.
//! - `POST /{org}/connections/link` checks the password exactly as the login form does: the
//!   guess reserved at the primary before it is answered (oidc/attempts.rs), the same limits,
//!   the same message for an unknown name, a wrong password and a disabled user. A right
//!   password then claims the form's id at the primary (store/once.rs): of any number of
//!   concurrent or later posts of the same form exactly one goes on; the rest get a page. The
//!   claim comes before anything else is decided, so a replay of a used form never reaches the
//!   gate, whatever the link's state by then.
//! - The sign-in then goes to the gate (oidc/interaction.rs) with factors `PWD | UPSTREAM`
//!   (`amr` `["pwd", "fed"]`) and the link pending in the interaction. The link is written only
//!   when the gate has every factor it asks of that user — an enrolled user's code, a required
//!   enrolment — so a password alone never attaches an upstream account to an account with a
//!   second factor (which, on a connection that trusts the upstream's MFA, would later stand in
//!   for it). A password and an upstream sign-in are not "mfa" (protocol/upstream.rs
//!   `confirmation_factors`).
//! - One link per connection per user (UNIQUE (connection, user), migration 0008f): a user
//!   already linked to another account of the same upstream is refused, and an administrator
//!   removes the old link first (the admin API lists and removes links). An upstream account
//!   linked meanwhile to another user is refused too.
//!
//! Audit: `upstream.link.confirmed` when the link is written; `upstream.refused` with the
//! reason for every refusal; `signin.failed` / `signin.throttled` for passwords, like the login.

use serde::Deserialize;
use serde_json::json;
use worker::{Request, Response, Result};

use crate::crypto::random_token;
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::store::connections::{self as store, Connection};
use crate::edge::store::d1::{is_foreign_key_violation, is_unique_violation};
use crate::edge::store::once;
use crate::edge::store::orgs::Organization;
use crate::oidc::attempts::{Attempt, Verdict};
use crate::oidc::device;
use crate::oidc::form_state::{Authenticated, FormState, Interaction, PendingLink, Step, StepKind};
use crate::oidc::forms::{Submission, registered_client, respond, seal_for_page, submitted};
use crate::oidc::interaction::{self, Continue, Origin};
use crate::oidc::login::{self, BAD_CREDENTIALS};
use crate::oidc::pages;
use crate::protocol::audit::Kind;
use crate::protocol::throttle::{name_key, user_key};
use crate::protocol::upstream::{self, CONFIRMATION_SECONDS};
use crate::ui::{self, link_confirm::LinkConfirmPage};

const TITLE: &str = "Linking the accounts could not continue";

/// The purpose of the single-use marker of a confirmation form (store/once.rs).
const ONCE_PURPOSE: &str = "link-confirmation";

fn action(slug: &str) -> String {
    format!("/{slug}/connections/link")
}

fn refused(ctx: &Ctx, slug: &str, link: &PendingLink, user_id: Option<&str>, reason: &str) {
    audit::note(
        ctx,
        Kind::UpstreamRefused,
        slug,
        user_id,
        None,
        detail([
            ("connection_id", json!(link.connection_id)),
            (
                "upstream_subject",
                json!(upstream::subject_hash(&link.upstream_sub)),
            ),
            ("reason", json!(reason)),
        ]),
    );
}

/// The page the callback shows instead of a refusal: sign in once to link `upstream_sub` of
/// `connection` to your account here.
pub fn offer(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    connection: &Connection,
    interaction: &Interaction,
    upstream_sub: &str,
) -> Result<Response> {
    let state = FormState {
        step: Step::ConfirmLink {
            link: PendingLink {
                id: random_token(""),
                connection_id: connection.id.clone(),
                upstream_sub: upstream_sub.to_string(),
                expires_at: ctx.now + CONFIRMATION_SECONDS,
            },
            label: connection.label.clone(),
        },
        interaction: Some(Interaction {
            link: None,
            idp_hint: None,
            ..interaction.clone()
        }),
        authenticated: None,
        session: None,
        csrf: String::new(),
        expires_at: 0,
    };
    page(ctx, req, org, client_name, state, "", None, 200)
}

/// The confirmation page for `state` (a `Step::ConfirmLink`), sealed again until the link's own
/// expiry: a failed attempt shows the same form, never a longer-lived one.
#[allow(clippy::too_many_arguments)]
fn page(
    ctx: &Ctx,
    req: &Request,
    org: &Organization,
    client_name: &str,
    state: FormState,
    username: &str,
    error: Option<&str>,
    status: u16,
) -> Result<Response> {
    let (expires_at, label) = match &state.step {
        Step::ConfirmLink { link, label } => (link.expires_at, label.clone()),
        _ => (ctx.now, String::new()),
    };
    let sealed = seal_for_page(ctx, req, org, state, (expires_at - ctx.now).max(0));
    let html = ui::render(&LinkConfirmPage {
        brand: &pages::brand(org),
        label: &label,
        client_name,
        action: &action(&org.slug),
        state: &sealed.state,
        csrf_token: &sealed.csrf,
        username,
        error,
    });
    respond(status, html, sealed.set_cookie)
}

fn gone(org: &Organization, description: &str) -> Result<Response> {
    pages::error(org, 400, TITLE, description, "invalid_request", None)
}

/// What the primary has for this upstream account and this user on the connection.
#[derive(Deserialize)]
struct LinkRow {
    upstream_sub: String,
    user_id: String,
}

/// POST /{org}/connections/link: the password, then the gate.
pub async fn handle(mut req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    let Submission {
        org, form, state, ..
    } = match submitted(&mut req, ctx, slug, TITLE, StepKind::ConfirmLink).await? {
        Ok(s) => s,
        Err(resp) => return Ok(resp),
    };
    // Turned off since the page was shown: no password is looked at (as POST /login).
    if !org.password_signin {
        return pages::error(
            &org,
            403,
            "Password sign-in is turned off",
            "This organization does not accept passwords, so an account cannot be linked by signing in with one. Ask an administrator.",
            "access_denied",
            None,
        );
    }
    let (Step::ConfirmLink { link, .. }, Some(interaction)) =
        (state.step.clone(), state.interaction.clone())
    else {
        return gone(&org, "Start again from the application.");
    };
    let request = &interaction.request;
    let client =
        match registered_client(ctx, &org, &request.client_id, &request.redirect_uri).await? {
            Ok(c) => c,
            Err(page) => return Ok(page),
        };
    let cid = link.connection_id.as_str();
    if ctx
        .found(|db| async move { store::get(&db, slug, cid).await })
        .await?
        .is_none()
    {
        refused(ctx, slug, &link, None, "connection_deleted");
        return gone(
            &org,
            "This sign-in option was removed meanwhile. Start again from the application.",
        );
    }
    let name = form.first("username").unwrap_or("").trim();
    let password = form.first("password").unwrap_or("");
    // As the login form (oidc/login.rs): the account named at the replica, the guess reserved
    // at the primary before the password is checked.
    let at_replica = login::lookup(ctx.replica()?, slug, name).await?;
    let (account, trusted) = match &at_replica {
        Some(u) => (user_key(&u.id), device::knows(ctx, &req, slug, &u.id)),
        None => (name_key(name), false),
    };
    let reset = at_replica
        .as_ref()
        .is_some_and(|u| u.totp_secret_sealed.is_none());
    let replica_user_id = at_replica.as_ref().map(|u| u.id.clone());
    let (verdict, checked) = Attempt::new(ctx, &org, account.clone(), trusted)
        .guess(ctx, reset, || async {
            let checked = login::signs_in(ctx, slug, name, password, at_replica).await?;
            Ok((checked.ok, checked))
        })
        .await?;
    let user_id = checked
        .as_ref()
        .and_then(|c| c.user.as_ref())
        .map(|u| u.id.clone())
        .or(replica_user_id);
    let mut note = detail([("connection_id", json!(link.connection_id))]);
    if user_id.is_none() {
        note.insert("unknown_login".into(), json!(account));
    }
    let retry = |message: &str, status: u16| {
        page(
            ctx,
            &req,
            &org,
            &client.client_name,
            state.clone(),
            name,
            Some(message),
            status,
        )
    };
    match verdict {
        Verdict::Throttled { wait } => {
            note.insert("retry_after".into(), json!(wait));
            audit::note(
                ctx,
                Kind::SignInThrottled,
                slug,
                user_id.as_deref(),
                Some(&client.client_id),
                note,
            );
            let resp = retry(&login::too_many(wait), 429)?;
            resp.headers().set("Retry-After", &wait.to_string())?;
            return Ok(resp);
        }
        Verdict::Wrong { wait } => {
            audit::note(
                ctx,
                Kind::SignInFailed,
                slug,
                user_id.as_deref(),
                Some(&client.client_id),
                note,
            );
            let message = match wait {
                None => BAD_CREDENTIALS.to_string(),
                Some(wait) => format!("{BAD_CREDENTIALS} {}", login::too_many(wait)),
            };
            return retry(&message, 401);
        }
        Verdict::Accepted => {}
    }
    let user = checked
        .and_then(|c| c.user)
        .expect("a right password names its user");
    // One round trip to the primary: the form's single use claimed first (so a replay never
    // goes further, whatever happened to the link since), and the links that would stand in
    // the way of this one, read in the same transaction.
    let db = ctx.primary()?;
    let results = db
        .batch(vec![
            db.prepare(once::CLAIM).bind(&[
                once::key(ONCE_PURPOSE, &link.id).into(),
                slug.into(),
                crate::edge::store::d1::int(link.expires_at),
            ])?,
            db.prepare(
                "SELECT upstream_sub, user_id FROM user_links \
                 WHERE connection_id = ?1 AND (upstream_sub = ?2 OR user_id = ?3)",
            )
            .bind(&[
                cid.into(),
                link.upstream_sub.as_str().into(),
                user.id.as_str().into(),
            ])?,
        ])
        .await?;
    let first = results
        .first()
        .map(|r| r.results::<serde_json::Value>())
        .transpose()?
        .is_some_and(|rows| !rows.is_empty());
    if !first {
        refused(ctx, slug, &link, Some(&user.id), "confirmation_replayed");
        return gone(
            &org,
            "This link confirmation was already used. Start again from the application.",
        );
    }
    let existing = match results.get(1) {
        Some(r) => r.results::<LinkRow>()?,
        None => Vec::new(),
    };
    if let Some(page) = conflict(ctx, &org, &link, &user.id, &existing)? {
        return Ok(page);
    }
    let authenticated = Authenticated {
        user_id: user.id.clone(),
        auth_time: ctx.now,
        factors: upstream::confirmation_factors(),
        in_this_interaction: true,
    };
    let pending = Interaction {
        link: Some(link),
        ..interaction
    };
    interaction::proceed(
        ctx,
        &req,
        Continue {
            org: &org,
            client: &client,
            interaction: &pending,
            authenticated: Some(authenticated),
            user: Some(&user),
            origin: Origin::Fresh,
            consented: false,
            status: 303,
        },
    )
    .await
}

/// The page for a link that cannot be made: the upstream account is linked to another user
/// here, or this user to another account of the same upstream. `None` when nothing stands in
/// the way (no row, or this very link already there).
fn conflict(
    ctx: &Ctx,
    org: &Organization,
    link: &PendingLink,
    user_id: &str,
    rows: &[LinkRow],
) -> Result<Option<Response>> {
    for row in rows {
        let same_sub = row.upstream_sub == link.upstream_sub;
        let same_user = row.user_id == user_id;
        if same_sub && same_user {
            continue;
        }
        let (reason, description) = if same_sub {
            (
                "upstream_account_linked_elsewhere",
                "This account at the other provider was linked to another account here meanwhile. Ask an administrator.",
            )
        } else {
            (
                "user_has_another_link",
                "Your account here is already linked to another account at this provider (one link per provider). Ask an administrator to remove that link first.",
            )
        };
        refused(ctx, &org.slug, link, Some(user_id), reason);
        return pages::error(org, 409, TITLE, description, "access_denied", None).map(Some);
    }
    Ok(None)
}

/// Writes a pending link once the gate has every factor of the sign-in (oidc/interaction.rs
/// calls it before a consent page or a code). `None`: linked (or already linked to this very
/// user: a later step of the same sign-in posted again). `Some(page)`: refused.
pub async fn create(
    ctx: &Ctx,
    org: &Organization,
    link: &PendingLink,
    user_id: &str,
) -> Result<Option<Response>> {
    let slug = org.slug.as_str();
    let db = ctx.primary()?;
    let insert = store::link_statement(
        &db,
        slug,
        &link.connection_id,
        &link.upstream_sub,
        user_id,
        ctx.now,
        true,
    )?;
    match db.batch(vec![insert]).await {
        Ok(_) => {
            audit::note(
                ctx,
                Kind::UpstreamLinkConfirmed,
                slug,
                Some(user_id),
                None,
                detail([
                    ("connection_id", json!(link.connection_id)),
                    (
                        "upstream_subject",
                        json!(upstream::subject_hash(&link.upstream_sub)),
                    ),
                ]),
            );
            Ok(None)
        }
        Err(e) if is_unique_violation(&e) => {
            // Made between the check and now by another sign-in: this user's already, or not.
            let rows = db
                .prepare(
                    "SELECT upstream_sub, user_id FROM user_links \
                     WHERE connection_id = ?1 AND (upstream_sub = ?2 OR user_id = ?3)",
                )
                .bind(&[
                    link.connection_id.as_str().into(),
                    link.upstream_sub.as_str().into(),
                    user_id.into(),
                ])?
                .all()
                .await?
                .results::<LinkRow>()?;
            conflict(ctx, org, link, user_id, &rows)
        }
        Err(e) if is_foreign_key_violation(&e) => {
            refused(ctx, slug, link, Some(user_id), "connection_deleted");
            gone(
                org,
                "This sign-in option was removed meanwhile. Start again from the application.",
            )
            .map(Some)
        }
        Err(e) => Err(e),
    }
}
