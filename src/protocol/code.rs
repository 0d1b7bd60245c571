//! Authorization codes: what a code is bound to, and the checks when it is redeemed
//! (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §2.1.1).

use serde::{Deserialize, Serialize};

use crate::protocol::error::OAuthError;
use crate::protocol::lifetimes::CODE_SECONDS;
use crate::protocol::pkce;

/// Stored under the code's hash; the code itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub user_id: String,
    pub auth_time: i64,
    pub issued_at: i64,
    pub claims: Option<String>,
}

impl CodeGrant {
    /// Checks before the code is claimed. Every failure is `invalid_grant`.
    pub fn check_redemption(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        now: i64,
    ) -> Result<(), OAuthError> {
        // KV keeps the record for at least 60 s; the lifetime is enforced here.
        if now - self.issued_at > CODE_SECONDS {
            return Err(OAuthError::invalid_grant(
                "the authorization code has expired",
            ));
        }
        if self.client_id != client_id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        // RFC 6749 §4.1.3: redirect_uri is required, and must be identical, when it was part
        // of the authorization request — which OpenID Connect always requires.
        if redirect_uri != Some(self.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&self.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => Ok(()),
            (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            )),
            (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
            // RFC 9700 §2.1.1: a code_verifier for a code issued without a challenge must be
            // refused, or PKCE could be downgraded by an attacker.
            (None, Some(_)) => Err(OAuthError::invalid_grant(
                "code_verifier sent for a code issued without PKCE",
            )),
            (None, None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(challenge: Option<&str>) -> CodeGrant {
        CodeGrant {
            client_id: "rocketchat".into(),
            redirect_uri: "https://chat.acme.eu/_oauth/clavex".into(),
            scope: "openid".into(),
            nonce: None,
            code_challenge: challenge.map(str::to_string),
            user_id: "usr_1".into(),
            auth_time: 1000,
            issued_at: 1000,
            claims: None,
        }
    }
    const URI: Option<&str> = Some("https://chat.acme.eu/_oauth/clavex");

    #[test]
    fn valid_within_sixty_seconds_and_expired_after() {
        assert!(
            grant(None)
                .check_redemption("rocketchat", URI, None, 1060)
                .is_ok()
        );
        assert!(
            grant(None)
                .check_redemption("rocketchat", URI, None, 1061)
                .is_err()
        );
    }

    #[test]
    fn bound_to_client_and_redirect_uri() {
        assert!(
            grant(None)
                .check_redemption("other", URI, None, 1001)
                .is_err()
        );
        assert!(
            grant(None)
                .check_redemption("rocketchat", None, None, 1001)
                .is_err()
        );
        assert!(
            grant(None)
                .check_redemption("rocketchat", Some("https://chat.acme.eu/x"), None, 1001)
                .is_err()
        );
    }

    #[test]
    fn pkce_verified_and_not_downgradable() {
        let ch = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(
            grant(Some(ch))
                .check_redemption("rocketchat", URI, Some(v), 1001)
                .is_ok()
        );
        assert!(
            grant(Some(ch))
                .check_redemption("rocketchat", URI, None, 1001)
                .is_err()
        );
        assert!(
            grant(Some(ch))
                .check_redemption("rocketchat", URI, Some(&v.replace('d', "e")), 1001)
                .is_err()
        );
        assert!(
            grant(None)
                .check_redemption("rocketchat", URI, Some(v), 1001)
                .is_err()
        );
    }
}
