//! One-time links from the admin API (issue 16, item 3): `POST …/users/{id}/setup-link` (an
//! invitation: the user chooses a password) and `POST …/users/{id}/recovery-link` (a locked-out
//! user: the administrator chooses what it resets, `reset: ["password", "second_factor"]`);
//! creating a user without a password makes a setup link too (admin/users.rs).
//!
//! The link is in the response once: only its hash is stored (edge/store/links.rs), so no later
//! request can show it again. A new link of the same purpose replaces the user's earlier ones.
//! Where e-mail is configured (edge/email.rs), Clavex also e-mails it to the user's address and
//! says whether the e-mail was accepted — by default (issue 16 item 4: "Clavex e-mails invitation
//! and recovery links itself"); `send_email: false` leaves the sending to the administrator.
//! Without e-mail configured, `send_email: true` is refused (409 `email_not_configured`) before
//! anything is made, and links are only returned.

use serde::Serialize;
use serde_json::json;
use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::fields::Fields;
use crate::admin::{Failure, Outcome, body, organizations};
use crate::crypto::random_token;
use crate::edge::audit::{self, detail};
use crate::edge::context::Ctx;
use crate::edge::email::{self, Message};
use crate::edge::http;
use crate::edge::store::{self, links, users::User};
use crate::protocol::audit::Kind;
use crate::protocol::links::{
    MAX_VALID_SECONDS, MIN_VALID_SECONDS, Purpose, Resets, email_text, url, valid_for,
};

pub const SETUP_FIELDS: &[&str] = &["valid_for_seconds", "send_email"];
pub const RECOVERY_FIELDS: &[&str] = &["reset", "valid_for_seconds", "send_email"];

/// What the API answers for a link: the link itself (shown this once), when it expires, what it
/// resets, and — when asked to — whether the e-mail was accepted.
#[derive(Serialize)]
pub struct LinkView {
    pub link: String,
    pub expires_at: i64,
    pub purpose: &'static str,
    pub reset: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emailed: Option<bool>,
}

/// A body, or no body at all (every member is optional).
async fn fields(req: &mut Request, ctx: &Ctx, allowed: &[&str]) -> Result<Fields, Failure> {
    if req.headers().get("Content-Type")?.is_none() {
        return Ok(Fields::new(json!({}), allowed)?);
    }
    body::read(req, ctx, allowed).await
}

/// Whether to e-mail the link: `send_email` as given, else whether e-mail is configured; an
/// explicit `true` is refused up front where e-mail is not configured.
pub fn wants_email(ctx: &Ctx, fields: &Fields) -> Result<bool, ApiError> {
    let wanted = fields
        .bool("send_email")?
        .unwrap_or_else(|| email::configured(ctx));
    if wanted && !email::configured(ctx) {
        return Err(ApiError::new(
            409,
            "email_not_configured",
            "send_email needs the EMAIL send_email binding and the EMAIL_FROM var (README, \"E-mail in production\"); without them, give the user the link yourself",
        ));
    }
    Ok(wanted)
}

/// Make a link for `user` (enabled, of `org`) and, if asked, e-mail it.
pub async fn issue(
    ctx: &Ctx,
    org: &str,
    user: &User,
    purpose: Purpose,
    resets: Resets,
    valid_seconds: i64,
    send: bool,
) -> Result<LinkView, Failure> {
    let token = random_token("");
    let expires_at = ctx.now + valid_seconds;
    let db = ctx.primary()?;
    if !links::issue(
        &db, org, &user.id, purpose, resets, &token, ctx.now, expires_at,
    )
    .await?
    {
        return Err(refused_user().into());
    }
    let link = url(&ctx.config.issuer(org), &token);
    let emailed = if send {
        Some(send_link(ctx, org, user, purpose, &link, valid_seconds).await)
    } else {
        None
    };
    audit::note(
        ctx,
        Kind::LinkIssued,
        org,
        Some(&user.id),
        None,
        detail([
            ("purpose", json!(purpose.as_str())),
            ("resets", json!(resets.names())),
            ("by", json!("admin")),
            ("emailed", json!(emailed.unwrap_or(false))),
        ]),
    );
    Ok(LinkView {
        link,
        expires_at,
        purpose: purpose.as_str(),
        reset: resets.names(),
        emailed,
    })
}

/// E-mail the link to the user; whether the binding accepted it (a failure is logged, never the
/// link).
async fn send_link(
    ctx: &Ctx,
    org: &str,
    user: &User,
    purpose: Purpose,
    link: &str,
    valid_seconds: i64,
) -> bool {
    let Some(mailer) = email::mailer(ctx) else {
        return false;
    };
    let org_name = crate::oidc::request::organization(ctx, org)
        .await
        .ok()
        .flatten()
        .map(|o| o.name)
        .unwrap_or_else(|| org.to_string());
    let (subject, text) = email_text(purpose, &org_name, &user.username, link, valid_seconds);
    match mailer
        .send(&Message {
            from_name: &org_name,
            to: &user.email,
            subject: &subject,
            text: &text,
        })
        .await
    {
        Ok(()) => true,
        Err(e) => {
            worker::console_error!("a link e-mail was not sent: {e}");
            false
        }
    }
}

fn refused_user() -> ApiError {
    ApiError::new(
        409,
        "user_disabled",
        "the user is disabled: enable it before sending a link",
    )
}

fn validity(fields: &Fields) -> Result<i64, ApiError> {
    let asked = fields.int_in("valid_for_seconds", MIN_VALID_SECONDS..=MAX_VALID_SECONDS)?;
    valid_for(asked).map_err(|e| ApiError::invalid_field("valid_for_seconds", e))
}

async fn user(ctx: &Ctx, org: &str, id: &str) -> Result<User, Failure> {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let user = store::users::get_user(&db, org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    if user.disabled {
        return Err(refused_user().into());
    }
    Ok(user)
}

/// POST …/users/{id}/setup-link → 200 `LinkView`.
pub async fn setup(req: &mut Request, ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let fields = fields(req, ctx, SETUP_FIELDS).await?;
    let valid = validity(&fields)?;
    let send = wants_email(ctx, &fields)?;
    let user = user(ctx, org, id).await?;
    let view = issue(
        ctx,
        org,
        &user,
        Purpose::Setup,
        Resets::PASSWORD,
        valid,
        send,
    )
    .await?;
    Ok(http::json(200, &view)?)
}

/// POST …/users/{id}/recovery-link → 200 `LinkView`.
pub async fn recovery(req: &mut Request, ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let fields = fields(req, ctx, RECOVERY_FIELDS).await?;
    let list = fields.string_list("reset")?;
    let resets = Resets::parse(list.as_deref()).map_err(|e| ApiError::invalid_field("reset", e))?;
    let valid = validity(&fields)?;
    let send = wants_email(ctx, &fields)?;
    let user = user(ctx, org, id).await?;
    let view = issue(ctx, org, &user, Purpose::Recovery, resets, valid, send).await?;
    Ok(http::json(200, &view)?)
}
