//! The admin API's JSON bodies: the media type and length checks (`body::is_json`,
//! `body::check_declared_length`), the JSON parse (`body::parse`), the member reader
//! (`Fields::new` and its typed getters), the settings readers over whole bodies
//! (`clients::settings` / `changes`, `users::new_user` / `profile_changes`, `organizations::new_org`), the
//! validators one by one, and the users list's query string (`users::list_query`).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{CASES, any_text, check, one_of, tricky_text, typed_api_error};
use crate::admin::body::{self, MAX_BODY};
use crate::admin::clients::{changes, settings};
use crate::admin::fields::Fields;
use crate::admin::organizations::new_org;
use crate::admin::users::{MAX_PAGE, list_query, new_user, profile_changes};
use crate::admin::validate;

/// The members each body may have, as the endpoints define them (so the properties follow them).
const CLIENT_FIELDS: &[&str] = crate::admin::clients::FIELDS;
const USER_FIELDS: &[&str] = crate::admin::users::CREATE_FIELDS;

/// An organization's create body: its slug and every setting.
fn org_fields() -> &'static [&'static str] {
    Vec::leak([&["slug"][..], crate::admin::organizations::SETTINGS].concat())
}

/// Strings a validator may meet: valid values of every kind, near misses and garbage.
fn field_string() -> impl Strategy<Value = String> {
    prop_oneof![
        one_of(&[
            "https://chat.acme.eu/_oauth/clavex",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb",
            "http://[::1]/cb",
            "http://chat.acme.eu/cb",
            "https://chat.acme.eu/cb#frag",
            "https:chat.acme.eu",
            "https://",
            "https://[::1",
            "HTTPS://UPPER.example/",
            "openid",
            "profile",
            "authorization_code",
            "refresh_token",
            "client_secret_post",
            "none",
            "groups",
            "roles",
            "sub",
            "staff",
            "Staff",
            "alice",
            "alice@acme.eu",
            "a@b",
            "@acme.eu",
            "#1a2b3c",
            "#1A2B3",
            "#é2b3c",
            "acme",
            "api",
            "Rocket.Chat",
            "1990-07-14",
            "0000-02-29",
            "1990-02-29",
            "1990",
            "Europe/Paris",
            "europe/paris",
            "en-US",
            "zh-Hant-TW",
            "en_US",
            "+14255551212",
            "+1 425 555 1212",
            "http://jane.example/",
            "1 Main St\r\nApt 2",
            "  ",
            "",
        ]),
        tricky_text(6),
        any_text(16),
        Just("x".repeat(3000)),
    ]
}

/// Any JSON value, nested a few levels, with strings from `field_string`.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        field_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((one_of(&["group", "role", "x"]), inner), 0..3)
                .prop_map(|ms| Value::Object(ms.into_iter().collect())),
        ]
    })
}

/// A near-valid member value: mostly the JSON types the members take, sometimes anything.
fn member_value() -> impl Strategy<Value = Value> {
    let mapping =
        (field_string(), field_string()).prop_map(|(g, r)| json!({"group": g, "role": r}));
    prop_oneof![
        3 => field_string().prop_map(Value::String),
        2 => prop::collection::vec(field_string(), 0..4).prop_map(|v| json!(v)),
        1 => prop::collection::vec(mapping, 0..3).prop_map(Value::Array),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => json_value(),
    ]
}

/// A body object with members named from `names` (and sometimes an unknown one).
fn body_object(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let name = prop_oneof![8 => one_of(names), 1 => any_text(8)];
    prop::collection::vec((name, member_value()), 0..8).prop_map(|ms| {
        let map: Map<String, Value> = ms.into_iter().collect();
        Value::Object(map)
    })
}

/// `base` (the required members, valid) plus a few random members that do not replace them,
/// or a body of random members only.
fn body_with(names: &'static [&'static str], base: Value) -> impl Strategy<Value = Value> {
    let extra = prop::collection::vec(
        (
            prop_oneof![8 => one_of(names), 1 => any_text(8)],
            member_value(),
        ),
        0..3,
    );
    prop_oneof![
        1 => body_object(names),
        3 => extra.prop_map(move |ms| {
            let mut body = base.clone();
            for (k, v) in ms {
                if body.get(&k).is_none() {
                    body[k] = v;
                }
            }
            body
        }),
    ]
}

