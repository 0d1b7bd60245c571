//! Where a form POST came from. The login and consent forms already carry a CSRF token bound to
//! a cookie and SameSite cookies; checking the Origin header as well (OWASP CSRF Prevention:
//! "verifying origin with standard headers") stops a cross-site POST even where a token and a
//! cookie could both be obtained. Pure.

/// The origin (`scheme://host[:port]`) of an absolute URL, if it has one.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Whether a POST with these headers comes from `expected` (an origin). `Origin` decides when
/// present (`null`, sent from sandboxed or privacy-stripped contexts, is refused); otherwise the
/// `Referer`'s origin; with neither, the request is let through to the CSRF token check, as some
/// proxies strip both.
pub fn same_origin(origin: Option<&str>, referer: Option<&str>, expected: &str) -> bool {
    match (origin.map(str::trim), referer.map(str::trim)) {
        (Some(o), _) if !o.is_empty() => origin_of(o).is_some_and(|o| o == expected),
        (_, Some(r)) if !r.is_empty() => origin_of(r).is_some_and(|o| o == expected),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "https://id.acme.eu";

    #[test]
    fn origin_decides_then_referer_then_the_token() {
        assert!(same_origin(Some("https://id.acme.eu"), None, OURS));
        assert!(!same_origin(Some("https://evil.example"), None, OURS));
        assert!(!same_origin(Some("null"), None, OURS));
        assert!(!same_origin(
            Some("https://evil.example"),
            Some("https://id.acme.eu/acme/authorize"),
            OURS
        ));
        assert!(same_origin(
            None,
            Some("https://id.acme.eu/acme/authorize?x=1"),
            OURS
        ));
        assert!(!same_origin(
            None,
            Some("https://id.acme.eu.evil.example/"),
            OURS
        ));
        assert!(!same_origin(None, Some("http://id.acme.eu/acme"), OURS));
        assert!(same_origin(None, None, OURS));
        assert_eq!(
            origin_of("http://127.0.0.1:8787/acme").as_deref(),
            Some("http://127.0.0.1:8787")
        );
    }
}
