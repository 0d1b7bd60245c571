//! GET {issuer}/.well-known/openid-configuration (OIDC Discovery §4) and
//! GET /.well-known/oauth-authorization-server/{org} (RFC 8414 §3) — the same document.

use worker::{Method, Request, Response, Result};

use crate::edge::context::Ctx;
use crate::edge::http;
use crate::oidc::request::{organization, unknown_org_json};
use crate::protocol::discovery::document;

pub async fn handle(req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    if req.method() != Method::Get && req.method() != Method::Head {
        return http::method_not_allowed("GET, HEAD");
    }
    let Some(org) = organization(ctx, slug).await? else {
        return unknown_org_json();
    };
    public_json(&document(&ctx.config.issuer(slug), &org.attribute_names))
}

/// Public, cacheable metadata (dispatch adds CORS, so browser-based clients can read it).
pub fn public_json(body: &serde_json::Value) -> Result<Response> {
    let resp = http::json(200, body)?;
    resp.headers().set("Cache-Control", "public, max-age=300")?;
    Ok(resp)
}
