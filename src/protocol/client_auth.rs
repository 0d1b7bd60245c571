//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3.1). Lenient where it is safe, strict where it matters:
//! - `client_secret_basic` and `client_secret_post` are both accepted for any confidential
//!   client, whatever method it registered (Rocket.Chat registers `client_secret_post` yet sends
//!   Basic — rocketchat-wire.md).
//! - Basic credentials are accepted raw or form-urlencoded (§2.3.1 says encode; many clients
//!   don't). Clavex secrets are URL-safe, so both readings agree.
//! - Basic plus the same `client_id` in the body is fine; a different one, or a secret in both
//!   places, is refused (§2.3: "MUST NOT use more than one authentication method").
//! - A wrong or missing secret is never accepted for a confidential client.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::crypto::{secure_eq, token_hash};
use crate::protocol::error::OAuthError;
use crate::protocol::form::Form;

#[derive(Debug, PartialEq, Eq)]
pub struct PresentedCredentials {
    pub client_id: String,
    /// Every reading of the presented secret (raw and form-urldecoded); empty when none.
    pub secrets: Vec<String>,
}

fn form_decode(part: &str) -> String {
    percent_encoding::percent_decode_str(&part.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The credentials a request presents, from its Authorization header and body.
pub fn presented(
    authorization: Option<&str>,
    body: &Form,
) -> Result<PresentedCredentials, OAuthError> {
    let body_id = body
        .one("client_id")
        .map_err(|_| OAuthError::invalid_request("client_id is repeated"))?;
    let body_secret = body
        .one("client_secret")
        .map_err(|_| OAuthError::invalid_request("client_secret is repeated"))?;
    let basic = authorization
        .map(str::trim)
        // `get(..6)`, not `[..6]`: a header with a multi-byte character in its first six bytes
        // (e.g. "Basicé…", an obs-text byte as the runtime hands it over) made the slice panic.
        // Found by the property tests (src/fuzz). A match means the six bytes are ASCII, so
        // byte 6 is a character boundary.
        .filter(|h| {
            h.len() > 6
                && h.get(..6)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "))
        })
        .map(|h| h[6..].trim());
    if let Some(encoded) = basic {
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                OAuthError::invalid_client("the Basic credentials are not valid base64")
            })?;
        let (raw_id, raw_secret) = decoded.split_once(':').ok_or_else(|| {
            OAuthError::invalid_client("the Basic credentials have no client_id:secret form")
        })?;
        let client_id = form_decode(raw_id);
        if body_id.is_some_and(|id| id != client_id && id != raw_id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use either Basic credentials or client_secret, not both",
            ));
        }
        let mut secrets = vec![raw_secret.to_string()];
        let decoded_secret = form_decode(raw_secret);
        if decoded_secret != raw_secret {
            secrets.push(decoded_secret);
        }
        return Ok(PresentedCredentials { client_id, secrets });
    }
    let client_id =
        body_id.ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
    Ok(PresentedCredentials {
        client_id: client_id.to_string(),
        secrets: body_secret.map(|s| vec![s.to_string()]).unwrap_or_default(),
    })
}

/// Check presented credentials against the registration. `secret_hash` is None for a public
/// client (token_endpoint_auth_method `none`).
pub fn verify(
    presented: &PresentedCredentials,
    secret_hash: Option<&str>,
) -> Result<(), OAuthError> {
    match secret_hash {
        None if presented.secrets.is_empty() => Ok(()),
        None => Err(OAuthError::invalid_client(
            "this client is public and has no secret",
        )),
        Some(_) if presented.secrets.is_empty() => Err(OAuthError::invalid_client(
            "client authentication is required",
        )),
        Some(expected) => {
            // Evaluate every reading, so timing does not tell which one matched.
            let matched = presented
                .secrets
                .iter()
                .fold(false, |acc, s| secure_eq(&token_hash(s), expected) | acc);
            if matched {
                Ok(())
            } else {
                Err(OAuthError::invalid_client("client authentication failed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_raw_and_urlencoded_both_verify() {
        let secret = "cs_abc-DEF_123";
        let hash = token_hash(secret);
        let raw = presented(Some(&basic("rocketchat", secret)), &Form::default()).unwrap();
        assert_eq!(raw.client_id, "rocketchat");
        assert!(verify(&raw, Some(&hash)).is_ok());
        let weird = "s p+a%ce";
        let encoded = presented(
            Some(&basic("my%20client", "s+p%2Ba%25ce")),
            &Form::default(),
        )
        .unwrap();
        assert_eq!(encoded.client_id, "my client");
        assert!(verify(&encoded, Some(&token_hash(weird))).is_ok());
    }

    #[test]
    fn post_body_credentials_verify_and_wrong_secret_fails() {
        let form = Form::parse("client_id=rocketchat&client_secret=cs_x");
        let p = presented(None, &form).unwrap();
        assert!(verify(&p, Some(&token_hash("cs_x"))).is_ok());
        assert_eq!(
            verify(&p, Some(&token_hash("cs_y")))
                .unwrap_err()
                .code
                .as_str(),
            "invalid_client"
        );
    }

    #[test]
    fn basic_with_same_client_id_in_body_is_fine_but_different_is_not() {
        let same = Form::parse("client_id=rocketchat&code=x");
        assert!(presented(Some(&basic("rocketchat", "cs_x")), &same).is_ok());
        let other = Form::parse("client_id=intruder");
        assert!(presented(Some(&basic("rocketchat", "cs_x")), &other).is_err());
        let both = Form::parse("client_secret=cs_x");
        assert!(presented(Some(&basic("rocketchat", "cs_x")), &both).is_err());
    }

    #[test]
    fn confidential_clients_need_a_secret_and_public_ones_must_not_send_one() {
        let no_secret = presented(None, &Form::parse("client_id=rocketchat")).unwrap();
        assert!(verify(&no_secret, Some(&token_hash("cs_x"))).is_err());
        assert!(verify(&no_secret, None).is_ok());
        let with_secret = presented(None, &Form::parse("client_id=spa&client_secret=x")).unwrap();
        assert!(verify(&with_secret, None).is_err());
        assert!(presented(None, &Form::default()).is_err());
        assert!(presented(Some("Basic !!!"), &Form::default()).is_err());
    }
}
