//! The two cookies Clavex sets, both scoped to the organization's path so that one
//! organization's session never reaches another's endpoints: the SSO session and the login
//! form's CSRF token. `HttpOnly`, `SameSite=Lax` (the session must survive the top-level
//! redirect back from a client), `Secure` except on plain-http localhost.

use cookie::{Cookie, SameSite};

pub const SESSION: &str = "clavex_session";
pub const CSRF: &str = "clavex_csrf";

pub fn read(cookie_header: Option<&str>, name: &str) -> Option<String> {
    Cookie::split_parse(cookie_header?)
        .filter_map(Result::ok)
        .find(|c| c.name() == name && !c.value().is_empty())
        .map(|c| c.value().to_string())
}

pub fn set(name: &str, value: &str, org: &str, secure: bool, max_age_seconds: i64) -> String {
    Cookie::build((name.to_string(), value.to_string()))
        .path(format!("/{org}"))
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .build()
        .to_string()
}

pub fn clear(name: &str, org: &str, secure: bool) -> String {
    set(name, "", org, secure, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_attributes() {
        let c = set(SESSION, "abc", "acme", true, 3600);
        for attr in [
            "clavex_session=abc",
            "Path=/acme",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Max-Age=3600",
        ] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(!set(SESSION, "abc", "acme", false, 60).contains("Secure"));
    }

    #[test]
    fn reads_the_named_cookie() {
        assert_eq!(
            read(Some("a=1; clavex_csrf=xyz; b=2"), CSRF).as_deref(),
            Some("xyz")
        );
        assert_eq!(read(Some("a=1"), CSRF), None);
        assert_eq!(read(None, CSRF), None);
    }
}
