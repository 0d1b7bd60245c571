//! Token and session lifetimes, in seconds. One place, documented in the README.

/// Authorization code (RFC 6749 §4.1.2: "a maximum authorization code lifetime of 10 minutes is
/// RECOMMENDED"; we keep it much shorter). KV cannot expire sooner than 60 s, so the code record
/// also carries its issue time and is checked against this.
pub const CODE_SECONDS: i64 = 60;
pub const ACCESS_TOKEN_SECONDS: i64 = 3600;
pub const ID_TOKEN_SECONDS: i64 = 3600;
pub const REFRESH_TOKEN_SECONDS: i64 = 30 * 24 * 3600;
/// A client that retried a refresh whose response it never received may present the just-rotated
/// token again within this window without the whole family being revoked.
pub const REFRESH_REUSE_GRACE_SECONDS: i64 = 30;
pub const SSO_SESSION_SECONDS: i64 = 12 * 3600;
/// A login form (its sealed authorization request) must be submitted within this time.
pub const LOGIN_FORM_SECONDS: i64 = 30 * 60;
/// A retired signing key stays in the JWKS this long after rotation, so that every token it
/// signed (ID tokens live ID_TOKEN_SECONDS) can still be verified; plus a day's margin for caches.
pub const RETIRED_KEY_PUBLISHED_SECONDS: i64 = ID_TOKEN_SECONDS + 24 * 3600;
/// KV rejects expirations shorter than this.
pub const KV_MIN_TTL_SECONDS: i64 = 60;
