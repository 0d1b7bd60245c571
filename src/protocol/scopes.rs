//! Scopes Clavex supports and the claims each one releases (OpenID Connect Core §5.4).

pub const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access", "groups"];

/// Claims released at userinfo for a scope.
pub fn claims_for_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &["name", "preferred_username", "picture", "updated_at"],
        "email" => &["email", "email_verified"],
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
    "name",
    "preferred_username",
    "picture",
    "updated_at",
    "email",
    "email_verified",
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
    fn scopes_map_to_standard_claims() {
        assert!(claims_for_scope("email").contains(&"email_verified"));
        assert!(claims_for_scope("profile").contains(&"preferred_username"));
        assert!(claims_for_scope("openid").is_empty());
    }
}
