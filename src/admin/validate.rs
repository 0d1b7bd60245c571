//! The admin API's input rules, one function per rule, pure so `cargo test` checks them natively.
//! Each returns the value to store or an `ApiError` naming the field.

use serde_json::Value;

use crate::admin::error::ApiError;
use crate::protocol::groups::{self, RoleMapping};

/// Grant types a client may register: Clavex implements the code flow and refresh tokens only.
pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token"];
/// Scopes a client may register: those Clavex supports (OpenID Connect Core §5.4, `offline_access`
/// from §11, and `groups`), one list with discovery's `scopes_supported`.
pub const SCOPES: &[&str] = crate::protocol::scopes::SUPPORTED_SCOPES;
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email"];
/// RFC 7591 §2 `token_endpoint_auth_method` values Clavex implements.
pub const AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post", "none"];

const MAX_NAME: usize = 200;
const MAX_URL: usize = 2048;

/// Organization slugs are the first path segment of every issuer URL: lowercase letters, digits
/// and `-`, 1–63 characters (a DNS label's length, so a slug can later become a subdomain), and
/// never a word the router uses itself.
pub fn slug(field: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.len() > 63 {
        return Err(ApiError::invalid_field(
            field,
            "slug must be 1-63 characters",
        ));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(ApiError::invalid_field(
            field,
            "slug may contain only lowercase letters, digits and -",
        ));
    }
    if crate::routes::RESERVED_SLUGS.contains(&value) {
        return Err(ApiError::invalid_field(
            field,
            format!("{value} is reserved by the router"),
        ));
    }
    Ok(value.to_string())
}

/// A display name: trimmed, non-empty, at most 200 characters, no control characters.
pub fn display_name(field: &str, value: &str) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if trimmed.chars().count() > MAX_NAME {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be at most {MAX_NAME} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(trimmed.to_string())
}

fn parse_absolute(field: &str, value: &str) -> Result<url::Url, ApiError> {
    if value.len() > MAX_URL {
        return Err(ApiError::invalid_field(
            field,
            format!("URL longer than {MAX_URL} characters"),
        ));
    }
    // A URL is stored exactly as it is later compared and used. Whitespace and control
    // characters (a CR/LF, a trailing newline) would be compared raw but dropped or escaped by
    // every URL parser on the way out, so what was checked and where a code goes would differ.
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid_field(
            field,
            format!("{value:?} contains whitespace or a control character"),
        ));
    }
    // The url crate repairs "https:host" into "https://host/"; an absolute URL as written must
    // already carry the "//" authority (RFC 3986 §3).
    let lower = value.to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err(ApiError::invalid_field(
            field,
            format!("{value} is not an absolute http(s) URL"),
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|e| ApiError::invalid_field(field, format!("{value} is not a valid URL: {e}")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid_field(
            field,
            format!("{value} has no host"),
        ));
    }
    // Redirects are built from the parsed URL (WHATWG serialization: lowercase scheme and host,
    // default port dropped, `/` for an empty path, non-ASCII percent-encoded); the stored string
    // must be that same form, or exact comparison would validate one URI and redirect to another.
    if url.as_str() != value {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{value} is not in normalized form; register it as {}",
                url.as_str()
            ),
        ));
    }
    Ok(url)
}

/// An absolute `https` URL that browsers and other servers fetch (logos, avatars).
pub fn https_url(field: &str, value: &str) -> Result<String, ApiError> {
    let url = parse_absolute(field, value)?;
    if url.scheme() != "https" {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must use https"),
        ));
    }
    Ok(value.to_string())
}

/// An absolute `http` or `https` URL shown to people as a link (the `profile` and `website`
/// claims, OpenID Connect Core §5.1), in the normalized form it is stored and released in.
pub fn http_url(field: &str, value: &str) -> Result<String, ApiError> {
    parse_absolute(field, value)?;
    Ok(value.to_string())
}

fn is_loopback(url: &url::Url) -> bool {
    matches!(
        url.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    )
}

