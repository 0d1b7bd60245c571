//! The browser's SSO session: created at login, read at authorize, ended at logout.

use worker::{Request, Result};

use crate::crypto::random_token;
use crate::edge::context::Ctx;
use crate::edge::store::kv::{self, Session};
use crate::edge::store::users::{User, get_user};
use crate::oidc::cookies;
use crate::oidc::request::header;
use crate::protocol::lifetimes::SSO_SESSION_SECONDS;

/// The signed-in user of this browser, if the session is live and the user still enabled.
pub async fn current(ctx: &Ctx, org: &str, req: &Request) -> Result<Option<(Session, User)>> {
    let Some(session_id) = cookies::read(header(req, "Cookie").as_deref(), cookies::SESSION) else {
        return Ok(None);
    };
    let Some(session) = kv::get_session(&ctx.kv()?, org, &session_id, ctx.now).await? else {
        return Ok(None);
    };
    let user_id = session.user_id.as_str();
    let user = ctx
        .found(|db| async move { get_user(&db, org, user_id).await })
        .await?;
    Ok(user.filter(|u| !u.disabled).map(|u| (session, u)))
}

/// Start a session for `user_id`, authenticated now with `factors`; returns the Set-Cookie value.
pub async fn start(ctx: &Ctx, org: &str, user_id: &str, factors: u8) -> Result<String> {
    let session_id = random_token("");
    let session = Session {
        user_id: user_id.to_string(),
        auth_time: ctx.now,
        expires_at: ctx.now + SSO_SESSION_SECONDS,
        factors,
    };
    kv::put_session(&ctx.kv()?, org, &session_id, &session, ctx.now).await?;
    Ok(cookies::set(
        cookies::SESSION,
        &session_id,
        org,
        ctx.config.secure_cookies(),
        SSO_SESSION_SECONDS,
    ))
}

/// End this browser's session (if any); returns the Set-Cookie value that clears the cookie,
/// and whose session it was (for the audit trail).
pub async fn end(ctx: &Ctx, org: &str, req: &Request) -> Result<(String, Option<String>)> {
    let mut user_id = None;
    if let Some(session_id) = cookies::read(header(req, "Cookie").as_deref(), cookies::SESSION) {
        let kv = ctx.kv()?;
        user_id = kv::get_session(&kv, org, &session_id, ctx.now)
            .await?
            .map(|s| s.user_id);
        kv::delete_session(&kv, org, &session_id).await?;
    }
    let cookie = cookies::clear(cookies::SESSION, org, ctx.config.secure_cookies());
    Ok((cookie, user_id))
}
