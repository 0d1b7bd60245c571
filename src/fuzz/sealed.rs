//! Sealed values and JWTs: authorization codes (`CodeGrant::open`), the login form's state
//! (`form_state::open_state`), the keyring and AES-GCM box under both (`Keyring::open`,
//! `open_stored`), and the compact JWT of an `id_token_hint` (`id_token::parse_unverified`, the
//! pure step before the WebCrypto check).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{CASES, any_text, check, tricky_text};
use crate::crypto::{self, b64url, b64url_decode};
use crate::oidc::form_state::{
    FormState, Interaction, StateError, Step, StepKind, open_state, seal_state,
};
use crate::protocol::authorize::{AuthorizeRequest, Prompt};
use crate::protocol::code::{CodeGrant, redirect_uri_hash};
use crate::protocol::id_token::{assemble, parse_unverified, signing_input};
use crate::protocol::response_mode::ResponseMode;

static KEYS: std::sync::LazyLock<crypto::Keyring> = std::sync::LazyLock::new(|| {
    crypto::Keyring::new("a long worker secret for property tests", &[]).unwrap()
});
const SECRET: &std::sync::LazyLock<crypto::Keyring> = &KEYS;
const ORG: &str = "acme";
/// The HKDF purposes of protocol/code.rs and oidc/form_state.rs, to seal arbitrary plaintexts
/// exactly as they would be (checked against the real seal in each test).
const CODE_PURPOSE: &str = "authorization-codes";
const STATE_PURPOSE: &str = "sign-in-forms/v2";

fn opt_text(max: usize) -> impl Strategy<Value = Option<String>> {
    prop::option::of(any_text(max))
}

fn grant() -> impl Strategy<Value = CodeGrant> {
    (
        (any_text(24), any_text(24), any_text(40), any_text(48)),
        (opt_text(64), opt_text(64), opt_text(64), opt_text(24)),
        (
            0..=i64::from(u32::MAX),
            0..=i64::from(u32::MAX),
            0u8..3,
            prop::option::of(0..=i64::MAX),
        ),
    )
        .prop_map(
            |(
                (client_id, redirect, scope, user_id),
                (nonce, code_challenge, claims, sid),
                (auth_time, issued_at, acr, session_started_ms),
            )| CodeGrant {
                factors: 1,
                acr: crate::protocol::acr::from_byte(acr),
                client_id,
                redirect_uri_hash: redirect_uri_hash(&redirect),
                scope,
                nonce,
                code_challenge,
                user_id,
                auth_time,
                issued_at,
                claims,
                sid,
                session_started_ms,
            },
        )
}

/// A change to a sealed value's text: flip one bit of its bytes, cut it, extend it, or replace a
/// character.
#[derive(Debug, Clone)]
enum Tamper {
    FlipBit(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Extend(String),
    Replace(prop::sample::Index, char),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Tamper::FlipBit(i, b)),
        any::<prop::sample::Index>().prop_map(Tamper::Truncate),
        prop_oneof!["[A-Za-z0-9_-]{1,8}", tricky_text(3)].prop_map(Tamper::Extend),
        (
            any::<prop::sample::Index>(),
            prop_oneof![prop::char::range('-', 'z'), any::<char>()]
        )
            .prop_map(|(i, c)| Tamper::Replace(i, c)),
    ]
}

fn apply(sealed: &str, t: &Tamper) -> String {
    match t {
        Tamper::FlipBit(i, bit) => {
            // A bit of the box; the key id in front is changed by Replace and Truncate.
            let (id, boxed) = sealed
                .split_once('.')
                .expect("a sealed value names its key");
            let mut raw = b64url_decode(boxed).expect("a sealed box is base64url");
            let i = i.index(raw.len());
            raw[i] ^= 1 << bit;
            format!("{id}.{}", b64url(&raw))
        }
        Tamper::Truncate(i) => sealed[..i.index(sealed.len())].to_string(),
        Tamper::Extend(tail) => format!("{sealed}{tail}"),
        Tamper::Replace(i, c) => {
            let mut chars: Vec<char> = sealed.chars().collect();
            let i = i.index(chars.len());
            chars[i] = *c;
            chars.into_iter().collect()
        }
    }
}

