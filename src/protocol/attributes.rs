//! Custom attributes per organization (issue 18, item 2): a name, a JSON type and the scope that
//! releases it; each user's value checked against the type; and which attributes a userinfo
//! response or an ID token carries. Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::protocol::groups::{self, ClaimSettings};
use crate::protocol::scopes;

pub const MAX_NAME: usize = 64;
pub const MAX_STRING: usize = 500;
pub const MAX_ARRAY_ITEMS: usize = 50;
pub const MAX_DESCRIPTION: usize = 500;
/// The most attributes one organization may define: each is a statement in a user write and a
/// claim in userinfo, so their number bounds both.
pub const MAX_ATTRIBUTES: usize = 100;
/// The largest integer every JSON parser reads exactly (I-JSON, RFC 7493 §2.2: IEEE 754 doubles):
/// a relying party in JavaScript would silently round a larger employee number.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// The scopes an attribute may be released by: the supported ones that release claims. No
/// custom scopes: a client can only be registered for, and ask for, the scopes Clavex knows.
pub const ATTRIBUTE_SCOPES: &[&str] = &["profile", "email", "phone", "address", "groups"];

/// Names an attribute may not take besides those `groups::RESERVED_CLAIM_NAMES` already lists
/// (the claims Clavex issues, §5.1's standard claims, the keys relying parties read as the
/// account id): the remaining registered names of OpenID Connect Core §2, §3.3.2.11, §5.6.2 and
/// of the JWT and token-introspection registries, and Clavex's own default group and role
/// claims. A client's renamed group/role claims are per client; at release they win over an
/// attribute of the same name (see `insert_released`).
const MORE_RESERVED: &[&str] = &[
    "groups",
    "roles",
    "s_hash",
    "sub_jwk",
    "cnf",
    "_claim_names",
    "_claim_sources",
    "events",
    "scope",
    "client_id",
    "token_type",
    "active",
    "username",
    "typ",
    "kid",
    "alg",
    "act",
    "may_act",
    "entitlements",
    "txn",
];

/// The JSON type of an attribute's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    String,
    Number,
    Integer,
    Boolean,
    StringArray,
}

pub const TYPES: &[&str] = &["string", "number", "integer", "boolean", "string_array"];

impl AttributeType {
    pub fn parse(text: &str) -> Option<AttributeType> {
        Some(match text {
            "string" => AttributeType::String,
            "number" => AttributeType::Number,
            "integer" => AttributeType::Integer,
            "boolean" => AttributeType::Boolean,
            "string_array" => AttributeType::StringArray,
            _ => return None,
        })
    }

    /// The value as stored and released: an integer written `4711.0` is stored as `4711`.
    /// Only for a value `check` accepted.
    pub fn normalize(self, value: Value) -> Value {
        match (self, &value) {
            (AttributeType::Integer, Value::Number(n)) if !n.is_i64() && !n.is_u64() => {
                n.as_f64().map(|f| Value::from(f as i64)).unwrap_or(value)
            }
            _ => value,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Number => "number",
            AttributeType::Integer => "integer",
            AttributeType::Boolean => "boolean",
            AttributeType::StringArray => "string_array",
        }
    }

    /// Whether `value` (never `null`: that removes a value) is one of this type, within the
    /// bounds; the reason when not.
    pub fn check(self, value: &Value) -> Result<(), String> {
        let ok = match (self, value) {
            (AttributeType::String, Value::String(s)) => return bounded_string(s),
            (AttributeType::Number, Value::Number(_)) => true,
            // 4711 and 4711.0 are the same JSON number; 4711.5 is not an integer.
            (AttributeType::Integer, Value::Number(n)) => n
                .as_f64()
                .is_some_and(|f| f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER),
            (AttributeType::Boolean, Value::Bool(_)) => true,
            (AttributeType::StringArray, Value::Array(items)) => {
                if items.len() > MAX_ARRAY_ITEMS {
                    return Err(format!("at most {MAX_ARRAY_ITEMS} items"));
                }
                for item in items {
                    match item {
                        Value::String(s) => bounded_string(s)?,
                        _ => return Err("an array of strings".into()),
                    }
                }
                true
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("a value of type {}", self.as_str()))
        }
    }
}

