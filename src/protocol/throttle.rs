//! Brute-force throttling rules (OWASP ASVS 5.0 §6.3.1; the shape of Keycloak's defaults): after
//! `threshold` consecutive failures for a key, each further failure locks the key for a wait
//! that doubles from 1 s up to a cap; a success (for an account) or a quiet `reset_after`
//! period starts the count again. Attempts while locked are refused without being checked, and
//! do not count. Pure; `edge/store/throttles.rs` applies the same rule in one SQL UPSERT at the
//! D1 primary (see `WAIT_SQL`), and a unit test keeps the two in step.

/// One organization's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub account_failures: i64,
    pub ip_failures: i64,
    pub max_wait: i64,
    pub reset_after: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            account_failures: 5,
            ip_failures: 20,
            max_wait: 900,
            reset_after: 12 * 3600,
        }
    }
}

/// Wrong admin tokens per address (the admin token is 256 bits; this is about noise and cost).
pub const ADMIN_FAILURES: i64 = 10;
pub const ADMIN_MAX_WAIT: i64 = 900;
pub const ADMIN_RESET_AFTER: i64 = 3600;

/// A key's stored state. Times are Unix milliseconds: a wait of 1 s must last a whole second,
/// which whole-second timestamps cannot promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counter {
    pub failures: i64,
    pub locked_until: i64,
    pub updated_at: i64,
}

/// Seconds to wait after the `failures`-th consecutive failure: 0 below the threshold, then
/// 1, 2, 4, … seconds, at most `max_wait`.
pub fn wait_after(failures: i64, threshold: i64, max_wait: i64) -> i64 {
    if failures < threshold {
        return 0;
    }
    let doublings = (failures - threshold).min(30);
    (1i64 << doublings).min(max_wait)
}

/// Whole seconds (rounded up, for `Retry-After`) a key is still locked at `now_ms`; None when
/// it is not.
pub fn locked_for(counter: Option<&Counter>, now_ms: i64) -> Option<i64> {
    counter.and_then(|c| seconds_left(c.locked_until, now_ms))
}

/// The same for a bare lock time (Unix milliseconds; 0 when none).
pub fn seconds_left(locked_until_ms: i64, now_ms: i64) -> Option<i64> {
    let left = locked_until_ms - now_ms;
    (left > 0).then_some((left + 999) / 1000)
}

/// The state after one more failure at `now_ms` (what the SQL UPSERT computes); `max_wait` and
/// `reset_after` in seconds.
pub fn after_failure(
    counter: Option<&Counter>,
    threshold: i64,
    max_wait: i64,
    reset_after: i64,
    now_ms: i64,
) -> Counter {
    let failures = match counter {
        Some(c) if c.updated_at > now_ms - reset_after * 1000 => c.failures + 1,
        _ => 1,
    };
    let wait = wait_after(failures, threshold, max_wait);
    Counter {
        failures,
        locked_until: if wait > 0 { now_ms + wait * 1000 } else { 0 },
        updated_at: now_ms,
    }
}

/// The key an address is counted under: an IPv4 address as it is, an IPv6 address by its /64
/// prefix — one subscriber, one LAN or one host is usually given a whole /64, so counting its
/// addresses one by one would let a single machine rotate through 2^64 of them (finding 8 of
/// issue 15). Anything unparsable is kept as sent (it is Cloudflare's own header).
pub fn address_key(ip: &str) -> String {
    match ip.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{}", ip.chars().take(64).collect::<String>()),
    }
}

/// The key of a login name that matches no account: a hash of its case-folded NFKC form, so a
/// key is bounded (a name may be 64 KiB of noise, or a password typed in the wrong field, and is
/// never stored as typed) and `Alice`, `alice` and `ａｌｉｃｅ` share one count.
pub fn name_key(login: &str) -> String {
    let folded = crate::protocol::password_policy::normalize(login.trim()).to_lowercase();
    format!("name:{}", &crate::crypto::token_hash(&folded)[..32])
}

/// The key of an account.
pub fn user_key(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The key that caps guesses of one user's TOTP codes within one 30-second step.
pub fn totp_step_key(user_id: &str, step: u64) -> String {
    format!("otp:{user_id}:{step}")
}

/// A wait in words for the login page ("Try again in …").
pub fn in_words(seconds: i64) -> String {
    match seconds {
        ..=1 => "1 second".to_string(),
        2..=59 => format!("{seconds} seconds"),
        60..=119 => "1 minute".to_string(),
        _ => format!("{} minutes", (seconds + 59) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_one_second_after_the_threshold_up_to_the_cap() {
        let waits: Vec<i64> = (1..=16).map(|n| wait_after(n, 5, 900)).collect();
        assert_eq!(
            waits,
            vec![0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
        );
        assert_eq!(wait_after(10_000, 5, 900), 900, "no overflow");
    }

    #[test]
    fn failures_accumulate_and_reset_after_a_quiet_period() {
        let mut c = None;
        for now in (100_000..105_000).step_by(1000) {
            c = Some(after_failure(c.as_ref(), 5, 900, 3600, now));
        }
        let c5 = c.unwrap();
        assert_eq!((c5.failures, c5.locked_until), (5, 105_000));
        assert_eq!(locked_for(Some(&c5), 104_000), Some(1));
        assert_eq!(
            locked_for(Some(&c5), 104_999),
            Some(1),
            "a part second still waits"
        );
        assert_eq!(locked_for(Some(&c5), 105_000), None);
        let c6 = after_failure(Some(&c5), 5, 900, 3600, 106_000);
        assert_eq!((c6.failures, c6.locked_until), (6, 108_000));
        assert_eq!(locked_for(Some(&c6), 106_001), Some(2));
        let fresh = after_failure(Some(&c6), 5, 900, 3600, 106_000 + 3_600_000);
        assert_eq!((fresh.failures, fresh.locked_until), (1, 0));
    }

    #[test]
    fn addresses_are_counted_per_ipv4_address_and_per_ipv6_slash_64() {
        assert_eq!(address_key("203.0.113.7"), "ip:203.0.113.7");
        assert_eq!(
            address_key("2001:db8:1:2:aaaa::1"),
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
        );
        assert_eq!(address_key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_ne!(
            address_key("2001:db8:1:2::1"),
            address_key("2001:db8:1:3::1")
        );
        assert_eq!(address_key("::ffff:198.51.100.1"), "ip:198.51.100.1");
        assert!(address_key(&"x".repeat(10_000)).len() < 80);
    }

    #[test]
    fn unknown_names_are_bounded_hashes_that_fold_case_and_width() {
        let k = name_key("Alice");
        assert_eq!(k, name_key(" alice "));
        assert_eq!(k, name_key("ａｌｉｃｅ"));
        assert_ne!(k, name_key("alicia"));
        assert_eq!(name_key(&"p".repeat(65_536)).len(), "name:".len() + 32);
        assert!(!name_key("hunter2-password").contains("hunter2"));
    }

    #[test]
    fn waits_in_words() {
        assert_eq!(in_words(1), "1 second");
        assert_eq!(in_words(8), "8 seconds");
        assert_eq!(in_words(64), "1 minute");
        assert_eq!(in_words(900), "15 minutes");
        assert_eq!(in_words(121), "3 minutes");
    }
}
