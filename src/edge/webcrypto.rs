//! RSA and PBKDF2 through WebCrypto (`crypto.subtle`), which runs as native code in workerd:
//! RS256 costs ~1 ms there against 11–14 ms in wasm, and RSA-2048 key generation ~80 ms against
//! seconds (crypto-costs.md). Imported signing keys are cached per isolate for a bounded time.

use std::cell::RefCell;
use std::collections::HashMap;

use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto};
use worker::{Error, Result};

const RSA: &str = "RSASSA-PKCS1-v1_5";
/// How long an imported private key stays cached in an isolate before it is imported again.
const KEY_CACHE_SECONDS: i64 = 600;
const KEY_CACHE_MAX: usize = 64;

/// The public half of an RSA key as JWK members (base64url, no padding).
pub struct RsaPublic {
    pub n: String,
    pub e: String,
}

fn subtle() -> Result<SubtleCrypto> {
    let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
        .map_err(|_| Error::RustError("crypto is not available".into()))?;
    Ok(crypto.unchecked_into::<web_sys::Crypto>().subtle())
}

fn js_err(context: &str) -> impl Fn(JsValue) -> Error + '_ {
    move |e| Error::RustError(format!("{context}: {e:?}"))
}

fn object(pairs: &[(&str, JsValue)]) -> Result<Object> {
    let obj = Object::new();
    for (k, v) in pairs {
        Reflect::set(&obj, &JsValue::from_str(k), v).map_err(js_err("building an object"))?;
    }
    Ok(obj)
}

fn rsa_algorithm() -> Result<Object> {
    object(&[("name", RSA.into()), ("hash", "SHA-256".into())])
}

fn usages(list: &[&str]) -> JsValue {
    list.iter()
        .map(|u| JsValue::from_str(u))
        .collect::<Array>()
        .into()
}

async fn wait(
    promise: std::result::Result<js_sys::Promise, JsValue>,
    context: &str,
) -> Result<JsValue> {
    JsFuture::from(promise.map_err(js_err(context))?)
        .await
        .map_err(js_err(context))
}

fn get_str(obj: &JsValue, key: &str) -> Result<String> {
    Reflect::get(obj, &JsValue::from_str(key))
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| Error::RustError(format!("JWK member {key} missing")))
}

/// A fresh RSA-2048 key pair for RS256: the public JWK members and the PKCS#8 private key.
pub async fn generate_rsa_key() -> Result<(RsaPublic, Vec<u8>)> {
    let s = subtle()?;
    let algorithm = object(&[
        ("name", RSA.into()),
        ("modulusLength", 2048.into()),
        ("publicExponent", Uint8Array::from(&[1u8, 0, 1][..]).into()),
        ("hash", "SHA-256".into()),
    ])?;
    let pair = wait(
        s.generate_key_with_object(&algorithm, true, &usages(&["sign", "verify"])),
        "generateKey",
    )
    .await?;
    let public: CryptoKey = Reflect::get(&pair, &"publicKey".into())
        .map_err(js_err("publicKey"))?
        .unchecked_into();
    let private: CryptoKey = Reflect::get(&pair, &"privateKey".into())
        .map_err(js_err("privateKey"))?
        .unchecked_into();
    let jwk = wait(s.export_key("jwk", &public), "exportKey jwk").await?;
    let pkcs8 = wait(s.export_key("pkcs8", &private), "exportKey pkcs8").await?;
    Ok((
        RsaPublic {
            n: get_str(&jwk, "n")?,
            e: get_str(&jwk, "e")?,
        },
        Uint8Array::new(&pkcs8).to_vec(),
    ))
}

thread_local! {
    /// kid → (imported non-extractable key, when it was imported). Workers run one request at a
    /// time per isolate thread, so a RefCell is enough.
    static KEY_CACHE: RefCell<HashMap<String, (CryptoKey, i64)>> = RefCell::new(HashMap::new());
}

/// The signing key for `kid`, imported from PKCS#8 once per isolate and cached for a while.
pub async fn signing_key(
    kid: &str,
    pkcs8: impl FnOnce() -> Result<Vec<u8>>,
    now: i64,
) -> Result<CryptoKey> {
    let cached = KEY_CACHE.with(|c| {
        c.borrow()
            .get(kid)
            .filter(|(_, at)| now - *at < KEY_CACHE_SECONDS)
            .map(|(k, _)| k.clone())
    });
    if let Some(key) = cached {
        return Ok(key);
    }
    let der = Uint8Array::from(pkcs8()?.as_slice());
    let key: CryptoKey = wait(
        subtle()?.import_key_with_object(
            "pkcs8",
            &der,
            &rsa_algorithm()?,
            false,
            &usages(&["sign"]),
        ),
        "importKey pkcs8",
    )
    .await?
    .unchecked_into();
    KEY_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= KEY_CACHE_MAX {
            c.retain(|_, (_, at)| now - *at < KEY_CACHE_SECONDS);
            if c.len() >= KEY_CACHE_MAX {
                c.clear();
            }
        }
        c.insert(kid.to_string(), (key.clone(), now));
    });
    Ok(key)
}

