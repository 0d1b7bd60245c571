//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a user's session ends at
//! Clavex — RP-initiated logout, signing out everywhere, a password changed or reset by a
//! one-time link, or an admin disabling or deleting the user — every relying party
//! that registered a `backchannel_logout_uri` and holds a grant of the user's is sent a signed
//! logout token. Who is told and what the token says are decided in protocol/logout_token.rs;
//! this reads the grants, signs, and sends after the response (`waitUntil`), each delivery with
//! bounded retries and recorded in the audit trail.

use futures_util::future::join_all;
use serde_json::json;
use wasm_bindgen::JsValue;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
};

use crate::crypto::{b64url, random_bytes};
use crate::edge::audit::detail;
use crate::edge::context::Ctx;
use crate::edge::store::database::Db;
use crate::edge::store::meter::Meter;
use crate::edge::store::{events, grants};
use crate::oidc::signer;
use crate::protocol::audit::{Event, Kind};
use crate::protocol::logout_token::{
    self, ATTEMPT_TIMEOUT_MS, ATTEMPT_WAITS_MS, Delivery, Ended, GrantAt,
};

/// One signed logout token on its way.
struct Outgoing {
    delivery: Delivery,
    token: String,
}

/// Tell the relying parties that `ended` for `user_id`. The grants are read at the primary (a
/// grant issued a moment ago must not be missed); the tokens are signed now and sent after the
/// response. Never fails the caller: the sign-out itself has happened, and a relying party that
/// cannot be told is a log line and an audit event, not an error page.
pub async fn announce(ctx: &Ctx, org: &str, user_id: &str, ended: Ended<'_>) {
    if let Err(e) = prepare(ctx, org, user_id, &ended).await {
        worker::console_error!(
            "{}",
            json!({"error": "backchannel_logout", "org": org, "message": e.to_string()})
        );
    }
}

/// The same, for grants already read (`held`): where the write that ends them also read them
/// in its own transaction (a one-time link's claim, store/links.rs), so no grant is missed and
/// nobody is told of a sign-out that did not happen.
pub async fn announce_held(
    ctx: &Ctx,
    org: &str,
    user_id: &str,
    ended: Ended<'_>,
    held: Vec<GrantAt>,
) {
    if let Err(e) = deliver(ctx, org, user_id, &ended, held).await {
        worker::console_error!(
            "{}",
            json!({"error": "backchannel_logout", "org": org, "message": e.to_string()})
        );
    }
}

async fn prepare(ctx: &Ctx, org: &str, user_id: &str, ended: &Ended<'_>) -> worker::Result<()> {
    let db = ctx.primary()?;
    let held = grants::logout_targets(&db, org, user_id, ctx.now).await?;
    deliver(ctx, org, user_id, ended, held).await
}

async fn deliver(
    ctx: &Ctx,
    org: &str,
    user_id: &str,
    ended: &Ended<'_>,
    held: Vec<GrantAt>,
) -> worker::Result<()> {
    let deliveries = logout_token::deliveries(ended, &held);
    if deliveries.is_empty() {
        return Ok(());
    }
    let issuer = ctx.config.issuer(org);
    let https = ctx.config.secure_cookies();
    let mut outgoing = Vec::with_capacity(deliveries.len());
    let mut refused = Vec::new();
    for delivery in deliveries {
        if !logout_token::may_send(&delivery.uri, https) {
            refused.push(delivery);
            continue;
        }
        let jti = b64url(&random_bytes::<16>());
        let claims = logout_token::claims(
            &issuer,
            &delivery.client_id,
            user_id,
            delivery.sid.as_deref(),
            &jti,
            ctx.now,
        );
        let token = signer::sign_typed(ctx, org, logout_token::TYP, &claims).await?;
        outgoing.push(Outgoing { delivery, token });
    }
    let base = Event {
        org: org.to_string(),
        at: ctx.now,
        kind: Kind::BackchannelLogout,
        user_id: Some(user_id.to_string()),
        client_id: None,
        ip: ctx.client_ip.clone(),
        user_agent: ctx.user_agent.clone(),
        detail: Default::default(),
    };
    let mut events: Vec<Event> = refused
        .into_iter()
        .map(|d| Event {
            client_id: Some(d.client_id),
            detail: detail([
                ("delivered", json!(false)),
                ("attempts", json!(0)),
                (
                    "reason",
                    json!("plain http is sent only in local development"),
                ),
            ]),
            ..base.clone()
        })
        .collect();
    let d1 = ctx.env.d1("DB")?;
    ctx.defer(async move {
        let results = join_all(outgoing.into_iter().map(send)).await;
        for (delivery, attempts, status) in results {
            events.push(Event {
                client_id: Some(delivery.client_id),
                detail: detail([
                    (
                        "delivered",
                        json!(status.is_some_and(logout_token::delivered)),
                    ),
                    ("attempts", json!(attempts)),
                    ("status", json!(status)),
                    ("sid", json!(delivery.sid.is_some())),
                ]),
                ..base.clone()
            });
        }
        for e in &events {
            worker::console_log!("{}", e.log_line());
        }
        // Not the request's meter: this happens after the response.
        let db = Db::primary(d1, Meter::default());
        if let Err(e) = events::insert(&db, &events).await {
            worker::console_error!("back-channel logout events not stored: {e}");
        }
    });
    Ok(())
}

/// Deliver one token: attempts after the waits of `ATTEMPT_WAITS_MS` until one is answered
/// 2xx or with an answer that retrying will not change. The delivery, the attempts made and the
/// last status (None: never answered).
async fn send(out: Outgoing) -> (Delivery, usize, Option<u16>) {
    let mut status = None;
    let mut attempts = 0;
    for wait in ATTEMPT_WAITS_MS {
        if wait > 0 {
            Delay::from(std::time::Duration::from_millis(wait)).await;
        }
        attempts += 1;
        status = post(&out.delivery.uri, &out.token).await;
        if !logout_token::worth_retrying(status) {
            break;
        }
    }
    (out.delivery, attempts, status)
}

/// §2.5: an HTTP POST of `logout_token` as a form to the RP's URI. Redirects are not followed
/// (an answer is the RP's own); an attempt not answered within `ATTEMPT_TIMEOUT_MS` is aborted.
async fn post(uri: &str, token: &str) -> Option<u16> {
    let headers = Headers::new();
    headers
        .set("Content-Type", "application/x-www-form-urlencoded")
        .ok()?;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish();
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(&body)))
        .with_redirect(RequestRedirect::Manual);
    let request = Request::new_with_init(uri, &init).ok()?;
    let controller = AbortController::default();
    let signal = controller.signal();
    wasm_bindgen_futures::spawn_local(async move {
        Delay::from(std::time::Duration::from_millis(ATTEMPT_TIMEOUT_MS)).await;
        controller.abort();
    });
    let response = Fetch::Request(request)
        .send_with_signal(&signal)
        .await
        .ok()?;
    Some(response.status_code())
}
