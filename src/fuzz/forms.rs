//! Form bodies and query strings (`Form::parse`), the token request (`token_request::parse`), the
//! authorization request (`authorize::client_id`, `authorize::validate`), client credentials
//! (`client_auth::presented`: the Basic header and the body members), the Cookie header
//! (`cookies::read`) and the userinfo Bearer header (`bearer::from_authorization`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use url::form_urlencoded;

use super::{CASES, any_text, check, one_of, tricky_text};
use crate::oidc::cookies;
use crate::protocol::authorize::{self, AuthorizeError, ClientRegistration, MAX_CLAIMS_BYTES};
use crate::protocol::bearer;
use crate::protocol::client_auth::presented;
use crate::protocol::error::ErrorCode;
use crate::protocol::form::Form;
use crate::protocol::response_mode::ResponseMode;
use crate::protocol::token_request::{self, GrantRequest};

/// Keys from a small set, so that repeats and lookups of real parameter names happen often.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => one_of(&[
            "client_id",
            "client_secret",
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "refresh_token",
            "scope",
            "state",
        ]),
        1 => any_text(6),
    ]
}

/// Pairs of any text, encoded as a browser would: the parse gives back every pair.
fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((key(), any_text(12)), 0..8)
}

fn encode(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Values the parsers look for, and values made of random escapes and separators.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        one_of(&[
            "authorization_code",
            "refresh_token",
            "password",
            "code_1",
            "rocketchat",
            "cs_x",
            ""
        ]),
        tricky_text(6),
    ]
}

/// A form body of real parameter names with near-valid values.
fn near_valid_body() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), value()), 0..8).prop_map(|ps| {
        ps.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(64),
        tricky_text(24),
        near_valid_body(),
        pairs().prop_map(|p| encode(&p))
    ]
}

#[test]
fn form_parse_never_panics_and_its_lookups_agree() {
    check(CASES, (body(), key()), |(text, name)| {
        let form = Form::parse(&text);
        let first = form.first(&name);
        match form.one(&name) {
            Ok(one) => prop_assert_eq!(one, first),
            Err(repeated) => {
                prop_assert_eq!(repeated, name.as_str());
                prop_assert!(first.is_some());
                prop_assert_eq!(form.repeated(&[name.as_str()]), Some(name.as_str()));
            }
        }
        prop_assert_eq!(form.has(&name), first.is_some_and(|v| !v.is_empty()));
        Ok(())
    });
}

#[test]
fn a_well_formed_form_body_round_trips_its_pairs() {
    check(CASES, pairs(), |pairs| {
        let form = Form::parse(&encode(&pairs));
        for (k, _) in &pairs {
            let values: Vec<&str> = pairs
                .iter()
                .filter(|(k2, v)| k2 == k && !v.is_empty())
                .map(|(_, v)| v.as_str())
                .collect();
            prop_assert_eq!(form.first(k), values.first().copied());
            prop_assert_eq!(form.one(k).is_err(), values.len() > 1);
        }
        Ok(())
    });
}

/// A token request body: a valid grant of either type plus random pairs, or any body.
fn token_body() -> impl Strategy<Value = String> {
    let grant = one_of(&[
        "grant_type=authorization_code&code=c_1&redirect_uri=https%3A%2F%2Fchat.acme.eu%2Fcb",
        "grant_type=refresh_token&refresh_token=rt_1&scope=openid",
        "grant_type=authorization_code",
        "grant_type=refresh_token",
    ]);
    prop_oneof![
        1 => body(),
        2 => (grant, near_valid_body(), any::<bool>()).prop_map(|(g, extra, before)| {
            if before { format!("{extra}&{g}") } else { format!("{g}&{extra}") }
        }),
    ]
}

