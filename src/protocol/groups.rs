//! Groups and roles as relying parties read them, and who may sign in to which client. Pure.
//!
//! Rocket.Chat's Custom OAuth (and most relying parties that sync roles: Nextcloud, Jellyfin,
//! SonarQube, OpenSearch) index the identity response directly with the configured claim name and
//! expect a top-level JSON array of strings whose values match exactly: a nested path
//! (`realm_access.roles`), a group path (`/staff/admins`) or a stringified array silently matches
//! nothing. So both claims are always flat arrays of plain names, present (and empty) whenever
//! the `groups` scope was granted.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The scope that releases the groups and roles claims.
pub const GROUPS_SCOPE: &str = "groups";
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
pub const DEFAULT_ROLES_CLAIM: &str = "roles";
pub const MAX_GROUP_NAME: usize = 64;
pub const MAX_ROLE_VALUE: usize = 100;
pub const MAX_CLAIM_NAME: usize = 64;

/// Claim names a client may not take for its groups or roles: every claim Clavex issues itself
/// (renaming onto one would overwrite it), and the keys Rocket.Chat takes for the account id
/// (`id`, `_id`, `user_id`, …: a roles array there would break every sign-in).
pub const RESERVED_CLAIM_NAMES: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "at_hash",
    "c_hash",
    "azp",
    "acr",
    "amr",
    "sid",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "email",
    "email_verified",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "updated_at",
    "id",
    "_id",
    "user_id",
    "userid",
    "username",
    "phid",
    "characterid",
    "result",
    "user",
];

/// Group names are what relying parties compare, exactly: letters, digits, `-`, `_`, `.`, 1–64
/// characters — no `/`, so a name can never be mistaken for a path.
pub fn is_group_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_GROUP_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A role value is whatever the relying party calls the role (Rocket.Chat: `admin`,
/// `livechat-agent`, or a custom role's name): any printable text without surrounding spaces,
/// 1–100 characters.
pub fn is_role_value(role: &str) -> bool {
    !role.is_empty()
        && role.chars().count() <= MAX_ROLE_VALUE
        && role.trim() == role
        && !role.chars().any(char::is_control)
}

/// A claim name a client may rename groups or roles to: 1–64 characters of letters, digits, `_`,
/// `-`, `.`, `:`, and not one Clavex issues or a relying party reads as the account id.
pub fn is_claim_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CLAIM_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
        && !RESERVED_CLAIM_NAMES.contains(&name.to_ascii_lowercase().as_str())
}

/// One entry of a client's role map: members of `group` get `role` at this client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleMapping {
    pub group: String,
    pub role: String,
}

/// Names are unique per organization ignoring case, so membership compares that way too.
fn same_group(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The roles a user with `groups` has at a client with `mappings`: each mapped value once, in the
/// order of the map.
pub fn roles_for(mappings: &[RoleMapping], groups: &[String]) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for m in mappings {
        if groups.iter().any(|g| same_group(g, &m.group)) && !roles.contains(&m.role) {
            roles.push(m.role.clone());
        }
    }
    roles
}

/// Whether a user with `groups` may sign in to a client restricted to `allowed` groups. An empty
/// list means the client is open to every user of the organization.
pub fn may_sign_in(allowed: &[String], groups: &[String]) -> bool {
    allowed.is_empty()
        || allowed
            .iter()
            .any(|a| groups.iter().any(|g| same_group(a, g)))
}

/// How one client receives groups and roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimSettings<'a> {
    pub groups_claim: &'a str,
    pub roles_claim: &'a str,
    /// Also put both claims in the ID token (not only at userinfo).
    pub in_id_token: bool,
    /// Also put the custom attributes whose scope is granted in the ID token
    /// (protocol/attributes.rs).
    pub attributes_in_id_token: bool,
}

impl Default for ClaimSettings<'_> {
    fn default() -> Self {
        ClaimSettings {
            groups_claim: DEFAULT_GROUPS_CLAIM,
            roles_claim: DEFAULT_ROLES_CLAIM,
            in_id_token: false,
            attributes_in_id_token: false,
        }
    }
}

/// A user's groups and their roles at one client, ready to be released.
pub struct GroupClaims<'a> {
    pub settings: ClaimSettings<'a>,
    pub groups: &'a [String],
    pub roles: Vec<String>,
}

