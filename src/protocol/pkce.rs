//! Proof Key for Code Exchange, RFC 7636. Only S256: `plain` offers no protection against a
//! stolen authorization request (RFC 9700 §2.1.1: "use PKCE with the S256 method").

use crate::crypto::{b64url, sha256};

/// RFC 7636 §4.1/§4.2: 43–128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
pub fn is_valid_syntax(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// RFC 7636 §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_valid_syntax(verifier)
        && crate::crypto::secure_eq(&b64url(&sha256(verifier.as_bytes())), challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 7636 Appendix B.
    #[test]
    fn rfc7636_appendix_b_vector() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify_s256(verifier, challenge));
        assert!(!verify_s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge
        ));
    }

    #[test]
    fn syntax_limits() {
        assert!(!is_valid_syntax("short"));
        assert!(!is_valid_syntax(&"a".repeat(129)));
        assert!(is_valid_syntax(&"a".repeat(43)));
        assert!(!is_valid_syntax(&format!("{}+", "a".repeat(43))));
    }
}
