//! The user's standard claims (OpenID Connect Core §5.1) and which of them a token or the
//! userinfo response releases: by scope (§5.4) and by the `claims` parameter (§5.5).

use serde_json::{Map, Value, json};

use crate::protocol::attributes::{Release, UserAttribute, insert_released};
use crate::protocol::groups::{GROUPS_SCOPE, GroupClaims};
use crate::protocol::scopes;
use crate::protocol::standard_claims::StandardClaims;

/// A user as the claims see it.
pub struct UserProfile<'a> {
    pub sub: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub picture: Option<&'a str>,
    pub email_verified: bool,
    pub updated_at: i64,
    /// given_name … address (protocol/standard_claims.rs).
    pub claims: &'a StandardClaims,
    /// The organization's custom attributes the user has a value for (protocol/attributes.rs).
    pub attributes: &'a [UserAttribute],
}

impl UserProfile<'_> {
    fn claim(&self, name: &str) -> Option<Value> {
        match name {
            // Rocket.Chat's field map reads `name`; a user without one shows the username.
            "name" => Some(json!(
                self.name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(self.username)
            )),
            "preferred_username" => Some(json!(self.username)),
            "picture" => self.picture.filter(|p| !p.is_empty()).map(|p| json!(p)),
            "updated_at" => Some(json!(self.updated_at)),
            "email" => Some(json!(self.email)),
            "email_verified" => Some(json!(self.email_verified)),
            // Only claims with a value: §5.4 releases what the user has, never nulls.
            other => self.claims.claim(other),
        }
    }
}

/// The names requested under `member` ("userinfo" or "id_token") of a `claims` parameter.
fn requested(claims_param: Option<&str>, member: &str) -> Vec<String> {
    claims_param
        .and_then(|text| serde_json::from_str::<Value>(text).ok())
        .and_then(|v| {
            v.get(member)
                .and_then(Value::as_object)
                .map(|o| o.keys().cloned().collect())
        })
        .unwrap_or_default()
}

/// The userinfo response: `sub` always, the claims of each granted scope, and any requested by
/// name; with the `groups` scope, the user's groups and roles at this client. Never any of the
/// keys Rocket.Chat would take for the user id (`id`, `_id`, `user_id`…): only standard claim
/// names and the client's (checked) group and role claim names are ever added.
pub fn userinfo(
    profile: &UserProfile,
    scope: &str,
    claims_param: Option<&str>,
    groups: &GroupClaims,
) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("sub".into(), json!(profile.sub));
    let by_scope = scope
        .split(' ')
        .flat_map(|s| scopes::claims_for_scope(s).iter().map(|c| c.to_string()));
    for name in by_scope.chain(requested(claims_param, "userinfo")) {
        if let Some(value) = profile.claim(&name) {
            out.insert(name, value);
        }
    }
    // Each custom attribute whose scope is granted, as a top-level claim.
    insert_released(
        &mut out,
        profile.attributes,
        scope,
        &groups.settings,
        Release::Userinfo,
    );
    if scopes::contains(scope, GROUPS_SCOPE) {
        groups.insert(&mut out);
    }
    out
}

/// Claims added to the ID token only when requested with the `claims` parameter: with the code
/// flow, profile claims belong at userinfo (Core §5.4). Groups and roles need the `groups` scope
/// and either the client's setting or a request for them by (the client's) name; custom
/// attributes their own scope and either the client's setting or a request by name.
pub fn id_token_extras(
    profile: &UserProfile,
    scope: &str,
    claims_param: Option<&str>,
    groups: &GroupClaims,
) -> Map<String, Value> {
    let mut out = Map::new();
    let names = requested(claims_param, "id_token");
    for name in &names {
        if let Some(value) = profile.claim(name) {
            out.insert(name.clone(), value);
        }
    }
    // Custom attributes: with their scope, when asked for by name or by the client's setting.
    insert_released(
        &mut out,
        profile.attributes,
        scope,
        &groups.settings,
        Release::IdToken { requested: &names },
    );
    if wants_groups_in_id_token(scope, claims_param, groups) {
        groups.insert(&mut out);
    }
    out
}

