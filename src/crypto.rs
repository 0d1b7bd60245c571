//! Cheap cryptography in pure Rust: random tokens, SHA-256, constant-time comparison, HMAC and
//! AES-256-GCM sealing. Expensive operations (RSA, PBKDF2) go through WebCrypto instead
//! (`edge/webcrypto.rs`): in wasm they cost >10 ms of CPU (crypto-costs.md).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub mod keyring;
pub use keyring::Keyring;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    fill_random(&mut buf);
    buf
}

/// In the Worker: Web Crypto's `crypto.getRandomValues`. getrandom 0.2's `js` backend would pick
/// Node's `randomFillSync` shim inside workerd, measured at 0.2–0.5 ms per request by the
/// benchmark's profile; getRandomValues is the runtime's native CSPRNG.
#[cfg(target_arch = "wasm32")]
fn fill_random(buf: &mut [u8]) {
    use wasm_bindgen::JsCast;
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .expect("the Workers runtime has a global crypto")
        .unchecked_into::<web_sys::Crypto>();
    crypto
        .get_random_values_with_u8_array(buf)
        .expect("getRandomValues fills up to 65,536 bytes");
}

/// Natively (tests): the operating system's random source.
#[cfg(not(target_arch = "wasm32"))]
fn fill_random(buf: &mut [u8]) {
    getrandom::getrandom(buf).expect("the platform's random source is available");
}

/// `prefix` + base64url of 32 random bytes: 256 bits, only URL-safe characters (so Basic
/// credentials read the same raw or form-urlencoded).
pub fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", b64url(&random_bytes::<32>()))
}

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// How high-entropy secrets (client secrets, tokens, codes) are stored and looked up: a fast hash
/// is enough because they cannot be guessed, and it keeps the clear value out of the database.
pub fn token_hash(token: &str) -> String {
    hex(&sha256(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings. Both sides are hashed first so that neither the
/// content nor the length of the secret leaks through timing.
pub fn secure_eq(a: &str, b: &str) -> bool {
    sha256(a.as_bytes()).ct_eq(&sha256(b.as_bytes())).into()
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A 32-byte key for one purpose, derived from a Worker secret with HKDF-SHA256 (RFC 5869), so
/// that one secret can serve several uses without the keys ever being related.
pub fn derive_key(secret: &str, purpose: &str) -> [u8; 32] {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(b"clavex/v1"), secret.as_bytes());
    let mut out = [0u8; 32];
    hk.expand(purpose.as_bytes(), &mut out)
        .expect("32 bytes is a valid HKDF length");
    out
}

/// AES-256-GCM: `base64url(nonce ‖ ciphertext ‖ tag)`. `aad` binds the box to its context
/// (e.g. the key id), so a sealed value cannot be moved to another row.
pub fn seal(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> String {
    let cipher = Aes256Gcm::new(key.into());
    let nonce = random_bytes::<12>();
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            aes_gcm::aead::Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer does not fail");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    b64url(&out)
}

pub fn open(key: &[u8; 32], sealed: &str, aad: &[u8]) -> Option<Vec<u8>> {
    let raw = b64url_decode(sealed)?;
    if raw.len() < 12 + 16 {
        return None;
    }
    let (nonce, ct) = raw.split_at(12);
    Aes256Gcm::new(key.into())
        .decrypt(
            Nonce::from_slice(nonce),
            aes_gcm::aead::Payload { msg: ct, aad },
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tokens_are_long_distinct_and_url_safe() {
        let a = random_token("cs_");
        let b = random_token("cs_");
        assert_ne!(a, b);
        assert!(a.starts_with("cs_"));
        assert_eq!(a.len(), 3 + 43);
        assert!(
            a[3..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn secure_eq_compares_content() {
        assert!(secure_eq("secret", "secret"));
        assert!(!secure_eq("secret", "secreT"));
        assert!(!secure_eq("secret", "secret2"));
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = derive_key("a long worker secret", "signing-keys");
        let boxed = seal(&key, b"private key", b"kid-1");
        assert_eq!(open(&key, &boxed, b"kid-1").unwrap(), b"private key");
        assert!(open(&key, &boxed, b"kid-2").is_none());
        let other = derive_key("a long worker secret", "login-forms");
        assert!(open(&other, &boxed, b"kid-1").is_none());
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
