//! Authorization codes: what a code is bound to, how it travels, and the checks when it is
//! redeemed (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 9700 §2.1.1).
//!
//! A code carries its own record, sealed with AES-256-GCM under a key derived from
//! KEY_ENCRYPTION_SECRET for this purpose alone, with the organization as associated data. The
//! browser reaches Clavex at the location nearest the user and the client's server at the one
//! nearest itself; a code that needed a storage read could not be redeemed there until that
//! storage had propagated. A sealed code is redeemable anywhere at once, and authorize writes
//! nothing. Single use is still decided by the one D1 primary (the grant row's UNIQUE
//! `code_hash`, see store/grants.rs), and the 60 s lifetime is checked from the sealed timestamp.

use crate::crypto::{Keyring, sha256};
use crate::protocol::acr;
use crate::protocol::error::OAuthError;
use crate::protocol::lifetimes::CODE_SECONDS;
use crate::protocol::pkce;

const PURPOSE: &str = "authorization-codes";
/// The first byte of every sealed record: a later format gets another number, and codes in
/// flight during a deploy (60 s at most) are refused rather than misread.
/// Format 2 added the sign-in's factors (protocol/mfa.rs bits); format 3 the chosen `acr` (a
/// byte after the factors) and the SSO session's `sid`; format 4 the session's start in ms (8
/// bytes, last). Codes of formats 2 and 3 still open, without what came later: the releases
/// before this one minted them, at most 60 s before the deploy.
const FORMAT: u8 = 4;
const FORMAT_WITHOUT_SESSION_START: u8 = 3;
const FORMAT_WITHOUT_ACR_AND_SID: u8 = 2;
/// Bytes of SHA-256 kept of the redirect URI: it only has to tell the registered URI the code was
/// issued for from another one (a 2^-128 second preimage), and it keeps codes short.
const REDIRECT_HASH_BYTES: usize = 16;

/// What a code is bound to. The redirect URI travels as a hash: the token request repeats it, so
/// only equality has to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri_hash: [u8; REDIRECT_HASH_BYTES],
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub user_id: String,
    pub auth_time: i64,
    /// The factors of the sign-in (`mfa::PWD`, `mfa::OTP`), for the ID token's `amr` and `acr`.
    pub factors: u8,
    /// The acr value `acr_values` or the `claims` parameter chose (protocol/acr.rs), when Clavex
    /// issues it; `None`: the ID token's `acr` follows the factors.
    pub acr: Option<&'static str>,
    pub issued_at: i64,
    pub claims: Option<String>,
    /// The SSO session the code was issued under (the ID token's `sid`).
    pub sid: Option<String>,
    /// When that session started (unix ms; protocol/account.rs): redemption refuses the code if
    /// the user signed out everywhere after it, at the primary, so a browser holding an ended
    /// session at a location whose replica lagged gets no tokens from it. None only for codes
    /// minted before this was carried.
    pub session_started_ms: Option<i64>,
}

pub fn redirect_uri_hash(uri: &str) -> [u8; REDIRECT_HASH_BYTES] {
    let mut out = [0u8; REDIRECT_HASH_BYTES];
    out.copy_from_slice(&sha256(uri.as_bytes())[..REDIRECT_HASH_BYTES]);
    out
}

/// Why a code is not redeemed. Both answer `invalid_grant`; they differ in what may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Presented by another client, or with another redirect URI or a wrong (or missing, or
    /// downgrading) PKCE verifier: whoever sent it cannot be shown to be the party the code was
    /// issued to, so it changes nothing. Anyone holding an old code (from a log, a referrer, a
    /// browser history) could otherwise sign its user out of the relying party.
    NotBound(OAuthError),
    /// Correctly bound, but past its lifetime. If the code was redeemed before, this is the
    /// reuse RFC 6749 §4.1.2 speaks of ("If an authorization code is used more than once, the
    /// authorization server MUST deny the request and SHOULD revoke (when possible) all tokens
    /// previously issued based on that authorization code"), and what it issued is revoked.
    Expired(OAuthError),
}

