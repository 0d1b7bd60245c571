//! Refresh token rotation with reuse detection (RFC 9700 §4.14.2, RFC 6749 §6).
//!
//! Every use rotates the token. Presenting an already-rotated token means it was copied — unless
//! the client is retrying a refresh whose response it never received: within a short grace
//! window, while the successor has not been used, that retry gets a fresh pair instead of the
//! family being revoked (peers.md: the common answer to that race).

use crate::protocol::lifetimes::REFRESH_REUSE_GRACE_SECONDS;

/// The presented token as stored.
pub struct RefreshState {
    pub issued_to_client: bool,
    pub expires_at: i64,
    pub grant_revoked: bool,
    pub rotated_at: Option<i64>,
    /// Whether the token that replaced this one has not itself been used yet.
    pub successor_unused: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotate,
    /// A retry within the grace window: replace the unused successor with a new token.
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
    if now >= state.expires_at {
        return RefreshOutcome::Invalid("the refresh token has expired");
    }
    match state.rotated_at {
        None => RefreshOutcome::Rotate,
        Some(at) if now - at <= REFRESH_REUSE_GRACE_SECONDS && state.successor_unused => {
            RefreshOutcome::GraceReissue
        }
        Some(_) => RefreshOutcome::ReuseDetected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rotated_at: Option<i64>, successor_unused: bool) -> RefreshState {
        RefreshState {
            issued_to_client: true,
            expires_at: 10_000,
            grant_revoked: false,
            rotated_at,
            successor_unused,
        }
    }

    #[test]
    fn fresh_token_rotates() {
        assert_eq!(decide(&state(None, false), 100), RefreshOutcome::Rotate);
    }

    #[test]
    fn retry_within_grace_is_reissued_and_later_reuse_revokes() {
        assert_eq!(
            decide(&state(Some(100), true), 100 + REFRESH_REUSE_GRACE_SECONDS),
            RefreshOutcome::GraceReissue
        );
        assert_eq!(
            decide(&state(Some(100), true), 101 + REFRESH_REUSE_GRACE_SECONDS),
            RefreshOutcome::ReuseDetected
        );
        // The successor was used: the old token is a copy even inside the window.
        assert_eq!(
            decide(&state(Some(100), false), 101),
            RefreshOutcome::ReuseDetected
        );
    }

    #[test]
    fn other_client_revoked_or_expired_is_invalid() {
        let other = RefreshState {
            issued_to_client: false,
            ..state(None, false)
        };
        assert!(matches!(decide(&other, 100), RefreshOutcome::Invalid(_)));
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