#[test]
fn a_sealed_code_opens_to_what_was_sealed() {
    check(CASES, grant(), |g| {
        let code = g.seal(SECRET, ORG);
        prop_assert_eq!(CodeGrant::open(&code, SECRET, ORG), Some(g));
        prop_assert_eq!(CodeGrant::open(&code, SECRET, "other"), None);
        Ok(())
    });
}

#[test]
fn a_tampered_code_never_opens() {
    check(CASES, (grant(), tamper()), |(g, t)| {
        let code = g.seal(SECRET, ORG);
        let altered = apply(&code, &t);
        if altered != code {
            prop_assert_eq!(
                CodeGrant::open(&altered, SECRET, ORG),
                None,
                "{:?} opened",
                t
            );
        }
        Ok(())
    });
}

#[test]
fn arbitrary_codes_and_sealed_garbage_never_panic() {
    check(
        CASES,
        prop_oneof![any_text(64), tricky_text(16), "[A-Za-z0-9_-]{0,400}"],
        |text| {
            prop_assert_eq!(CodeGrant::open(&text, SECRET, ORG), None);
            prop_assert_eq!(SECRET.open(CODE_PURPOSE, &text, ORG.as_bytes()), None);
            Ok(())
        },
    );
    // Correctly sealed plaintexts that are not records (random bytes, a real record with bytes
    // flipped, cut or added) reach the record decoder itself: it must refuse or decode, never
    // panic, and whatever it decodes must seal and open again to the same record.
    let plaintext = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..96),
        (
            grant(),
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 0..3)
        )
            .prop_map(move |(g, flips, cut, tail)| {
                let mut record = SECRET
                    .open(CODE_PURPOSE, &g.seal(SECRET, ORG), ORG.as_bytes())
                    .expect("a real code opens");
                for (i, byte) in flips {
                    let i = i.index(record.len());
                    record[i] = byte;
                }
                let keep = record.len() - cut.index(record.len().min(8) + 1).min(record.len());
                record.truncate(keep);
                record.extend(tail);
                record
            }),
    ];
    check(CASES, plaintext, |bytes| {
        let code = SECRET.seal(CODE_PURPOSE, &bytes, ORG.as_bytes());
        if let Some(g) = CodeGrant::open(&code, SECRET, ORG) {
            prop_assert_eq!(CodeGrant::open(&g.seal(SECRET, ORG), SECRET, ORG), Some(g));
        }
        Ok(())
    });
}

fn request() -> impl Strategy<Value = AuthorizeRequest> {
    (
        (any_text(16), any_text(32), any_text(24), opt_text(16)),
        (
            opt_text(16),
            opt_text(43),
            any::<(bool, bool, bool)>(),
            prop::option::of(any::<i64>()),
        ),
        (opt_text(16), opt_text(32), opt_text(32), any::<bool>()),
    )
        .prop_map(
            |(
                (client_id, redirect_uri, scope, state),
                (nonce, code_challenge, (none, login, consent), max_age),
                (login_hint, id_token_hint, claims, form_post),
            )| AuthorizeRequest {
                client_id,
                redirect_uri,
                scope,
                state,
                nonce,
                code_challenge,
                prompt: Prompt {
                    none,
                    login,
                    consent,
                },
                max_age,
                login_hint,
                id_token_hint,
                claims,
                acr_values: None,
                response_mode: if form_post {
                    ResponseMode::FormPost
                } else {
                    ResponseMode::Query
                },
            },
        )
}

fn login_state(req: &AuthorizeRequest, csrf: &str, now: i64) -> FormState {
    FormState {
        step: Step::Login,
        interaction: Some(Interaction {
            request: req.clone(),
            hint_sub: None,
            idp_hint: None,
            link: None,
        }),
        authenticated: None,
        session: None,
        csrf: csrf.to_string(),
        expires_at: now + crate::protocol::lifetimes::LOGIN_FORM_SECONDS,
    }
}

