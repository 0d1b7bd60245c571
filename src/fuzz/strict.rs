//! The parsers of untrusted input added with strict input, throttling and the audit trail: the
//! admin body's UTF-8 decode and nesting scan (`body::decode`, `body::too_deep`), the Origin /
//! Referer check (`origin::same_origin`), the password policy (`password_policy::check`), the
//! events list's query string (`audit::parse_query`) and repeated-parameter detection
//! (`Form::any_repeated`).

use proptest::prelude::*;

use super::{CASES, any_text, check, tricky_text};
use crate::admin::body;
use crate::protocol::audit::{MAX_PAGE, parse_query};
use crate::protocol::form::Form;
use crate::protocol::origin::{origin_of, same_origin};
use crate::protocol::password_policy::{self, MAX_CHARS, MIN_CHARS, Weak};

#[test]
fn any_bytes_decode_to_the_same_text_or_a_400() {
    check(CASES, prop::collection::vec(any::<u8>(), 0..256), |bytes| {
        match body::decode(&bytes) {
            Ok(text) => prop_assert_eq!(text.as_bytes(), &bytes[..]),
            Err(e) => {
                prop_assert!(std::str::from_utf8(&bytes).is_err());
                prop_assert_eq!((e.status, e.error), (400, "invalid_request"));
            }
        }
        Ok(())
    });
}

#[test]
fn nesting_is_refused_naming_a_member_of_the_body_or_none() {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        "[a-z]{1,4}",
    ];
    check(CASES, prop::collection::vec(piece, 0..80), |pieces| {
        let text: String = pieces.concat();
        // Never panics; when it refuses, `parse` answers 400 (naming the member when there is one).
        if body::too_deep(&text).is_some() {
            let e = body::parse(&text).unwrap_err();
            prop_assert_eq!(e.status, 400);
        }
        Ok(())
    });
}

#[test]
fn origin_checks_never_panic_and_refuse_other_origins() {
    check(
        CASES,
        (any_text(40), tricky_text(6)),
        |(origin, referer)| {
            let ours = "https://id.acme.eu";
            let allowed = same_origin(Some(&origin), Some(&referer), ours);
            // A present Origin decides alone, and only our own origin passes.
            if !origin.trim().is_empty() {
                prop_assert_eq!(allowed, origin_of(origin.trim()).as_deref() == Some(ours));
            }
            Ok(())
        },
    );
}

#[test]
fn the_password_policy_accepts_exactly_what_its_rules_allow() {
    check(CASES, any_text(300), |password| {
        let chars = password_policy::normalize(&password).chars().count();
        match password_policy::check(&password) {
            Ok(normalized) => {
                prop_assert!((MIN_CHARS..=MAX_CHARS).contains(&normalized.chars().count()));
                prop_assert!(!password_policy::is_common(&normalized));
            }
            Err(Weak::TooShort) => prop_assert!(chars < MIN_CHARS),
            Err(Weak::TooLong) => prop_assert!(chars > MAX_CHARS),
            Err(Weak::Common) => prop_assert!(password_policy::is_common(
                &password_policy::normalize(&password)
            )),
        }
        Ok(())
    });
}

#[test]
fn events_queries_are_read_or_refused_naming_the_parameter() {
    check(CASES, tricky_text(12), |query| {
        let pairs = url::form_urlencoded::parse(query.as_bytes()).into_owned();
        match parse_query(pairs) {
            Ok(q) => prop_assert!((1..=MAX_PAGE).contains(&q.limit)),
            Err((field, message)) => {
                prop_assert!(!message.is_empty());
                let names: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
                    .map(|(k, _)| k.into_owned())
                    .collect();
                prop_assert!(names.contains(&field), "{} not among {:?}", field, names);
            }
        }
        Ok(())
    });
}

#[test]
fn a_repeat_is_reported_exactly_when_a_name_has_two_values() {
    check(CASES, tricky_text(16), |query| {
        let form = Form::parse(&query);
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let repeated = pairs
            .iter()
            .any(|(k, _)| pairs.iter().filter(|(k2, _)| k2 == k).count() > 1);
        prop_assert_eq!(form.any_repeated().is_some(), repeated);
        Ok(())
    });
}
