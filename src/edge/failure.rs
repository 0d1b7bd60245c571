//! What a request that failed answers: never the runtime's bare `500` text, always the caller's
//! own form. A storage outage (store/fault.rs) is `503 Service Unavailable` with `Retry-After`
//! (RFC 9110 §15.6.4: "the server is currently unable to handle the request due to a temporary
//! overload or scheduled maintenance, which will likely be alleviated after some delay"); any
//! other failure is a `500` in the same form. Each is logged as one JSON line, and noted in the
//! organization's audit trail.
//!
//! - token, revocation, introspection: the RFC 6749 §5.2 JSON error, `temporarily_unavailable`
//!   (the code §4.1.2.1 defines for this) or `server_error`, `Cache-Control: no-store`;
//! - userinfo: the same JSON with an RFC 6750 §3 `WWW-Authenticate: Bearer` challenge;
//! - the admin API: its `{"error", "error_description"}` shape;
//! - discovery and JWKS: JSON, never cached;
//! - the browser's pages: the branded error page, in plain words.

use serde_json::json;
use worker::{Response, Result};

use crate::edge::audit;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::fault::{StorageFault, one_line};
use crate::protocol::audit::Kind;
use crate::routes::Route;
use crate::ui::{self, Brand, ErrorPage};

/// How long a caller is asked to wait after a storage outage: long enough for a locked or
/// restarting database to come back, short enough that a person does not give up.
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// Who called, and so which form the answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A relying party's server at the token, revocation or introspection endpoint.
    OAuth,
    /// A bearer of an access token at userinfo.
    Bearer,
    /// An administrator's script under /api/v1/.
    Admin,
    /// Anyone reading discovery or the JWKS.
    Metadata,
    /// A person in a browser.
    Browser,
}

pub fn caller(route: &Route) -> Caller {
    match route {
        Route::Token(_) | Route::Revoke(_) | Route::Introspect(_) => Caller::OAuth,
        Route::Userinfo(_) => Caller::Bearer,
        Route::Admin(_) | Route::DevReplicaSync => Caller::Admin,
        Route::Authorize(_)
        | Route::Login(_)
        | Route::Consent(_)
        | Route::EndSession(_)
        | Route::Mfa(_)
        | Route::MfaPasskey(_)
        | Route::MfaEnrol(_)
        | Route::MfaFinish(_)
        | Route::AccountMfa(_)
        | Route::Account(_)
        | Route::AccountSignedIn(_)
        | Route::AccountPassword(_)
        | Route::AccountSignOut(_)
        | Route::AccountMfaRemove(_)
        | Route::AccountRecoveryCodes(_)
        | Route::SetupLink(..)
        | Route::SetupLinkPasskey(..)
        | Route::ForgotPassword(_)
        | Route::PasskeySignIn(_)
        | Route::AccountPasskeyAdd(_)
        | Route::AccountPasskeyRename(_)
        | Route::AccountPasskeyRemove(_)
        | Route::ConnectionStart(..)
        | Route::ConnectionCallback(_)
        | Route::ConnectionLink(_) => Caller::Browser,
        Route::Discovery(_)
        | Route::AuthServerMetadata(_)
        | Route::Jwks(_)
        | Route::Health
        | Route::NotFound => Caller::Metadata,
    }
}

/// The answer's words, decided without any Worker type. Pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The machine-readable code (`error`).
    pub code: &'static str,
    pub description: &'static str,
    /// The page's heading (browsers only).
    pub title: &'static str,
    pub retry_after: Option<u32>,
}

pub fn answer(caller: Caller, storage: bool) -> Answer {
    let browser = caller == Caller::Browser;
    if storage {
        Answer {
            status: 503,
            code: "temporarily_unavailable",
            // RFC 6749 §5.2's character set: no quotes or backslashes.
            description: if browser {
                "Sign-in is briefly unavailable. Try again in a moment."
            } else {
                "storage is temporarily unavailable; retry after the time in Retry-After"
            },
            title: "Temporarily unavailable",
            retry_after: Some(RETRY_AFTER_SECONDS),
        }
    } else {
        Answer {
            status: 500,
            code: "server_error",
            description: if browser {
                "Something went wrong on our side. Try again; if it keeps happening, tell your administrator."
            } else {
                "the request could not be completed"
            },
            title: "Something went wrong",
            retry_after: None,
        }
    }
}

/// The one JSON log line of a failure: what failed, where, never the path, a body or a token.
/// Pure.
pub fn log_line(route: &Route, fault: Option<&StorageFault>, message: &str) -> String {
    match fault {
        Some(f) => json!({
            "error": "storage_unavailable",
            "route": route.name(),
            "org": route.org(),
            "kind": f.store,
            "simulated": f.simulated,
            "message": one_line(&f.message),
        }),
        None => json!({
            "error": "internal_error",
            "route": route.name(),
            "org": route.org(),
            "message": one_line(message),
        }),
    }
    .to_string()
}

