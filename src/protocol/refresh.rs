//! Refresh token rotation with reuse detection (RFC 9700 §4.14.2, RFC 6749 §6).
//!
//! Every use rotates the token. Presenting an already-rotated token means it was copied — unless
//! the client is retrying a refresh whose response it never received: within a short grace
//! window after the rotation, while no token issued from it has been used, each retry gets a
//! fresh pair (a sibling of the first successor) instead of the family being revoked (peers.md:
//! the common answer to that race). The first sibling to be used supersedes the others; a
//! superseded token presented later is a copy, and revokes the family.

use crate::protocol::lifetimes::REFRESH_REUSE_GRACE_SECONDS;

/// The presented token as stored.
pub struct RefreshState {
    pub issued_to_client: bool,
    pub expires_at: i64,
    pub grant_revoked: bool,
    /// The user is (still) in one of the client's allowed groups, or the client admits everyone.
    pub user_allowed: bool,
    pub rotated_at: Option<i64>,
    /// Rotated without being used: a sibling was used first.
    pub superseded: bool,
    /// Whether a token issued from this one has been used.
    pub child_used: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotate,
    /// A retry within the grace window: issue another child of the presented token.
    GraceReissue,
    /// A rotated token presented again: revoke the whole grant.
    ReuseDetected,
    Invalid(&'static str),
}

pub fn decide(state: &RefreshState, now: i64) -> RefreshOutcome {
    // RFC 6749 §6: the refresh token must have been issued to the authenticated client.
    if !state.issued_to_client {
        return RefreshOutcome::Invalid("the refresh token was issued to another client");
    }
    if state.grant_revoked {
        return RefreshOutcome::Invalid("the refresh token has been revoked");
    }
    if !state.user_allowed {
        return RefreshOutcome::Invalid(
            "the user is no longer in a group allowed to use this client",
        );
    }
    if now >= state.expires_at {
        return RefreshOutcome::Invalid("the refresh token has expired");
    }
    match state.rotated_at {
        None => RefreshOutcome::Rotate,
        Some(at)
            if now - at <= REFRESH_REUSE_GRACE_SECONDS
                && !state.superseded
                && !state.child_used =>
        {
            RefreshOutcome::GraceReissue
        }
        Some(_) => RefreshOutcome::ReuseDetected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rotated_at: Option<i64>, child_used: bool) -> RefreshState {
        RefreshState {
            issued_to_client: true,
            expires_at: 10_000,
            grant_revoked: false,
            user_allowed: true,
            rotated_at,
            superseded: false,
            child_used,
        }
    }

    #[test]
    fn fresh_token_rotates() {
        assert_eq!(decide(&state(None, false), 100), RefreshOutcome::Rotate);
    }

    #[test]
    fn retries_within_grace_are_reissued_and_later_reuse_revokes() {
        let at_edge = 100 + REFRESH_REUSE_GRACE_SECONDS;
        assert_eq!(
            decide(&state(Some(100), false), at_edge),
            RefreshOutcome::GraceReissue
        );
        assert_eq!(
            decide(&state(Some(100), false), at_edge + 1),
            RefreshOutcome::ReuseDetected
        );
        // A token issued from it was used: the old token is a copy even inside the window.
        assert_eq!(
            decide(&state(Some(100), true), 101),
            RefreshOutcome::ReuseDetected
        );
        // Superseded by a sibling that was used first: a copy too.
        let superseded = RefreshState {
            superseded: true,
            ..state(Some(100), false)
        };
        assert_eq!(decide(&superseded, 101), RefreshOutcome::ReuseDetected);
    }

    #[test]
    fn other_client_revoked_or_expired_is_invalid() {
        let other = RefreshState {
            issued_to_client: false,
            ..state(None, false)
        };
        assert!(matches!(decide(&other, 100), RefreshOutcome::Invalid(_)));
        let outside = RefreshState {
            user_allowed: false,
            ..state(None, false)
        };
        assert!(matches!(decide(&outside, 100), RefreshOutcome::Invalid(_)));
        let revoked = RefreshState {
            grant_revoked: true,
            ..state(None, false)
        };
        assert!(matches!(decide(&revoked, 100), RefreshOutcome::Invalid(_)));
        assert!(matches!(
            decide(&state(None, false), 10_000),
            RefreshOutcome::Invalid(_)
        ));
    }
}