#[test]
fn token_request_parse_accepts_or_names_an_rfc_error() {
    check(CASES, token_body(), |text| {
        let form = Form::parse(&text);
        match token_request::parse(&form) {
            Ok(GrantRequest::AuthorizationCode { code, .. }) => {
                prop_assert_eq!(form.one("grant_type"), Ok(Some("authorization_code")));
                prop_assert!(!code.is_empty());
            }
            Ok(GrantRequest::RefreshToken { refresh_token, .. }) => {
                prop_assert_eq!(form.one("grant_type"), Ok(Some("refresh_token")));
                prop_assert!(!refresh_token.is_empty());
            }
            Err(e) => {
                prop_assert!(
                    matches!(
                        e.code,
                        ErrorCode::InvalidRequest | ErrorCode::UnsupportedGrantType
                    ),
                    "{e:?}"
                );
                prop_assert_eq!(e.code.status(), 400);
                prop_assert!(!e.description.is_empty());
            }
        }
        Ok(())
    });
}

fn name(n: &'static str) -> Just<String> {
    Just(n.to_string())
}

const REDIRECT: &str = "https://chat.acme.eu/_oauth/clavex";

/// Authorization request parameters: real names with valid, borderline and garbage values,
/// sometimes repeated, in any order.
fn authorize_query() -> impl Strategy<Value = String> {
    let pair = prop_oneof![
        (name("client_id"), one_of(&["rocketchat", "", "other"])),
        (
            name("redirect_uri"),
            one_of(&[REDIRECT, "https://chat.acme.eu/", "", "x"])
        ),
        (
            name("response_type"),
            one_of(&["code", "token", "code id_token", ""])
        ),
        (
            name("response_mode"),
            one_of(&["query", "fragment", "form_post"])
        ),
        (
            name("scope"),
            one_of(&[
                "openid",
                "openid profile email",
                "profile",
                "openid admin",
                "openid  openid",
                "openid groups offline_access",
                ""
            ])
        ),
        (name("state"), any_text(8)),
        (
            name("nonce"),
            prop_oneof![any_text(8), Just("n".repeat(300))]
        ),
        (
            name("code_challenge"),
            prop_oneof![
                Just("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_string()),
                any_text(50)
            ]
        ),
        (
            name("code_challenge_method"),
            one_of(&["S256", "plain", "s256", ""])
        ),
        (
            name("prompt"),
            one_of(&[
                "none",
                "login",
                "consent",
                "select_account",
                "none login",
                "login  consent",
                "bogus",
                ""
            ])
        ),
        (
            name("max_age"),
            prop_oneof![
                one_of(&["0", "-1", "3600", "99999999999999999999999", "1e3", " 1"]),
                any_text(4)
            ]
        ),
        (
            name("claims"),
            prop_oneof![
                one_of(&[
                    "{}",
                    r#"{"id_token":{"email":null}}"#,
                    "[]",
                    "null",
                    "{",
                    "1"
                ]),
                Just(format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_CLAIMS_BYTES))),
                any_text(16),
            ]
        ),
        (name("login_hint"), any_text(8)),
        (name("id_token_hint"), any_text(8)),
        (name("request"), any_text(4)),
        (name("request_uri"), any_text(4)),
        (any_text(4), any_text(4)),
    ];
    // Most requests start from a valid one (for a public client too), so that the later checks
    // are reached; the extra pairs then break it, or not.
    let base = prop_oneof![
        1 => Just(vec![]),
        3 => Just(vec![
            ("client_id".to_string(), "rocketchat".to_string()),
            ("redirect_uri".to_string(), REDIRECT.to_string()),
            ("response_type".to_string(), "code".to_string()),
            ("scope".to_string(), "openid profile".to_string()),
            ("code_challenge".to_string(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_string()),
            ("code_challenge_method".to_string(), "S256".to_string()),
        ]),
    ];
    (base, prop::collection::vec(pair, 0..6), any::<bool>()).prop_map(|(base, extra, drop_pkce)| {
        let keep = if drop_pkce {
            base.len().min(4)
        } else {
            base.len()
        };
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in base.into_iter().take(keep).chain(extra) {
            s.append_pair(&k, &v);
        }
        s.finish()
    })
}

