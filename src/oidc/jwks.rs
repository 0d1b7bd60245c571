//! GET {issuer}/jwks — the organization's public signing keys (RFC 7517): the active key and
//! retired keys while tokens they signed may still be live. Never any private member.

use serde_json::{Value, json};
use worker::{Method, Request, Response, Result};

use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::keys::published_keys;
use crate::oidc::discovery::public_json;
use crate::oidc::request::{organization, unknown_org_json};

pub async fn handle(req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    if req.method() != Method::Get && req.method() != Method::Head {
        return http::method_not_allowed("GET, HEAD");
    }
    if organization(ctx, slug).await?.is_none() {
        return unknown_org_json();
    }
    let keys: Vec<Value> = published_keys(&ctx.db()?, slug, ctx.now)
        .await?
        .iter()
        .filter_map(|k| {
            let public: Value = serde_json::from_str(&k.public_jwk).ok()?;
            Some(json!({
                "kty": "RSA", "use": "sig", "alg": k.alg, "kid": k.kid,
                "n": public.get("n")?, "e": public.get("e")?,
            }))
        })
        .collect();
    public_json(&json!({ "keys": keys }))
}