impl GroupClaims<'_> {
    /// Both claims under the client's names, as flat arrays of strings (sorted groups, so the
    /// response does not depend on storage order).
    pub fn insert(&self, out: &mut Map<String, Value>) {
        let mut groups = self.groups.to_vec();
        groups.sort_by_key(|g| g.to_ascii_lowercase());
        out.insert(self.settings.groups_claim.to_string(), json!(groups));
        out.insert(self.settings.roles_claim.to_string(), json!(self.roles));
    }

    /// Whether a `claims` request member names either claim (by the client's names).
    pub fn named_in(&self, requested: &[String]) -> bool {
        requested
            .iter()
            .any(|n| n == self.settings.groups_claim || n == self.settings.roles_claim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> Vec<RoleMapping> {
        pairs
            .iter()
            .map(|(g, r)| RoleMapping {
                group: g.to_string(),
                role: r.to_string(),
            })
            .collect()
    }

    #[test]
    fn group_names_are_plain_names_never_paths() {
        for ok in [
            "chat-admins",
            "support",
            "staff.eu",
            "a_b",
            "A1",
            &"x".repeat(64),
        ] {
            assert!(is_group_name(ok), "{ok}");
        }
        for bad in [
            "",
            "/staff/admins",
            "a b",
            "é",
            "a,b",
            "[\"a\"]",
            &"x".repeat(65),
        ] {
            assert!(!is_group_name(bad), "{bad}");
        }
    }

    #[test]
    fn role_values_and_claim_names() {
        assert!(is_role_value("livechat-agent") && is_role_value("Custom Role"));
        assert!(!is_role_value("") && !is_role_value(" admin") && !is_role_value("a\nb"));
        assert!(!is_role_value(&"r".repeat(101)));
        assert!(is_claim_name("rc_roles") && is_claim_name("https:x") && is_claim_name("roles"));
        for bad in [
            "", "sub", "email", "ID", "_id", "user_id", "a b", "a/b", "amr",
        ] {
            assert!(!is_claim_name(bad), "{bad}");
        }
    }

    #[test]
    fn roles_follow_the_map_once_each() {
        let m = map(&[
            ("chat-admins", "admin"),
            ("support", "livechat-agent"),
            ("chat-admins", "moderator"),
            ("support", "admin"),
        ]);
        assert_eq!(
            roles_for(&m, &strings(&["support", "Chat-Admins"])),
            strings(&["admin", "livechat-agent", "moderator"])
        );
        assert_eq!(
            roles_for(&m, &strings(&["support"])),
            strings(&["livechat-agent", "admin"])
        );
        assert!(roles_for(&m, &strings(&["other"])).is_empty());
        assert!(roles_for(&[], &strings(&["support"])).is_empty());
    }

    #[test]
    fn an_empty_allow_list_is_open_and_a_set_one_needs_a_match() {
        assert!(may_sign_in(&[], &[]));
        let allowed = strings(&["staff", "chat-users"]);
        assert!(may_sign_in(&allowed, &strings(&["other", "CHAT-users"])));
        assert!(!may_sign_in(&allowed, &strings(&["other"])));
        assert!(!may_sign_in(&allowed, &[]));
    }

    #[test]
    fn claims_are_flat_arrays_under_the_clients_names() {
        let groups = strings(&["support", "Chat-admins"]);
        let c = GroupClaims {
            settings: ClaimSettings {
                roles_claim: "rc_roles",
                ..ClaimSettings::default()
            },
            groups: &groups,
            roles: strings(&["admin"]),
        };
        let mut out = Map::new();
        c.insert(&mut out);
        assert_eq!(out["groups"], json!(["Chat-admins", "support"]));
        assert_eq!(out["rc_roles"], json!(["admin"]));
        assert!(!out.contains_key("roles"));
        let none = GroupClaims {
            settings: ClaimSettings::default(),
            groups: &[],
            roles: vec![],
        };
        let mut empty = Map::new();
        none.insert(&mut empty);
        assert_eq!(empty["groups"], json!([]));
        assert_eq!(empty["roles"], json!([]));
        assert!(c.named_in(&strings(&["rc_roles"])) && !c.named_in(&strings(&["roles"])));
    }
}