impl Refusal {
    pub fn into_error(self) -> OAuthError {
        match self {
            Refusal::NotBound(e) | Refusal::Expired(e) => e,
        }
    }
}

impl CodeGrant {
    /// The code: the key id, `.`, base64url of `nonce ‖ AES-256-GCM(record) ‖ tag`
    /// (crypto/keyring.rs) — about 290 characters for a typical request (authorize bounds
    /// `nonce` and `claims`, so it stays URL-friendly).
    pub fn seal(&self, secret: &Keyring, org: &str) -> String {
        secret.seal(PURPOSE, &self.encode(), org.as_bytes())
    }

    /// The record a code carries, or None when it was not sealed here for this organization
    /// (garbage, tampered, another organization, another secret, another format).
    pub fn open(code: &str, secret: &Keyring, org: &str) -> Option<CodeGrant> {
        // Only with a key id: single use is by the hash of the code's text (store/grants.rs), so
        // the same box without its id must not open as a second code. Codes from before key ids
        // (60 s at most in flight at the deploy) are refused, like a FORMAT change.
        let bytes = secret.open_named(PURPOSE, code, org.as_bytes())?;
        CodeGrant::decode(&bytes)
    }

    /// A compact binary record: timestamps as 32-bit seconds (good until 2106), strings with a
    /// 16-bit length, absent options as length 0xFFFF. JSON would make codes half as long again.
    fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT];
        out.extend_from_slice(&(self.issued_at as u32).to_be_bytes());
        out.extend_from_slice(&(self.auth_time as u32).to_be_bytes());
        out.push(self.factors);
        out.push(acr::to_byte(self.acr));
        out.extend_from_slice(&self.redirect_uri_hash);
        for text in [
            Some(self.client_id.as_str()),
            Some(self.scope.as_str()),
            Some(self.user_id.as_str()),
            self.nonce.as_deref(),
            self.code_challenge.as_deref(),
            self.claims.as_deref(),
            self.sid.as_deref(),
        ] {
            match text {
                Some(t) => {
                    let bytes = &t.as_bytes()[..t.len().min(ABSENT as usize - 1)];
                    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
                None => out.extend_from_slice(&ABSENT.to_be_bytes()),
            }
        }
        // Every code minted now has a session start; u64::MAX stands for none all the same.
        let started = self
            .session_started_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .unwrap_or(u64::MAX);
        out.extend_from_slice(&started.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<CodeGrant> {
        let mut r = Reader(bytes);
        let format = r.take(1)?[0];
        if ![
            FORMAT,
            FORMAT_WITHOUT_SESSION_START,
            FORMAT_WITHOUT_ACR_AND_SID,
        ]
        .contains(&format)
        {
            return None;
        }
        let current = format != FORMAT_WITHOUT_ACR_AND_SID;
        let issued_at = i64::from(u32::from_be_bytes(r.take(4)?.try_into().ok()?));
        let auth_time = i64::from(u32::from_be_bytes(r.take(4)?.try_into().ok()?));
        let factors = r.take(1)?[0];
        let acr_byte = if current { r.take(1)?[0] } else { 0 };
        let acr = acr::from_byte(acr_byte);
        if acr.is_none() && acr_byte != 0 {
            return None;
        }
        let redirect_uri_hash = r.take(REDIRECT_HASH_BYTES)?.try_into().ok()?;
        let client_id = r.text()??;
        let scope = r.text()??;
        let user_id = r.text()??;
        let nonce = r.text()?;
        let code_challenge = r.text()?;
        let claims = r.text()?;
        let sid = if current { r.text()? } else { None };
        let session_started_ms = if format == FORMAT {
            let ms = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
            i64::try_from(ms).ok()
        } else {
            None
        };
        r.0.is_empty().then_some(CodeGrant {
            client_id,
            redirect_uri_hash,
            scope,
            nonce,
            code_challenge,
            user_id,
            auth_time,
            factors,
            acr,
            issued_at,
            claims,
            sid,
            session_started_ms,
        })
    }

    /// Checks before the code is claimed. Every failure is `invalid_grant`; which kind it is
    /// decides whether the replay revocation may run (see `Refusal`). The binding — client,
    /// redirect URI, PKCE verifier — is checked before the lifetime, so only a request that
    /// could have redeemed the code in time learns, or causes, anything about an old one.
    pub fn check_redemption(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        now: i64,
    ) -> Result<(), Refusal> {
        self.check_binding(client_id, redirect_uri, code_verifier)
            .map_err(Refusal::NotBound)?;
        if self.is_expired(now) {
            return Err(Refusal::Expired(OAuthError::invalid_grant(
                "the authorization code has expired",
            )));
        }
        Ok(())
    }

    fn check_binding(
        &self,
        client_id: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<(), OAuthError> {
        if self.client_id != client_id {
            return Err(OAuthError::invalid_grant(
                "the authorization code was issued to another client",
            ));
        }
        // RFC 6749 §4.1.3: redirect_uri is required, and must be identical, when it was part
        // of the authorization request — which OpenID Connect always requires.
        if redirect_uri.map(redirect_uri_hash) != Some(self.redirect_uri_hash) {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&self.code_challenge, code_verifier) {
            (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => Ok(()),
            (Some(_), Some(_)) => Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            )),
            (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
            // RFC 9700 §2.1.1: a code_verifier for a code issued without a challenge must be
            // refused, or PKCE could be downgraded by an attacker.
            (None, Some(_)) => Err(OAuthError::invalid_grant(
                "code_verifier sent for a code issued without PKCE",
            )),
            (None, None) => Ok(()),
        }
    }

    /// Past its lifetime (RFC 6749 §4.1.2: "a maximum authorization code lifetime of 10 minutes
    /// is RECOMMENDED"; Clavex allows 60 s).
    pub fn is_expired(&self, now: i64) -> bool {
        now - self.issued_at > CODE_SECONDS
    }
}

const ABSENT: u16 = u16::MAX;

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// `Some(None)` for an absent value, `None` when the record is malformed.
    fn text(&mut self) -> Option<Option<String>> {
        let len = u16::from_be_bytes(self.take(2)?.try_into().ok()?);
        if len == ABSENT {
            return Some(None);
        }
        let bytes = self.take(len.into())?;
        String::from_utf8(bytes.to_vec()).ok().map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: Option<&str> = Some("https://chat.acme.eu/_oauth/clavex");
    static KEYS: std::sync::LazyLock<Keyring> =
        std::sync::LazyLock::new(|| Keyring::new("a long worker secret for tests", &[]).unwrap());
    const SECRET: &std::sync::LazyLock<Keyring> = &KEYS;

    fn grant(challenge: Option<&str>) -> CodeGrant {
        CodeGrant {
            factors: 1,
            acr: None,
            client_id: "rocketchat".into(),
            redirect_uri_hash: redirect_uri_hash(URI.unwrap()),
            scope: "openid profile email".into(),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: challenge.map(str::to_string),
            user_id: "usr_J1rVRb3bFZbY2cW9gL0W2XQ1i4xk2mO8R3e0h3WkC1U".into(),
            auth_time: 1_764_000_000,
            issued_at: 1_764_000_010,
            claims: None,
            sid: Some("Yl3vQ2mXc8pT1rKf0aZbHw".into()),
            session_started_ms: Some(1_764_000_000_123),
        }
    }
    const CH: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const T: i64 = 1_764_000_010;

    #[test]
    fn a_sealed_code_opens_to_what_was_sealed_only_in_its_organization() {
        let g = CodeGrant {
            factors: 1,
            acr: Some(crate::protocol::mfa::ACR_PASSWORD),
            claims: Some(r#"{"id_token":{"email":null}}"#.into()),
            ..grant(Some(CH))
        };
        let code = g.seal(SECRET, "acme");
        assert_eq!(CodeGrant::open(&code, SECRET, "acme"), Some(g.clone()));
        assert_eq!(CodeGrant::open(&code, SECRET, "other"), None);
        let other = Keyring::new("another long secret here", &[]).unwrap();
        assert_eq!(CodeGrant::open(&code, &other, "acme"), None);
        // After a rotation the code opens under the previous secret it names.
        let rotated = Keyring::new(
            "another long secret here",
            &["a long worker secret for tests"],
        )
        .unwrap();
        assert_eq!(CodeGrant::open(&code, &rotated, "acme"), Some(g.clone()));
        let none = CodeGrant {
            factors: 1,
            nonce: None,
            ..grant(None)
        };
        let code = none.seal(SECRET, "acme");
        assert_eq!(CodeGrant::open(&code, SECRET, "acme"), Some(none));
    }

    #[test]
    fn codes_of_the_previous_formats_open_without_what_came_later() {
        let g = CodeGrant {
            acr: Some(crate::protocol::mfa::ACR_PASSWORD),
            ..grant(Some(CH))
        };
        let mut bytes = g.encode();
        bytes.truncate(bytes.len() - 8); // the session's start
        bytes[0] = FORMAT_WITHOUT_SESSION_START;
        let code = SECRET.seal(PURPOSE, &bytes, b"acme");
        assert_eq!(
            CodeGrant::open(&code, SECRET, "acme"),
            Some(CodeGrant {
                session_started_ms: None,
                ..g.clone()
            })
        );
        bytes[0] = FORMAT_WITHOUT_ACR_AND_SID;
        bytes.remove(10); // the acr byte, after format, two timestamps and the factors
        let sid_len = 2 + g.sid.as_ref().unwrap().len();
        bytes.truncate(bytes.len() - sid_len);
        let code = SECRET.seal(PURPOSE, &bytes, b"acme");
        assert_eq!(
            CodeGrant::open(&code, SECRET, "acme"),
            Some(CodeGrant {
                sid: None,
                acr: None,
                session_started_ms: None,
                ..g
            })
        );
        bytes[0] = 1;
        assert_eq!(
            CodeGrant::open(&SECRET.seal(PURPOSE, &bytes, b"acme"), SECRET, "acme"),
            None
        );
    }

    #[test]
    fn codes_are_url_safe_short_and_never_repeat() {
        let a = grant(Some(CH)).seal(SECRET, "acme");
        let b = grant(Some(CH)).seal(SECRET, "acme");
        assert_ne!(a, b, "a fresh nonce per code");
        assert!(a.len() < 320, "typical code is {} characters", a.len());
        // base64url and the key id's `.`: URL-safe without escaping (RFC 3986 unreserved).
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        );
    }

    #[test]
    fn tampered_or_re_encoded_codes_do_not_open() {
        let code = grant(None).seal(SECRET, "acme");
        for i in [0, code.len() / 2, code.len() - 1] {
            let mut bytes = code.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).unwrap();
            assert_eq!(CodeGrant::open(&altered, SECRET, "acme"), None, "byte {i}");
        }
        // The last character's unused low bits: a second spelling of the same bytes would be a
        // second code hash, i.e. a second claim on one code. base64 refuses it.
        let (id, boxed) = code.split_once('.').unwrap();
        assert_eq!(
            CodeGrant::open(boxed, SECRET, "acme"),
            None,
            "the box without its key id is not another spelling"
        );
        assert_eq!(
            CodeGrant::open(&format!("{id}.{code}"), SECRET, "acme"),
            None
        );
        let last = code.chars().last().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let sibling = alphabet
            .chars()
            .filter(|c| *c != last)
            .map(|c| format!("{}{c}", &code[..code.len() - 1]))
            .find(|s| {
                crate::crypto::b64url_decode(&s[id.len() + 1..])
                    == crate::crypto::b64url_decode(boxed)
            });
        assert_eq!(
            sibling, None,
            "no second spelling decodes to the same bytes"
        );
        assert_eq!(CodeGrant::open("", SECRET, "acme"), None);
        assert_eq!(CodeGrant::open("not a code", SECRET, "acme"), None);
    }

    #[test]
    fn malformed_records_are_refused() {
        let good = grant(None).encode();
        assert!(CodeGrant::decode(&good).is_some());
        assert!(
            CodeGrant::decode(&good[..good.len() - 1]).is_none(),
            "truncated"
        );
        let mut longer = good.clone();
        longer.push(0);
        assert!(CodeGrant::decode(&longer).is_none(), "trailing bytes");
        let mut other_format = good.clone();
        for format in [1, 5] {
            other_format[0] = format;
            assert!(
                CodeGrant::decode(&other_format).is_none(),
                "a format {format} code is refused, not misread"
            );
        }
        // The acr byte (after format, two timestamps and the factors) is 0 to 3 (3: `phr`).
        let mut bad_acr = good;
        bad_acr[10] = 4;
        assert!(CodeGrant::decode(&bad_acr).is_none(), "an unknown acr byte");
    }

    #[test]
    fn valid_within_sixty_seconds_and_expired_after() {
        assert!(
            grant(None)
                .check_redemption("rocketchat", URI, None, T + 60)
                .is_ok()
        );
        assert!(
            grant(None)
                .check_redemption("rocketchat", URI, None, T + 61)
                .is_err()
        );
    }

    #[test]
    fn an_expired_code_is_judged_on_its_binding_first() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let late = T + 3600;
        let g = grant(Some(CH));
        assert!(matches!(
            g.check_redemption("rocketchat", URI, Some(v), late),
            Err(Refusal::Expired(_))
        ));
        let other_uri = Some("https://chat.acme.eu/_oauth/other");
        let wrong = v.replace('d', "e");
        for (client, uri, verifier) in [
            ("other", URI, Some(v)),
            ("rocketchat", other_uri, Some(v)),
            ("rocketchat", None, Some(v)),
            ("rocketchat", URI, Some(wrong.as_str())),
            ("rocketchat", URI, None),
        ] {
            assert!(
                matches!(
                    g.check_redemption(client, uri, verifier, late),
                    Err(Refusal::NotBound(_))
                ),
                "{client} {uri:?} {verifier:?}"
            );
        }
        assert!(matches!(
            grant(None).check_redemption("rocketchat", URI, Some(v), late),
            Err(Refusal::NotBound(_))
        ));
        let refused = g
            .check_redemption("rocketchat", URI, Some(v), late)
            .unwrap_err()
            .into_error();
        assert_eq!(refused.code.as_str(), "invalid_grant");
    }

    #[test]
    fn bound_to_client_and_redirect_uri() {
        let g = grant(None);
        assert!(g.check_redemption("other", URI, None, T + 1).is_err());
        assert!(g.check_redemption("rocketchat", None, None, T + 1).is_err());
        let other = Some("https://chat.acme.eu/_oauth/clavex/");
        assert!(
            g.check_redemption("rocketchat", other, None, T + 1)
                .is_err()
        );
    }

    #[test]
    fn pkce_verified_and_not_downgradable() {
        let v = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let g = grant(Some(CH));
        assert!(
            g.check_redemption("rocketchat", URI, Some(v), T + 1)
                .is_ok()
        );
        assert!(g.check_redemption("rocketchat", URI, None, T + 1).is_err());
        let wrong = v.replace('d', "e");
        assert!(
            g.check_redemption("rocketchat", URI, Some(&wrong), T + 1)
                .is_err()
        );
        assert!(
            grant(None)
                .check_redemption("rocketchat", URI, Some(v), T + 1)
                .is_err()
        );
    }
}
