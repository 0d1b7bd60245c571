//! GET {issuer}/jwks — the organization's public signing keys (RFC 7517): the active key and
//! retired keys while tokens they signed may still be live. Never any private member.
//!
//! The key set is cached per isolate for a few seconds, so a burst of JWKS requests costs one D1
//! read. Kept short on purpose: right after a rotation another isolate may serve the old set for
//! at most this long (the rotating isolate drops its copy, see `forget`).

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{Value, json};
use worker::{Method, Request, Response, Result};

use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::keys::published_keys;
use crate::oidc::discovery::public_json;
use crate::oidc::request::{organization, unknown_org_json};

const JWKS_CACHE_SECONDS: i64 = 10;

thread_local! {
    static CACHE: RefCell<HashMap<String, (Value, i64)>> = RefCell::new(HashMap::new());
}

/// Drop the cached key set of `org` (after a rotation or deletion in this isolate).
pub fn forget(org: &str) {
    CACHE.with(|c| c.borrow_mut().remove(org));
}

pub async fn handle(req: Request, ctx: &Ctx, slug: &str) -> Result<Response> {
    if req.method() != Method::Get && req.method() != Method::Head {
        return http::method_not_allowed("GET, HEAD");
    }
    if organization(ctx, slug).await?.is_none() {
        return unknown_org_json();
    }
    let cached = CACHE.with(|c| {
        c.borrow()
            .get(slug)
            .filter(|(_, at)| ctx.now - at < JWKS_CACHE_SECONDS)
            .map(|(v, _)| v.clone())
    });
    if let Some(jwks) = cached {
        return public_json(&jwks);
    }
    // An organization always has a key: an empty set from the replica means it lags (the
    // organization is new), so the primary is asked.
    let keys: Vec<Value> = ctx
        .fresh(
            |db| async move { published_keys(&db, slug, ctx.now).await.map(Some) },
            |keys| !keys.is_empty(),
        )
        .await?
        .unwrap_or_default()
        .iter()
        .filter_map(|k| {
            let public: Value = serde_json::from_str(&k.public_jwk).ok()?;
            Some(json!({
                "kty": "RSA", "use": "sig", "alg": k.alg, "kid": k.kid,
                "n": public.get("n")?, "e": public.get("e")?,
            }))
        })
        .collect();
    let jwks = json!({ "keys": keys });
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(slug.to_string(), (jwks.clone(), ctx.now));
    });
    public_json(&jwks)
}
