//! One-time links (issue 16, items 3 and 4): what a link is for, what it resets, how long it
//! lives, what its page says when it cannot be used, and what follows a successful claim. Pure;
//! the single-use claim itself is a conditional write at the D1 primary (edge/store/links.rs),
//! the page is oidc/setup_link.rs, the admin endpoints admin/links.rs.

use crate::protocol::mfa::{self, Policy};

/// Why a link was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An invitation: the user has never had a password (created without one).
    Setup,
    /// An administrator's recovery of a locked-out user: resets what the administrator chose.
    Recovery,
    /// "Forgot password?": the user asked for it by e-mail; resets the password only.
    ResetPassword,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Setup => "setup",
            Purpose::Recovery => "recovery",
            Purpose::ResetPassword => "reset_password",
        }
    }

    pub fn parse(value: &str) -> Option<Purpose> {
        match value {
            "setup" => Some(Purpose::Setup),
            "recovery" => Some(Purpose::Recovery),
            "reset_password" => Some(Purpose::ResetPassword),
            _ => None,
        }
    }
}

/// What a link resets. At least one of the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resets {
    pub password: bool,
    pub second_factor: bool,
}

impl Resets {
    pub const PASSWORD: Resets = Resets {
        password: true,
        second_factor: false,
    };

    /// The admin API's `reset` member: a non-empty list of `password` and `second_factor`, each
    /// at most once. `None` (absent): the password only.
    pub fn parse(list: Option<&[String]>) -> Result<Resets, &'static str> {
        let Some(list) = list else {
            return Ok(Resets::PASSWORD);
        };
        let mut r = Resets {
            password: false,
            second_factor: false,
        };
        for item in list {
            let seen = match item.as_str() {
                "password" => std::mem::replace(&mut r.password, true),
                "second_factor" => std::mem::replace(&mut r.second_factor, true),
                _ => return Err("reset may contain only \"password\" and \"second_factor\""),
            };
            if seen {
                return Err("reset lists a value twice");
            }
        }
        if !(r.password || r.second_factor) {
            return Err("reset must name at least one of \"password\" and \"second_factor\"");
        }
        Ok(r)
    }

    pub fn names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.password {
            names.push("password");
        }
        if self.second_factor {
            names.push("second_factor");
        }
        names
    }
}

/// An invitation or recovery link lives 72 hours unless the administrator says otherwise
/// (issue 16 item 3), at least a second and at most 30 days.
pub const DEFAULT_VALID_SECONDS: i64 = 72 * 3600;
pub const MIN_VALID_SECONDS: i64 = 1;
pub const MAX_VALID_SECONDS: i64 = 30 * 24 * 3600;
/// A "forgot password" link lives 30 minutes (issue 16 item 4; OWASP's Forgot Password Cheat
/// Sheet: "a short expiration").
pub const RESET_PASSWORD_SECONDS: i64 = 30 * 60;
/// Used and expired links are kept this long after they expire, so that their page can still
/// say "already used" or "expired" instead of "unknown"; the hourly clean-up deletes them then.
pub const KEEP_AFTER_EXPIRY_SECONDS: i64 = 7 * 24 * 3600;

/// "Forgot password?" is throttled per account and per client address (issue 16 item 4), each
/// as a throttle counter (protocol/throttle.rs): every request counts; from the threshold on,
/// the key waits `first_wait` seconds, doubling up to `max_wait`; a quiet `reset_after` period
/// starts the count again. At most 3 e-mails to one account in a row, then one per 15 minutes
/// and less; 10 requests from one address, then one a minute and less.
pub struct ResetLimit {
    pub threshold: i64,
    pub first_wait: i64,
    pub max_wait: i64,
    pub reset_after: i64,
}
pub const RESET_PER_ACCOUNT: ResetLimit = ResetLimit {
    threshold: 3,
    first_wait: 15 * 60,
    max_wait: 3600,
    reset_after: 3600,
};
pub const RESET_PER_ADDRESS: ResetLimit = ResetLimit {
    threshold: 10,
    first_wait: 60,
    max_wait: 3600,
    reset_after: 3600,
};

