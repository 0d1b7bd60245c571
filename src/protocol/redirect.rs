//! Building the redirect back to the client (RFC 6749 §4.1.2): parameters are added to the
//! registered URI's query, keeping any query it already has, and `iss` is always included
//! (RFC 9207 §2) so the client can tell which issuer answered.

use url::Url;

/// `redirect_uri` with `params` appended to its query. Values are form-urlencoded, so a `state`
/// with `+`, `/` or `=` comes back to the client byte for byte once decoded.
pub fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.to_string()
        }
        // Registered URIs are validated absolute URLs; this is only reached on corrupt data.
        Err(_) => redirect_uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_existing_query_and_encodes_state_exactly() {
        let url = with_params(
            "https://chat.acme.eu/_oauth/clavex?x=1",
            &[("code", "abc"), ("state", "eyJ+/=")],
        );
        assert_eq!(
            url,
            "https://chat.acme.eu/_oauth/clavex?x=1&code=abc&state=eyJ%2B%2F%3D"
        );
        let parsed = Url::parse(&url).unwrap();
        let state = parsed.query_pairs().find(|(k, _)| k == "state").unwrap().1;
        assert_eq!(state, "eyJ+/=");
    }
}
