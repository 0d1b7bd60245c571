//! The login and consent forms carry the validated authorization request sealed (AES-256-GCM
//! under a key derived from KEY_ENCRYPTION_SECRET), bound to the browser's CSRF cookie and to an
//! expiry. Nothing is stored server-side between showing the form and its submission, and the
//! request cannot be altered or replayed from another browser.

use serde::{Deserialize, Serialize};

use crate::crypto::{derive_key, open, seal, secure_eq};
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::lifetimes::LOGIN_FORM_SECONDS;

const PURPOSE: &str = "login-forms";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginState {
    pub request: AuthorizeRequest,
    pub csrf: String,
    pub expires_at: i64,
}

pub fn seal_state(
    secret: &str,
    org: &str,
    request: &AuthorizeRequest,
    csrf: &str,
    now: i64,
) -> String {
    let state = LoginState {
        request: request.clone(),
        csrf: csrf.to_string(),
        expires_at: now + LOGIN_FORM_SECONDS,
    };
    let json = serde_json::to_vec(&state).expect("a login state always serializes");
    seal(&derive_key(secret, PURPOSE), &json, org.as_bytes())
}

#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// Tampered, from another organization, or sealed with another secret.
    Invalid,
    Expired,
    /// The CSRF cookie and the form's token do not both match the sealed one.
    CsrfMismatch,
}

/// Open a submitted form's state. `cookie_csrf` is the CSRF cookie, `form_csrf` the hidden field.
pub fn open_state(
    secret: &str,
    org: &str,
    sealed: &str,
    cookie_csrf: Option<&str>,
    form_csrf: Option<&str>,
    now: i64,
) -> Result<LoginState, StateError> {
    let bytes =
        open(&derive_key(secret, PURPOSE), sealed, org.as_bytes()).ok_or(StateError::Invalid)?;
    let state: LoginState = serde_json::from_slice(&bytes).map_err(|_| StateError::Invalid)?;
    let (Some(cookie), Some(field)) = (cookie_csrf, form_csrf) else {
        return Err(StateError::CsrfMismatch);
    };
    if !(secure_eq(cookie, &state.csrf) & secure_eq(field, &state.csrf)) {
        return Err(StateError::CsrfMismatch);
    }
    if now > state.expires_at {
        return Err(StateError::Expired);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::authorize::Prompt;

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: "rocketchat".into(),
            redirect_uri: "https://chat.acme.eu/_oauth/clavex".into(),
            scope: "openid".into(),
            state: Some("s+/=".into()),
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            id_token_hint: None,
            claims: None,
            acr_values: None,
        }
    }
    const SECRET: &str = "a-long-key-encryption-secret";

    #[test]
    fn round_trips_with_matching_csrf() {
        let sealed = seal_state(SECRET, "acme", &request(), "csrf1", 100);
        let state = open_state(SECRET, "acme", &sealed, Some("csrf1"), Some("csrf1"), 200).unwrap();
        assert_eq!(state.request, request());
    }

    #[test]
    fn refuses_csrf_mismatch_other_org_tampering_and_expiry() {
        let sealed = seal_state(SECRET, "acme", &request(), "csrf1", 100);
        assert_eq!(
            open_state(SECRET, "acme", &sealed, Some("csrf2"), Some("csrf1"), 200),
            Err(StateError::CsrfMismatch)
        );
        assert_eq!(
            open_state(SECRET, "acme", &sealed, None, Some("csrf1"), 200),
            Err(StateError::CsrfMismatch)
        );
        assert_eq!(
            open_state(SECRET, "other", &sealed, Some("csrf1"), Some("csrf1"), 200),
            Err(StateError::Invalid)
        );
        let mut tampered = sealed.clone();
        tampered.replace_range(20..21, if &sealed[20..21] == "A" { "B" } else { "A" });
        assert_eq!(
            open_state(SECRET, "acme", &tampered, Some("csrf1"), Some("csrf1"), 200),
            Err(StateError::Invalid)
        );
        assert_eq!(
            open_state(
                SECRET,
                "acme",
                &sealed,
                Some("csrf1"),
                Some("csrf1"),
                101 + LOGIN_FORM_SECONDS
            ),
            Err(StateError::Expired)
        );
    }
}
