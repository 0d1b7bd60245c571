//! Request dispatch: resolve the route (routes.rs), build the context, call the endpoint.

use worker::{Env, Method, Request, Response, Result};

use crate::edge::http;
use crate::routes::{self, Route};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn handle(req: Request, env: Env) -> Result<Response> {
    let path = req.path();
    match routes::resolve(&path) {
        Route::Health => health(&req),
        _ => {
            let _ = env;
            http::not_found()
        }
    }
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
