//! Calls to an upstream identity provider (oidc/federation.rs): discovery and JWKS, cached per
//! isolate, and the code exchange. Every call is bounded in time and size, and a failure is an
//! `UpstreamError` the callback turns into a page — never a 5xx of Clavex's own.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{
    AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, RequestRedirect,
};

use crate::protocol::upstream::{self, Discovery, Jws, TokenError};

/// How long an isolate keeps an upstream's discovery document and keys. A key rotated at the
/// upstream is picked up at once anyway: an unknown `kid` refetches the JWKS.
const CACHE_SECONDS: i64 = 600;
const CACHE_MAX: usize = 64;
/// An upstream that has not answered within this is not waited for.
const TIMEOUT_MS: u64 = 5_000;
/// Answers larger than this are refused (a discovery document or JWKS is a few KiB).
const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamError {
    /// No answer in time, or no connection.
    Unreachable,
    /// An answer that is not what the protocol says (status, JSON, members).
    Invalid(String),
    /// The token endpoint refused the code (its `error`).
    Refused(String),
    /// The ID token did not verify.
    Token(TokenError),
}

impl UpstreamError {
    pub fn reason(&self) -> String {
        match self {
            UpstreamError::Unreachable => "the identity provider did not answer".into(),
            UpstreamError::Invalid(why) => why.clone(),
            UpstreamError::Refused(error) => format!("the token endpoint answered {error}"),
            UpstreamError::Token(e) => e.reason(),
        }
    }
}

thread_local! {
    static DISCOVERY: RefCell<HashMap<String, (Discovery, i64)>> = RefCell::new(HashMap::new());
    static JWKS: RefCell<HashMap<String, (Value, i64)>> = RefCell::new(HashMap::new());
}

fn cached<T: Clone>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<String, (T, i64)>>>,
    key: &str,
    now: i64,
) -> Option<T> {
    cache.with(|c| {
        c.borrow()
            .get(key)
            .filter(|(_, at)| now - at < CACHE_SECONDS)
            .map(|(v, _)| v.clone())
    })
}

fn remember<T>(
    cache: &'static std::thread::LocalKey<RefCell<HashMap<String, (T, i64)>>>,
    key: &str,
    value: T,
    now: i64,
) {
    cache.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(key.to_string(), (value, now));
    });
}

/// One HTTP call, aborted after `TIMEOUT_MS`; redirects are not followed (an upstream's
/// endpoints answer themselves). The status and the body.
async fn call(
    url: &str,
    method: Method,
    headers: Headers,
    body: Option<String>,
) -> Result<(u16, String), UpstreamError> {
    let mut init = RequestInit::new();
    init.with_method(method)
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if let Some(body) = body {
        init.with_body(Some(JsValue::from_str(&body)));
    }
    let request = Request::new_with_init(url, &init)
        .map_err(|_| UpstreamError::Invalid(format!("{url} is not a URL Clavex can call")))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    wasm_bindgen_futures::spawn_local(async move {
        Delay::from(std::time::Duration::from_millis(TIMEOUT_MS)).await;
        controller.abort();
    });
    let mut response = Fetch::Request(request)
        .send_with_signal(&signal)
        .await
        .map_err(|_| UpstreamError::Unreachable)?;
    let status = response.status_code();
    let text = response
        .text()
        .await
        .map_err(|_| UpstreamError::Unreachable)?;
    if text.len() > MAX_BODY {
        return Err(UpstreamError::Invalid(format!("{url} answered too much")));
    }
    Ok((status, text))
}

async fn get_json(url: &str) -> Result<Value, UpstreamError> {
    let headers = Headers::new();
    let _ = headers.set("Accept", "application/json");
    let (status, text) = call(url, Method::Get, headers, None).await?;
    if status != 200 {
        return Err(UpstreamError::Invalid(format!("{url} answered {status}")));
    }
    serde_json::from_str(&text)
        .map_err(|_| UpstreamError::Invalid(format!("{url} did not answer JSON")))
}

