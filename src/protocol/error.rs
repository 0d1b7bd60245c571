//! One enum of the error codes the RFCs define, mapped to HTTP status in one place.
//! RFC 6749 §4.1.2.1 (authorization), §5.2 (token), RFC 6750 §3.1 (bearer), RFC 7009 §2.2.1,
//! OpenID Connect Core §3.1.2.6.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    LoginRequired,
    ConsentRequired,
    InteractionRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InvalidToken,
    UnsupportedTokenType,
    /// RFC 6749 §4.1.2.1: "temporarily unable to handle the request"; here, with 429, a client
    /// that failed authentication too often from one address.
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// Status for a JSON error from the token, revocation or introspection endpoint.
    /// RFC 6749 §5.2: 400, except invalid_client which "MAY" be 401 and MUST be 401 when the
    /// client tried the Authorization header — we always answer 401 with WWW-Authenticate.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 429,
            _ => 400,
        }
    }
}

/// An OAuth error with its human-readable description (`error_description`, which RFC 6749
/// limits to %x20-21 / %x23-5B / %x5D-7E: no quotes or backslashes, so keep descriptions plain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    /// Descriptions may quote what a client sent ("unknown scope …"); anything outside RFC 6749
    /// §5.2's set (`"`, `\\`, control characters, non-ASCII) becomes `?`, and the text is cut at
    /// 300 characters, so a description is always valid wherever it is carried.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        let description: String = description
            .into()
            .chars()
            .take(300)
            .map(|c| match c {
                '\x20'..='\x21' | '\x23'..='\x5b' | '\x5d'..='\x7e' => c,
                _ => '?',
            })
            .collect();
        OAuthError { code, description }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, description)
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_client_is_401_and_grant_errors_are_400() {
        assert_eq!(ErrorCode::InvalidClient.status(), 401);
        assert_eq!(ErrorCode::InvalidGrant.status(), 400);
        assert_eq!(ErrorCode::UnsupportedGrantType.status(), 400);
    }

    #[test]
    fn descriptions_keep_to_the_rfc_6749_character_set() {
        let e = OAuthError::invalid_request("unknown scope \"a\\b\"\né\u{0}");
        assert_eq!(e.description, "unknown scope ?a?b????");
        assert_eq!(
            OAuthError::invalid_request("x".repeat(1000))
                .description
                .len(),
            300
        );
        let plain = "the refresh token was issued to another client";
        assert_eq!(OAuthError::invalid_grant(plain).description, plain);
    }

    #[test]
    fn json_carries_code_and_description() {
        let e = OAuthError::invalid_grant("code was already used");
        assert_eq!(e.to_json()["error"], "invalid_grant");
        assert_eq!(e.to_json()["error_description"], "code was already used");
    }
}