/// The throttle keys of "forgot password": apart from sign-in failures, so asking for a link
/// never locks anyone's sign-in, and sign-in failures never stop a reset.
pub fn reset_account_key(user_id: &str) -> String {
    format!("reset:user:{user_id}")
}
pub fn reset_address_key(ip: &str) -> String {
    format!("reset:{}", crate::protocol::throttle::address_key(ip))
}

/// `valid_for_seconds` as given (absent: the default), or why it is refused.
pub fn valid_for(seconds: Option<i64>) -> Result<i64, String> {
    match seconds {
        None => Ok(DEFAULT_VALID_SECONDS),
        Some(s) if (MIN_VALID_SECONDS..=MAX_VALID_SECONDS).contains(&s) => Ok(s),
        Some(_) => Err(format!(
            "valid_for_seconds must be {MIN_VALID_SECONDS}-{MAX_VALID_SECONDS}"
        )),
    }
}

/// The link's address: the token in the path, under the organization's issuer.
pub fn url(issuer: &str, token: &str) -> String {
    format!("{issuer}/setup/{token}")
}

/// Whether a path segment can be a token at all (43 base64url characters: 32 bytes unpadded).
/// Anything else is refused before it is hashed or looked up.
pub fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A stored link as the page sees it before the claim (the claim decides again, atomically).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub used: bool,
    pub revoked: bool,
    pub expires_at: i64,
    pub user_disabled: bool,
}

/// Why a link cannot be used, in the order its page says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// No such link in this organization (never issued, deleted with its user, or cleaned up).
    Unknown,
    Used,
    /// A newer link for the same purpose replaced it.
    Superseded,
    Expired,
    /// The account is disabled.
    Disabled,
}

impl Unusable {
    /// The page's status: 404 for an unknown link, 410 Gone for one that existed and no longer
    /// works (RFC 9110 §15.5.11: "no longer available … likely to be permanent"), 403 for a
    /// disabled account.
    pub fn status(self) -> u16 {
        match self {
            Unusable::Unknown => 404,
            Unusable::Used | Unusable::Superseded | Unusable::Expired => 410,
            Unusable::Disabled => 403,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Unusable::Unknown => "unknown",
            Unusable::Used => "used",
            Unusable::Superseded => "superseded",
            Unusable::Expired => "expired",
            Unusable::Disabled => "disabled",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Unusable::Unknown => "This link is not valid",
            Unusable::Used => "This link was already used",
            Unusable::Superseded => "This link was replaced by a newer one",
            Unusable::Expired => "This link has expired",
            Unusable::Disabled => "This account is disabled",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Unusable::Unknown => {
                "Check that you opened the whole link. If it still does not work, ask your administrator for a new link."
            }
            Unusable::Used => {
                "Each link works once. If you did not use it yourself, or need to set your password again, ask your administrator for a new link."
            }
            Unusable::Superseded => {
                "Only the most recent link sent to you works. Use that one, or ask your administrator for a new link."
            }
            Unusable::Expired => "Ask your administrator for a new link.",
            Unusable::Disabled => {
                "This account cannot be used. Ask your administrator for a new link if you think this is a mistake."
            }
        }
    }
}

/// Whether a link (`None`: not found) can be used at `now`, and if not why.
pub fn standing(link: Option<Standing>, now: i64) -> Result<(), Unusable> {
    let Some(l) = link else {
        return Err(Unusable::Unknown);
    };
    if l.used {
        return Err(Unusable::Used);
    }
    if l.revoked {
        return Err(Unusable::Superseded);
    }
    if now >= l.expires_at {
        return Err(Unusable::Expired);
    }
    if l.user_disabled {
        return Err(Unusable::Disabled);
    }
    Ok(())
}