/// A redirect URI (also used for post-logout URIs). RFC 6749 §3.1.2: "The redirection endpoint
/// URI MUST be an absolute URI" and "MUST NOT include a fragment component". TLS is required
/// (§3.1.2.1), except on loopback hosts where a native or development client listens
/// (RFC 8252 §7.3), which cannot be intercepted off the machine.
pub fn redirect_uri(field: &str, value: &str) -> Result<String, ApiError> {
    let url = parse_absolute(field, value)?;
    if url.fragment().is_some() {
        return Err(ApiError::invalid_field(
            field,
            format!("{value} must not contain a fragment (RFC 6749 §3.1.2)"),
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => {
            return Err(ApiError::invalid_field(
                field,
                format!("{value} must use https (plain http only for localhost, 127.0.0.1, [::1])"),
            ));
        }
    }
    Ok(value.to_string())
}

pub fn redirect_uris(
    field: &str,
    values: &[String],
    allow_empty: bool,
) -> Result<Vec<String>, ApiError> {
    if values.is_empty() && !allow_empty {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} needs at least one URI"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let uri = redirect_uri(field, value)?;
        if !out.contains(&uri) {
            out.push(uri);
        }
    }
    Ok(out)
}

/// `#RRGGBB`, the only color form the login page template inserts into its CSS.
pub fn color(field: &str, value: &str) -> Result<String, ApiError> {
    let ok = value.len() == 7
        && value.starts_with('#')
        && value[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must look like #1a2b3c"),
        ));
    }
    Ok(value.to_ascii_lowercase())
}

/// Client identifiers travel in URLs, forms and the Basic header, where `:` separates id and
/// secret (RFC 6749 §2.3.1): allow only RFC 3986 unreserved characters, 1–128 of them.
pub fn client_id(field: &str, value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !ok {
        return Err(ApiError::invalid_field(
            field,
            "client_id must be 1-128 characters of letters, digits, -, ., _, ~",
        ));
    }
    if value == crate::oidc::account_client::ACCOUNT_CLIENT_ID {
        return Err(ApiError::invalid_field(
            field,
            "client_id clavex-account is reserved for the account page's own sign-in",
        ));
    }
    Ok(value.to_string())
}

/// A list whose every member is in `allowed`: non-empty, duplicates dropped, order kept.
pub fn subset(field: &str, values: &[String], allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    if values.is_empty() {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        if !allowed.contains(&value.as_str()) {
            return Err(ApiError::invalid_field(
                field,
                format!("{value} is not supported; use {}", allowed.join(", ")),
            ));
        }
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    Ok(out)
}

pub fn grant_types(field: &str, values: &[String]) -> Result<Vec<String>, ApiError> {
    let out = subset(field, values, GRANT_TYPES)?;
    // Refresh tokens are only ever issued from an authorization code exchange, so a client with
    // refresh_token alone could never obtain one.
    if !out.iter().any(|g| g == "authorization_code") {
        return Err(ApiError::invalid_field(
            field,
            "grant_types must include authorization_code",
        ));
    }
    Ok(out)
}

pub fn auth_method(field: &str, value: &str) -> Result<String, ApiError> {
    if !AUTH_METHODS.contains(&value) {
        return Err(ApiError::invalid_field(
            field,
            format!("{value} is not supported; use {}", AUTH_METHODS.join(", ")),
        ));
    }
    Ok(value.to_string())
}

/// Usernames become `preferred_username`, which relying parties such as Rocket.Chat use
/// unsanitised as their own account names: letters, digits, `-`, `_`, `.`, 1–64 characters.
pub fn username(field: &str, value: &str) -> Result<String, ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(ApiError::invalid_field(
            field,
            "username must be 1-64 characters of letters, digits, -, _, .",
        ));
    }
    Ok(value.to_string())
}

/// A basic syntax check, not full RFC 5321: one `@`, a non-empty local part, a dotted domain,
/// no spaces or control characters, at most 254 characters (RFC 5321 §4.5.3.1.3 path limit).
pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let bad = || ApiError::invalid_field(field, format!("{value} is not an email address"));
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let Some((local, domain)) = value.split_once('@') else {
        return Err(bad());
    };
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..");
    if local.is_empty() || !domain_ok {
        return Err(bad());
    }
    Ok(value.to_string())
}