fn body_text() -> impl Strategy<Value = String> {
    prop_oneof![
        body_object(CLIENT_FIELDS).prop_map(|v| v.to_string()),
        json_value().prop_map(|v| v.to_string()),
        // Truncated or extended JSON.
        (
            body_object(USER_FIELDS),
            any::<prop::sample::Index>(),
            tricky_text(2)
        )
            .prop_map(|(v, i, tail)| {
                let text = v.to_string();
                let cut = (0..=text.len())
                    .filter(|c| text.is_char_boundary(*c))
                    .collect::<Vec<_>>();
                format!("{}{tail}", &text[..cut[i.index(cut.len())]])
            }),
        any_text(32),
        tricky_text(16),
        Just(format!("\"{}\"", "x".repeat(MAX_BODY))),
        Just("[".repeat(200)),
    ]
}

#[test]
fn body_parse_gives_json_or_a_400_or_413() {
    check(CASES, body_text(), |text| {
        match body::parse(&text) {
            Ok(value) => prop_assert!(
                text.len() <= MAX_BODY && serde_json::from_str::<Value>(&text).ok() == Some(value)
            ),
            Err(e) => {
                typed_api_error(&e)?;
                prop_assert!(matches!(e.status, 400 | 413), "{e:?}");
            }
        }
        Ok(())
    });
}

#[test]
fn body_parse_round_trips_json_without_floats() {
    let value = body_object(CLIENT_FIELDS).prop_map(without_floats);
    check(CASES, value, |v| {
        prop_assert_eq!(body::parse(&v.to_string()).ok(), Some(v));
        Ok(())
    });
}

