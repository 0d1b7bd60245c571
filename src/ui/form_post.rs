//! The page of OAuth 2.0 Form Post Response Mode (§2): the authorization response's parameters
//! as hidden inputs of a form whose action is the client's redirect URI, submitted by a line of
//! script as soon as the page loads, with a Continue button for a browser without JavaScript.
//! The spec's own example is this shape ("the form is auto-submitted by JavaScript"); the
//! Content-Security-Policy lets exactly that script run (by its SHA-256 hash) and the form go
//! only to the redirect URI's origin.

use askama::Template;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::ui::Brand;

/// The only script: submit the page's one form. Its hash is in the policy; nothing else runs.
pub const SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    brand: &'a Brand,
    action: &'a str,
    fields: &'a [(&'a str, &'a str)],
    script: &'static str,
}

/// The page and its Content-Security-Policy. `redirect_uri` is the exact registered URI (the
/// form's action, its own query included); `fields` are the response's parameters in order.
pub fn page(brand: &Brand, redirect_uri: &str, fields: &[(&str, &str)]) -> (String, String) {
    let body = crate::ui::render(&FormPostPage {
        brand,
        action: redirect_uri,
        fields,
        script: SUBMIT_SCRIPT,
    });
    (body, csp(redirect_uri))
}

/// The policy of the other pages (edge/http.rs), with the submitting script allowed by its hash
/// and `form-action` narrowed from `*` to the redirect URI's origin: the page posts a code, and
/// nowhere else may receive it.
pub fn csp(redirect_uri: &str) -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; script-src {}; form-action {}; frame-ancestors 'none'; base-uri 'none'",
        script_source(SUBMIT_SCRIPT),
        form_action_source(redirect_uri)
    )
}

/// A CSP hash-source for an inline script (CSP Level 3 §2.3.1: base64 of the SHA-256 of the
/// script's text, exactly as it stands between the tags).
pub fn script_source(script: &str) -> String {
    let digest = Sha256::digest(script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The CSP source that matches the redirect URI's origin: `scheme://host[:port]`. CSP's
/// host-source grammar has no IPv6 literal (a loopback client on `http://[::1]:port`, which
/// the admin API accepts), so there the scheme alone is given. Registered URIs are absolute
/// http(s) URLs (admin/validate.rs); anything else gets `'none'` and the form goes nowhere.
pub fn form_action_source(redirect_uri: &str) -> String {
    let Ok(url) = url::Url::parse(redirect_uri) else {
        return "'none'".to_string();
    };
    if !matches!(url.scheme(), "https" | "http") {
        return "'none'".to_string();
    }
    match url.host() {
        Some(url::Host::Ipv6(_)) => format!("{}:", url.scheme()),
        Some(_) => url.origin().ascii_serialization(),
        None => "'none'".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brand() -> Brand {
        Brand::new("Acme", None, None)
    }

    /// The text between `<script>` and `</script>` as rendered.
    fn rendered_script(html: &str) -> &str {
        let start = html.find("<script>").expect("a script") + "<script>".len();
        let end = html[start..].find("</script>").expect("closed") + start;
        assert_eq!(html.matches("<script").count(), 1, "one script only");
        &html[start..end]
    }

    #[test]
    fn fields_are_hidden_inputs_of_a_form_posting_to_the_exact_redirect_uri() {
        let uri = "https://chat.acme.eu/_oauth/clavex?tenant=1&x=2";
        let (html, _) = page(
            &brand(),
            uri,
            &[
                ("code", "k1.abc-_"),
                ("state", "s+/="),
                ("iss", "https://id.acme.eu/acme"),
            ],
        );
        for needle in [
            r#"<form method="post" action="https://chat.acme.eu/_oauth/clavex?tenant=1&#38;x=2">"#,
            r#"<input type="hidden" name="code" value="k1.abc-_">"#,
            r#"<input type="hidden" name="state" value="s+/=">"#,
            r#"<input type="hidden" name="iss" value="https://id.acme.eu/acme">"#,
            r#"<button type="submit">Continue</button>"#,
            "<noscript>",
        ] {
            assert!(html.contains(needle), "missing {needle} in {html}");
        }
        // The code comes before state and iss, as in the spec's example; nothing else is posted.
        assert_eq!(html.matches(r#"type="hidden""#).count(), 3);
        assert!(html.find("name=\"code\"").unwrap() < html.find("name=\"state\"").unwrap());
    }

    #[test]
    fn values_are_escaped() {
        let state = r#""><script>alert(1)</script><input name="x"#;
        let (html, _) = page(
            &brand(),
            "https://app.example/cb",
            &[("error", "access_denied"), ("state", state)],
        );
        assert!(!html.contains("<script>alert(1)"));
        assert!(!html.contains(r#"<input name="x"#));
        assert!(
            html.contains("&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert_eq!(rendered_script(&html), SUBMIT_SCRIPT);
    }

    #[test]
    fn the_policy_allows_the_rendered_script_and_posts_only_to_the_redirect_origin() {
        let (html, policy) = page(
            &brand(),
            "https://chat.acme.eu/_oauth/clavex",
            &[("code", "c")],
        );
        // The hash is of what the browser will see, not of what we meant to render.
        let hash = script_source(rendered_script(&html));
        assert!(policy.contains(&format!("script-src {hash};")), "{policy}");
        assert!(
            policy.contains("form-action https://chat.acme.eu;"),
            "{policy}"
        );
        assert!(policy.contains("default-src 'none'"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe-eval"));
        assert!(!policy.contains("form-action *"));
        // Computed independently (`printf %s "$script" | openssl dgst -sha256 -binary | base64`).
        assert_eq!(
            script_source(SUBMIT_SCRIPT),
            "'sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ='"
        );
    }

    #[test]
    fn form_action_source_is_the_origin() {
        for (uri, source) in [
            (
                "https://chat.acme.eu/_oauth/clavex?x=1",
                "https://chat.acme.eu",
            ),
            ("https://chat.acme.eu:8443/cb", "https://chat.acme.eu:8443"),
            ("https://chat.acme.eu:443/cb", "https://chat.acme.eu"),
            ("http://127.0.0.1:8790/cb", "http://127.0.0.1:8790"),
            ("http://localhost/cb", "http://localhost"),
            ("http://[::1]:8080/cb", "http:"),
            ("com.example.app:/cb", "'none'"),
            ("not a url", "'none'"),
        ] {
            assert_eq!(form_action_source(uri), source, "{uri}");
        }
    }
}
