//! Reading a request's JSON body with the checks that keep bad input at 4xx: the media type must
//! be JSON (415), the body at most `MAX_BODY` bytes (413, checked on Content-Length before reading
//! and again on what was read, since a chunked body has no Content-Length), and well-formed (400).

use serde_json::Value;
use worker::Request;

use crate::admin::Failure;
use crate::admin::error::ApiError;
use crate::admin::fields::Fields;
use crate::edge::context::Ctx;

/// Far above any real admin payload (a client with many redirect URIs is a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// `application/json`, with or without parameters such as `charset=utf-8` (RFC 9110 §8.3.1: the
/// type and subtype are case-insensitive).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

pub fn check_declared_length(content_length: Option<&str>) -> Result<(), ApiError> {
    match content_length.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) if n > MAX_BODY as u64 => Err(too_large()),
        Some(Err(_)) => Err(ApiError::invalid_request("Content-Length is not a number")),
        _ => Ok(()),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        413,
        "payload_too_large",
        format!("the body must be at most {MAX_BODY} bytes"),
    )
}

/// Nesting deeper than any admin body needs (a client's role map is 3 levels). Refused before
/// parsing, naming the top-level member it is under, so the error says where to look.
pub const MAX_DEPTH: usize = 8;

/// The body as text. JSON is UTF-8 (RFC 8259 §8.1); invalid bytes are refused rather than
/// replaced with U+FFFD, which would store something other than what was sent.
pub fn decode(bytes: &[u8]) -> Result<&str, ApiError> {
    if bytes.len() > MAX_BODY {
        return Err(too_large());
    }
    std::str::from_utf8(bytes).map_err(|e| {
        ApiError::invalid_request(format!(
            "the body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// The top-level member under which `text` first nests deeper than `MAX_DEPTH`, if it does
/// (`Some("")` when the nesting is not under a member, e.g. a top-level array). A scan of the
/// raw text: brackets inside strings do not count.
pub fn too_deep(text: &str) -> Option<String> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut member = String::new();
    let mut current = String::new();
    let mut last_string = String::new();
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    in_string = false;
                    last_string = std::mem::take(&mut current);
                    continue;
                }
                _ => {}
            }
            current.push(c);
            continue;
        }
        match c {
            '"' => in_string = true,
            ':' if depth == 1 => member = last_string.clone(),
            '{' | '[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(member);
                }
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

pub fn parse(text: &str) -> Result<Value, ApiError> {
    if text.len() > MAX_BODY {
        return Err(too_large());
    }
    if let Some(member) = too_deep(text) {
        let description = format!("the body nests deeper than {MAX_DEPTH} levels");
        return Err(if member.is_empty() {
            ApiError::invalid_request(description)
        } else {
            ApiError::invalid_field(&member, format!("{member}: {description}"))
        });
    }
    serde_json::from_str(text)
        .map_err(|e| ApiError::invalid_request(format!("the body is not valid JSON: {e}")))
}

/// The body as an object restricted to `allowed` members. The names of the members sent (never
/// their values) are kept on `ctx` for the audit trail's record of the change.
pub async fn read(req: &mut Request, ctx: &Ctx, allowed: &[&str]) -> Result<Fields, Failure> {
    let headers = req.headers();
    if !is_json(headers.get("Content-Type")?.as_deref()) {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        )
        .into());
    }
    check_declared_length(headers.get("Content-Length")?.as_deref())?;
    let bytes = req.bytes().await?;
    let fields = Fields::new(parse(decode(&bytes)?)?, allowed)?;
    ctx.note_admin_fields(fields.names());
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_type() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/x-www-form-urlencoded")));
        assert!(!is_json(Some("application/jsonp")));
        assert!(!is_json(None));
    }

    #[test]
    fn size_limits() {
        assert!(check_declared_length(Some("65536")).is_ok());
        assert_eq!(
            check_declared_length(Some("65537")).unwrap_err().status,
            413
        );
        assert!(check_declared_length(None).is_ok());
        assert_eq!(check_declared_length(Some("lots")).unwrap_err().status, 400);
        let big = format!("\"{}\"", "x".repeat(MAX_BODY));
        assert_eq!(parse(&big).unwrap_err().status, 413);
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        for bad in [
            &b"{\"name\":\"\xff\"}"[..],
            b"{\"name\":\"\xc0\xaf\"}",     // overlong '/'
            b"{\"name\":\"\xed\xa0\x80\"}", // a UTF-16 surrogate
            b"{\"name\":\"\xe2\x82\"}",     // truncated sequence
        ] {
            let err = decode(bad).unwrap_err();
            assert_eq!((err.status, err.error), (400, "invalid_request"));
        }
        assert_eq!(
            decode("{\"name\":\"Zoë\"}".as_bytes()).unwrap(),
            "{\"name\":\"Zoë\"}"
        );
    }

    #[test]
    fn deep_nesting_names_the_member() {
        let deep = format!(
            "{{\"ok\":1,\"role_mappings\":{}1{}}}",
            "[".repeat(20),
            "]".repeat(20)
        );
        let err = parse(&deep).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("role_mappings"));
        assert_eq!(err.status, 400);
        let tricky = format!("{{\"a\":\"{}\",\"b\":[[1]]}}", "[".repeat(40));
        assert!(
            parse(&tricky).is_ok(),
            "brackets inside strings do not nest"
        );
        let top = format!("{}{}", "[".repeat(20), "]".repeat(20));
        assert_eq!(parse(&top).unwrap_err().field, None);
        let escaped = format!("{{\"a\\\"{}\":1}}", "{".repeat(20));
        assert!(
            parse(&escaped).is_ok(),
            "an escaped quote does not end the string"
        );
    }

    #[test]
    fn malformed_json_is_a_400() {
        let err = parse("{\"a\":").unwrap_err();
        assert_eq!((err.status, err.error), (400, "invalid_request"));
        assert!(parse("{\"a\":1}").is_ok());
    }
}