#[test]
fn the_login_state_round_trips_and_refuses_tampering() {
    let csrf = "[A-Za-z0-9_-]{1,43}";
    check(
        CASES,
        (request(), csrf, 0i64..4_000_000_000, tamper()),
        |(req, csrf, now, t)| {
            let sealed = seal_state(SECRET, ORG, &login_state(&req, &csrf, now));
            let state = open_state(
                SECRET,
                ORG,
                &sealed,
                Some(&csrf),
                Some(&csrf),
                now,
                StepKind::Login,
            )
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(&state.interaction.as_ref().unwrap().request, &req);
            prop_assert_eq!(state.csrf, csrf.clone());
            let altered = apply(&sealed, &t);
            if altered != sealed {
                prop_assert_eq!(
                    open_state(
                        SECRET,
                        ORG,
                        &altered,
                        Some(&csrf),
                        Some(&csrf),
                        now,
                        StepKind::Login
                    )
                    .err(),
                    Some(StateError::Invalid)
                );
            }
            Ok(())
        },
    );
}

#[test]
fn arbitrary_login_states_are_refused_with_a_state_error() {
    // Sealed JSON that is not a login state (or is one with odd members) reaches the decoder.
    let plaintext = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        any_text(32).prop_map(String::into_bytes),
        (
            request(),
            any_text(8),
            any::<i64>(),
            prop::sample::select(&["interaction", "step", "csrf", "expires_at", "x"][..]),
            any_text(6)
        )
            .prop_map(|(req, csrf, exp, member, v)| {
                let mut state = json!({"step": "Login", "interaction": {"request": req, "hint_sub": null},
                    "authenticated": null, "session": null, "csrf": csrf, "expires_at": exp});
                state[member] = Value::String(v);
                state.to_string().into_bytes()
            }),
    ];
    let text = prop_oneof![any_text(48), "[A-Za-z0-9_-]{0,200}"];
    let sealed = prop_oneof![
        text,
        plaintext.prop_map(move |p| SECRET.seal(STATE_PURPOSE, &p, ORG.as_bytes()))
    ];
    check(
        CASES,
        (
            sealed,
            prop::option::of(any_text(6)),
            prop::option::of(any_text(6)),
        ),
        |(sealed, cookie, field)| {
            // A refusal is a `StateError`; an acceptance only with both tokens equal to the
            // sealed one and before the expiry.
            if let Ok(state) = open_state(
                SECRET,
                ORG,
                &sealed,
                cookie.as_deref(),
                field.as_deref(),
                0,
                StepKind::Login,
            ) {
                prop_assert_eq!(cookie.as_deref(), Some(state.csrf.as_str()));
                prop_assert_eq!(field.as_deref(), Some(state.csrf.as_str()));
                prop_assert!(state.expires_at >= 0);
            }
            Ok(())
        },
    );
}

/// A base64url segment of random bytes, of JSON, or of garbage text.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..48).prop_map(|b| b64url(&b)),
        super::admin::json_value().prop_map(|v| b64url(v.to_string().as_bytes())),
        "[A-Za-z0-9_=+/-]{0,40}",
        tricky_text(4),
    ]
}

fn header() -> impl Strategy<Value = String> {
    let alg = prop_oneof![
        6 => Just(json!("RS256")),
        1 => Just(json!("HS256")),
        1 => Just(json!("none")),
        1 => Just(json!(1)),
        1 => Just(Value::Null),
    ];
    let kid = prop_oneof![
        any_text(8).prop_map(Value::String),
        Just(json!(5)),
        Just(Value::Null)
    ];
    (alg, kid, any::<bool>()).prop_map(|(alg, kid, typ)| {
        let mut h = json!({"alg": alg, "kid": kid});
        if typ {
            h["typ"] = json!("JWT");
        }
        b64url(h.to_string().as_bytes())
    })
}

