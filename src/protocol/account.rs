//! The account page's rules (issue 16, item 2): when an SSO session still counts after "sign
//! out everywhere", what a password change form must say before the current password is even
//! checked, and when a user may remove their own second factor. Pure; oidc/account.rs applies
//! them.

use crate::protocol::mfa::{OTP, PASSKEY, Policy};
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

/// Whether a password change may go without the current password (issue 16: "after entering
/// the current one, or a fresh passkey or second-factor check"): the session's sign-in is
/// `fresh` (recent, see oidc/account.rs) and proved more than a password — a passkey, or a
/// second factor given after it. A user who forgot their password and just signed in with a
/// passkey or their authenticator app sets a new one here; a session that proved only the
/// password, or proved more long ago, must give the current password.
pub fn waives_current_password(session_factors: u8, fresh: bool) -> bool {
    fresh && session_factors & (PASSKEY | OTP) != 0
}

/// When a user may remove their own TOTP (issue 16: "removal refused where policy requires a
/// factor and none would be left"). Where the organization requires a second factor, removing
/// the only one there is would leave the next sign-in unable to finish without enrolling again —
/// a user who can remove it can also be an attacker with a borrowed browser and the password, so
/// that stays an administrator's reset. A passkey is a second factor too (after the password),
/// where the organization allows passkeys. (A client's `require_mfa` is not consulted: it binds
/// sign-ins to that client, which will simply ask for enrolment again.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpRemoval {
    Allowed,
    /// Only while the user has a passkey: decided in the removal's statement at the primary, so
    /// removing the last passkey at the same time cannot leave neither.
    WhilePasskeyRemains,
    Refused,
}

pub fn totp_removal(org_mfa: &str, passkeys_allowed: bool) -> TotpRemoval {
    match Policy::parse(org_mfa) {
        Some(Policy::Required) if passkeys_allowed => TotpRemoval::WhilePasskeyRemains,
        Some(Policy::Required) => TotpRemoval::Refused,
        _ => TotpRemoval::Allowed,
    }
}

/// What a user's removal of one of their passkeys must leave, decided in the DELETE itself at
/// the primary (store/passkeys.rs), so removals sent at once cannot together leave nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyKeep {
    /// Nothing needs to stay.
    Nothing,
    /// A passwordless organization: the last passkey is the user's way in.
    LastPasskey,
    /// A second factor is required: another passkey or TOTP must stay.
    ASecondFactor,
}

pub fn passkey_keep(passwordless: bool, org_mfa: &str) -> PasskeyKeep {
    if passwordless {
        PasskeyKeep::LastPasskey
    } else if Policy::parse(org_mfa) == Some(Policy::Required) {
        PasskeyKeep::ASecondFactor
    } else {
        PasskeyKeep::Nothing
    }
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
    fn only_a_fresh_passkey_or_second_factor_waives_the_current_password() {
        use crate::protocol::mfa::{PASSKEY_UV, PWD, UPSTREAM};
        assert!(waives_current_password(PWD | OTP, true));
        assert!(waives_current_password(PASSKEY, true));
        assert!(waives_current_password(PASSKEY | PASSKEY_UV, true));
        assert!(!waives_current_password(PWD, true), "the password alone");
        assert!(
            !waives_current_password(UPSTREAM, true),
            "another provider's sign-in"
        );
        assert!(!waives_current_password(PWD | OTP, false), "not recent");
        assert!(!waives_current_password(PASSKEY | PASSKEY_UV, false));
    }

    #[test]
    fn totp_removal_where_the_organization_requires_a_factor_needs_a_passkey_left() {
        assert_eq!(
            totp_removal("required", true),
            TotpRemoval::WhilePasskeyRemains
        );
        assert_eq!(totp_removal("required", false), TotpRemoval::Refused);
        assert_eq!(totp_removal("optional", true), TotpRemoval::Allowed);
        assert_eq!(totp_removal("off", false), TotpRemoval::Allowed);
    }

    #[test]
    fn a_passkey_removal_keeps_the_way_in_or_the_required_factor() {
        assert_eq!(passkey_keep(true, "required"), PasskeyKeep::LastPasskey);
        assert_eq!(passkey_keep(true, "off"), PasskeyKeep::LastPasskey);
        assert_eq!(passkey_keep(false, "required"), PasskeyKeep::ASecondFactor);
        assert_eq!(passkey_keep(false, "optional"), PasskeyKeep::Nothing);
    }
}