/// Whether a key is already cached (so callers can skip reading and decrypting it).
pub fn is_cached(kid: &str, now: i64) -> bool {
    KEY_CACHE.with(|c| {
        c.borrow()
            .get(kid)
            .is_some_and(|(_, at)| now - *at < KEY_CACHE_SECONDS)
    })
}

pub async fn sign_rs256(key: &CryptoKey, data: &[u8]) -> Result<Vec<u8>> {
    let sig = wait(
        subtle()?.sign_with_object_and_u8_array(&rsa_algorithm()?, key, data),
        "sign",
    )
    .await?;
    Ok(Uint8Array::new(&sig).to_vec())
}

pub async fn verify_rs256(public: &RsaPublic, data: &[u8], signature: &[u8]) -> Result<bool> {
    let jwk = object(&[
        ("kty", "RSA".into()),
        ("n", public.n.as_str().into()),
        ("e", public.e.as_str().into()),
    ])?;
    let s = subtle()?;
    let key: CryptoKey = wait(
        s.import_key_with_object("jwk", &jwk, &rsa_algorithm()?, false, &usages(&["verify"])),
        "importKey jwk",
    )
    .await?
    .unchecked_into();
    let ok = wait(
        s.verify_with_object_and_u8_array_and_u8_array(&rsa_algorithm()?, &key, signature, data),
        "verify",
    )
    .await?;
    Ok(ok.as_bool().unwrap_or(false))
}

/// PBKDF2-HMAC-SHA256, 256 bits out. workerd caps one deriveBits call at 100,000 iterations.
pub async fn pbkdf2_sha256(password: &str, salt: &[u8], iterations: u32) -> Result<Vec<u8>> {
    let s = subtle()?;
    let raw = Uint8Array::from(password.as_bytes());
    let base: CryptoKey = wait(
        s.import_key_with_str("raw", &raw, "PBKDF2", false, &usages(&["deriveBits"])),
        "importKey PBKDF2",
    )
    .await?
    .unchecked_into();
    let params = object(&[
        ("name", "PBKDF2".into()),
        ("hash", "SHA-256".into()),
        ("salt", Uint8Array::from(salt).into()),
        ("iterations", iterations.into()),
    ])?;
    let bits = wait(s.derive_bits_with_object(&params, &base, 256), "deriveBits").await?;
    Ok(Uint8Array::new(&bits).to_vec())
}

/// Verify an upstream's JWS signature (RS256 or ES256, protocol/upstream.rs) with its public
/// JWK. Only the members that define the key are imported (a JWK's `alg` or `key_ops` spelled
/// differently would make importKey refuse a key that is fine). ES256 signatures are R‖S, as
/// JWS (RFC 7518 §3.4) and WebCrypto both have them.
pub async fn verify_jws(
    alg: crate::protocol::upstream::Alg,
    jwk: &serde_json::Value,
    data: &[u8],
    signature: &[u8],
) -> Result<bool> {
    use crate::protocol::upstream::Alg;
    let member = |k: &str| -> Result<JsValue> {
        jwk[k]
            .as_str()
            .map(JsValue::from_str)
            .ok_or_else(|| Error::RustError(format!("JWK member {k} missing")))
    };
    let (key_data, import, verify) = match alg {
        Alg::Rs256 => (
            object(&[
                ("kty", "RSA".into()),
                ("n", member("n")?),
                ("e", member("e")?),
            ])?,
            rsa_algorithm()?,
            rsa_algorithm()?,
        ),
        Alg::Es256 => (
            object(&[
                ("kty", "EC".into()),
                ("crv", "P-256".into()),
                ("x", member("x")?),
                ("y", member("y")?),
            ])?,
            object(&[("name", "ECDSA".into()), ("namedCurve", "P-256".into())])?,
            object(&[("name", "ECDSA".into()), ("hash", "SHA-256".into())])?,
        ),
    };
    let s = subtle()?;
    // A key the runtime cannot import (a malformed modulus, a point off the curve) verifies
    // nothing: a refusal, not a failure of the request.
    let Ok(key) = wait(
        s.import_key_with_object("jwk", &key_data, &import, false, &usages(&["verify"])),
        "importKey jwk",
    )
    .await
    else {
        return Ok(false);
    };
    let key: CryptoKey = key.unchecked_into();
    let ok = wait(
        s.verify_with_object_and_u8_array_and_u8_array(&verify, &key, signature, data),
        "verify",
    )
    .await
    .ok()
    .and_then(|v| v.as_bool())
    .unwrap_or(false);
    Ok(ok)
}
