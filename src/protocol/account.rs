//! The account page's rules (issue 16, item 2): when an SSO session still counts after "sign
//! out everywhere", what a password change form must say before the current password is even
//! checked, and when a user may remove their own second factor. Pure; oidc/account.rs applies
//! them.

use crate::protocol::mfa::Policy;
use crate::protocol::password_policy;

/// Whether a session started at `started_ms` is still live for a user whose sessions before
/// `not_before_ms` were ended (`users.sessions_not_before_ms`). A session started in the very
/// millisecond of the sign-out counts as after it: the browser that signed out everywhere gets
/// its fresh session (after a password change) at that time or later.
pub fn session_live(started_ms: i64, not_before_ms: Option<i64>) -> bool {
    not_before_ms.is_none_or(|nb| started_ms >= nb)
}

/// When a session started, in ms: its own record, or for a session from before that record its
/// `auth_time` (seconds; the start of that second, so an old session is never kept alive by
/// rounding).
pub fn session_started_ms(started_ms: Option<i64>, auth_time: i64) -> i64 {
    started_ms.unwrap_or(auth_time.saturating_mul(1000))
}

/// Why a new password is refused before the current one is checked (no guess is spent on a
/// form that cannot succeed).
#[derive(Debug, PartialEq, Eq)]
pub enum NewPasswordRefused {
    /// The two new-password fields differ.
    Mismatch,
    /// The new password is the current one typed again.
    Unchanged,
    /// The password policy refuses it.
    Weak(password_policy::Weak),
}

impl NewPasswordRefused {
    pub fn message(&self) -> String {
        match self {
            NewPasswordRefused::Mismatch => "The new passwords do not match.".to_string(),
            NewPasswordRefused::Unchanged => {
                "The new password is the same as the current one.".to_string()
            }
            NewPasswordRefused::Weak(w) => {
                let m = w.message();
                let mut chars = m.chars();
                match chars.next() {
                    Some(first) => format!("The new {}{}.", first.to_lowercase(), chars.as_str()),
                    None => String::new(),
                }
            }
        }
    }
}

/// The normalised new password to hash (password_policy.rs), or why the form is refused.
pub fn new_password(current: &str, new: &str, confirm: &str) -> Result<String, NewPasswordRefused> {
    if new != confirm {
        return Err(NewPasswordRefused::Mismatch);
    }
    let normalized = password_policy::check(new).map_err(NewPasswordRefused::Weak)?;
    if !current.is_empty() && password_policy::normalize(current) == normalized {
        return Err(NewPasswordRefused::Unchanged);
    }
    Ok(normalized)
}

/// Whether a user may remove their TOTP under the organization's `mfa` setting. Where the
/// organization requires a second factor, removing the only one there is would leave the next
/// sign-in unable to finish without enrolling again — a user who can remove it can also be an
/// attacker with a borrowed browser and the password, so it stays an administrator's reset.
/// (A client's `require_mfa` is not consulted: it binds sign-ins to that client, which will
/// simply ask for enrolment again.)
pub fn may_remove_totp(org_mfa: &str) -> bool {
    Policy::parse(org_mfa) != Some(Policy::Required)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_from_before_the_sign_out_is_ended() {
        assert!(session_live(5_000, None), "never signed out everywhere");
        assert!(!session_live(4_999, Some(5_000)));
        assert!(
            session_live(5_000, Some(5_000)),
            "the fresh session of the same moment"
        );
        assert!(session_live(5_001, Some(5_000)));
    }

    #[test]
    fn an_old_session_without_a_start_uses_its_auth_time() {
        assert_eq!(session_started_ms(None, 7), 7_000);
        assert_eq!(session_started_ms(Some(7_123), 7), 7_123);
        // Signed out within the second it started: ended.
        assert!(!session_live(session_started_ms(None, 7), Some(7_500)));
    }

    #[test]
    fn a_new_password_is_checked_before_the_current_one() {
        let strong = "correct horse battery staple";
        assert_eq!(
            new_password("old-password-1", strong, strong),
            Ok(strong.to_string())
        );
        assert_eq!(
            new_password("old-password-1", strong, "correct horse battery stapl"),
            Err(NewPasswordRefused::Mismatch)
        );
        assert_eq!(
            new_password("old-password-1", "short", "short"),
            Err(NewPasswordRefused::Weak(password_policy::Weak::TooShort))
        );
        assert_eq!(
            new_password("old-password-1", "password123", "password123"),
            Err(NewPasswordRefused::Weak(password_policy::Weak::Common))
        );
        assert_eq!(
            new_password(strong, strong, strong),
            Err(NewPasswordRefused::Unchanged)
        );
        assert_eq!(
            NewPasswordRefused::Weak(password_policy::Weak::TooShort).message(),
            "The new password must be at least 8 characters."
        );
    }

    #[test]
    fn totp_removal_is_refused_where_the_organization_requires_it() {
        assert!(!may_remove_totp("required"));
        assert!(may_remove_totp("optional"));
        assert!(may_remove_totp("off"));
    }
}