/// Whether the ID token carries groups and roles (so the user's groups must be read to sign it).
pub fn wants_groups_in_id_token(
    scope: &str,
    claims_param: Option<&str>,
    groups: &GroupClaims,
) -> bool {
    scopes::contains(scope, GROUPS_SCOPE)
        && (groups.settings.in_id_token || groups.named_in(&requested(claims_param, "id_token")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::groups::ClaimSettings;

    fn no_groups() -> GroupClaims<'static> {
        GroupClaims {
            settings: ClaimSettings::default(),
            groups: &[],
            roles: vec![],
        }
    }

    static NO_CLAIMS: StandardClaims = StandardClaims {
        given_name: None,
        family_name: None,
        middle_name: None,
        nickname: None,
        profile: None,
        website: None,
        gender: None,
        birthdate: None,
        zoneinfo: None,
        locale: None,
        phone_number: None,
        phone_number_verified: false,
        address: None,
    };

    fn alice() -> UserProfile<'static> {
        UserProfile {
            sub: "usr_1",
            username: "alice",
            email: "alice@acme.eu",
            name: Some("Alice"),
            picture: Some("https://cdn.acme.eu/a.png"),
            email_verified: true,
            updated_at: 1700000000,
            claims: &NO_CLAIMS,
            attributes: &[],
        }
    }

    fn full_claims() -> StandardClaims {
        use crate::protocol::standard_claims::{Address, TEXT_CLAIMS};
        let mut c = StandardClaims::default();
        for name in TEXT_CLAIMS {
            *c.text_mut(name).unwrap() = Some(format!("v-{name}"));
        }
        c.phone_number_verified = true;
        c.address = Some(Address {
            country: Some("FR".into()),
            ..Address::default()
        });
        c
    }

    fn keys(m: &Map<String, Value>) -> Vec<&str> {
        let mut k: Vec<&str> = m.keys().map(String::as_str).collect();
        k.sort();
        k
    }

    #[test]
    fn each_scope_releases_its_section_5_4_claims_with_a_value() {
        let claims = full_claims();
        let user = UserProfile {
            claims: &claims,
            ..alice()
        };
        let profile = userinfo(&user, "openid profile", None, &no_groups());
        assert_eq!(
            keys(&profile),
            vec![
                "birthdate",
                "family_name",
                "gender",
                "given_name",
                "locale",
                "middle_name",
                "name",
                "nickname",
                "picture",
                "preferred_username",
                "profile",
                "sub",
                "updated_at",
                "website",
                "zoneinfo",
            ]
        );
        assert_eq!(profile["zoneinfo"], "v-zoneinfo");
        let phone = userinfo(&user, "openid phone", None, &no_groups());
        assert_eq!(
            keys(&phone),
            vec!["phone_number", "phone_number_verified", "sub"]
        );
        assert_eq!(phone["phone_number_verified"], true);
        let address = userinfo(&user, "openid address", None, &no_groups());
        assert_eq!(keys(&address), vec!["address", "sub"]);
        assert_eq!(address["address"], json!({"country": "FR"}));
        // Without values, the scopes release nothing of theirs (no nulls, no false).
        for scope in ["openid phone", "openid address"] {
            assert_eq!(
                keys(&userinfo(&alice(), scope, None, &no_groups())),
                vec!["sub"]
            );
        }
        let bare = userinfo(&alice(), "openid profile", None, &no_groups());
        assert_eq!(
            keys(&bare),
            vec!["name", "picture", "preferred_username", "sub", "updated_at"]
        );
    }

    #[test]
    fn the_claims_parameter_names_new_claims_too() {
        let claims = full_claims();
        let user = UserProfile {
            claims: &claims,
            ..alice()
        };
        let p = r#"{"id_token":{"phone_number":null,"address":null,"locale":{"essential":true}},"userinfo":{"birthdate":null}}"#;
        let extras = id_token_extras(&user, "openid", Some(p), &no_groups());
        assert_eq!(keys(&extras), vec!["address", "locale", "phone_number"]);
        let info = userinfo(&user, "openid", Some(p), &no_groups());
        assert_eq!(keys(&info), vec!["birthdate", "sub"]);
        assert!(id_token_extras(&alice(), "openid", Some(p), &no_groups()).is_empty());
    }

    #[test]
    fn userinfo_releases_claims_by_scope() {
        let only_openid = userinfo(&alice(), "openid", None, &no_groups());
        assert_eq!(only_openid.keys().collect::<Vec<_>>(), vec!["sub"]);
        let all = userinfo(&alice(), "openid profile email", None, &no_groups());
        assert_eq!(all["preferred_username"], "alice");
        assert_eq!(all["email_verified"], true);
        assert_eq!(all["updated_at"], 1700000000);
        assert_eq!(all["picture"], "https://cdn.acme.eu/a.png");
        for forbidden in [
            "id",
            "_id",
            "ID",
            "user_id",
            "userid",
            "phid",
            "CharacterID",
            "result",
            "user",
        ] {
            assert!(!all.contains_key(forbidden));
        }
    }

    #[test]
    fn claims_parameter_adds_named_claims() {
        let p =
            r#"{"userinfo":{"email":null},"id_token":{"email":{"essential":true},"bogus":null}}"#;
        assert_eq!(
            userinfo(&alice(), "openid", Some(p), &no_groups())["email"],
            "alice@acme.eu"
        );
        let extras = id_token_extras(&alice(), "openid", Some(p), &no_groups());
        assert_eq!(extras["email"], "alice@acme.eu");
        assert!(!extras.contains_key("bogus"));
        assert!(id_token_extras(&alice(), "openid", None, &no_groups()).is_empty());
    }

    #[test]
    fn missing_name_falls_back_to_username_and_missing_picture_is_omitted() {
        let bob = UserProfile {
            name: None,
            picture: None,
            ..alice()
        };
        let c = userinfo(&bob, "openid profile", None, &no_groups());
        assert_eq!(c["name"], "alice");
        assert!(!c.contains_key("picture"));
    }

    #[test]
    fn groups_and_roles_need_the_groups_scope() {
        let groups = vec!["support".to_string()];
        let g = GroupClaims {
            settings: ClaimSettings {
                groups_claim: "groups",
                roles_claim: "rc_roles",
                in_id_token: false,
                attributes_in_id_token: false,
            },
            groups: &groups,
            roles: vec!["livechat-agent".into()],
        };
        let without = userinfo(&alice(), "openid profile", None, &g);
        assert!(!without.contains_key("groups") && !without.contains_key("rc_roles"));
        let with = userinfo(&alice(), "openid groups", None, &g);
        assert_eq!(with["groups"], json!(["support"]));
        assert_eq!(with["rc_roles"], json!(["livechat-agent"]));
        assert!(id_token_extras(&alice(), "openid groups", None, &g).is_empty());
        let asked = r#"{"id_token":{"rc_roles":null}}"#;
        let extras = id_token_extras(&alice(), "openid groups", Some(asked), &g);
        assert_eq!(extras["rc_roles"], json!(["livechat-agent"]));
        assert_eq!(extras["groups"], json!(["support"]));
        assert!(id_token_extras(&alice(), "openid", Some(asked), &g).is_empty());
        let configured = GroupClaims {
            settings: ClaimSettings {
                in_id_token: true,
                ..g.settings.clone()
            },
            groups: &groups,
            roles: vec![],
        };
        let extras = id_token_extras(&alice(), "openid groups", None, &configured);
        assert_eq!(extras["rc_roles"], json!([]));
    }
}
