//! What a connection reads from an upstream sign-in besides the account (issue 17): which
//! upstream claims give the username, e-mail, name and picture of a JIT-created user, and which
//! upstream group values make a user a member of which Clavex groups.
//!
//! Upstreams name claims their own way (Entra ID `upn`, Auth0 `https://…/groups`, Cognito
//! `cognito:groups`), so the names are the admin's to give; absent, the OpenID Connect Core §5.1
//! names apply, as before. Group mapping touches only the Clavex groups that appear in the map:
//! a group an administrator gave a user by hand, and not named in the map, stays; an upstream
//! value the map does not name is ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Upstream claim names are at most this long (a namespaced Auth0 claim is a URL).
pub const MAX_CLAIM_NAME: usize = 255;
/// An upstream group value (an Entra object id, an LDAP DN, a name) is at most this long.
pub const MAX_GROUP_VALUE: usize = 255;
/// At most this many entries in a group map.
pub const MAX_GROUP_MAPPINGS: usize = 100;

/// The upstream claims read for a new user's profile; `None`: the Core §5.1 name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMapping {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
}

pub const MAPPED: &[&str] = &["username", "email", "name", "picture"];

impl ClaimMapping {
    pub fn username_claim(&self) -> &str {
        self.username.as_deref().unwrap_or("preferred_username")
    }
    pub fn email_claim(&self) -> &str {
        self.email.as_deref().unwrap_or("email")
    }
    pub fn name_claim(&self) -> &str {
        self.name.as_deref().unwrap_or("name")
    }
    pub fn picture_claim(&self) -> &str {
        self.picture.as_deref().unwrap_or("picture")
    }

    /// Whether the e-mail comes from the standard claim, so `email_verified` speaks for it.
    /// Core §5.1 defines `email_verified` about `email` only: an address read from another
    /// claim is never taken as verified (it would otherwise link to an existing account).
    pub fn email_is_standard(&self) -> bool {
        self.email_claim() == "email"
    }

    /// The claims the mapping names, for asking userinfo when the ID token lacks one.
    pub fn claim_names(&self) -> [&str; 4] {
        [
            self.username_claim(),
            self.email_claim(),
            self.name_claim(),
            self.picture_claim(),
        ]
    }
}

/// Whether `name` may be an upstream claim name: 1–255 characters, no control character or
/// surrounding space.
pub fn is_upstream_claim_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CLAIM_NAME
        && name.trim() == name
        && !name.chars().any(char::is_control)
}

/// Whether `value` may be an upstream group value in a map.
pub fn is_upstream_group_value(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_GROUP_VALUE && !value.chars().any(char::is_control)
}

/// A claim as text: a non-empty string; a number is accepted as its decimal text (some
/// directories release numeric ids).
pub fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The upstream's group values in `claim`: an array of strings (Keycloak, Okta, Entra ID,
/// Clavex), or one string; anything else counts as none.
pub fn upstream_groups(claims: &Map<String, Value>, claim: &str) -> Vec<String> {
    match claims.get(claim) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The membership changes one upstream sign-in makes: the mapped Clavex groups the user should
/// be in are added, the mapped ones they should no longer be in are removed. Groups the map does
/// not name are never touched. Names compare ignoring case (they are unique that way).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GroupChanges {
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

impl GroupChanges {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

pub fn group_changes(
    mapping: &BTreeMap<String, String>,
    upstream_values: &[String],
    current: &[String],
) -> GroupChanges {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let mut wanted: Vec<&str> = Vec::new();
    for value in upstream_values {
        if let Some(group) = mapping.get(value)
            && !wanted.iter().any(|w| same(w, group))
        {
            wanted.push(group);
        }
    }
    let mut changes = GroupChanges::default();
    for group in &wanted {
        if !current.iter().any(|c| same(c, group)) {
            changes.add.push(group.to_string());
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    for group in mapping.values() {
        if seen.iter().any(|s| same(s, group)) {
            continue;
        }
        seen.push(group);
        if !wanted.iter().any(|w| same(w, group))
            && let Some(c) = current.iter().find(|c| same(c, group))
        {
            changes.remove.push(c.clone());
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_are_the_core_claim_names() {
        let m = ClaimMapping::default();
        assert_eq!(
            m.claim_names(),
            ["preferred_username", "email", "name", "picture"]
        );
        assert!(m.email_is_standard());
        let m: ClaimMapping = serde_json::from_value(json!({"email": "upn"})).unwrap();
        assert_eq!(m.email_claim(), "upn");
        assert!(
            !m.email_is_standard(),
            "an address from upn is never verified"
        );
        assert!(serde_json::from_value::<ClaimMapping>(json!({"phone": "x"})).is_err());
    }

    #[test]
    fn only_mapped_groups_are_added_or_removed() {
        let m = map(&[
            ("eng", "engineering"),
            ("ops", "operations"),
            ("admins", "staff"),
        ]);
        // Upstream says eng and an unmapped value; the user has operations (mapped, no longer
        // said) and a hand-given group the map does not name.
        let c = group_changes(
            &m,
            &strings(&["eng", "unmapped"]),
            &strings(&["operations", "hand-given"]),
        );
        assert_eq!(c.add, strings(&["engineering"]));
        assert_eq!(c.remove, strings(&["operations"]));
        // Nothing to do when upstream and membership agree (case-insensitively).
        assert!(group_changes(&m, &strings(&["ops"]), &strings(&["Operations"])).is_empty());
        // No upstream groups at all: every mapped group goes, the others stay.
        let c = group_changes(&m, &[], &strings(&["staff", "hand-given"]));
        assert_eq!((c.add, c.remove), (vec![], strings(&["staff"])));
    }

    #[test]
    fn two_values_mapped_to_one_group_keep_it_while_either_is_said() {
        let m = map(&[("a", "g"), ("b", "g")]);
        assert!(group_changes(&m, &strings(&["b"]), &strings(&["g"])).is_empty());
        assert_eq!(
            group_changes(&m, &strings(&["a", "b"]), &[]).add,
            strings(&["g"])
        );
    }

    #[test]
    fn group_claims_are_arrays_or_one_string() {
        let claims = json!({"groups": ["a", 7, {"x": 1}], "role": "admin", "none": true});
        let claims = claims.as_object().unwrap();
        assert_eq!(upstream_groups(claims, "groups"), strings(&["a", "7"]));
        assert_eq!(upstream_groups(claims, "role"), strings(&["admin"]));
        assert!(upstream_groups(claims, "none").is_empty());
        assert!(upstream_groups(claims, "missing").is_empty());
    }

    #[test]
    fn claim_names_and_values_are_checked() {
        assert!(is_upstream_claim_name("https://acme.example/claims/groups"));
        assert!(is_upstream_claim_name("cognito:groups"));
        assert!(!is_upstream_claim_name(""));
        assert!(!is_upstream_claim_name(" groups"));
        assert!(!is_upstream_claim_name("gro\nups"));
        assert!(is_upstream_group_value("CN=Eng,OU=Groups,DC=acme"));
        assert!(!is_upstream_group_value(""));
        assert!(!is_upstream_group_value(&"x".repeat(256)));
    }
}
