//! Second-factor rules: the policy, what a sign-in needs, the authentication methods it used
//! (RFC 8176 `amr`) and the assurance it reached (OpenID Connect Core §2 `acr`), and TOTP codes
//! (RFC 6238) and recovery codes. Pure; time and randomness are passed in.

use totp_rs::{Algorithm, TOTP};

use crate::crypto::token_hash;

/// The `acr` of a sign-in with a password only, and with a password and a second factor.
pub const ACR_PASSWORD: &str = "urn:clavex:acr:pwd";
pub const ACR_MFA: &str = "urn:clavex:acr:mfa";
/// acr values a client may ask for that mean "with a second factor": ours, and the widely used
/// PAPE multi-factor policy URI.
pub const MFA_ACRS: &[&str] = &[
    ACR_MFA,
    "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
];
/// OpenID Connect Extended Authentication Profile ACR Values 1.0 §2: "phr" — phishing-resistant
/// authentication; Clavex issues it for a sign-in with a user-verified passkey (bound to the
/// RP ID, so a look-alike site cannot replay it).
pub const ACR_PHR: &str = "phr";
pub const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_PASSWORD, ACR_MFA, ACR_PHR];

/// An organization's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Off,
    Optional,
    Required,
}

impl Policy {
    pub fn parse(value: &str) -> Option<Policy> {
        match value {
            "off" => Some(Policy::Off),
            "optional" => Some(Policy::Optional),
            "required" => Some(Policy::Required),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Optional => "optional",
            Policy::Required => "required",
        }
    }
}

/// The factors a sign-in used, as bits (they travel in sealed codes and KV sessions).
pub const PWD: u8 = 1;
pub const OTP: u8 = 2;
/// A sign-in at an upstream identity provider through a connection (protocol/upstream.rs):
/// one factor.
pub const UPSTREAM: u8 = 4;
/// The upstream said it asked for several factors and the connection trusts it to: counts as
/// the second factor.
pub const UPSTREAM_MFA: u8 = 8;
/// A passkey (WebAuthn assertion, protocol/webauthn.rs): one factor, something you have.
pub const PASSKEY: u8 = 16;
/// The authenticator verified the user (UV flag: a PIN or biometric on the device): the passkey
/// is two factors in one, and satisfies the second-factor policy.
pub const PASSKEY_UV: u8 = 32;
/// The passkey is backup eligible (BE flag: synced by a password manager or platform account),
/// so its key is not confined to one piece of hardware: `swk` rather than `hwk`.
pub const PASSKEY_SYNCED: u8 = 64;

/// The factor bits of a passkey sign-in.
pub fn passkey_factors(user_verified: bool, backup_eligible: bool) -> u8 {
    let mut f = PASSKEY;
    if user_verified {
        f |= PASSKEY_UV;
    }
    if backup_eligible {
        f |= PASSKEY_SYNCED;
    }
    f
}

/// RFC 8176 values: `pwd`, and `otp` + `mfa` once a one-time code was also given. An upstream
/// sign-in is `fed` (RFC 8176 registers no value for it; "fed" is the one Microsoft's identity
/// platform uses for "a federated identity assertion"), with `mfa` when the trusted upstream
/// asked for several factors. A passkey is `hwk` ("proof-of-possession of a hardware-secured
/// key") when it is not backup eligible, and `swk` ("proof-of-possession of a software-secured
/// key") when it is: a synced passkey's private key leaves the device, so Clavex does not claim
/// hardware for it (RFC 8176 §2). A user-verified passkey adds `user` ("user presence test" is
/// `user`'s RFC 8176 wording for a PIN/biometric gesture at the authenticator) and `mfa`.
pub fn amr(factors: u8) -> Vec<&'static str> {
    let mut out = Vec::new();
    if factors & PWD != 0 {
        out.push("pwd");
    }
    if factors & UPSTREAM != 0 {
        out.push("fed");
    }
    if factors & PASSKEY != 0 {
        out.push(if factors & PASSKEY_SYNCED != 0 {
            "swk"
        } else {
            "hwk"
        });
        if factors & PASSKEY_UV != 0 {
            out.push("user");
        }
    }
    if factors & OTP != 0 {
        out.push("otp");
    }
    if factors & (PWD | UPSTREAM | PASSKEY) != 0 && has_second_factor(factors) {
        out.push("mfa");
    }
    out
}

/// The factors a stored `amr` list (space-separated) stands for.
pub fn factors_of(amr: &str) -> u8 {
    let factors = amr.split(' ').fold(0, |f, v| match v {
        "pwd" => f | PWD,
        "otp" => f | OTP,
        "fed" => f | UPSTREAM,
        "hwk" => f | PASSKEY,
        "swk" => f | PASSKEY | PASSKEY_SYNCED,
        "user" => f | PASSKEY_UV,
        _ => f,
    });
    // `mfa` without `otp` after `fed` is the trusted upstream's own second factor.
    if factors & UPSTREAM != 0 && factors & OTP == 0 && amr.split(' ').any(|v| v == "mfa") {
        factors | UPSTREAM_MFA
    } else {
        factors
    }
}