#[test]
fn authorize_validation_returns_a_request_or_a_typed_error() {
    let redirect_uris = vec![REDIRECT.to_string()];
    let grant_types = vec!["authorization_code".to_string()];
    let scopes: Vec<String> = ["openid", "profile", "email"].map(String::from).to_vec();
    let strategy = (prop_oneof![authorize_query(), body()], any::<bool>());
    check(CASES, strategy, |(query, public)| {
        let form = Form::parse(&query);
        match authorize::client_id(&form) {
            Ok(id) => prop_assert!(!id.is_empty()),
            Err(AuthorizeError::Fatal(f)) => prop_assert_eq!(f.code, "invalid_request"),
            Err(other) => prop_assert!(false, "client_id redirected: {other:?}"),
        }
        let client = ClientRegistration {
            client_id: "rocketchat",
            redirect_uris: &redirect_uris,
            grant_types: &grant_types,
            scopes: &scopes,
            public,
        };
        match authorize::validate(&form, &client) {
            Ok(req) => {
                prop_assert_eq!(req.redirect_uri.as_str(), REDIRECT);
                prop_assert!(req.scope.split(' ').any(|s| s == "openid"));
                prop_assert!(req.scope.split(' ').all(|s| scopes.iter().any(|a| a == s)));
                prop_assert!(
                    req.nonce
                        .as_ref()
                        .is_none_or(|n| n.len() <= authorize::MAX_NONCE_BYTES)
                );
                prop_assert!(
                    req.claims
                        .as_ref()
                        .is_none_or(|c| c.len() <= MAX_CLAIMS_BYTES)
                );
                prop_assert!(!(public && req.code_challenge.is_none()));
                prop_assert!(req.max_age.is_none_or(|n| n >= 0));
                // The mode answered in is the one asked for, and only a known one.
                let asked = form.first("response_mode");
                prop_assert_eq!(ResponseMode::parse(asked), Some(req.response_mode));
            }
            Err(AuthorizeError::Fatal(f)) => {
                prop_assert!(
                    matches!(f.code, "invalid_request" | "error_uri_mismatch"),
                    "{f:?}"
                );
            }
            Err(AuthorizeError::Redirect(r)) => {
                // Only ever back to the registered URI.
                prop_assert_eq!(r.redirect_uri.as_str(), REDIRECT);
                prop_assert!(r.error.code.status() == 400, "{r:?}");
                // form_post only when that is exactly what was asked, once.
                if r.response_mode == ResponseMode::FormPost {
                    prop_assert_eq!(form.one("response_mode"), Ok(Some("form_post")));
                }
            }
        }
        Ok(())
    });
}

/// Authorization header values: Basic with valid or broken base64 of id:secret, other schemes,
/// odd spacing and case, multi-byte characters around the scheme, and arbitrary text.
fn authorization() -> impl Strategy<Value = Option<String>> {
    let scheme = one_of(&[
        "Basic ", "basic ", "BASIC  ", " Basic ", "Basic", "Basicé ", "Bearer ", "Basic\t",
        "éBasic ", "",
    ]);
    let credentials = prop_oneof![
        (tricky_text(4), tricky_text(4))
            .prop_map(|(id, secret)| STANDARD.encode(format!("{id}:{secret}"))),
        tricky_text(6).prop_map(|s| STANDARD.encode(s)),
        prop::collection::vec(any::<u8>(), 0..24).prop_map(|b| STANDARD.encode(b)),
        "[A-Za-z0-9+/=:_-]{0,24}",
        any_text(12),
    ];
    prop::option::weighted(
        0.9,
        prop_oneof![
            3 => (scheme, credentials).prop_map(|(s, c)| format!("{s}{c}")),
            1 => any_text(16),
        ],
    )
}

