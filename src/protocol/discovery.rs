//! The provider metadata (OpenID Connect Discovery 1.0 §3, RFC 8414 §2). It advertises exactly
//! what is implemented — nothing more.

use serde_json::{Value, json};

use crate::protocol::scopes::{CLAIMS_SUPPORTED, SUPPORTED_SCOPES};

pub const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];
/// Revocation and introspection need a confidential client.
pub const CONFIDENTIAL_AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post"];

/// `attribute_names`: the organization's custom attributes, claims it may release too.
pub fn document(issuer: &str, attribute_names: &[String]) -> Value {
    let mut claims: Vec<&str> = CLAIMS_SUPPORTED.to_vec();
    claims.extend(attribute_names.iter().map(String::as_str));
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": true,
        "acr_values_supported": crate::protocol::mfa::ACR_VALUES_SUPPORTED,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        // Back-Channel Logout 1.0 §2.1: logout tokens, with `sid` (also in ID tokens).
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_hang_off_the_issuer() {
        let d = document("https://id.acme.eu/acme", &[]);
        assert_eq!(d["issuer"], "https://id.acme.eu/acme");
        assert_eq!(d["token_endpoint"], "https://id.acme.eu/acme/token");
        assert_eq!(d["jwks_uri"], "https://id.acme.eu/acme/jwks");
        assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(d["response_modes_supported"], json!(["query", "form_post"]));
        assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    }

    #[test]
    fn an_organizations_attributes_are_supported_claims_too() {
        let d = document("https://id.acme.eu/acme", &["department".to_string()]);
        let claims = d["claims_supported"].as_array().unwrap();
        assert!(claims.contains(&json!("department")) && claims.contains(&json!("sub")));
        assert_eq!(claims.len(), CLAIMS_SUPPORTED.len() + 1);
    }
}
