//! Validation of an authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1,
//! RFC 7636, RFC 9700), as small checks in a fixed order.
//!
//! Until the client and its redirect URI are established, errors are shown to the user and
//! never redirected (RFC 6749 §4.1.2.1: "the authorization server SHOULD inform the resource
//! owner of the error and MUST NOT automatically redirect the user-agent to the invalid
//! redirection URI"). After that, errors go back to the client with `state` and `iss`.

use serde::{Deserialize, Serialize};

use crate::protocol::error::{ErrorCode, OAuthError};
use crate::protocol::form::Form;
use crate::protocol::response_mode::ResponseMode;
use crate::protocol::{pkce, scopes};

/// What validation needs to know about the registered client.
pub struct ClientRegistration<'a> {
    pub client_id: &'a str,
    pub redirect_uris: &'a [String],
    pub grant_types: &'a [String],
    pub scopes: &'a [String],
    pub public: bool,
}

/// A validated authorization request: what the login form carries (sealed) and what the code
/// is bound to.
/// Longest `nonce` accepted. OIDC Core sets no bound; clients send 16–64 characters, and the
/// nonce travels inside the authorization code.
pub const MAX_NONCE_BYTES: usize = 255;
/// Longest `claims` parameter accepted (compact JSON), for the same reason.
pub const MAX_CLAIMS_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// The granted scope (`scopes::grant`): what the code, the consent page and the tokens carry.
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    /// The `claims` parameter (OpenID Connect Core §5.5), validated JSON text.
    pub claims: Option<String>,
    /// `acr_values` (Core §3.1.2.1), as sent: a preference list the gate reads (protocol/acr.rs).
    #[serde(default)]
    pub acr_values: Option<String>,
    /// How the code (or an error) goes back to the client; carried through the login, second
    /// factor and consent pages so the answer after a form POST comes back the same way. Forms
    /// sealed before the mode existed open as `query`, which was then the only mode.
    #[serde(default)]
    pub response_mode: ResponseMode,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// Errors shown on an HTML page: the client or its redirect URI cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatalError {
    /// Short code shown on the page; `error_uri_mismatch` is the one the product guide names.
    pub code: &'static str,
    pub description: String,
    /// The redirect URI that was sent, shown so an admin can fix the registration.
    pub redirect_uri: Option<String>,
}

/// An error to send back to the client's (validated) redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectError {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: OAuthError,
    /// The requested mode once it is known to be valid, `query` until then.
    pub response_mode: ResponseMode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    Fatal(FatalError),
    Redirect(RedirectError),
}

fn fatal(
    code: &'static str,
    description: impl Into<String>,
    redirect_uri: Option<&str>,
) -> AuthorizeError {
    AuthorizeError::Fatal(FatalError {
        code,
        description: description.into(),
        redirect_uri: redirect_uri.map(str::to_string),
    })
}

/// Step 1: the client_id, before the client can be looked up.
pub fn client_id(params: &Form) -> Result<&str, AuthorizeError> {
    match params.one("client_id") {
        Err(_) => Err(fatal("invalid_request", "client_id is repeated", None)),
        Ok(None) => Err(fatal("invalid_request", "client_id is missing", None)),
        Ok(Some(id)) => Ok(id),
    }
}

/// The fatal error for a client_id that is not registered with this organization.
pub fn unknown_client(client_id: &str) -> AuthorizeError {
    fatal(
        "invalid_client",
        format!("no client with client_id {client_id} is registered here"),
        None,
    )
}

const SINGLE_VALUED: &[&str] = &[
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "claims",
    "response_mode",
    "display",
    "ui_locales",
    "acr_values",
    "request",
    "request_uri",
];