/// The password policy (protocol/password_policy.rs): 8–256 characters after NFKC, not a common
/// leaked password. Returns the normalised form, which is what gets hashed.
pub fn password(field: &str, value: &str) -> Result<String, ApiError> {
    crate::protocol::password_policy::check(value)
        .map_err(|weak| ApiError::invalid_field(field, weak.message()))
}

/// A group name (protocol/groups.rs): letters, digits, `-`, `_`, `.`, 1–64 characters.
pub fn group_name(field: &str, value: &str) -> Result<String, ApiError> {
    if !groups::is_group_name(value) {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{value:?} is not a group name: use 1-{} letters, digits, -, _, .",
                groups::MAX_GROUP_NAME
            ),
        ));
    }
    Ok(value.to_string())
}

/// A list of group names, duplicates (ignoring case) dropped, order kept. May be empty.
pub fn group_names(field: &str, values: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for value in values {
        let name = group_name(field, value)?;
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&name)) {
            out.push(name);
        }
    }
    Ok(out)
}

/// The name a client reads groups or roles under (protocol/groups.rs `is_claim_name`).
pub fn claim_name(field: &str, value: &str) -> Result<String, ApiError> {
    if !groups::is_claim_name(value) {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{value:?} cannot be a claim name: use 1-{} letters, digits, _, -, ., : and not a standard claim or an account-id key (sub, email, id, _id, user_id, ...)",
                groups::MAX_CLAIM_NAME
            ),
        ));
    }
    Ok(value.to_string())
}