#[test]
fn client_credentials_are_read_or_refused_with_an_oauth_error() {
    check(CASES, (authorization(), body()), |(header, text)| {
        let form = Form::parse(&text);
        match presented(header.as_deref(), &form) {
            Ok(creds) => {
                if header.is_none() {
                    prop_assert_eq!(Some(creds.client_id.as_str()), form.first("client_id"));
                    let secret: Vec<String> = form
                        .first("client_secret")
                        .map(String::from)
                        .into_iter()
                        .collect();
                    prop_assert_eq!(creds.secrets, secret);
                } else {
                    prop_assert!(
                        !creds.client_id.is_empty()
                            || !creds.secrets.is_empty()
                            || form.has("client_id")
                    );
                }
            }
            Err(e) => {
                prop_assert!(
                    matches!(e.code, ErrorCode::InvalidRequest | ErrorCode::InvalidClient),
                    "{e:?}"
                );
                prop_assert!(!e.description.is_empty());
            }
        }
        Ok(())
    });
}

#[test]
fn valid_basic_credentials_round_trip() {
    // Clavex client ids are unreserved characters and its secrets URL-safe; any text without
    // ':' that reads the same form-urldecoded round-trips.
    let id = "[A-Za-z0-9._~-]{1,24}";
    let secret = prop_oneof!["[A-Za-z0-9_-]{0,43}", any_text(16)];
    check(
        CASES,
        (id, secret, one_of(&["Basic ", "basic ", "BASIC "])),
        |(id, secret, scheme)| {
            let header = format!("{scheme}{}", STANDARD.encode(format!("{id}:{secret}")));
            let creds = presented(Some(&header), &Form::default())
                .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(creds.client_id, id);
            prop_assert_eq!(&creds.secrets[0], &secret);
            Ok(())
        },
    );
}

fn cookie_header() -> impl Strategy<Value = Option<String>> {
    let cookie = prop_oneof![
        (
            one_of(&["clavex_session", "clavex_csrf", "a", ""]),
            tricky_text(4)
        )
            .prop_map(|(n, v)| format!("{n}={v}")),
        tricky_text(6),
        any_text(12),
    ];
    prop::option::weighted(
        0.9,
        prop::collection::vec(cookie, 0..6).prop_map(|cs| cs.join("; ")),
    )
}

#[test]
fn cookie_header_read_never_panics_and_finds_set_values() {
    check(
        CASES,
        (cookie_header(), one_of(&[cookies::SESSION, cookies::CSRF])),
        |(header, name)| {
            if let Some(value) = cookies::read(header.as_deref(), &name) {
                prop_assert!(!value.is_empty());
                prop_assert!(header.as_deref().is_some_and(|h| h.contains(&value)));
            }
            Ok(())
        },
    );
    // A value Clavex set itself is read back from a header among other cookies.
    check(
        CASES,
        ("[A-Za-z0-9_-]{1,43}", cookie_header()),
        |(value, others)| {
            let header = match others {
                Some(o) if !o.is_empty() => format!("{o}; {}={value}", cookies::CSRF),
                _ => format!("{}={value}", cookies::CSRF),
            };
            let earlier = cookies::read(
                Some(header.rsplit_once("; ").map_or("", |(h, _)| h)),
                cookies::CSRF,
            );
            let read = cookies::read(Some(&header), cookies::CSRF);
            prop_assert_eq!(read, earlier.or(Some(value)));
            Ok(())
        },
    );
}

#[test]
fn bearer_header_never_panics() {
    let header = prop_oneof![
        (
            one_of(&[
                "Bearer ",
                "bearer  ",
                "Bearer",
                "Beareré ",
                "éBearer ",
                " BEARER "
            ]),
            tricky_text(4)
        )
            .prop_map(|(s, t)| format!("{s}{t}")),
        any_text(16),
    ];
    check(CASES, header, |h| {
        if let Some(token) = bearer::from_authorization(&h) {
            prop_assert!(h.trim()[..7].eq_ignore_ascii_case("bearer "));
            prop_assert_eq!(token.trim(), token.as_str());
        }
        Ok(())
    });
}