/// What follows a successful claim.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterClaim {
    /// What the link's page was given (a new password, or a passkey) is all the sign-in needs:
    /// the browser is signed in (an SSO session with those factors) and goes to the account page.
    SignedIn,
    /// The organization requires a second factor and the user has none (any more): enrol one
    /// now, then the browser is signed in.
    Enrol,
    /// The user still has a second factor the link did not reset (a password reset by e-mail, or
    /// a recovery of the password only): the link proves no possession of it, so no session is
    /// started — the user signs in with the new password (or passkey) and the code, as usual.
    SignInWithCode,
    /// The link reset only the second factor: the password is unchanged and was not given, so no
    /// session is started either.
    SignInAgain,
}

/// The same rule as a sign-in's (protocol/mfa.rs `next_step`): `proved` is what the page was
/// given, as the factor bits of a sign-in (`PWD` for a new password, a passkey's bits for a
/// passkey — a user-verified one is a second factor by itself), `None` where it was given
/// nothing. Then a user with a second factor is asked for it, and a user without one enrols
/// where the organization requires it. A link that was given nothing authenticated nobody.
pub fn after_claim(proved: Option<u8>, still_enrolled: bool, policy: Policy) -> AfterClaim {
    let Some(factors) = proved else {
        return AfterClaim::SignInAgain;
    };
    // A passkey the user may also have is not asked for here: the link was issued by an
    // administrator (or to the account's address) to restore access, and what it resets is theirs
    // to choose.
    match mfa::next_step(factors, still_enrolled, false, mfa::required(policy, false)) {
        mfa::Step::Done => AfterClaim::SignedIn,
        mfa::Step::Enrol => AfterClaim::Enrol,
        mfa::Step::Challenge => AfterClaim::SignInWithCode,
    }
}

