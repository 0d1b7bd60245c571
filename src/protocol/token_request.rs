//! The grant a token request asks for (RFC 6749 §4.1.3 and §6).

use crate::protocol::error::{ErrorCode, OAuthError};
use crate::protocol::form::Form;

#[derive(Debug, PartialEq, Eq)]
pub enum GrantRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
}

impl GrantRequest {
    pub fn grant_type(&self) -> &'static str {
        match self {
            GrantRequest::AuthorizationCode { .. } => "authorization_code",
            GrantRequest::RefreshToken { .. } => "refresh_token",
        }
    }
}

/// Parse the grant. Unknown extra parameters (Rocket.Chat sends `state`) are ignored.
pub fn parse(form: &Form) -> Result<GrantRequest, OAuthError> {
    let one = |name: &'static str| {
        form.one(name)
            .map_err(|_| OAuthError::invalid_request(format!("{name} is repeated")))
    };
    let required = |name: &'static str| -> Result<String, OAuthError> {
        one(name)?
            .map(str::to_string)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
    };
    match one("grant_type")? {
        None => Err(OAuthError::invalid_request("grant_type is missing")),
        Some("authorization_code") => Ok(GrantRequest::AuthorizationCode {
            code: required("code")?,
            redirect_uri: one("redirect_uri")?.map(str::to_string),
            code_verifier: one("code_verifier")?.map(str::to_string),
        }),
        Some("refresh_token") => Ok(GrantRequest::RefreshToken {
            refresh_token: required("refresh_token")?,
            scope: one("scope")?.map(str::to_string),
        }),
        Some(other) => Err(OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            format!("grant_type {other} is not supported"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rocket_chat_code_request_parses_and_ignores_state() {
        let f = Form::parse(
            "code=abc&redirect_uri=https%3A%2F%2Fchat.acme.eu%2F_oauth%2Fclavex&grant_type=authorization_code&state=xyz",
        );
        assert_eq!(
            parse(&f).unwrap(),
            GrantRequest::AuthorizationCode {
                code: "abc".into(),
                redirect_uri: Some("https://chat.acme.eu/_oauth/clavex".into()),
                code_verifier: None
            }
        );
    }

    #[test]
    fn errors_name_the_rfc_codes() {
        assert_eq!(
            parse(&Form::parse("code=a")).unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            parse(&Form::parse("grant_type=password")).unwrap_err().code,
            ErrorCode::UnsupportedGrantType
        );
        assert_eq!(
            parse(&Form::parse("grant_type=authorization_code"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            parse(&Form::parse(
                "grant_type=refresh_token&refresh_token=a&refresh_token=b"
            ))
            .unwrap_err()
            .code,
            ErrorCode::InvalidRequest
        );
    }
}