fn bounded_string(s: &str) -> Result<(), String> {
    if s.chars().count() > MAX_STRING {
        Err(format!("strings of at most {MAX_STRING} characters"))
    } else {
        Ok(())
    }
}

/// Whether `name` is reserved: a registered or Clavex-issued claim (ignoring case, as relying
/// parties are not all careful about it).
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    groups::RESERVED_CLAIM_NAMES.contains(&lower.as_str())
        || MORE_RESERVED.contains(&lower.as_str())
}

/// An attribute name: the claim-name syntax of client group/role claims (letters, digits, `_`,
/// `-`, `.`, `:`, 1–64 characters), not reserved. The reason when not.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a name of 1-{MAX_NAME} characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
    {
        return Err("letters, digits, _ - . : only".into());
    }
    if is_reserved(name) {
        return Err(format!(
            "{name} is a registered claim name or one Clavex issues itself"
        ));
    }
    Ok(())
}

/// One attribute value of a user as read with the user: its name, the scope that releases it,
/// and the value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAttribute {
    pub name: String,
    pub scope: String,
    pub value: Value,
}

/// Which attributes to release where.
pub enum Release<'a> {
    /// At userinfo: every attribute whose scope is granted.
    Userinfo,
    /// In the ID token: those whose scope is granted and that the client's setting
    /// (`attributes_in_id_token`) or the `claims` parameter's `id_token` member asks for.
    IdToken { requested: &'a [String] },
}

