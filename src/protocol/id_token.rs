//! ID token claims (OpenID Connect Core §2, §3.1.3.6) and the compact JWS around them
//! (RFC 7515). Signing itself happens through WebCrypto (edge/webcrypto.rs); this module builds
//! the bytes to sign and assembles the result.

use serde_json::{Map, Value, json};

use crate::crypto::{b64url, sha256};
use crate::protocol::lifetimes::ID_TOKEN_SECONDS;

pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub sub: &'a str,
    pub client_id: &'a str,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    pub now: i64,
    /// The sign-in's factors (protocol/mfa.rs bits): `amr` (RFC 8176) and `acr`.
    pub factors: u8,
    /// The acr value the request chose (protocol/acr.rs), when there is one; else `acr` follows
    /// the factors.
    pub acr: Option<&'a str>,
    /// The SSO session the sign-in belongs to (Back-Channel Logout 1.0 §2.1: "sid"), when
    /// known: a logout token names the same value.
    pub sid: Option<&'a str>,
    pub extra: Map<String, Value>,
}

/// Core §3.1.3.6: at_hash is the base64url of the left half of SHA-256 of the access token.
pub fn at_hash(access_token: &str) -> String {
    b64url(&sha256(access_token.as_bytes())[..16])
}

pub fn claims(input: IdTokenInput) -> Value {
    let mut c = input.extra;
    c.insert("iss".into(), json!(input.issuer));
    c.insert("sub".into(), json!(input.sub));
    c.insert("aud".into(), json!(input.client_id));
    // azp: the party the token was issued to (Core §2), here always the single audience.
    c.insert("azp".into(), json!(input.client_id));
    c.insert("iat".into(), json!(input.now));
    c.insert("exp".into(), json!(input.now + ID_TOKEN_SECONDS));
    c.insert("auth_time".into(), json!(input.auth_time));
    c.insert("at_hash".into(), json!(at_hash(input.access_token)));
    c.insert(
        "amr".into(),
        json!(crate::protocol::mfa::amr(input.factors)),
    );
    c.insert(
        "acr".into(),
        json!(
            input
                .acr
                .unwrap_or_else(|| crate::protocol::mfa::acr(input.factors))
        ),
    );
    if let Some(nonce) = input.nonce {
        c.insert("nonce".into(), json!(nonce));
    }
    if let Some(sid) = input.sid {
        c.insert("sid".into(), json!(sid));
    }
    Value::Object(c)
}

/// `BASE64URL(header) "." BASE64URL(claims)`: the JWS signing input (RFC 7515 §5.1).
pub fn signing_input(kid: &str, claims: &Value) -> String {
    typed_signing_input(kid, "JWT", claims)
}

/// `signing_input` with another `typ` header (a logout token's is `logout+jwt`).
pub fn typed_signing_input(kid: &str, typ: &str, claims: &Value) -> String {
    let header = json!({ "alg": "RS256", "typ": typ, "kid": kid });
    format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    )
}

pub fn assemble(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", b64url(signature))
}

/// A JWS split into its parts, not yet verified: for `id_token_hint`, which is checked against
/// the organization's published keys before its `sub` is trusted.
pub struct UnverifiedJwt {
    pub kid: Option<String>,
    pub claims: Value,
    pub signing_input: String,
    pub signature: Vec<u8>,
}

pub fn parse_unverified(token: &str) -> Option<UnverifiedJwt> {
    let untrusted = jwt_compact::UntrustedToken::new(token).ok()?;
    if untrusted.algorithm() != "RS256" {
        return None;
    }
    let (signing_input, signature) = token.rsplit_once('.')?;
    let claims = untrusted
        .deserialize_claims_unchecked::<Value>()
        .ok()?
        .custom;
    Some(UnverifiedJwt {
        kid: untrusted.header().key_id.clone(),
        claims,
        signing_input: signing_input.to_string(),
        signature: crate::crypto::b64url_decode(signature)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_core_spec_example() {
        // OpenID Connect Core, Appendix A.3: access token and its at_hash.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn claims_carry_the_required_members() {
        let c = claims(IdTokenInput {
            factors: crate::protocol::mfa::PWD,
            acr: None,
            issuer: "https://id.acme.eu/acme",
            sub: "usr_1",
            client_id: "rocketchat",
            auth_time: 900,
            nonce: Some("n-0S6_WzA2Mj"),
            access_token: "at",
            now: 1000,
            sid: Some("sid-1"),
            extra: Map::new(),
        });
        assert_eq!(c["iss"], "https://id.acme.eu/acme");
        assert_eq!(c["aud"], "rocketchat");
        assert_eq!(c["exp"], 1000 + ID_TOKEN_SECONDS);
        assert_eq!(c["auth_time"], 900);
        assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(c["sid"], "sid-1");
        assert!(c.get("email").is_none());
        assert_eq!(
            c["acr"],
            crate::protocol::mfa::ACR_PASSWORD,
            "from the factors"
        );
    }

    #[test]
    fn a_chosen_acr_is_the_one_issued() {
        use crate::protocol::mfa::{ACR_PASSWORD, OTP, PWD};
        let c = claims(IdTokenInput {
            factors: PWD | OTP,
            acr: Some(ACR_PASSWORD),
            issuer: "https://id.acme.eu/acme",
            sub: "usr_1",
            client_id: "rocketchat",
            auth_time: 900,
            nonce: None,
            access_token: "at",
            now: 1000,
            sid: None,
            extra: Map::new(),
        });
        assert_eq!(c["acr"], ACR_PASSWORD);
        assert_eq!(
            c["amr"],
            json!(["pwd", "otp", "mfa"]),
            "amr still says what was used"
        );
    }

    #[test]
    fn a_signed_token_parses_back() {
        let c = json!({"sub": "usr_1", "iss": "x"});
        let input = signing_input("kid-1", &c);
        let token = assemble(&input, b"sig");
        let parsed = parse_unverified(&token).unwrap();
        assert_eq!(parsed.kid.as_deref(), Some("kid-1"));
        assert_eq!(parsed.claims["sub"], "usr_1");
        assert_eq!(parsed.signing_input, input);
        assert_eq!(parsed.signature, b"sig");
        assert!(parse_unverified("not.a.jwt").is_none());
    }
}
