//! Clavex: an OpenID Connect provider that runs as a Cloudflare Worker.
//!
//! Layout (one look finds any endpoint):
//! - `routes.rs`     the route table: path → endpoint, pure and unit-tested
//! - `protocol/`     OAuth 2.0 / OIDC rules in plain Rust (no Worker types), tested natively
//! - `admin/`        the admin REST API under /api/v1/
//! - `oidc/`         the per-organization OIDC endpoints (thin: parse, call protocol, store)
//! - `crypto.rs`     hashing, random tokens, sealing (pure Rust, cheap operations only)
//! - `edge/`         Worker adapters: HTTP responses, D1, KV, WebCrypto, configuration
//! - `ui/`           server-rendered HTML pages (templates escape by construction)

pub mod admin;
pub mod crypto;
pub mod edge;
#[cfg(test)]
mod fuzz;
pub mod oidc;
pub mod protocol;
pub mod routes;
pub mod ui;

use worker::{Context, Env, Request, Response, Result, ScheduleContext, ScheduledEvent, event};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    console_error_panic_hook::set_once();
    edge::dispatch::handle(req, env, ctx).await
}

/// The cron trigger (wrangler.toml `[triggers]`): clean up expired tokens and finished grants;
/// while previous KEY_ENCRYPTION_SECRETs are configured, re-seal what is still sealed under them.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    let db = match env.d1("DB") {
        Ok(db) => edge::store::database::Db::primary(db, edge::store::meter::Meter::default()),
        Err(e) => {
            worker::console_error!("scheduled clean-up failed: {e}");
            return;
        }
    };
    if let Err(e) = edge::cleanup::run(&db, edge::context::now_seconds()).await {
        worker::console_error!("scheduled clean-up failed: {e}");
    }
    match edge::config::keyring(&env) {
        Ok(keys) if keys.rotating() => match edge::reseal::run(&db, &keys).await {
            Ok(report) => edge::reseal::log(&report, "cron"),
            Err(e) => worker::console_error!("scheduled re-seal failed: {e}"),
        },
        Ok(_) => {}
        Err(e) => worker::console_error!("configuration error: {e}"),
    }
}
