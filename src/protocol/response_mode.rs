//! How the authorization response reaches the client (OAuth 2.0 Multiple Response Type Encoding
//! Practices §2.1, OAuth 2.0 Form Post Response Mode). `query` is the default for
//! `response_type=code`; `form_post` has the browser POST the same parameters to the redirect
//! URI from an auto-submitting HTML form, so they appear in no URL (history, logs, Referer).
//! `fragment` is refused: it is meant for responses read by script in the browser, and Clavex
//! issues only codes, which the client's server redeems.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    /// Parameters in the redirect URI's query (a 302/303 redirect).
    #[default]
    Query,
    /// Parameters POSTed to the redirect URI by an HTML form (a 200 page).
    FormPost,
}

impl ResponseMode {
    /// The mode for the `response_mode` parameter as sent (`None` when absent, the default).
    /// `None` for any value other than `query` and `form_post`: a mode Clavex does not implement.
    pub fn parse(value: Option<&str>) -> Option<ResponseMode> {
        match value {
            None | Some("query") => Some(ResponseMode::Query),
            Some("form_post") => Some(ResponseMode::FormPost),
            Some(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_the_default_and_only_query_and_form_post_are_known() {
        assert_eq!(ResponseMode::parse(None), Some(ResponseMode::Query));
        assert_eq!(
            ResponseMode::parse(Some("query")),
            Some(ResponseMode::Query)
        );
        assert_eq!(
            ResponseMode::parse(Some("form_post")),
            Some(ResponseMode::FormPost)
        );
        for bad in [
            "fragment",
            "",
            "FORM_POST",
            "form_post ",
            "query.jwt",
            "web_message",
        ] {
            assert_eq!(ResponseMode::parse(Some(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn a_request_sealed_before_the_mode_existed_opens_as_query() {
        // Sealed forms and old requests carry no mode: `#[serde(default)]` on the field makes
        // them query, as they were.
        assert_eq!(ResponseMode::default(), ResponseMode::Query);
        assert_eq!(
            serde_json::from_str::<ResponseMode>("\"FormPost\"").unwrap(),
            ResponseMode::FormPost
        );
    }
}
