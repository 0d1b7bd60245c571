//! Scopes Clavex supports and the claims each one releases (OpenID Connect Core §5.4).

pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
    "groups",
];

/// Claims released at userinfo for a scope (Core §5.4; only those with a value are released).
pub fn claims_for_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        _ => &[],
    }
}

/// Every claim Clavex can release, for discovery's `claims_supported`.
pub const CLAIMS_SUPPORTED: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "azp",
    "amr",
    "acr",
    // Back-Channel Logout 1.0 §2.1: the SSO session's id, in ID tokens.
    "sid",
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "address",
    "phone_number",
    "phone_number_verified",
    // With the `groups` scope (protocol/groups.rs); a client may rename them.
    "groups",
    "roles",
];

/// RFC 6749 §3.3: scope is a space-delimited list. Duplicates collapse; order is kept.
pub fn parse(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// The scope granted for a request (RFC 6749 §3.3: "The authorization server MAY fully or
/// partially ignore the scope requested by the client, based on the authorization server policy
/// or the resource owner's instructions"): what was asked, that Clavex supports and the client is
/// registered for, in the order asked. Unknown and unregistered scopes are dropped rather than
/// refused; the token response's `scope` then tells the client what it got (§5.1).
pub fn grant(requested: &[String], registered: &[String]) -> Vec<String> {
    requested
        .iter()
        .filter(|s| SUPPORTED_SCOPES.contains(&s.as_str()) && registered.contains(s))
        .cloned()
        .collect()
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

pub fn contains(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_on_spaces_and_drops_duplicates() {
        assert_eq!(parse("openid  profile openid"), vec!["openid", "profile"]);
        assert!(parse("").is_empty());
    }

    #[test]
    fn grant_keeps_what_is_asked_supported_and_registered_in_order() {
        let registered = parse("openid profile email groups");
        assert_eq!(
            grant(
                &parse("email openid admin offline_access profile"),
                &registered
            ),
            vec!["email", "openid", "profile"]
        );
        assert_eq!(
            grant(
                &parse("openid offline_access"),
                &parse("openid offline_access")
            ),
            vec!["openid", "offline_access"]
        );
        // Registered but unknown to Clavex (an old registration): still not granted.
        assert_eq!(
            grant(&parse("openid admin"), &parse("openid admin")),
            vec!["openid"]
        );
        assert!(grant(&parse("profile"), &parse("openid")).is_empty());
    }

    #[test]
    fn scopes_map_to_standard_claims() {
        assert!(claims_for_scope("email").contains(&"email_verified"));
        assert!(claims_for_scope("profile").contains(&"preferred_username"));
        assert!(claims_for_scope("openid").is_empty());
        assert_eq!(claims_for_scope("address"), ["address"]);
        assert_eq!(
            claims_for_scope("phone"),
            ["phone_number", "phone_number_verified"]
        );
    }

    #[test]
    fn every_released_claim_is_advertised_and_every_scope_supported() {
        for scope in SUPPORTED_SCOPES {
            for claim in claims_for_scope(scope) {
                assert!(CLAIMS_SUPPORTED.contains(claim), "{claim}");
            }
        }
        for scope in ["profile", "email", "address", "phone"] {
            assert!(SUPPORTED_SCOPES.contains(&scope));
            assert!(!claims_for_scope(scope).is_empty());
        }
        assert_eq!(claims_for_scope("profile").len(), 14);
    }
}