pub fn acr(factors: u8) -> &'static str {
    if factors & PASSKEY_UV != 0 {
        ACR_PHR
    } else if has_second_factor(factors) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// A second factor was given: a code, a trusted upstream's own, a user-verified passkey (two
/// factors in one), or a passkey — something you have — on top of a password or an upstream
/// sign-in (the passkey as the second step, oidc/passkeys.rs `handle_second_factor`).
pub fn has_second_factor(factors: u8) -> bool {
    factors & (OTP | UPSTREAM_MFA | PASSKEY_UV) != 0
        || (factors & PASSKEY != 0 && factors & (PWD | UPSTREAM) != 0)
}

/// Whether the organization's or the client's policy makes this sign-in include a second factor:
/// the organization requires it, or the client does (also where the organization has second
/// factors off). What `acr_values` and the `claims` parameter ask is protocol/acr.rs's, and the
/// gate adds it.
pub fn required(org: Policy, client_requires: bool) -> bool {
    match org {
        Policy::Required => true,
        Policy::Optional | Policy::Off => client_requires,
    }
}

/// What a sign-in does after a correct password (or with an SSO session's factors).
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing more is needed.
    Done,
    /// Ask for the second factor the user has: a TOTP or recovery code, or a passkey.
    Challenge,
    /// The user has no second factor and must enrol now.
    Enrol,
}

/// Users with TOTP (`enrolled`) are always asked for their code (a second factor they set up is
/// not optional for them). A user with a passkey (`passkey`) is asked for it where the sign-in
/// requires a second factor — never sent to enrol another one with the password alone, which
/// would let a stolen password add its own factor and step around the passkey. Others enrol
/// only when the sign-in requires it.
pub fn next_step(factors: u8, enrolled: bool, passkey: bool, required: bool) -> Step {
    if has_second_factor(factors) {
        return Step::Done;
    }
    match (enrolled, passkey, required) {
        (true, _, _) => Step::Challenge,
        (false, true, true) => Step::Challenge,
        (false, false, true) => Step::Enrol,
        (false, _, false) => Step::Done,
    }
}

// ---- TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps — what every authenticator app does) ----

pub const STEP_SECONDS: i64 = 30;
/// Codes of the previous and the next step are accepted too, for clock drift (RFC 6238 §5.2
/// recommends at most one step back).
const DRIFT_STEPS: i64 = 1;

fn totp(secret: &[u8]) -> Option<TOTP> {
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS as u64, secret.to_vec()).ok()
}

/// The step a code is valid for at `now`, if any (checked for the steps around `now`, each in
/// constant time). Single use is the caller's: accept only a step after the last one accepted.
pub fn matching_step(secret: &[u8], code: &str, now: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret)?;
    let current = now / STEP_SECONDS;
    (current - DRIFT_STEPS..=current + DRIFT_STEPS)
        .filter(|s| *s >= 0)
        .find(|s| {
            let generated = totp.generate((*s * STEP_SECONDS) as u64);
            crate::crypto::secure_eq(&generated, &code)
        })
}

/// The code for `now` (for tests and for nothing else).
pub fn code_at(secret: &[u8], now: i64) -> String {
    totp(secret)
        .map(|t| t.generate(now as u64))
        .unwrap_or_default()
}

/// RFC 4648 base32 without padding: how authenticator apps take a secret typed by hand.
pub fn base32(secret: &[u8]) -> String {
    base32::encode(base32::Alphabet::Rfc4648 { padding: false }, secret)
}

/// The `otpauth://` URI the QR code holds (Google Authenticator's Key Uri Format, which every
/// authenticator app reads): `otpauth://totp/{issuer}:{account}?secret=…&issuer=…`.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECONDS}",
        enc(issuer),
        enc(account),
        base32(secret),
        enc(issuer)
    )
}

