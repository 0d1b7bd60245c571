//! Admin authentication: `Authorization: Bearer <ADMIN_TOKEN>` on every /api/v1/ request
//! (RFC 6750 §2.1), compared in constant time.

use worker::{Request, Response, Result};

use crate::crypto::secure_eq;
use crate::edge::http;

const REALM: &str = "clavex-admin";

/// The credentials of a Bearer `Authorization` header. The scheme is case-insensitive
/// (RFC 9110 §11.1); anything else is no Bearer token at all.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    let (scheme, rest) = header?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// No Bearer credentials: RFC 6750 §3.1 says not to include an error code then.
    Missing,
    /// Credentials that are not the admin token: `error="invalid_token"`.
    Wrong,
}

pub fn judge(header: Option<&str>, admin_token: &str) -> Verdict {
    match bearer_token(header) {
        None => Verdict::Missing,
        Some(token) if secure_eq(token, admin_token) => Verdict::Allowed,
        Some(_) => Verdict::Wrong,
    }
}

/// `None` when the request may proceed, otherwise the 401 to send.
pub fn check(req: &Request, admin_token: &str) -> Result<Option<Response>> {
    let header = req.headers().get("Authorization")?;
    let (error, description, challenge) = match judge(header.as_deref(), admin_token) {
        Verdict::Allowed => return Ok(None),
        Verdict::Missing => (
            "unauthorized",
            "send Authorization: Bearer <admin token>",
            format!("Bearer realm=\"{REALM}\""),
        ),
        Verdict::Wrong => (
            "invalid_token",
            "the admin token is not valid",
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
        ),
    };
    let resp = http::api_error(401, error, description, None)?;
    resp.headers().set("WWW-Authenticate", &challenge)?;
    Ok(Some(resp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer_token(Some("Basic abc")), None);
        assert_eq!(bearer_token(Some("Bearer")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn verdicts() {
        let token = "a-long-admin-token-value";
        assert_eq!(
            judge(Some("Bearer a-long-admin-token-value"), token),
            Verdict::Allowed
        );
        assert_eq!(
            judge(Some("Bearer a-long-admin-token-valuE"), token),
            Verdict::Wrong
        );
        assert_eq!(
            judge(Some("Basic a-long-admin-token-value"), token),
            Verdict::Missing
        );
        assert_eq!(judge(None, token), Verdict::Missing);
    }
}
