//! The browser's SSO session: created when a sign-in completes, read at authorize and by the
//! pages that continue it, upgraded by a step-up to a second factor, ended at logout.

use worker::{Request, Result};

use crate::crypto::{random_token, token_hash};
use crate::edge::context::Ctx;
use crate::edge::store::kv::{self, Session};
use crate::edge::store::users::{User, get_user};
use crate::oidc::cookies;
use crate::oidc::request::header;
use crate::protocol::account::{session_live, session_started_ms};
use crate::protocol::lifetimes::SSO_SESSION_SECONDS;

/// The browser's live session and its user.
pub struct Current {
    /// The session id from the cookie (never logged or stored in clear).
    id: String,
    pub session: Session,
    pub user: User,
}

impl Current {
    /// The SHA-256 of the session id: what sealed form states name to be bound to this session.
    pub fn id_hash(&self) -> String {
        token_hash(&self.id)
    }
}

/// The signed-in user of this browser, if the session is live and the user still enabled. A
/// session started before the user signed out everywhere is absent (protocol/account.rs): the
/// user row read here carries that time, so the check costs no read of its own. It is as fresh as
/// the replica the row comes from — at other locations a sign-out everywhere takes effect once
/// their replica has the write (README, "Account page").
pub async fn current(ctx: &Ctx, org: &str, req: &Request) -> Result<Option<Current>> {
    let Some(cookie) = cookie_session(ctx, org, req).await? else {
        return Ok(None);
    };
    let user_id = cookie.1.user_id.as_str();
    let user = ctx
        .found(|db| async move { get_user(&db, org, user_id).await })
        .await?;
    Ok(current_of(cookie, user))
}

/// The browser's session as KV has it (its id from the cookie, and its record), before its
/// user is read: for an endpoint that reads the user with its other reads (oidc/authorize.rs).
pub async fn cookie_session(
    ctx: &Ctx,
    org: &str,
    req: &Request,
) -> Result<Option<(String, Session)>> {
    let Some(session_id) = cookies::read(header(req, "Cookie").as_deref(), cookies::SESSION) else {
        return Ok(None);
    };
    Ok(kv::get_session(&ctx.kv()?, org, &session_id, ctx.now)
        .await?
        .map(|session| (session_id, session)))
}

/// The current session of `cookie_session`, with its user as read now (`None`: deleted).
pub fn current_of((id, session): (String, Session), user: Option<User>) -> Option<Current> {
    let started = session_started_ms(session.started_ms, session.auth_time);
    let live = |u: &User| !u.disabled && session_live(started, u.sessions_not_before_ms);
    user.filter(live).map(|user| Current { id, session, user })
}

/// Start a session for `user_id`, first authenticated at `auth_time` with `factors`; returns
/// the Set-Cookie value, the hash of the new session's id and its public `sid`.
/// A session just started: its Set-Cookie, the hash of its id, its public `sid` and when it
/// started (unix ms).
pub struct Started {
    pub cookie: String,
    pub hash: String,
    pub sid: Option<String>,
    pub started_ms: i64,
}

pub async fn start(
    ctx: &Ctx,
    org: &str,
    user_id: &str,
    auth_time: i64,
    factors: u8,
) -> Result<Started> {
    let started_ms = crate::edge::context::now_millis();
    let session = Session {
        user_id: user_id.to_string(),
        auth_time,
        expires_at: ctx.now + SSO_SESSION_SECONDS,
        factors,
        // 128 random bits: names the session to relying parties without revealing the cookie.
        sid: Some(crate::crypto::b64url(&crate::crypto::random_bytes::<16>())),
        // The clock now, not the request's start (`ctx.now_ms` is whole seconds): compared with
        // a sign-out everywhere to the millisecond.
        started_ms: Some(started_ms),
    };
    let (cookie, hash) = put(ctx, org, &session).await?;
    Ok(Started {
        cookie,
        hash,
        sid: session.sid,
        started_ms,
    })
}

/// A step-up: the same sign-in with more factors. It keeps the session's `auth_time` (when the
/// password was given — OIDC Core §2 `auth_time` is the time of the authentication, and a later
/// code must not make an hours-old password look fresh to `max_age`) and its end, and moves it to
/// a new id (a privilege change gets a new session id, OWASP ASVS 3.2.1) while the old id is
/// deleted, so the weaker session does not live on. Returns the Set-Cookie and the new id's hash.
pub async fn upgrade(ctx: &Ctx, org: &str, old: &Current, factors: u8) -> Result<(String, String)> {
    let session = Session {
        factors: old.session.factors | factors,
        ..old.session.clone()
    };
    let started = put(ctx, org, &session).await?;
    kv::delete_session(&ctx.kv()?, org, &old.id).await?;
    Ok(started)
}

async fn put(ctx: &Ctx, org: &str, session: &Session) -> Result<(String, String)> {
    let session_id = random_token("");
    kv::put_session(&ctx.kv()?, org, &session_id, session, ctx.now).await?;
    let cookie = cookies::set(
        cookies::SESSION,
        &session_id,
        org,
        ctx.config.secure_cookies(),
        (session.expires_at - ctx.now).max(0),
    );
    Ok((cookie, token_hash(&session_id)))
}

/// End this browser's session (if any); returns the Set-Cookie values that clear the session
/// cookie and the CSRF cookie — every form state is bound to the CSRF token, so a page shown
/// before the logout cannot be posted after it (oidc/form_state.rs) — and the session that
/// ended (for the audit trail and back-channel logout).
pub async fn end(ctx: &Ctx, org: &str, req: &Request) -> Result<([String; 2], Option<Session>)> {
    let mut ended = None;
    if let Some(session_id) = cookies::read(header(req, "Cookie").as_deref(), cookies::SESSION) {
        let kv = ctx.kv()?;
        ended = kv::get_session(&kv, org, &session_id, ctx.now).await?;
        kv::delete_session(&kv, org, &session_id).await?;
    }
    let secure = ctx.config.secure_cookies();
    let cookies = [
        cookies::clear(cookies::SESSION, org, secure),
        cookies::clear(cookies::CSRF, org, secure),
    ];
    Ok((cookies, ended))
}

/// Delete the session this browser's cookie names, if any, without reading it: a new sign-in in
/// this browser replaces it (the new session's cookie overwrites the old one's).
pub async fn forget(ctx: &Ctx, org: &str, req: &Request) -> Result<()> {
    if let Some(session_id) = cookies::read(header(req, "Cookie").as_deref(), cookies::SESSION) {
        kv::delete_session(&ctx.kv()?, org, &session_id).await?;
    }
    Ok(())
}