/// Turn an endpoint's `Err` into the caller's answer; log it and note it in the audit trail.
pub fn respond(
    ctx: &Ctx,
    route: &Route,
    fault: Option<StorageFault>,
    err: &worker::Error,
) -> Response {
    worker::console_error!("{}", log_line(route, fault.as_ref(), &err.to_string()));
    if let (Some(f), Some(org)) = (&fault, route.org()) {
        // Stored after the response like every event (the events insert is guarded on the
        // organization existing); if the store is still down it is a log line only.
        let detail = audit::detail([
            ("route", json!(route.name())),
            ("kind", json!(f.store)),
            ("simulated", json!(f.simulated)),
        ]);
        audit::note(ctx, Kind::StorageUnavailable, org, None, None, detail);
    }
    let caller = caller(route);
    let answer = answer(caller, fault.is_some());
    build(ctx, route, caller, &answer).unwrap_or_else(|_| {
        // Building headers failed: the plainest answer that still says what happened.
        Response::error(answer.description, answer.status)
            .unwrap_or_else(|_| Response::empty().expect("an empty response"))
    })
}

fn build(ctx: &Ctx, route: &Route, caller: Caller, a: &Answer) -> Result<Response> {
    let resp = match caller {
        Caller::Browser => page(route, a)?,
        Caller::OAuth | Caller::Bearer | Caller::Admin | Caller::Metadata => {
            let body = json!({ "error": a.code, "error_description": a.description });
            http::no_store(http::json(a.status, &body)?)?
        }
    };
    if caller == Caller::Bearer && a.retry_after.is_some() {
        let realm = route
            .org()
            .map(|o| ctx.config.issuer(o))
            .unwrap_or_default();
        resp.headers().set(
            "WWW-Authenticate",
            &format!(
                "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
                a.code, a.description
            ),
        )?;
    }
    if let Some(seconds) = a.retry_after {
        resp.headers().set("Retry-After", &seconds.to_string())?;
    }
    Ok(resp)
}

/// The error page, in the organization's colours when this isolate knows them (reading the
/// organization could be what failed).
fn page(route: &Route, a: &Answer) -> Result<Response> {
    let brand = route
        .org()
        .and_then(crate::oidc::request::cached_organization)
        .map(|o| crate::oidc::pages::brand(&o))
        .unwrap_or_else(|| Brand::new("Clavex", None, None));
    http::html(
        a.status,
        ui::render(&ErrorPage {
            brand: &brand,
            title: a.title,
            description: a.description,
            code: a.code,
            redirect_uri: None,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::resolve;

    #[test]
    fn each_route_answers_in_its_callers_form() {
        for (path, expected) in [
            ("/acme/token", Caller::OAuth),
            ("/acme/revoke", Caller::OAuth),
            ("/acme/introspect", Caller::OAuth),
            ("/acme/userinfo", Caller::Bearer),
            ("/api/v1/organizations/acme/clients", Caller::Admin),
            ("/acme/.well-known/openid-configuration", Caller::Metadata),
            ("/acme/jwks", Caller::Metadata),
            ("/acme/authorize", Caller::Browser),
            ("/acme/login", Caller::Browser),
            ("/acme/consent", Caller::Browser),
            ("/acme/logout", Caller::Browser),
            ("/acme/mfa", Caller::Browser),
            ("/acme/mfa/enrol", Caller::Browser),
            ("/acme/mfa/finish", Caller::Browser),
            ("/acme/account/mfa", Caller::Browser),
        ] {
            assert_eq!(caller(&resolve(path)), expected, "{path}");
        }
    }

    #[test]
    fn outages_ask_to_retry_and_bugs_do_not() {
        let a = answer(Caller::OAuth, true);
        assert_eq!((a.status, a.code), (503, "temporarily_unavailable"));
        assert_eq!(a.retry_after, Some(RETRY_AFTER_SECONDS));
        let b = answer(Caller::Browser, true);
        assert_eq!(
            b.description,
            "Sign-in is briefly unavailable. Try again in a moment."
        );
        let c = answer(Caller::Admin, false);
        assert_eq!(
            (c.status, c.code, c.retry_after),
            (500, "server_error", None)
        );
        // Descriptions travel in RFC 6749 error_description and RFC 6750 challenges.
        for caller in [
            Caller::OAuth,
            Caller::Bearer,
            Caller::Admin,
            Caller::Metadata,
        ] {
            for storage in [true, false] {
                let d = answer(caller, storage).description;
                assert!(
                    d.chars()
                        .all(|c| matches!(c, '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e')),
                    "{d}"
                );
            }
        }
    }

    #[test]
    fn the_log_line_is_one_json_object_without_the_path() {
        let route = resolve("/acme/token");
        let fault = StorageFault {
            store: "d1-primary",
            message: "D1_ERROR: database is locked:\n SQLITE_BUSY".into(),
            simulated: false,
        };
        let line = log_line(&route, Some(&fault), "ignored");
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["error"], "storage_unavailable");
        assert_eq!(v["route"], "token");
        assert_eq!(v["org"], "acme");
        assert_eq!(v["kind"], "d1-primary");
        assert_eq!(v["message"], "D1_ERROR: database is locked: SQLITE_BUSY");
        let bug: serde_json::Value =
            serde_json::from_str(&log_line(&resolve("/api/v1/organizations"), None, "boom"))
                .unwrap();
        assert_eq!(bug["error"], "internal_error");
        assert_eq!(bug["org"], serde_json::Value::Null);
    }
}