fn claims() -> impl Strategy<Value = Value> {
    let time = prop_oneof![
        (0i64..4_000_000_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any_text(4).prop_map(Value::String)
    ];
    (
        any_text(12),
        any_text(12),
        prop::option::of(time.clone()),
        prop::option::of(time),
    )
        .prop_map(|(sub, aud, exp, iat)| {
            let mut c = json!({"iss": "https://id.acme.eu/acme", "sub": sub, "aud": aud});
            if let Some(exp) = exp {
                c["exp"] = exp;
            }
            if let Some(iat) = iat {
                c["iat"] = iat;
            }
            c
        })
}

#[test]
fn id_token_hints_parse_or_are_refused_without_panicking() {
    let token = prop_oneof![
        1 => any_text(64),
        1 => prop::collection::vec(segment(), 0..5).prop_map(|s| s.join(".")),
        1 => (header(), segment(), segment()).prop_map(|(h, c, s)| format!("{h}.{c}.{s}")),
        3 => (header(), claims(), prop_oneof![
            3 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| b64url(&b)),
            1 => segment(),
        ])
            .prop_map(|(h, c, s)| format!("{h}.{}.{s}", b64url(c.to_string().as_bytes()))),
    ];
    check(CASES, token, |token| {
        if let Some(jwt) = parse_unverified(&token) {
            let prefix = format!("{}.", jwt.signing_input);
            prop_assert!(
                token.starts_with(&prefix),
                "signing input {} of {}",
                prefix,
                token
            );
            prop_assert_eq!(
                Some(jwt.signature),
                token.rsplit_once('.').and_then(|(_, s)| b64url_decode(s))
            );
        }
        Ok(())
    });
}

#[test]
fn a_signed_id_token_parses_back_to_its_claims() {
    let signature = prop::collection::vec(any::<u8>(), 0..300);
    check(
        CASES,
        ("[A-Za-z0-9_-]{1,43}", any_text(16), any_text(16), signature),
        |(kid, sub, aud, sig)| {
            let claims = json!({
                "iss": "https://id.acme.eu/acme", "sub": sub, "aud": aud,
                "iat": 1_764_000_000, "exp": 1_764_000_300,
            });
            let input = signing_input(&kid, &claims);
            let jwt = parse_unverified(&assemble(&input, &sig))
                .ok_or_else(|| TestCaseError::fail("did not parse"))?;
            prop_assert_eq!(jwt.kid, Some(kid));
            prop_assert_eq!(&jwt.claims["sub"], &claims["sub"]);
            prop_assert_eq!(&jwt.claims["aud"], &claims["aud"]);
            prop_assert_eq!(&jwt.claims["iss"], &claims["iss"]);
            prop_assert_eq!(jwt.signing_input, input);
            prop_assert_eq!(jwt.signature, sig);
            Ok(())
        },
    );
}

/// Stored sealed values (signing keys, TOTP secrets) through the keyring: whatever text a row
/// holds, opening never panics, never opens garbage, and any id read from it that reaches a log
/// is bounded; a tampered real value is refused, never opened to something else.
#[test]
fn stored_values_open_only_as_sealed_and_report_garbage_boundedly() {
    let rotating = crypto::Keyring::new(
        "the current secret for property tests",
        &["a long worker secret for property tests"],
    )
    .unwrap();
    check(
        CASES,
        prop_oneof![any_text(64), tricky_text(16), "[A-Za-z0-9_.-]{0,120}"],
        |text| {
            match rotating.open_stored("totp-secrets", &text, b"usr_1") {
                Ok(opened) => prop_assert!(false, "garbage opened: {:?}", opened),
                Err(crypto::keyring::Unreadable::UnknownKey(id)) => {
                    prop_assert!(id.len() <= crypto::keyring::KEY_ID_CHARS);
                    prop_assert!(
                        id.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    );
                }
                Err(_) => {}
            }
            Ok(())
        },
    );
    check(
        CASES,
        (prop::collection::vec(any::<u8>(), 0..64), tamper()),
        |(secret, t)| {
            let sealed = SECRET.seal("totp-secrets", &secret, b"usr_1");
            let opened = rotating
                .open_stored("totp-secrets", &sealed, b"usr_1")
                .unwrap();
            prop_assert_eq!(&opened.plaintext, &secret);
            let resealed = opened.resealed.expect("sealed under the previous secret");
            prop_assert!(rotating.is_current(&resealed));
            let altered = apply(&sealed, &t);
            if altered != sealed {
                prop_assert!(
                    rotating
                        .open_stored("totp-secrets", &altered, b"usr_1")
                        .is_err()
                );
            }
            Ok(())
        },
    );
}
