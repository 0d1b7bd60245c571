//! How long finished records are kept before the scheduled clean-up deletes them. A record is
//! only deleted once nothing can still use it or learn from it.

use crate::protocol::lifetimes::{ACCESS_TOKEN_SECONDS, CODE_SECONDS, REFRESH_TOKEN_SECONDS};

/// Kept past expiry for a day, so support can still see why a token stopped working.
const GRACE_SECONDS: i64 = 24 * 3600;

pub struct Cutoffs {
    /// Access tokens that expired before this are deleted.
    pub access_expired_before: i64,
    /// Refresh tokens that expired before this are deleted (rotated ones expire like the rest:
    /// they must stay to detect reuse for as long as their family could be live).
    pub refresh_expired_before: i64,
    /// Grants created before this with no token left are deleted. A grant is also the claim on
    /// its code; by then any replay of the code is long past its 60 s lifetime and fails anyway.
    pub grant_created_before: i64,
    /// Throttle counters last touched before this are deleted: past the longest reset period an
    /// organization may set, a counter would start again from zero anyway.
    pub throttle_quiet_since: i64,
}

/// The longest `throttle_reset_seconds` the admin API accepts (30 days).
pub const MAX_THROTTLE_RESET_SECONDS: i64 = 30 * 24 * 3600;

pub fn cutoffs(now: i64) -> Cutoffs {
    Cutoffs {
        access_expired_before: now - GRACE_SECONDS,
        refresh_expired_before: now - GRACE_SECONDS,
        grant_created_before: now
            - GRACE_SECONDS
            - CODE_SECONDS
                .max(ACCESS_TOKEN_SECONDS)
                .max(REFRESH_TOKEN_SECONDS),
        throttle_quiet_since: now - MAX_THROTTLE_RESET_SECONDS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_live_is_ever_past_a_cutoff() {
        let now = 1_000_000_000;
        let c = cutoffs(now);
        // A token issued just now expires after its lifetime, long after the cut-off.
        assert!(now + ACCESS_TOKEN_SECONDS > c.access_expired_before);
        assert!(now + REFRESH_TOKEN_SECONDS > c.refresh_expired_before);
        // The oldest grant that can still hold a live refresh token is newer than the cut-off.
        assert!(now - REFRESH_TOKEN_SECONDS > c.grant_created_before);
        // Expired long enough ago: gone.
        assert!(now - GRACE_SECONDS - 1 < c.access_expired_before);
    }
}