/// The QR code of `text` as an SVG document (rendered on the server: no JavaScript, no request
/// to anyone else).
pub fn qr_svg(text: &str) -> String {
    use qrcode::render::svg;
    match qrcode::QrCode::new(text.as_bytes()) {
        Ok(code) => code
            .render::<svg::Color>()
            .min_dimensions(220, 220)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

// ---- Recovery codes ----

pub const RECOVERY_CODES: usize = 10;

/// A recovery code from 8 random bytes: 10 lowercase base32 characters in two groups
/// (`xxxxx-xxxxx`), easy to copy by hand; 50 bits is ample for a code that works once.
pub fn recovery_code(random: [u8; 8]) -> String {
    let text = base32(&random).to_ascii_lowercase();
    format!("{}-{}", &text[..5], &text[5..10])
}

/// How a typed recovery code is compared: case, spaces and dashes do not matter.
pub fn normalize_recovery(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The stored form of a recovery code.
pub fn recovery_hash(code: &str) -> String {
    token_hash(&normalize_recovery(code))
}

/// Whether an input looks like a recovery code (rather than a 6-digit TOTP code).
pub fn is_recovery_shaped(code: &str) -> bool {
    normalize_recovery(code).len() == 10
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 secret.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_follow_rfc_6238_test_vectors() {
        // Appendix B: T = 59 → 94287082 (8 digits); the 6-digit code is its last 6 digits.
        assert_eq!(code_at(RFC_SECRET, 59), "287082");
        assert_eq!(code_at(RFC_SECRET, 1111111109), "081804");
        assert_eq!(code_at(RFC_SECRET, 1234567890), "005924");
    }

    #[test]
    fn a_code_matches_its_step_and_the_neighbours_only() {
        let now = 1_700_000_000;
        let code = code_at(RFC_SECRET, now);
        assert_eq!(matching_step(RFC_SECRET, &code, now), Some(now / 30));
        assert_eq!(matching_step(RFC_SECRET, &code, now + 30), Some(now / 30));
        assert_eq!(matching_step(RFC_SECRET, &code, now - 30), Some(now / 30));
        assert_eq!(matching_step(RFC_SECRET, &code, now + 90), None);
        assert_eq!(
            matching_step(RFC_SECRET, &format!("{} {}", &code[..3], &code[3..]), now),
            Some(now / 30)
        );
        for bad in ["", "12345", "1234567", "abcdef", "12345a"] {
            assert_eq!(matching_step(RFC_SECRET, bad, now), None, "{bad}");
        }
    }

    #[test]
    fn base32_and_the_otpauth_uri() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = otpauth_uri("Acme Corp", "jane@acme.eu", RFC_SECRET);
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20Corp:jane%40acme%2Eeu?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        let svg = qr_svg(&uri);
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg"),
            "{}",
            &svg[..60]
        );
    }

    #[test]
    fn recovery_codes_are_compared_loosely_and_stored_hashed() {
        let code = recovery_code([1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert_eq!(
            recovery_hash(&code),
            recovery_hash(&code.to_uppercase().replace('-', " "))
        );
        assert!(is_recovery_shaped(&code) && !is_recovery_shaped("123456"));
    }

    #[test]
    fn policy_and_steps() {
        assert!(required(Policy::Required, false));
        assert!(!required(Policy::Optional, false));
        assert!(required(Policy::Optional, true));
        assert!(required(Policy::Off, true));
        assert!(!required(Policy::Off, false));
        assert_eq!(next_step(PWD, true, false, false), Step::Challenge);
        assert_eq!(next_step(PWD, false, false, true), Step::Enrol);
        assert_eq!(next_step(PWD, false, false, false), Step::Done);
        assert_eq!(next_step(PWD | OTP, true, false, true), Step::Done);
        // A passkey user is asked for it where a second factor is required, not sent to enrol
        // TOTP with the password alone; where none is required the password is enough.
        assert_eq!(next_step(PWD, false, true, true), Step::Challenge);
        assert_eq!(next_step(PWD, false, true, false), Step::Done);
        assert_eq!(next_step(PWD, true, true, false), Step::Challenge);
        assert_eq!(amr(PWD), vec!["pwd"]);
        assert_eq!(amr(PWD | OTP), vec!["pwd", "otp", "mfa"]);
        assert_eq!(factors_of("pwd otp mfa"), PWD | OTP);
        assert_eq!(acr(PWD), ACR_PASSWORD);
        assert_eq!(acr(PWD | OTP), ACR_MFA);
        assert_eq!(Policy::parse("optional"), Some(Policy::Optional));
        assert_eq!(Policy::parse("on"), None);
    }

    #[test]
    fn passkey_amr_and_acr() {
        let device = passkey_factors(true, false);
        assert_eq!(amr(device), vec!["hwk", "user", "mfa"]);
        assert_eq!(acr(device), ACR_PHR);
        assert!(has_second_factor(device));
        let synced = passkey_factors(true, true);
        assert_eq!(amr(synced), vec!["swk", "user", "mfa"]);
        let presence_only = passkey_factors(false, true);
        assert_eq!(amr(presence_only), vec!["swk"]);
        assert_eq!(acr(presence_only), ACR_PASSWORD);
        assert!(!has_second_factor(presence_only));
        assert_eq!(next_step(presence_only, false, false, true), Step::Enrol);
        assert_eq!(next_step(presence_only, false, true, true), Step::Challenge);
        assert_eq!(next_step(device, true, true, true), Step::Done);
        // A passkey after a password (or an upstream sign-in) is the second factor even without
        // user verification: something you know (or the upstream's sign-in) and something you have.
        let second = PWD | passkey_factors(false, false);
        assert!(has_second_factor(second));
        assert_eq!(amr(second), vec!["pwd", "hwk", "mfa"]);
        assert_eq!(acr(second), ACR_MFA);
        assert_eq!(factors_of("pwd hwk mfa"), second);
        assert!(has_second_factor(UPSTREAM | PASSKEY));
        assert_eq!(next_step(second, false, true, true), Step::Done);
        // A verified passkey as the second factor after a password.
        assert_eq!(amr(PWD | device), vec!["pwd", "hwk", "user", "mfa"]);
        for f in [device, synced, presence_only, PWD | device, PWD | OTP] {
            assert_eq!(factors_of(&amr(f).join(" ")), f, "{f}");
        }
    }
}
