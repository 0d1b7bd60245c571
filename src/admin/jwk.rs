//! The public half of an RSA signing key as stored and published, and its key id. Pure.

/// `{"kty":"RSA","n":..,"e":..}`, the `public_jwk` column.
pub fn rsa_public_jwk(n: &str, e: &str) -> String {
    serde_json::json!({ "kty": "RSA", "n": n, "e": e }).to_string()
}

/// RFC 7638 §3: the SHA-256 JWK thumbprint, base64url. The hash input holds only the required
/// members (for RSA: e, kty, n) in lexicographic order, with no whitespace; base64url values need
/// no JSON escaping. A kid derived from the key itself can never point at the wrong key.
pub fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    crate::crypto::b64url(&crate::crypto::sha256(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of RFC 7638 §3.1.
    #[test]
    fn rfc_7638_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rsa_thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn public_jwk_has_exactly_the_public_members() {
        let v: serde_json::Value = serde_json::from_str(&rsa_public_jwk("nn", "AQAB")).unwrap();
        assert_eq!(v, serde_json::json!({"kty": "RSA", "n": "nn", "e": "AQAB"}));
    }
}
