//! Stored sealed values (signing keys, TOTP secrets, recovery-code keys) that the configured
//! secrets cannot open. That is never a wrong code or a missing key: the data is there and the
//! configuration cannot read it (typically KEY_ENCRYPTION_SECRET_PREVIOUS removed before the
//! re-seal finished). It is logged as one JSON line naming the missing key id, and answered with
//! a 500 that says "configuration", never counted as a failed sign-in.

use serde_json::json;
use worker::{Error, Response, Result};

use crate::crypto::Keyring;
use crate::crypto::keyring::Unreadable;
use crate::edge::http;
use crate::ui::{self, Brand, ErrorPage};

/// What the error's text starts with, so the dispatcher can tell it from a storage failure.
const MARKER: &str = "stored secret unreadable";

/// Log the failure and make the error that `answer` turns into the response. `kind` is
/// `signing_key`, `totp_secret` or `recovery_key`; `id` the key's kid or the user's id.
pub fn unreadable(kind: &str, org: &str, id: &str, why: &Unreadable, keys: &Keyring) -> Error {
    worker::console_error!("{}", log_line(kind, org, id, why, keys));
    error(kind, org, id, why)
}

fn log_line(kind: &str, org: &str, id: &str, why: &Unreadable, keys: &Keyring) -> String {
    json!({
            "level": "error",
            "event": "sealed_value_unreadable",
            "kind": kind,
            "org": org,
            "id": id,
            "missing_key_id": why.missing_key_id(),
            "configured_key_ids": std::iter::once(keys.current_id())
                .chain(keys.previous_ids())
                .collect::<Vec<_>>(),
            "reason": why.to_string(),
            "fix": "put the secret with the missing key id back in KEY_ENCRYPTION_SECRET_PREVIOUS, then POST /api/v1/maintenance/reseal",
    })
    .to_string()
}

fn error(kind: &str, org: &str, id: &str, why: &Unreadable) -> Error {
    Error::RustError(format!("{MARKER}: {kind} {id} in {org}: {why}"))
}

pub fn is_unreadable(e: &Error) -> bool {
    matches!(e, Error::RustError(text) if text.starts_with(MARKER))
}

/// The answer: JSON for the protocol and admin endpoints, a page for the browser's.
pub fn answer(browser: bool) -> Result<Response> {
    if browser {
        let brand = Brand::new("Clavex", None, None);
        return http::html(
            500,
            ui::render(&ErrorPage {
                brand: &brand,
                title: "Sign-in is unavailable",
                description: "This service cannot read its stored keys because of a configuration problem on the server. Nothing was changed; try again once the administrator has fixed it.",
                code: "server_error",
                redirect_uri: None,
            }),
        );
    }
    http::no_store(http::api_error(
        500,
        "server_error",
        "a stored key cannot be opened with the configured KEY_ENCRYPTION_SECRET (a server configuration problem; see the server log)",
        None,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_is_recognised_and_names_no_secret() {
        let keys = Keyring::new("the current secret, long enough", &[]).unwrap();
        let why = Unreadable::UnknownKey("abcdefgh".into());
        let e = error("totp_secret", "acme", "usr_1", &why);
        assert!(is_unreadable(&e));
        assert!(e.to_string().contains("abcdefgh"));
        let line: serde_json::Value =
            serde_json::from_str(&log_line("totp_secret", "acme", "usr_1", &why, &keys)).unwrap();
        assert_eq!(line["missing_key_id"], "abcdefgh");
        assert_eq!(line["configured_key_ids"][0], keys.current_id());
        assert!(!line.to_string().contains("the current secret"));
        assert!(!is_unreadable(&Error::RustError(
            "D1_ERROR: database is locked".into()
        )));
    }
}