/// The upstream's endpoints, from this isolate's cache or its discovery document.
pub async fn discover(
    issuer: &str,
    deployment_https: bool,
    now: i64,
) -> Result<Discovery, UpstreamError> {
    if let Some(d) = cached(&DISCOVERY, issuer, now) {
        return Ok(d);
    }
    let url = upstream::discovery_url(issuer);
    if !crate::protocol::logout_token::may_send(&url, deployment_https) {
        return Err(UpstreamError::Invalid(format!(
            "{issuer} is plain http, which a deployed Clavex does not call"
        )));
    }
    let doc = get_json(&url).await?;
    let d =
        upstream::read_discovery(&doc, issuer, deployment_https).map_err(UpstreamError::Invalid)?;
    remember(&DISCOVERY, issuer, d.clone(), now);
    Ok(d)
}

async fn jwks(uri: &str, now: i64, refetch: bool) -> Result<Value, UpstreamError> {
    if !refetch && let Some(keys) = cached(&JWKS, uri, now) {
        return Ok(keys);
    }
    let keys = get_json(uri).await?;
    if !keys["keys"].is_array() {
        return Err(UpstreamError::Invalid(format!("{uri} is not a JWK set")));
    }
    remember(&JWKS, uri, keys.clone(), now);
    Ok(keys)
}

/// Check the ID token's signature against the upstream's keys: the cached set, fetched again
/// once when it has no key for the token's `kid` (the upstream may have rotated).
pub async fn verify_signature(d: &Discovery, jws: &Jws, now: i64) -> Result<(), UpstreamError> {
    let mut keys = jwks(&d.jwks_uri, now, false).await?;
    if upstream::select_key(&keys, jws).is_none() {
        keys = jwks(&d.jwks_uri, now, true).await?;
    }
    let key =
        upstream::select_key(&keys, jws).ok_or(UpstreamError::Token(TokenError::UnknownKey))?;
    let ok = crate::edge::webcrypto::verify_jws(
        jws.alg,
        key,
        jws.signing_input.as_bytes(),
        &jws.signature,
    )
    .await
    .map_err(|_| UpstreamError::Token(TokenError::BadSignature))?;
    if ok {
        Ok(())
    } else {
        Err(UpstreamError::Token(TokenError::BadSignature))
    }
}

/// The upstream's userinfo answer for `access_token` (Core §5.3.1), JSON only (a signed
/// userinfo response is not asked for).
pub async fn userinfo(uri: &str, access_token: &str) -> Result<Value, UpstreamError> {
    let headers = Headers::new();
    let _ = headers.set("Accept", "application/json");
    let _ = headers.set("Authorization", &format!("Bearer {access_token}"));
    let (status, text) = call(uri, Method::Get, headers, None).await?;
    if status != 200 {
        return Err(UpstreamError::Invalid(format!(
            "userinfo answered {status}"
        )));
    }
    serde_json::from_str(&text)
        .map_err(|_| UpstreamError::Invalid("userinfo did not answer JSON".into()))
}

/// How Clavex authenticates to the upstream's token endpoint.
pub struct ClientCredentials<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// `client_secret_basic` or `client_secret_post`.
    pub method: &'a str,
}

/// RFC 6749 §4.1.3 with RFC 7636 §4.5: the code and its verifier for the ID token. The token
/// response's JSON.
pub async fn exchange_code(
    d: &Discovery,
    creds: &ClientCredentials<'_>,
    code: &str,
    redirect_uri: &str,
    code_verifier: &str,
) -> Result<Value, UpstreamError> {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "application/x-www-form-urlencoded");
    let _ = headers.set("Accept", "application/json");
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", code_verifier);
    if creds.method == "client_secret_post" {
        form.append_pair("client_id", creds.client_id)
            .append_pair("client_secret", creds.client_secret);
    } else {
        // RFC 6749 §2.3.1: both form-urlencoded before they are joined and base64-encoded.
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            enc(creds.client_id),
            enc(creds.client_secret)
        ));
        let _ = headers.set("Authorization", &format!("Basic {basic}"));
    }
    let (status, text) = call(
        &d.token_endpoint,
        Method::Post,
        headers,
        Some(form.finish()),
    )
    .await?;
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status != 200 {
        // RFC 6749 §5.2: the error code, never the description (it may echo what was sent).
        let error = body["error"].as_str().unwrap_or("no error code");
        return Err(UpstreamError::Refused(format!("{status} {error}")));
    }
    if !body.is_object() {
        return Err(UpstreamError::Invalid(
            "the token endpoint did not answer JSON".into(),
        ));
    }
    Ok(body)
}
