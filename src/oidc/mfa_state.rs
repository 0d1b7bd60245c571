//! The state of a sign-in between its password and its second factor, carried by the second
//! factor's forms (challenge, enrolment, recovery codes) sealed like the login form's state
//! (AES-256-GCM under a key derived for this purpose, the organization as associated data),
//! bound to the browser's CSRF cookie and short-lived. Nothing is stored server-side until the
//! sign-in finishes; the SSO session only starts once every required factor is given.

use serde::{Deserialize, Serialize};

use crate::crypto::{derive_key, open, seal, secure_eq};
use crate::protocol::authorize::AuthorizeRequest;

const PURPOSE: &str = "second-factor-forms";
/// Long enough to fetch a phone and scan a code; short enough that a forgotten tab is useless.
pub const MFA_FORM_SECONDS: i64 = 10 * 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Stage {
    /// A TOTP or recovery code is asked for.
    Challenge,
    /// A new secret is being confirmed (its bytes, base64url).
    Enrol { secret: String, required: bool },
    /// The second factor is done (enrolment just shown the recovery codes): finish the sign-in.
    Finish,
    /// The account page asks for the password before enrolment.
    Password,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    /// The authorization to finish; None on the account page (`/{org}/account/mfa`).
    pub request: Option<AuthorizeRequest>,
    pub user_id: String,
    /// When the password was checked (the `auth_time` of the sign-in).
    pub auth_time: i64,
    /// Factors given so far (protocol/mfa.rs bits).
    pub factors: u8,
    pub stage: Stage,
    pub csrf: String,
    pub expires_at: i64,
}

pub fn seal_pending(secret: &str, org: &str, pending: &Pending) -> String {
    let json = serde_json::to_vec(pending).expect("a pending sign-in always serializes");
    seal(&derive_key(secret, PURPOSE), &json, org.as_bytes())
}

/// The pending sign-in a form posted, if it was sealed here, for this browser, and is not
/// expired.
pub fn open_pending(
    secret: &str,
    org: &str,
    sealed: &str,
    cookie_csrf: Option<&str>,
    form_csrf: Option<&str>,
    now: i64,
) -> Option<Pending> {
    let bytes = open(&derive_key(secret, PURPOSE), sealed, org.as_bytes())?;
    let pending: Pending = serde_json::from_slice(&bytes).ok()?;
    let (cookie, field) = (cookie_csrf?, form_csrf?);
    let bound = secure_eq(&pending.csrf, cookie) && secure_eq(&pending.csrf, field);
    (bound && now < pending.expires_at).then_some(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> Pending {
        Pending {
            request: None,
            user_id: "usr_1".into(),
            auth_time: 100,
            factors: 1,
            stage: Stage::Challenge,
            csrf: "tok".into(),
            expires_at: 1000,
        }
    }

    #[test]
    fn round_trip_bound_to_the_browser_and_the_clock() {
        let sealed = seal_pending("a long secret for tests", "acme", &pending());
        let open = |org, cookie, field, now| {
            open_pending("a long secret for tests", org, &sealed, cookie, field, now)
        };
        assert_eq!(open("acme", Some("tok"), Some("tok"), 999), Some(pending()));
        assert_eq!(
            open("acme", Some("tok"), Some("tok"), 1000),
            None,
            "expired"
        );
        assert_eq!(
            open("acme", Some("other"), Some("tok"), 999),
            None,
            "another browser"
        );
        assert_eq!(open("acme", None, Some("tok"), 999), None);
        assert_eq!(
            open("beta", Some("tok"), Some("tok"), 999),
            None,
            "another org"
        );
        let mut tampered = sealed.clone().into_bytes();
        tampered[10] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            open_pending(
                "a long secret for tests",
                "acme",
                &tampered,
                Some("tok"),
                Some("tok"),
                1
            ),
            None
        );
    }
}
