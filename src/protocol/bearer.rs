//! The bearer token of an `Authorization: Bearer <token>` header at the userinfo endpoint
//! (RFC 6750 §2.1; the scheme is case-insensitive, RFC 9110 §11.1). Pure, so the property tests
//! (src/fuzz) reach it natively.

/// The token after `Bearer `, trimmed; None when the header is not a Bearer one.
pub fn from_authorization(header: &str) -> Option<String> {
    let h = header.trim();
    // `get(..7)`, not `[..7]`: a multi-byte character in the first seven bytes made the slice
    // panic (found by the property tests). A match means they are ASCII, so byte 7 is a
    // character boundary.
    let scheme = h.get(..7)?;
    (h.len() > 7 && scheme.eq_ignore_ascii_case("bearer ")).then(|| h[7..].trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_case_insensitively() {
        assert_eq!(
            from_authorization(" bearer  at_1 ").as_deref(),
            Some("at_1")
        );
        assert_eq!(from_authorization("Bearer at_1").as_deref(), Some("at_1"));
        assert_eq!(from_authorization("Basic abc"), None);
        assert_eq!(from_authorization("Bearer"), None);
        assert_eq!(from_authorization("Bearé x"), None);
    }
}