/// Adds the released attributes to `out`. An attribute is never released without its scope,
/// whatever asks for it (the scope is the user's consent to it). A name already in `out`, or one
/// of the client's group/role claim names, is left to that claim.
pub fn insert_released(
    out: &mut Map<String, Value>,
    attributes: &[UserAttribute],
    scope: &str,
    settings: &ClaimSettings,
    release: Release,
) {
    for a in attributes {
        if !scopes::contains(scope, &a.scope) || out.contains_key(&a.name) {
            continue;
        }
        if a.name.eq_ignore_ascii_case(settings.groups_claim)
            || a.name.eq_ignore_ascii_case(settings.roles_claim)
        {
            continue;
        }
        let wanted = match &release {
            Release::Userinfo => true,
            Release::IdToken { requested } => {
                settings.attributes_in_id_token || requested.iter().any(|n| n == &a.name)
            }
        };
        if wanted {
            out.insert(a.name.clone(), a.value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_the_claim_syntax_and_refuse_registered_ones() {
        for ok in [
            "department",
            "employee_number",
            "cost-center",
            "urn:acme:badge",
            "x.y",
            &"a".repeat(64),
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "dépt", "a/b", "a\"b", &"a".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        // §5.1 standard claims, §2 ID token claims, JWT registered names, Clavex's own.
        for reserved in [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "nbf",
            "jti",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "azp",
            "at_hash",
            "c_hash",
            "s_hash",
            "sid",
            "email",
            "Email",
            "phone_number",
            "address",
            "updated_at",
            "groups",
            "ROLES",
            "scope",
            "client_id",
            "_claim_names",
            "id",
            "_id",
            "user_id",
            "username",
        ] {
            let err = check_name(reserved).unwrap_err();
            assert!(err.contains("registered"), "{reserved}: {err}");
        }
    }

    #[test]
    fn every_list_the_groups_module_reserves_is_reserved_here() {
        for name in groups::RESERVED_CLAIM_NAMES {
            assert!(is_reserved(name), "{name}");
        }
    }

    #[test]
    fn types_parse_and_round_trip() {
        for t in TYPES {
            assert_eq!(AttributeType::parse(t).unwrap().as_str(), *t);
        }
        assert_eq!(AttributeType::parse("object"), None);
        assert_eq!(AttributeType::parse("String"), None);
    }

    #[test]
    fn values_are_checked_against_their_type() {
        use AttributeType::*;
        let cases = [
            (String, json!("R&D"), true),
            (String, json!(""), true),
            (String, json!(4711), false),
            (String, json!(["a"]), false),
            (Number, json!(4.5), true),
            (Number, json!(-3), true),
            (Number, json!("4"), false),
            (Integer, json!(4711), true),
            (Integer, json!(-1), true),
            (Integer, json!(4711.0), true),
            (Integer, json!(4711.5), false),
            (Integer, json!(true), false),
            (Boolean, json!(false), true),
            (Boolean, json!(0), false),
            (Boolean, json!("true"), false),
            (StringArray, json!([]), true),
            (StringArray, json!(["a", "b"]), true),
            (StringArray, json!(["a", 1]), false),
            (StringArray, json!("a"), false),
            (StringArray, json!([["a"]]), false),
        ];
        for (t, v, ok) in cases {
            assert_eq!(t.check(&v).is_ok(), ok, "{t:?} {v}");
        }
        assert!(Integer.check(&json!(9_007_199_254_740_991_i64)).is_ok());
        assert!(Integer.check(&json!(9_007_199_254_740_992_i64)).is_err());
        assert!(Integer.check(&json!(-9_007_199_254_740_992_i64)).is_err());
        assert!(Integer.check(&json!(1e300)).is_err());
        assert_eq!(Integer.normalize(json!(4711.0)), json!(4711));
        assert_eq!(Integer.normalize(json!(-3)), json!(-3));
        assert_eq!(Number.normalize(json!(4711.0)), json!(4711.0));
        assert!(String.check(&json!("x".repeat(500))).is_ok());
        assert!(String.check(&json!("x".repeat(501))).is_err());
        // Characters, not bytes.
        assert!(String.check(&json!("é".repeat(500))).is_ok());
        assert!(StringArray.check(&json!(vec!["a"; 50])).is_ok());
        assert!(StringArray.check(&json!(vec!["a"; 51])).is_err());
        assert!(StringArray.check(&json!(["x".repeat(501)])).is_err());
        assert_eq!(
            Integer.check(&json!("4711")).unwrap_err(),
            "a value of type integer"
        );
    }

    fn attrs() -> Vec<UserAttribute> {
        vec![
            UserAttribute {
                name: "department".into(),
                scope: "profile".into(),
                value: json!("R&D"),
            },
            UserAttribute {
                name: "employee_number".into(),
                scope: "email".into(),
                value: json!(4711),
            },
            UserAttribute {
                name: "rc_roles".into(),
                scope: "profile".into(),
                value: json!(["x"]),
            },
        ]
    }

    fn released(scope: &str, settings: &ClaimSettings, release: Release) -> Map<String, Value> {
        let mut out = Map::new();
        insert_released(&mut out, &attrs(), scope, settings, release);
        out
    }

    #[test]
    fn userinfo_releases_by_scope_only() {
        let s = ClaimSettings::default();
        let profile = released("openid profile", &s, Release::Userinfo);
        assert_eq!(profile["department"], json!("R&D"));
        assert!(!profile.contains_key("employee_number"));
        let both = released("openid profile email", &s, Release::Userinfo);
        assert_eq!(both["employee_number"], json!(4711));
        assert!(released("openid", &s, Release::Userinfo).is_empty());
    }

    #[test]
    fn the_id_token_needs_the_scope_and_a_request_or_the_setting() {
        let s = ClaimSettings::default();
        let none = released("openid profile", &s, Release::IdToken { requested: &[] });
        assert!(none.is_empty());
        let asked = vec!["department".to_string(), "employee_number".to_string()];
        let by_name = released("openid profile", &s, Release::IdToken { requested: &asked });
        assert_eq!(by_name.keys().collect::<Vec<_>>(), vec!["department"]);
        let configured = ClaimSettings {
            attributes_in_id_token: true,
            ..ClaimSettings::default()
        };
        let all = released(
            "openid profile email",
            &configured,
            Release::IdToken { requested: &[] },
        );
        assert_eq!(all.len(), 3);
        assert!(
            released(
                "openid",
                &configured,
                Release::IdToken { requested: &asked }
            )
            .is_empty()
        );
    }

    #[test]
    fn a_clients_group_claims_and_claims_already_set_win() {
        let s = ClaimSettings {
            roles_claim: "rc_roles",
            ..ClaimSettings::default()
        };
        let out = released("openid profile", &s, Release::Userinfo);
        assert!(!out.contains_key("rc_roles"));
        let mut out = Map::new();
        out.insert("department".into(), json!("kept"));
        insert_released(&mut out, &attrs(), "openid profile", &s, Release::Userinfo);
        assert_eq!(out["department"], json!("kept"));
    }
}
