//! Signing ID tokens with the organization's active key through WebCrypto. The active key row
//! and its imported CryptoKey are cached per isolate for a bounded time, so the token endpoint
//! does not read D1 or decrypt the key on every request. A rotated-out key stays published, so
//! tokens signed with a cached old key remain verifiable.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::Value;
use worker::{Error, Result};

use crate::edge::context::Ctx;
use crate::edge::store::keys::{SigningKey, active_key, published_keys, reseal};
use crate::edge::webcrypto::{self, RsaPublic};
use crate::protocol::id_token;

const ACTIVE_KEY_CACHE_SECONDS: i64 = 60;

thread_local! {
    static ACTIVE: RefCell<HashMap<String, (SigningKey, i64)>> = RefCell::new(HashMap::new());
}

/// The organization's active signing key (this isolate's copy when fresh). Exposed so that an
/// endpoint can load it before a write that consumes something (a code, a refresh token): a
/// storage failure then happens while nothing is consumed yet.
pub async fn active(ctx: &Ctx, org: &str) -> Result<SigningKey> {
    let cached = ACTIVE.with(|c| {
        c.borrow()
            .get(org)
            .filter(|(_, at)| ctx.now - at < ACTIVE_KEY_CACHE_SECONDS)
            .map(|(k, _)| k.clone())
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let key = ctx
        .found(|db| async move { active_key(&db, org).await })
        .await?
        .ok_or_else(|| Error::RustError(format!("organization {org} has no active signing key")))?;
    remember_active(&key, ctx.now);
    Ok(key)
}

/// Whether this isolate holds a fresh copy of the organization's active key (oidc/prime.rs
/// reads it with the request's other reads when it does not).
pub fn active_cached(ctx: &Ctx, org: &str) -> bool {
    ACTIVE.with(|c| {
        c.borrow()
            .get(org)
            .is_some_and(|(_, at)| ctx.now - at < ACTIVE_KEY_CACHE_SECONDS)
    })
}

/// Keep the active key as read now.
pub fn remember_active(key: &SigningKey, now: i64) {
    ACTIVE.with(|c| c.borrow_mut().insert(key.org.clone(), (key.clone(), now)));
}

/// Forget the cached active key and key set (after a rotation or deletion in this isolate).
pub fn forget(org: &str) {
    ACTIVE.with(|c| c.borrow_mut().remove(org));
    crate::oidc::jwks::forget(org);
}

/// Load and import the active key (so the `sign` that follows finds both cached), before the
/// token endpoint spends anything on its answer: a key that cannot be opened (a configuration
/// error, edge/sealed.rs) must fail the request before a code is claimed or a refresh token
/// rotated, so the client can retry once the configuration is fixed instead of finding its code
/// used or its refresh token taken for a replay. The key, for `sign_with`.
pub async fn ready(ctx: &Ctx, org: &str) -> Result<SigningKey> {
    let key = active(ctx, org).await?;
    import(ctx, &key).await?;
    Ok(key)
}

/// A compact RS256 JWS of `claims`, with the active key's `kid` in the header.
pub async fn sign(ctx: &Ctx, org: &str, claims: &Value) -> Result<String> {
    sign_with(ctx, &active(ctx, org).await?, claims).await
}

/// `sign` with a key already loaded (`active`): no storage call.
pub async fn sign_with(ctx: &Ctx, key: &SigningKey, claims: &Value) -> Result<String> {
    let crypto_key = import(ctx, key).await?;
    let input = id_token::signing_input(&key.kid, claims);
    let signature = webcrypto::sign_rs256(&crypto_key, input.as_bytes()).await?;
    Ok(id_token::assemble(&input, &signature))
}

/// A compact RS256 JWS of `claims` with the `typ` header `typ` (a logout token), signed with
/// the organization's active key.
pub async fn sign_typed(ctx: &Ctx, org: &str, typ: &str, claims: &Value) -> Result<String> {
    let key = active(ctx, org).await?;
    let crypto_key = import(ctx, &key).await?;
    let input = id_token::typed_signing_input(&key.kid, typ, claims);
    let signature = webcrypto::sign_rs256(&crypto_key, input.as_bytes()).await?;
    Ok(id_token::assemble(&input, &signature))
}

/// The WebCrypto key of `key`, imported once per isolate for a while (edge/webcrypto.rs).
async fn import(ctx: &Ctx, key: &SigningKey) -> Result<web_sys::CryptoKey> {
    let keys = &ctx.config.key_encryption_secret;
    // Opened only when this isolate imports the key (not on every token); opened under a
    // previous secret, it is re-sealed under the current one and written back (see reseal_lazily).
    let resealed = std::cell::RefCell::new(None);
    let open = || {
        let opened = key.private_pkcs8(keys)?;
        *resealed.borrow_mut() = opened.resealed;
        Ok(opened.plaintext)
    };
    let crypto_key = webcrypto::signing_key(&key.kid, open, ctx.now).await?;
    if let Some(new) = resealed.into_inner() {
        reseal_lazily(ctx, key, &new).await;
    }
    Ok(crypto_key)
}

/// Write back a key opened under a previous secret, re-sealed under the current one, guarded on
/// the value read (a concurrent re-seal or admin change wins). Signing does not depend on it:
/// a failed write is logged and the key is re-sealed by the next import or the scheduled re-seal.
async fn reseal_lazily(ctx: &Ctx, key: &SigningKey, resealed: &str) {
    let written = match ctx.primary() {
        Ok(db) => reseal(&db, &key.kid, &key.private_key_sealed, resealed).await,
        Err(e) => Err(e),
    };
    // The isolate's cached row keeps the old value until its short cache ends; the imported key
    // is cached longer, so it is not opened again meanwhile (and a repeat write is a no-op).
    if let Err(e) = written {
        worker::console_error!("signing key {} not re-sealed: {e}", key.kid);
    }
}

/// The claims of a JWT this organization signed (any published key), or None when it is not
/// one. Expiry is not checked: an expired ID token is still a valid hint (Core §3.1.2.1).
pub async fn verify_own(ctx: &Ctx, org: &str, issuer: &str, token: &str) -> Result<Option<Value>> {
    let Some(jwt) = id_token::parse_unverified(token) else {
        return Ok(None);
    };
    // The key that signed it may be newer than the replica's copy of the key set.
    let signed_it = |k: &&SigningKey| jwt.kid.as_deref() == Some(k.kid.as_str());
    let keys = ctx
        .fresh(
            |db| async move { published_keys(&db, org, ctx.now).await.map(Some) },
            |keys: &Vec<SigningKey>| keys.iter().any(|k| signed_it(&k)),
        )
        .await?
        .unwrap_or_default();
    let Some(key) = keys.iter().find(signed_it) else {
        return Ok(None);
    };
    let jwk: Value = serde_json::from_str(&key.public_jwk)?;
    let public = RsaPublic {
        n: jwk["n"].as_str().unwrap_or_default().to_string(),
        e: jwk["e"].as_str().unwrap_or_default().to_string(),
    };
    if !webcrypto::verify_rs256(&public, jwt.signing_input.as_bytes(), &jwt.signature).await? {
        return Ok(None);
    }
    Ok((jwt.claims["iss"] == issuer).then_some(jwt.claims))
}