/// Floats need not print and parse back to the same bits; every other JSON value does.
fn without_floats(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => Value::from(n.as_f64().unwrap_or_default() as i64),
        Value::Array(items) => Value::Array(items.into_iter().map(without_floats).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, without_floats(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn media_type_and_declared_length_checks_never_panic() {
    let content_type = prop_oneof![
        (
            one_of(&[
                "application/json",
                "Application/JSON",
                " application/json ",
                "application/jsonp",
                "text/plain",
                ""
            ]),
            tricky_text(3)
        )
            .prop_map(|(t, rest)| format!("{t}{rest}")),
        any_text(24),
    ];
    check(CASES, prop::option::of(content_type), |ct| {
        if body::is_json(ct.as_deref()) {
            let mime = ct
                .as_deref()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default();
            prop_assert!(mime.trim().eq_ignore_ascii_case("application/json"));
        }
        Ok(())
    });
    let length = prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        (0..=2 * MAX_BODY).prop_map(|n| format!(" {n} ")),
        one_of(&["", "-1", "+5", "1e3", "0x10", "99999999999999999999999"]),
        any_text(8),
    ];
    check(CASES, prop::option::of(length), |cl| {
        match body::check_declared_length(cl.as_deref()) {
            Ok(()) => prop_assert!(
                cl.as_deref()
                    .is_none_or(|v| v.trim().parse::<u64>().is_ok_and(|n| n <= MAX_BODY as u64))
            ),
            Err(e) => {
                typed_api_error(&e)?;
                prop_assert!(matches!(e.status, 400 | 413), "{e:?}");
            }
        }
        Ok(())
    });
}

#[test]
fn fields_refuse_non_objects_and_unknown_members_by_name() {
    let body = prop_oneof![json_value(), body_object(CLIENT_FIELDS)];
    check(CASES, body, |body| {
        let unknown = body.as_object().and_then(|m| {
            m.keys()
                .find(|k| !CLIENT_FIELDS.contains(&k.as_str()))
                .cloned()
        });
        match Fields::new(body.clone(), CLIENT_FIELDS) {
            Ok(fields) => {
                prop_assert!(body.is_object() && unknown.is_none());
                // Every typed getter on every member: a value, or an error naming the member.
                for name in CLIENT_FIELDS {
                    for err in [
                        fields.string(name).err(),
                        fields.string_patch(name).err(),
                        fields.bool(name).err(),
                        fields.string_list(name).err(),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        typed_api_error(&err)?;
                        prop_assert_eq!(err.field.as_deref(), Some(*name));
                    }
                }
            }
            Err(e) => {
                typed_api_error(&e)?;
                match (body.is_object(), unknown) {
                    (false, _) => prop_assert_eq!(e.error, "invalid_request"),
                    (true, Some(_)) => {
                        let named = e.field.clone().unwrap_or_default();
                        prop_assert!(!CLIENT_FIELDS.contains(&named.as_str()), "{e:?}");
                    }
                    (true, None) => prop_assert!(false, "refused a body of known members: {e:?}"),
                }
            }
        }
        Ok(())
    });
}

/// An error from a settings reader names one of the body's members (or a required one).
fn names_a_member(
    err: &crate::admin::error::ApiError,
    allowed: &[&str],
) -> Result<(), TestCaseError> {
    typed_api_error(err)?;
    prop_assert_eq!(err.error, "invalid_field");
    let field = err.field.as_deref().unwrap_or_default();
    prop_assert!(allowed.contains(&field), "{err:?} names no known member");
    Ok(())
}

#[test]
fn client_settings_are_read_or_refused_naming_the_member() {
    let client = json!({
        "client_name": "Rocket.Chat",
        "redirect_uris": ["https://chat.acme.eu/_oauth/clavex"],
    });
    check(
        CASES,
        (body_with(CLIENT_FIELDS, client), any::<bool>()),
        |(body, patch)| {
            let Ok(fields) = Fields::new(body, CLIENT_FIELDS) else {
                return Ok(());
            };
            if patch {
                // A PATCH: every member sent is validated, and written exactly when sent.
                match changes(&fields) {
                    Ok(c) => {
                        let columns = c.assignments("h").columns();
                        for member in ["client_name", "redirect_uris", "require_mfa", "scopes"] {
                            prop_assert_eq!(
                                columns.contains(&member),
                                fields.value(member).is_some(),
                                "{}",
                                member
                            );
                        }
                        if let (Some(g), Some(r)) = (&c.groups_claim, &c.roles_claim) {
                            prop_assert!(!g.eq_ignore_ascii_case(r));
                        }
                    }
                    Err(e) => names_a_member(&e, CLIENT_FIELDS)?,
                }
                return Ok(());
            }
            match settings(&fields) {
                Ok(s) => {
                    prop_assert!(!s.redirect_uris.is_empty());
                    prop_assert!(s.grant_types.iter().any(|g| g == "authorization_code"));
                    prop_assert!(!s.client_name.is_empty());
                    prop_assert!(!s.groups_claim.eq_ignore_ascii_case(&s.roles_claim));
                }
                Err(e) => names_a_member(&e, CLIENT_FIELDS)?,
            }
            Ok(())
        },
    );
}

#[test]
fn user_and_organization_bodies_are_read_or_refused_naming_the_member() {
    let user = json!({"username": "alice", "email": "alice@acme.eu"});
    check(CASES, body_with(USER_FIELDS, user), |body| {
        let Ok(fields) = Fields::new(body, USER_FIELDS) else {
            return Ok(());
        };
        match new_user(&fields, "acme", "usr_1".into(), 1000) {
            Ok(mut user) => {
                prop_assert!(validate::username("username", &user.username).is_ok());
                prop_assert!(validate::email("email", &user.email).is_ok());
                // Applying the same body again as a PATCH changes nothing.
                let before = format!("{user:?}");
                profile_changes(&fields)
                    .map_err(|e| TestCaseError::fail(format!("{e:?}")))?
                    .apply(&mut user);
                prop_assert_eq!(before, format!("{user:?}"));
            }
            Err(e) => names_a_member(&e, USER_FIELDS)?,
        }
        Ok(())
    });
    check(
        CASES,
        body_with(org_fields(), json!({"slug": "acme", "name": "Acme"})),
        |body| {
            let Ok(fields) = Fields::new(body, org_fields()) else {
                return Ok(());
            };
            match new_org(&fields, 1000) {
                Ok(org) => prop_assert!(validate::slug("slug", &org.slug).is_ok()),
                Err(e) => names_a_member(&e, org_fields())?,
            }
            Ok(())
        },
    );
}

#[test]
fn every_validator_accepts_or_names_its_field() {
    type Rule = fn(&str, &str) -> Result<String, crate::admin::error::ApiError>;
    const RULES: &[Rule] = &[
        validate::slug,
        validate::display_name,
        validate::https_url,
        validate::redirect_uri,
        validate::color,
        validate::client_id,
        validate::auth_method,
        validate::username,
        validate::email,
        validate::password,
        validate::group_name,
        validate::claim_name,
        validate::http_url,
        crate::admin::standard_claims::birthdate,
        crate::admin::standard_claims::zoneinfo,
        crate::admin::standard_claims::locale,
        crate::admin::standard_claims::phone_number,
        crate::admin::standard_claims::gender,
    ];
    check(
        CASES,
        (field_string(), any::<prop::sample::Index>()),
        |(value, rule)| {
            let rule = RULES[rule.index(RULES.len())];
            match rule("member", &value) {
                // What a validator returns passes it again (stored values are re-validated on PATCH).
                Ok(stored) => prop_assert!(rule("member", &stored).is_ok()),
                Err(e) => {
                    typed_api_error(&e)?;
                    prop_assert_eq!(e.field.as_deref(), Some("member"));
                }
            }
            Ok(())
        },
    );
    let list = prop::collection::vec(field_string(), 0..5);
    check(CASES, (list, json_value()), |(values, mapping)| {
        for result in [
            validate::redirect_uris("member", &values, false),
            validate::redirect_uris("member", &values, true),
            validate::subset("member", &values, validate::SCOPES),
            validate::grant_types("member", &values),
            validate::group_names("member", &values),
        ] {
            if let Err(e) = result {
                typed_api_error(&e)?;
                prop_assert_eq!(e.field.as_deref(), Some("member"));
            }
        }
        if let Err(e) = validate::role_mappings("member", &mapping) {
            typed_api_error(&e)?;
            prop_assert_eq!(e.field.as_deref(), Some("member"));
        }
        match crate::admin::standard_claims::address("member", &mapping) {
            // What is stored is accepted again, as it is when a PATCH sends it back.
            Ok(stored) => prop_assert!(
                crate::admin::standard_claims::address("member", &serde_json::json!(stored))
                    .is_ok_and(|again| again == stored)
            ),
            Err(e) => {
                typed_api_error(&e)?;
                prop_assert_eq!(e.field.as_deref(), Some("member"));
            }
        }
        Ok(())
    });
}

#[test]
fn addresses_are_read_or_refused_naming_the_member() {
    use crate::admin::standard_claims::address;
    let member = (
        one_of(&[
            "formatted",
            "street_address",
            "locality",
            "region",
            "postal_code",
            "country",
            "street",
            "",
        ]),
        prop_oneof![
            4 => field_string().prop_map(Value::String),
            1 => Just(Value::Null),
            1 => any::<i64>().prop_map(Value::from),
        ],
    );
    let object = prop::collection::vec(member, 0..5)
        .prop_map(|ms| Value::Object(ms.into_iter().collect::<Map<String, Value>>()));
    check(CASES, object, |value| {
        match address("address", &value) {
            Ok(stored) => {
                prop_assert!(!stored.is_empty());
                let again = address("address", &json!(stored));
                prop_assert!(again.is_ok_and(|a| a == stored));
            }
            Err(e) => {
                typed_api_error(&e)?;
                prop_assert_eq!(e.field.as_deref(), Some("address"));
            }
        }
        Ok(())
    });
}

#[test]
fn users_list_query_is_read_or_refused_on_limit() {
    let pair = prop_oneof![
        (
            one_of(&["limit"]),
            prop_oneof![
                (0u32..=2 * MAX_PAGE).prop_map(|n| n.to_string()),
                one_of(&["-1", "1e2", " 5", "99999999999"]),
                tricky_text(2)
            ]
        ),
        (
            one_of(&["cursor", "username", "email", "group"]),
            tricky_text(4)
        ),
        (tricky_text(2), tricky_text(2)),
    ];
    let query = prop_oneof![
        prop::collection::vec(pair, 0..6).prop_map(|ps| ps
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")),
        any_text(24),
    ];
    check(CASES, query, |q| {
        let Ok(url) = url::Url::parse(&format!(
            "https://id.acme.eu/api/v1/organizations/acme/users?{q}"
        )) else {
            return Ok(());
        };
        match list_query(&url) {
            Ok((_, _, limit)) => prop_assert!((1..=MAX_PAGE).contains(&limit)),
            Err(e) => {
                typed_api_error(&e)?;
                prop_assert_eq!(e.field.as_deref(), Some("limit"));
            }
        }
        Ok(())
    });
}