/// A role map: an array of `{"group", "role"}` objects; duplicates dropped, order kept. May be
/// empty.
pub fn role_mappings(field: &str, value: &Value) -> Result<Vec<RoleMapping>, ApiError> {
    let shape = || {
        ApiError::invalid_field(
            field,
            format!("{field} must be an array of {{\"group\": name, \"role\": value}} objects"),
        )
    };
    let Value::Array(items) = value else {
        return Err(shape());
    };
    let mut out: Vec<RoleMapping> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(entry) = item else {
            return Err(shape());
        };
        if entry.len() != 2 {
            return Err(shape());
        }
        let (Some(Value::String(group)), Some(Value::String(role))) =
            (entry.get("group"), entry.get("role"))
        else {
            return Err(shape());
        };
        let group = group_name(field, group)?;
        if !groups::is_role_value(role) {
            return Err(ApiError::invalid_field(
                field,
                format!(
                    "{role:?} is not a role value: 1-{} characters, no control characters or surrounding spaces",
                    groups::MAX_ROLE_VALUE
                ),
            ));
        }
        let duplicate = out
            .iter()
            .any(|m| m.group.eq_ignore_ascii_case(&group) && m.role == *role);
        if !duplicate {
            out.push(RoleMapping {
                group,
                role: role.clone(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_are_stored_exactly_as_they_are_used() {
        for bad in [
            "https://app.example/cb\r\nLocation: https://evil.example",
            "https://app.example/cb\n",
            "https://app.example/c b",
            " https://app.example/cb",
            "https://app.example/cb\t",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "https://app.example",
            "https://app.example/caf\u{e9}",
            "HTTPS://app.example/cb",
        ] {
            let err = redirect_uri("redirect_uris", bad).expect_err(bad);
            assert_eq!(err.field.as_deref(), Some("redirect_uris"), "{bad:?}");
            assert!(https_url("picture", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            redirect_uri("r", "https://chat.acme.eu/_oauth/clavex").unwrap(),
            "https://chat.acme.eu/_oauth/clavex"
        );
        assert!(redirect_uri("r", "http://localhost:3000/_oauth/clavex").is_ok());
        assert!(redirect_uri("r", "https://app.example/cb?x=1&y=%20").is_ok());
    }

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    fn field_of<T: std::fmt::Debug>(r: Result<T, ApiError>) -> String {
        r.expect_err("must be refused").field.unwrap()
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("slug", "acme-2").unwrap(), "acme-2");
        assert_eq!(slug("slug", &"a".repeat(63)).unwrap().len(), 63);
        for bad in [
            "",
            "Acme",
            "ac me",
            "acme_2",
            "acmé",
            "api",
            "healthz",
            ".well-known",
        ] {
            assert_eq!(field_of(slug("slug", bad)), "slug", "{bad:?} accepted");
        }
        assert!(slug("slug", &"a".repeat(64)).is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(display_name("name", "  Acme Corp ").unwrap(), "Acme Corp");
        assert!(display_name("name", "   ").is_err());
        assert!(display_name("name", "a\u{0}b").is_err());
        assert!(display_name("name", &"é".repeat(200)).is_ok());
        assert!(display_name("name", &"é".repeat(201)).is_err());
    }

    #[test]
    fn redirect_uris_follow_rfc_6749() {
        for ok in [
            "https://chat.acme.eu/_oauth/clavex",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "https://app.example/cb?x=1",
        ] {
            assert_eq!(redirect_uri("redirect_uris", ok).unwrap(), ok);
        }
        for bad in [
            "http://chat.acme.eu/cb",
            "https://chat.acme.eu/cb#frag",
            "https://chat.acme.eu/cb#",
            "/relative/cb",
            "chat.acme.eu/cb",
            "https:chat.acme.eu",
            "ftp://chat.acme.eu/",
            "com.example.app:/cb",
            "http://localhost.evil.example/cb",
            "https://",
        ] {
            assert_eq!(
                field_of(redirect_uri("redirect_uris", bad)),
                "redirect_uris",
                "{bad}"
            );
        }
        assert!(redirect_uris("redirect_uris", &[], false).is_err());
        assert_eq!(
            redirect_uris("post_logout_redirect_uris", &[], true).unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            redirect_uris(
                "redirect_uris",
                &strings(&["https://a.example/", "https://a.example/"]),
                false
            )
            .unwrap(),
            strings(&["https://a.example/"])
        );
    }

    #[test]
    fn https_urls_for_pictures_and_logos() {
        assert!(https_url("picture", "https://cdn.acme.eu/a.png").is_ok());
        assert!(https_url("picture", "http://cdn.acme.eu/a.png").is_err());
        assert!(https_url("picture", "data:image/png;base64,AAAA").is_err());
        assert!(https_url("picture", "//cdn.acme.eu/a.png").is_err());
    }

    #[test]
    fn http_urls_for_profile_pages() {
        for ok in [
            "https://acme.eu/jane",
            "http://jane.example/",
            "https://a.example/?x=1#me",
        ] {
            assert_eq!(http_url("website", ok).unwrap(), ok);
        }
        for bad in [
            "",
            "jane.example",
            "//jane.example/",
            "ftp://jane.example/",
            "javascript:alert(1)",
            "mailto:jane@acme.eu",
            "https://jane.example",
            "https://JANE.example/",
            "https://jane.example/ x",
        ] {
            assert_eq!(field_of(http_url("website", bad)), "website", "{bad:?}");
        }
    }

    #[test]
    fn colors() {
        assert_eq!(color("primary_color", "#1A2b3C").unwrap(), "#1a2b3c");
        for bad in [
            "1a2b3c",
            "#1a2b3",
            "#1a2b3cd",
            "#gggggg",
            "red",
            "#1a2b3c;}",
        ] {
            assert!(color("primary_color", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn client_ids() {
        assert!(client_id("client_id", "rocketchat").is_ok());
        assert!(client_id("client_id", "a.b-c_d~e").is_ok());
        for bad in ["", "rocket chat", "rocket:chat", "a/b", "a%20b"] {
            assert!(client_id("client_id", bad).is_err(), "{bad}");
        }
        assert!(client_id("client_id", &"x".repeat(129)).is_err());
    }

    #[test]
    fn grant_types_and_scopes_are_subsets() {
        assert_eq!(
            grant_types(
                "grant_types",
                &strings(&["authorization_code", "refresh_token", "refresh_token"])
            )
            .unwrap(),
            strings(&["authorization_code", "refresh_token"])
        );
        assert!(grant_types("grant_types", &strings(&["implicit"])).is_err());
        assert!(
            grant_types(
                "grant_types",
                &strings(&["client_credentials", "authorization_code"])
            )
            .is_err()
        );
        assert!(grant_types("grant_types", &strings(&["refresh_token"])).is_err());
        assert!(grant_types("grant_types", &[]).is_err());
        assert!(subset("scopes", &strings(&["openid", "offline_access"]), SCOPES).is_ok());
        assert_eq!(
            field_of(subset("scopes", &strings(&["openid", "admin"]), SCOPES)),
            "scopes"
        );
        assert!(auth_method("token_endpoint_auth_method", "client_secret_post").is_ok());
        assert!(auth_method("token_endpoint_auth_method", "private_key_jwt").is_err());
    }

    #[test]
    fn usernames() {
        for ok in ["demo", "Jane.Doe", "a_b-c", "x"] {
            assert!(username("username", ok).is_ok(), "{ok}");
        }
        for bad in ["", "jane doe", "jane@acme", "jäne", "a/b"] {
            assert!(username("username", bad).is_err(), "{bad}");
        }
        assert!(username("username", &"a".repeat(64)).is_ok());
        assert!(username("username", &"a".repeat(65)).is_err());
    }

    #[test]
    fn emails() {
        assert!(email("email", "demo@acme.test").is_ok());
        assert!(email("email", "first.last+tag@sub.acme.eu").is_ok());
        for bad in [
            "",
            "demo",
            "@acme.test",
            "demo@",
            "demo@acme",
            "demo@@acme.test",
            "de mo@acme.test",
            "demo@acme..test",
            "demo@.acme.test",
        ] {
            assert!(email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_follow_the_policy_and_name_the_field() {
        assert!(password("password", "1234567x").is_ok());
        assert!(password("password", "ééééééé").is_err());
        assert!(password("password", "éééééééé").is_ok());
        for bad in ["1234567", "12345678", "Password1", &"x".repeat(257)] {
            let err = password("password", bad).unwrap_err();
            assert_eq!(err.field.as_deref(), Some("password"), "{bad}");
        }
        assert!(
            password("password", "sunshine1")
                .unwrap_err()
                .description
                .contains("common")
        );
    }

    #[test]
    fn group_rules_name_their_field() {
        assert_eq!(
            group_names("g", &["Staff".into(), "staff".into(), "ops".into()]).unwrap(),
            vec!["Staff".to_string(), "ops".to_string()]
        );
        assert!(group_names("g", &[]).unwrap().is_empty());
        for bad in ["/staff/admins", "a b", "", "[\"x\"]"] {
            assert_eq!(
                group_name("g", bad).unwrap_err().field.as_deref(),
                Some("g")
            );
        }
        assert_eq!(claim_name("c", "rc_roles").unwrap(), "rc_roles");
        assert_eq!(
            claim_name("c", "sub").unwrap_err().field.as_deref(),
            Some("c")
        );
        let ok = serde_json::json!([
            {"group": "chat-admins", "role": "admin"},
            {"group": "Chat-Admins", "role": "admin"},
            {"group": "support", "role": "livechat-agent"}
        ]);
        let m = role_mappings("role_mappings", &ok).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[1].group.as_str(), m[1].role.as_str()),
            ("support", "livechat-agent")
        );
        for bad in [
            serde_json::json!({"chat-admins": "admin"}),
            serde_json::json!(["admin"]),
            serde_json::json!([{"group": "a"}]),
            serde_json::json!([{"group": "a", "role": "r", "extra": 1}]),
            serde_json::json!([{"group": "a", "role": 5}]),
            serde_json::json!([{"group": "/a/b", "role": "r"}]),
            serde_json::json!([{"group": "a", "role": " r"}]),
        ] {
            let err = role_mappings("role_mappings", &bad).expect_err(&bad.to_string());
            assert_eq!(err.field.as_deref(), Some("role_mappings"), "{bad}");
        }
    }
}