/// The e-mail that carries a link: subject and plain text (no HTML: nothing to escape, nothing a
/// mail client could render differently). `who` is the username, `org_name` the organization.
pub fn email_text(
    purpose: Purpose,
    org_name: &str,
    who: &str,
    link: &str,
    valid_seconds: i64,
) -> (String, String) {
    let valid = if valid_seconds >= 2 * 3600 {
        format!("{} hours", valid_seconds / 3600)
    } else {
        crate::protocol::throttle::in_words(valid_seconds)
    };
    match purpose {
        Purpose::Setup => (
            format!("Set up your {org_name} account"),
            format!(
                "Hello {who},\n\nAn account was created for you at {org_name}. Open this link to choose your password:\n\n{link}\n\nThe link works once and for {valid}. If you did not expect this e-mail, you can ignore it.\n"
            ),
        ),
        Purpose::Recovery => (
            format!("Recover your {org_name} account"),
            format!(
                "Hello {who},\n\nAn administrator of {org_name} sent you this link to recover your account:\n\n{link}\n\nThe link works once and for {valid}. If you did not ask for it, tell your administrator.\n"
            ),
        ),
        Purpose::ResetPassword => (
            format!("Reset your {org_name} password"),
            format!(
                "Hello {who},\n\nSomeone (hopefully you) asked to reset the password of your {org_name} account. Open this link to choose a new one:\n\n{link}\n\nThe link works once and for {valid}. If you did not ask for it, ignore this e-mail: your password stays as it is.\n"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_are_a_non_empty_set_of_two_names() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(Resets::parse(None), Ok(Resets::PASSWORD));
        assert_eq!(
            Resets::parse(Some(&list(&["second_factor", "password"]))),
            Ok(Resets {
                password: true,
                second_factor: true
            })
        );
        assert_eq!(
            Resets::parse(Some(&list(&["second_factor"])))
                .unwrap()
                .names(),
            ["second_factor"]
        );
        assert!(Resets::parse(Some(&[])).is_err());
        assert!(Resets::parse(Some(&list(&["password", "password"]))).is_err());
        assert!(Resets::parse(Some(&list(&["email"]))).is_err());
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(valid_for(None), Ok(72 * 3600));
        assert_eq!(valid_for(Some(1)), Ok(1));
        assert_eq!(valid_for(Some(MAX_VALID_SECONDS)), Ok(MAX_VALID_SECONDS));
        assert!(valid_for(Some(0)).is_err());
        assert!(valid_for(Some(-5)).is_err());
        assert!(valid_for(Some(MAX_VALID_SECONDS + 1)).is_err());
    }

    #[test]
    fn tokens_are_43_base64url_characters() {
        let token = crate::crypto::b64url(&[7u8; 32]);
        assert!(well_formed(&token));
        assert!(!well_formed(&token[1..]));
        assert!(!well_formed(&format!("{}=", &token[1..])));
        assert!(!well_formed(&"a".repeat(44)));
        assert_eq!(
            url("https://id.test/acme", "t"),
            "https://id.test/acme/setup/t"
        );
    }

    #[test]
    fn a_link_says_why_it_cannot_be_used() {
        let ok = Standing {
            used: false,
            revoked: false,
            expires_at: 100,
            user_disabled: false,
        };
        assert_eq!(standing(Some(ok), 99), Ok(()));
        assert_eq!(standing(Some(ok), 100), Err(Unusable::Expired));
        assert_eq!(standing(None, 0), Err(Unusable::Unknown));
        let used = Standing { used: true, ..ok };
        assert_eq!(standing(Some(used), 200), Err(Unusable::Used), "used wins");
        let revoked = Standing {
            revoked: true,
            ..ok
        };
        assert_eq!(standing(Some(revoked), 0), Err(Unusable::Superseded));
        let disabled = Standing {
            user_disabled: true,
            ..ok
        };
        assert_eq!(standing(Some(disabled), 0), Err(Unusable::Disabled));
        assert_eq!(Unusable::Unknown.status(), 404);
        assert_eq!(Unusable::Expired.status(), 410);
        assert_eq!(Unusable::Used.status(), 410);
        for u in [
            Unusable::Unknown,
            Unusable::Used,
            Unusable::Superseded,
            Unusable::Expired,
            Unusable::Disabled,
        ] {
            assert!(u.description().contains("administrator"), "{u:?}");
        }
    }

    #[test]
    fn after_a_claim_the_sign_in_rules_apply() {
        use crate::protocol::mfa::{PWD, passkey_factors};
        use Policy::*;
        let password = Some(PWD);
        assert_eq!(after_claim(password, false, Off), AfterClaim::SignedIn);
        assert_eq!(after_claim(password, false, Optional), AfterClaim::SignedIn);
        assert_eq!(after_claim(password, false, Required), AfterClaim::Enrol);
        // A user-verified passkey is two factors in one: nothing to enrol, no code to ask.
        let verified = Some(passkey_factors(true, true));
        let present_only = Some(passkey_factors(false, false));
        for policy in [Off, Optional, Required] {
            assert_eq!(
                after_claim(password, true, policy),
                AfterClaim::SignInWithCode
            );
            assert_eq!(after_claim(None, false, policy), AfterClaim::SignInAgain);
            assert_eq!(after_claim(verified, false, policy), AfterClaim::SignedIn);
            assert_eq!(after_claim(verified, true, policy), AfterClaim::SignedIn);
            assert_eq!(
                after_claim(present_only, true, policy),
                AfterClaim::SignInWithCode
            );
        }
        // A passkey without user verification is one factor, like a password.
        assert_eq!(after_claim(present_only, false, Off), AfterClaim::SignedIn);
        assert_eq!(
            after_claim(present_only, false, Required),
            AfterClaim::Enrol
        );
    }

    #[test]
    fn the_email_names_the_link_and_its_lifetime() {
        let (subject, body) = email_text(
            Purpose::ResetPassword,
            "Acme",
            "jane",
            "https://id/acme/setup/x",
            1800,
        );
        assert_eq!(subject, "Reset your Acme password");
        assert!(body.contains("https://id/acme/setup/x") && body.contains("30 minutes"));
        let (_, body) = email_text(Purpose::Setup, "Acme", "jane", "L", 72 * 3600);
        assert!(body.contains("72 hours"), "{body}");
    }
}
