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

/// The cron trigger (wrangler.toml `[triggers]`): clean up expired tokens and finished grants.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    console_error_panic_hook::set_once();
    let outcome = match env.d1("DB") {
        Ok(db) => {
            let db = edge::store::database::Db::primary(db, edge::store::meter::Meter::default());
            edge::cleanup::run(&db, edge::context::now_seconds()).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        worker::console_error!("scheduled clean-up failed: {e}");
    }
}
