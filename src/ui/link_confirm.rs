//! The page that asks a person who signed in upstream, with no link here yet, to sign in once
//! with their password to link the two accounts (oidc/federation_link.rs).

use askama::Template;

use crate::ui::Brand;

#[derive(Template)]
#[template(path = "link_confirm.html")]
pub struct LinkConfirmPage<'a> {
    pub brand: &'a Brand,
    /// The connection's label ("Sign in with {label}").
    pub label: &'a str,
    pub client_name: &'a str,
    pub action: &'a str,
    pub state: &'a str,
    pub csrf_token: &'a str,
    /// The name typed in a failed attempt (never prefilled from the upstream's claims).
    pub username: &'a str,
    pub error: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_the_label_and_names_no_account() {
        let brand = Brand::new("Acme", None, None);
        let html = crate::ui::render(&LinkConfirmPage {
            brand: &brand,
            label: "<Evil & Co>",
            client_name: "Chat",
            action: "/acme/connections/link",
            state: "sealed",
            csrf_token: "csrf",
            username: "",
            error: None,
        });
        assert!(html.contains("Link your <strong>&#60;Evil &#38; Co&#62;</strong> account"));
        assert!(html.contains(r#"name="state" value="sealed""#));
        assert!(html.contains(r#"name="csrf_token" value="csrf""#));
        assert!(html.contains(r#"action="/acme/connections/link""#));
        assert!(html.contains(r#"name="password""#));
        assert!(!html.contains(r#"role="alert""#));
    }
}