/// Step 2: everything else, for a known client.
pub fn validate(
    params: &Form,
    client: &ClientRegistration,
) -> Result<AuthorizeRequest, AuthorizeError> {
    // The redirect URI must be one the client registered, compared exactly (RFC 9700 §4.1.3:
    // "exact string matching"); OpenID Connect makes the parameter required.
    let redirect_uri = match params.one("redirect_uri") {
        Err(_) => return Err(fatal("invalid_request", "redirect_uri is repeated", None)),
        Ok(None) => return Err(fatal("invalid_request", "redirect_uri is missing", None)),
        Ok(Some(uri)) => uri,
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return Err(fatal(
            "error_uri_mismatch",
            format!(
                "the redirect_uri is not registered for client {}",
                client.client_id
            ),
            Some(redirect_uri),
        ));
    }
    // From here on, errors go back to the client. State is taken even if other things are wrong.
    let state = params.first("state").map(str::to_string);
    // The mode errors go back in: the one asked for once it is known to be valid (sent once,
    // and one Clavex implements), the default query until then. An error is an authorization
    // response like a code, so it is returned by the mode the client asked for.
    let asked_mode = params
        .one("response_mode")
        .ok()
        .and_then(ResponseMode::parse);
    let response_mode = asked_mode.unwrap_or_default();
    let err = |code: ErrorCode, desc: &str| {
        AuthorizeError::Redirect(RedirectError {
            redirect_uri: redirect_uri.to_string(),
            state: state.clone(),
            error: OAuthError::new(code, desc),
            response_mode,
        })
    };
    if let Some(name) = params.repeated(SINGLE_VALUED) {
        return Err(err(
            ErrorCode::InvalidRequest,
            &format!("{name} is repeated"),
        ));
    }
    let get = |name: &str| params.first(name);

    // Only query and form_post are implemented; fragment and unknown modes are refused rather
    // than silently answered another way.
    if asked_mode.is_none() {
        return Err(err(
            ErrorCode::InvalidRequest,
            "response_mode must be query or form_post",
        ));
    }
    match get("response_type") {
        None => return Err(err(ErrorCode::InvalidRequest, "response_type is missing")),
        Some("code") => {}
        Some(_) => {
            return Err(err(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if get("request").is_some() {
        return Err(err(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if get("request_uri").is_some() {
        return Err(err(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    if !client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(err(
            ErrorCode::UnauthorizedClient,
            "the client may not use the authorization code grant",
        ));
    }

    // OpenID Connect Core §3.1.2.1: "If the openid scope value is not present, the behavior is
    // entirely unspecified" — Clavex refuses it, as it does a client that may not use openid.
    // Any other scope the client is not registered for, or that Clavex does not know, is left out
    // of the grant rather than refused (RFC 6749 §3.3); the token response says what was granted.
    let requested = scopes::parse(get("scope").unwrap_or(""));
    if !requested.iter().any(|s| s == "openid") {
        return Err(err(ErrorCode::InvalidScope, "scope must include openid"));
    }
    let granted = scopes::grant(&requested, client.scopes);
    if !granted.iter().any(|s| s == "openid") {
        return Err(err(
            ErrorCode::InvalidScope,
            "the client may not request scope openid",
        ));
    }

    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) if client.public => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "public clients must use PKCE (code_challenge with S256)",
            ));
        }
        (None, None) => None,
        (None, Some(_)) => return Err(err(ErrorCode::InvalidRequest, "code_challenge is missing")),
        // RFC 7636 §4.3: a missing method means "plain", which Clavex refuses.
        (Some(_), None | Some("plain")) => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
        (Some(c), Some(_)) if !pkce::is_valid_syntax(c) => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "code_challenge must be 43 to 128 characters",
            ));
        }
        (Some(c), Some(_)) => Some(c.to_string()),
    };

    let mut prompt = Prompt::default();
    for value in get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // No account chooser: one session per organization; a fresh login lets the user pick.
            "select_account" => prompt.login = true,
            _ => {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    &format!("unsupported prompt value {value}"),
                ));
            }
        }
    }
    // OpenID Connect Core §3.1.2.1: none with any other value is an error.
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(err(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values",
        ));
    }

    let max_age = match get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    let claims = match get("claims") {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            // Kept compact: it travels inside the authorization code.
            Ok(value @ serde_json::Value::Object(_)) => Some(value.to_string()),
            _ => {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "claims must be a JSON object",
                ));
            }
        },
    };
    // The code carries nonce and claims (protocol/code.rs); bounds keep it URL-friendly.
    if get("nonce").is_some_and(|n| n.len() > MAX_NONCE_BYTES) {
        return Err(err(
            ErrorCode::InvalidRequest,
            &format!("nonce must be at most {MAX_NONCE_BYTES} characters"),
        ));
    }
    // acr_values travels in the sealed forms. A cut would be worse than a refusal: a value asking
    // for a second factor past the cut would be dropped without a word.
    if get("acr_values").is_some_and(|v| v.len() > MAX_NONCE_BYTES) {
        return Err(err(
            ErrorCode::InvalidRequest,
            &format!("acr_values must be at most {MAX_NONCE_BYTES} characters"),
        ));
    }
    if claims.as_ref().is_some_and(|c| c.len() > MAX_CLAIMS_BYTES) {
        return Err(err(
            ErrorCode::InvalidRequest,
            &format!("claims must be at most {MAX_CLAIMS_BYTES} bytes of JSON"),
        ));
    }

    Ok(AuthorizeRequest {
        client_id: client.client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope: scopes::join(&granted),
        state,
        nonce: get("nonce").map(str::to_string),
        code_challenge,
        prompt,
        max_age,
        login_hint: get("login_hint").map(str::to_string),
        id_token_hint: get("id_token_hint").map(str::to_string),
        claims,
        acr_values: get("acr_values").map(str::to_string),
        response_mode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(public: bool) -> (Vec<String>, Vec<String>, Vec<String>, bool) {
        (
            vec!["https://chat.acme.eu/_oauth/clavex".to_string()],
            vec![
                "authorization_code".to_string(),
                "refresh_token".to_string(),
            ],
            vec![
                "openid".to_string(),
                "profile".to_string(),
                "email".to_string(),
            ],
            public,
        )
    }

    fn run(query: &str, public: bool) -> Result<AuthorizeRequest, AuthorizeError> {
        let (r, g, s, p) = client(public);
        let reg = ClientRegistration {
            client_id: "rocketchat",
            redirect_uris: &r,
            grant_types: &g,
            scopes: &s,
            public: p,
        };
        validate(&Form::parse(query), &reg)
    }

    const RC: &str = "client_id=rocketchat&redirect_uri=https%3A%2F%2Fchat.acme.eu%2F_oauth%2Fclavex&response_type=code";

    fn redirect_mode(r: Result<AuthorizeRequest, AuthorizeError>) -> (ErrorCode, ResponseMode) {
        match r {
            Err(AuthorizeError::Redirect(e)) => (e.error.code, e.response_mode),
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn response_mode_is_query_by_default_and_form_post_when_asked() {
        let q = |extra: &str| run(&format!("{RC}&scope=openid{extra}"), false);
        assert_eq!(q("").unwrap().response_mode, ResponseMode::Query);
        assert_eq!(
            q("&response_mode=query").unwrap().response_mode,
            ResponseMode::Query
        );
        assert_eq!(
            q("&response_mode=form_post").unwrap().response_mode,
            ResponseMode::FormPost
        );
    }

    #[test]
    fn fragment_and_unknown_modes_are_refused_in_query() {
        for mode in ["fragment", "form_post_jwt", "FORM_POST", "query%20"] {
            let r = run(
                &format!("{RC}&scope=openid&state=s&response_mode={mode}"),
                false,
            );
            assert_eq!(
                redirect_mode(r),
                (ErrorCode::InvalidRequest, ResponseMode::Query),
                "{mode:?}"
            );
        }
        // Sent twice, even with two valid values, the mode is not known: query.
        let twice = run(
            &format!("{RC}&scope=openid&response_mode=form_post&response_mode=form_post"),
            false,
        );
        assert_eq!(
            redirect_mode(twice),
            (ErrorCode::InvalidRequest, ResponseMode::Query)
        );
    }

    #[test]
    fn errors_after_a_valid_form_post_go_back_in_form_post() {
        // Every later check: a scope, PKCE, prompt, or another repeated parameter.
        for extra in [
            "&scope=profile",
            "&scope=openid&code_challenge_method=plain&code_challenge=x",
            "&scope=openid&prompt=none%20login",
            "&scope=openid&state=a&state=b",
        ] {
            let r = run(&format!("{RC}&response_mode=form_post{extra}"), false);
            assert_eq!(redirect_mode(r).1, ResponseMode::FormPost, "{extra}");
        }
        // Before the redirect URI is trusted nothing is returned to the client at all.
        let bad_uri = "client_id=rocketchat&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid&response_mode=form_post";
        assert!(matches!(run(bad_uri, false), Err(AuthorizeError::Fatal(_))));
    }

    #[test]
    fn the_mode_survives_serialization_and_old_requests_read_as_query() {
        let req = run(&format!("{RC}&scope=openid&response_mode=form_post"), false).unwrap();
        let json = serde_json::to_value(&req).unwrap();
        let back: AuthorizeRequest = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back.response_mode, ResponseMode::FormPost);
        // A login form sealed before this release carries no mode: it was a query request.
        let mut old = json;
        old.as_object_mut().unwrap().remove("response_mode");
        let back: AuthorizeRequest = serde_json::from_value(old).unwrap();
        assert_eq!(back.response_mode, ResponseMode::Query);
    }

    fn redirect_code(r: Result<AuthorizeRequest, AuthorizeError>) -> (ErrorCode, Option<String>) {
        match r {
            Err(AuthorizeError::Redirect(e)) => (e.error.code, e.state),
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn rocket_chat_legacy_request_is_valid_and_state_kept_exactly() {
        let q = format!(
            "{RC}&state=eyJsb2dpblN0eWxlIjoicmVkaXJlY3QifQ%2B%2F%3D&scope=openid%20profile%20email"
        );
        let req = run(&q, false).unwrap();
        assert_eq!(
            req.state.as_deref(),
            Some("eyJsb2dpblN0eWxlIjoicmVkaXJlY3QifQ+/=")
        );
        assert_eq!(req.scope, "openid profile email");
        assert_eq!(req.code_challenge, None);
    }

    #[test]
    fn unregistered_redirect_uri_is_fatal_even_with_a_suffix() {
        let q = "client_id=rocketchat&redirect_uri=https%3A%2F%2Fchat.acme.eu%2F_oauth%2Fclavex%2Fx&response_type=code&scope=openid";
        match run(q, false) {
            Err(AuthorizeError::Fatal(f)) => {
                assert_eq!(f.code, "error_uri_mismatch");
                assert_eq!(
                    f.redirect_uri.as_deref(),
                    Some("https://chat.acme.eu/_oauth/clavex/x")
                );
            }
            other => panic!("expected fatal, got {other:?}"),
        }
    }

    #[test]
    fn scope_rules() {
        // openid missing: refused, with state.
        assert_eq!(
            redirect_code(run(&format!("{RC}&scope=profile&state=s"), false)),
            (ErrorCode::InvalidScope, Some("s".into()))
        );
        assert_eq!(
            redirect_code(run(RC, false)).0,
            ErrorCode::InvalidScope,
            "no scope at all"
        );
        // Unknown and unregistered scopes are dropped, not refused.
        let scope = |q: &str| run(&format!("{RC}&scope={q}"), false).unwrap().scope;
        assert_eq!(scope("openid%20admin"), "openid");
        assert_eq!(scope("openid%20offline_access"), "openid");
        assert_eq!(scope("openid%20profile%20offline_access"), "openid profile");
        assert_eq!(scope("email%20groups%20openid%20email"), "email openid");
    }

    #[test]
    fn registered_scopes_bound_the_grant() {
        let (r, g, _, _) = client(false);
        let with = |scopes: &[&str], q: &str| {
            let s: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            let reg = ClientRegistration {
                client_id: "rocketchat",
                redirect_uris: &r,
                grant_types: &g,
                scopes: &s,
                public: false,
            };
            validate(&Form::parse(&format!("{RC}&scope={q}")), &reg)
        };
        assert_eq!(
            with(
                &["openid", "offline_access"],
                "openid%20profile%20offline_access"
            )
            .unwrap()
            .scope,
            "openid offline_access"
        );
        // A client that may not use openid gets nothing it could sign in with: refused.
        assert_eq!(
            redirect_code(with(&["profile"], "openid%20profile")).0,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn response_type_rules() {
        let q = "client_id=rocketchat&redirect_uri=https%3A%2F%2Fchat.acme.eu%2F_oauth%2Fclavex&scope=openid&state=xyz";
        assert_eq!(
            redirect_code(run(q, false)),
            (ErrorCode::InvalidRequest, Some("xyz".into()))
        );
        let token = format!("{q}&response_type=token");
        assert_eq!(
            redirect_code(run(&token, false)).0,
            ErrorCode::UnsupportedResponseType
        );
    }

    #[test]
    fn pkce_rules() {
        let ch = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(
            redirect_code(run(&format!("{RC}&scope=openid"), true)).0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(
                &format!("{RC}&scope=openid&code_challenge={ch}&code_challenge_method=plain"),
                false
            ))
            .0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(
                &format!("{RC}&scope=openid&code_challenge={ch}"),
                false
            ))
            .0,
            ErrorCode::InvalidRequest
        );
        let ok = run(
            &format!("{RC}&scope=openid&code_challenge={ch}&code_challenge_method=S256"),
            true,
        )
        .unwrap();
        assert_eq!(ok.code_challenge.as_deref(), Some(ch));
    }

    #[test]
    fn prompt_and_max_age_rules() {
        assert_eq!(
            redirect_code(run(
                &format!("{RC}&scope=openid&prompt=none%20login"),
                false
            ))
            .0,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            redirect_code(run(&format!("{RC}&scope=openid&max_age=-1"), false)).0,
            ErrorCode::InvalidRequest
        );
        let ok = run(&format!("{RC}&scope=openid&prompt=login%20consent&max_age=10&ui_locales=de&display=page&foo=bar"), false)
            .unwrap();
        assert!(ok.prompt.login && ok.prompt.consent && !ok.prompt.none);
        assert_eq!(ok.max_age, Some(10));
    }

    #[test]
    fn acr_values_too_long_are_refused_not_cut() {
        let long = format!("{} urn:clavex:acr:mfa", "x".repeat(250));
        let query = format!("{RC}&scope=openid&acr_values={}", long.replace(' ', "%20"));
        assert_eq!(
            redirect_code(run(&query, false)).0,
            ErrorCode::InvalidRequest
        );
        let ok = format!("{RC}&scope=openid&acr_values=urn%3Aclavex%3Aacr%3Amfa");
        assert_eq!(
            run(&ok, false).unwrap().acr_values.as_deref(),
            Some("urn:clavex:acr:mfa")
        );
    }

    #[test]
    fn repeated_parameters_are_invalid() {
        assert_eq!(
            redirect_code(run(&format!("{RC}&scope=openid&state=a&state=b"), false)).0,
            ErrorCode::InvalidRequest
        );
        let dup_client = Form::parse("client_id=a&client_id=b");
        assert!(matches!(
            client_id(&dup_client),
            Err(AuthorizeError::Fatal(_))
        ));
    }

    #[test]
    fn request_objects_are_refused() {
        assert_eq!(
            redirect_code(run(&format!("{RC}&scope=openid&request=eyJ"), false)).0,
            ErrorCode::RequestNotSupported
        );
    }
}
