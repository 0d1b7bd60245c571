//! Request dispatch: resolve the route (routes.rs), build the context, call the endpoint.

use worker::{Context, Env, Method, Request, Response, Result};

use crate::edge::config::Config;
use crate::edge::context::{Ctx, now_millis};
use crate::edge::failure;
use crate::edge::http;
use crate::edge::store::fault::FaultPlan;
use crate::edge::store::meter::Meter;
use crate::oidc;
use crate::routes::{self, Route};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Development only (`SIMULATED_STORAGE_FAULTS=on`, loopback requests): the storage calls this
/// request must fail (store/fault.rs).
pub const FAULT_HEADER: &str = "X-Clavex-Fail-Storage";

pub async fn handle(req: Request, env: Env, context: Context) -> Result<Response> {
    let path = req.path();
    let route = routes::resolve(&path);
    if route == Route::Health {
        return health(&req);
    }
    if route == Route::NotFound {
        return http::not_found();
    }
    let config = match Config::from_env(&env, &req.url()?) {
        Ok(config) => config,
        Err(e) => {
            // Misconfiguration is the operator's problem: say so without leaking values.
            worker::console_error!("configuration error: {e}");
            return http::api_error(500, "server_error", "the server is not configured", None);
        }
    };
    // Browser-based clients call these cross-origin (see http::allow_any_origin).
    let cors_methods = match route {
        Route::Token(_) | Route::Revoke(_) => Some("POST"),
        Route::Userinfo(_) => Some("GET, POST"),
        Route::Discovery(_) | Route::AuthServerMetadata(_) | Route::Jwks(_) => Some("GET"),
        _ => None,
    };
    if let (Some(methods), Method::Options) = (cors_methods, req.method()) {
        return http::preflight(methods);
    }
    let mut meter = Meter::new(config.simulated_latency);
    if config.simulated_faults
        && let Some(asked) = req.headers().get(FAULT_HEADER)?
    {
        match FaultPlan::parse(&asked) {
            Ok(plan) => meter = meter.with_faults(plan),
            Err(e) => {
                return http::api_error(
                    400,
                    "invalid_request",
                    &format!("{FAULT_HEADER}: {e}"),
                    None,
                );
            }
        }
    }
    let storage_timing = config.storage_timing;
    // The development clock offset is 0 unless set, and only ever honoured on loopback.
    let now_ms = now_millis() + config.clock_offset_seconds * 1000;
    let mut ctx = Ctx::new(env, config, now_ms / 1000, meter.clone());
    ctx.now_ms = now_ms;
    ctx.client_ip = req.headers().get("CF-Connecting-IP")?;
    ctx.user_agent = req.headers().get("User-Agent")?;
    let pages = shows_pages(&route);
    let outcome = match &route {
        Route::Admin(segments) => crate::admin::handle(req, &ctx, segments).await,
        Route::Discovery(org) | Route::AuthServerMetadata(org) => {
            oidc::discovery::handle(req, &ctx, org).await
        }
        Route::Jwks(org) => oidc::jwks::handle(req, &ctx, org).await,
        Route::Authorize(org) => oidc::authorize::handle(req, &ctx, org).await,
        Route::Login(org) => oidc::login::handle(req, &ctx, org).await,
        Route::Consent(org) => oidc::consent::handle(req, &ctx, org).await,
        Route::Token(org) => oidc::token::handle(req, &ctx, org).await,
        Route::Userinfo(org) => oidc::userinfo::handle(req, &ctx, org).await,
        Route::Revoke(org) => oidc::revoke::handle(req, &ctx, org).await,
        Route::Introspect(org) => oidc::introspect::handle(req, &ctx, org).await,
        Route::EndSession(org) => oidc::logout::handle(req, &ctx, org).await,
        Route::Mfa(org) => oidc::mfa::handle_challenge(req, &ctx, org).await,
        Route::MfaPasskey(org) => oidc::passkeys::handle_second_factor(req, &ctx, org).await,
        Route::MfaEnrol(org) => oidc::mfa::handle_enrol(req, &ctx, org).await,
        Route::MfaFinish(org) => oidc::mfa::handle_finish(req, &ctx, org).await,
        Route::AccountMfa(org) => oidc::mfa::handle_account(req, &ctx, org).await,
        Route::Account(org) => oidc::account::handle_page(req, &ctx, org).await,
        Route::AccountSignedIn(org) => oidc::account::handle_signed_in(req, &ctx, org).await,
        Route::AccountPassword(org) => oidc::account::handle_password(req, &ctx, org).await,
        Route::AccountSignOut(org) => oidc::account::handle_sign_out(req, &ctx, org).await,
        Route::AccountMfaRemove(org) => oidc::account::handle_remove_totp(req, &ctx, org).await,
        Route::AccountRecoveryCodes(org) => {
            oidc::account::handle_recovery_codes(req, &ctx, org).await
        }
        Route::SetupLink(org, token) => oidc::setup_link::handle(req, &ctx, org, token).await,
        Route::SetupLinkPasskey(org, token) => {
            oidc::setup_link::handle_passkey(req, &ctx, org, token).await
        }
        Route::ForgotPassword(org) => oidc::forgot_password::handle(req, &ctx, org).await,
        Route::PasskeySignIn(org) => oidc::passkeys::handle_sign_in(req, &ctx, org).await,
        Route::AccountPasskeyAdd(org) => oidc::passkeys::handle_add(req, &ctx, org).await,
        Route::AccountPasskeyRename(org) => oidc::passkeys::handle_rename(req, &ctx, org).await,
        Route::AccountPasskeyRemove(org) => oidc::passkeys::handle_remove(req, &ctx, org).await,
        Route::ConnectionStart(org, id) => oidc::federation::handle_start(req, &ctx, org, id).await,
        Route::ConnectionCallback(org) => oidc::federation::handle_callback(req, &ctx, org).await,
        Route::ConnectionLink(org) => oidc::federation_link::handle(req, &ctx, org).await,
        Route::DevReplicaSync => crate::edge::dev_replica::handle(req, &ctx).await,
        Route::Health | Route::NotFound => http::not_found(),
    };
    // An endpoint that failed answers in its caller's form (503 when storage did not answer),
    // never with the runtime's bare 500 text.
    let resp = match outcome {
        Ok(resp) => resp,
        // A stored key the configured secrets cannot open: a configuration problem, said so.
        Err(e) if crate::edge::sealed::is_unreadable(&e) => crate::edge::sealed::answer(pages)?,
        Err(e) => failure::respond(&ctx, &route, meter.fault(), &e),
    };
    // Every outcome's events are stored, a failed request's included (what it noted before it
    // failed, and the failure itself).
    crate::edge::audit::flush(&ctx, &context);
    for work in ctx.take_deferred() {
        context.wait_until(work);
    }
    if storage_timing {
        resp.headers()
            .append("Server-Timing", &meter.tally().server_timing())?;
    }
    match cors_methods {
        Some(_) => http::allow_any_origin(resp),
        None => Ok(resp),
    }
}

/// Endpoints a person's browser navigates to (they answer with pages, not JSON): the same
/// division the failure answers use.
fn shows_pages(route: &Route) -> bool {
    failure::caller(route) == failure::Caller::Browser
}

fn health(req: &Request) -> Result<Response> {
    if req.method() != Method::Get && req.method() != Method::Head {
        return http::method_not_allowed("GET, HEAD");
    }
    http::json(
        200,
        &serde_json::json!({ "status": "ok", "service": "clavex", "version": VERSION }),
    )
}
