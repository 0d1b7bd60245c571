//! Clavex as a relying party of an upstream OpenID Provider (issue 17): the rules of a sign-in
//! through a connection, in plain Rust so `cargo test` checks each of them.
//!
//! - **The transaction** (authorization request to the upstream → its callback) travels sealed
//!   in a cookie (AES-256-GCM, the organization as associated data), never in KV: the PKCE
//!   verifier, the nonce, the `state` sent upstream, the connection and the pending authorization
//!   of Clavex's own client. The callback needs the cookie *and* the `state` it names; it clears
//!   the cookie, so a callback replayed in the same browser finds none.
//! - **The ID token** is checked as OpenID Connect Core §3.1.3.7 says: `iss`, `aud`, `azp`,
//!   `exp`, `iat`, `nonce` here; the signature (RS256 or ES256, key chosen by `kid`) through
//!   WebCrypto in the Worker (edge/upstream.rs).
//! - **Linking** is on (connection, upstream `sub`), never on an e-mail address alone: a first
//!   sign-in creates a user only where the connection allows it, and links to an existing user
//!   with the same address only where the connection opts in *and* both sides call the address
//!   verified (idp-features.md §4: Ory closed automatic linking as "an account takeover
//!   vulnerability").

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::crypto::{Keyring, secure_eq, token_hash};
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::mfa::{MFA_ACRS, PWD, UPSTREAM, UPSTREAM_MFA};
use crate::protocol::upstream_mapping::{ClaimMapping, claim_text};

const PURPOSE: &str = "upstream-transactions/v1";

/// How long the person has at the upstream before the callback is refused.
pub const TRANSACTION_SECONDS: i64 = 10 * 60;

/// Clock skew allowed between Clavex and the upstream for `exp` and `iat`.
pub const CLOCK_SKEW_SECONDS: i64 = 60;

/// The cookie that carries the sealed transaction (path `/{org}/connections`).
pub const COOKIE: &str = "clavex_upstream";

/// The scope a connection always asks for (Core §3.1.2.1: "OpenID Connect requests MUST contain
/// the openid scope value").
pub const DEFAULT_SCOPES: &str = "openid profile email";

/// One sign-in at an upstream, from the redirect to its callback.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Transaction {
    pub connection_id: String,
    /// The `state` sent to the upstream (random): the callback's must be this one.
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    /// The authorization Clavex's own client is waiting for, and the `sub` of its verified
    /// `id_token_hint`.
    pub request: AuthorizeRequest,
    pub hint_sub: Option<String>,
    pub expires_at: i64,
}

pub fn seal_transaction(keys: &Keyring, org: &str, t: &Transaction) -> String {
    let json = serde_json::to_vec(t).expect("a transaction always serializes");
    keys.seal(PURPOSE, &json, org.as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionError {
    /// No cookie: never started in this browser, or already used (the callback clears it).
    Missing,
    /// Tampered, another organization's, or sealed under another secret.
    Invalid,
    /// The `state` of the callback is not the one sent (a forged or mixed-up callback).
    StateMismatch,
    Expired,
}

/// The transaction a callback continues: the cookie must open for this organization, name the
/// callback's `state`, and not have expired.
pub fn open_transaction(
    keys: &Keyring,
    org: &str,
    cookie: Option<&str>,
    state: Option<&str>,
    now: i64,
) -> Result<Transaction, TransactionError> {
    let sealed = cookie
        .filter(|c| !c.is_empty())
        .ok_or(TransactionError::Missing)?;
    let bytes = keys
        .open(PURPOSE, sealed, org.as_bytes())
        .ok_or(TransactionError::Invalid)?;
    let t: Transaction = serde_json::from_slice(&bytes).map_err(|_| TransactionError::Invalid)?;
    // RFC 6749 §10.12: the state binds the callback to the user agent that started it.
    if !state.is_some_and(|s| secure_eq(s, &t.state)) {
        return Err(TransactionError::StateMismatch);
    }
    if now >= t.expires_at {
        return Err(TransactionError::Expired);
    }
    Ok(t)
}

/// A compact JWS split into its parts (RFC 7515 §7.1), before its signature is checked.
#[derive(Debug)]
pub struct Jws {
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Value,
    /// `BASE64URL(header) . BASE64URL(payload)`: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// The signature algorithms accepted from an upstream. `none` and HMAC never (an HMAC key would
/// be the client secret, which Clavex does not use to verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    fn parse(alg: &str) -> Option<Alg> {
        match alg {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    /// Whether a JWK (RFC 7517) can verify this algorithm: key type, curve, and `use`/`alg`
    /// when the key states them.
    fn fits(self, jwk: &Value) -> bool {
        let kty = jwk["kty"].as_str();
        let shape = match self {
            Alg::Rs256 => kty == Some("RSA") && jwk["n"].is_string() && jwk["e"].is_string(),
            Alg::Es256 => {
                kty == Some("EC")
                    && jwk["crv"].as_str() == Some("P-256")
                    && jwk["x"].is_string()
                    && jwk["y"].is_string()
            }
        };
        shape
            && jwk["use"].as_str().is_none_or(|u| u == "sig")
            && jwk["alg"].as_str().is_none_or(|a| a == self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed(&'static str),
    UnsupportedAlg(String),
    /// No key in the upstream's JWKS fits the token's `kid` and algorithm.
    UnknownKey,
    BadSignature,
    Issuer,
    Audience,
    AuthorizedParty,
    Expired,
    IssuedAt,
    Nonce,
    Subject,
}

impl TokenError {
    /// A short reason for the audit trail and the page (never the token itself).
    pub fn reason(&self) -> String {
        match self {
            TokenError::Malformed(what) => format!("malformed ID token ({what})"),
            TokenError::UnsupportedAlg(alg) => format!("ID token signed with {alg}"),
            TokenError::UnknownKey => {
                "ID token signed by a key the provider does not publish".into()
            }
            TokenError::BadSignature => "ID token signature does not verify".into(),
            TokenError::Issuer => "ID token from another issuer".into(),
            TokenError::Audience => "ID token for another audience".into(),
            TokenError::AuthorizedParty => "ID token azp is not this connection".into(),
            TokenError::Expired => "ID token expired".into(),
            TokenError::IssuedAt => "ID token iat missing or out of range".into(),
            TokenError::Nonce => "ID token nonce does not match".into(),
            TokenError::Subject => "ID token without a usable sub".into(),
        }
    }
}

/// Split a compact JWS and read its header. Only RS256 and ES256 are accepted.
pub fn parse_jws(token: &str) -> Result<Jws, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three parts"));
    };
    let decode =
        |part: &str, what| crate::crypto::b64url_decode(part).ok_or(TokenError::Malformed(what));
    let header: Value = serde_json::from_slice(&decode(h, "header")?)
        .map_err(|_| TokenError::Malformed("header"))?;
    let claims: Value = serde_json::from_slice(&decode(p, "payload")?)
        .map_err(|_| TokenError::Malformed("payload"))?;
    if !claims.is_object() {
        return Err(TokenError::Malformed("payload"));
    }
    let alg_name = header["alg"].as_str().unwrap_or("");
    let alg = Alg::parse(alg_name).ok_or_else(|| TokenError::UnsupportedAlg(alg_name.into()))?;
    // RFC 7515 §4.1.11: a critical extension Clavex does not understand makes the JWS invalid.
    if header.get("crit").is_some() {
        return Err(TokenError::Malformed("crit header"));
    }
    let signature = decode(s, "signature")?;
    if alg == Alg::Es256 && signature.len() != 64 {
        // RFC 7518 §3.4: R and S, 32 octets each (not DER).
        return Err(TokenError::BadSignature);
    }
    Ok(Jws {
        alg,
        kid: header["kid"].as_str().map(str::to_string),
        claims,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

/// The key of `jwks` that verifies `jws`: the one with its `kid` that fits the algorithm, or —
/// when the token names no `kid` — the only key that fits (Core §10.1: "If there are multiple
/// keys in the referenced JWK Set document, a kid value MUST be provided in the JOSE Header").
pub fn select_key<'a>(jwks: &'a Value, jws: &Jws) -> Option<&'a Value> {
    let keys = jwks["keys"].as_array()?;
    let fitting = keys.iter().filter(|k| jws.alg.fits(k));
    match &jws.kid {
        Some(kid) => fitting.into_iter().find(|k| k["kid"].as_str() == Some(kid)),
        None => {
            let all: Vec<&Value> = fitting.collect();
            if all.len() == 1 { Some(all[0]) } else { None }
        }
    }
}

/// What the ID token must say.
pub struct Expected<'a> {
    /// The issuer as discovery gave it (and the connection is configured with).
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now: i64,
}

/// Who signed in upstream, from a verified ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub auth_time: Option<i64>,
    /// Every claim of the ID token, and those only userinfo gave (its `sub` the same): what a
    /// connection's claim and group mapping read.
    pub claims: Map<String, Value>,
}

/// Core §3.1.3.7, items 2–4 and 9–11 (the signature, items 6–8, is checked by the caller).
pub fn check_claims(claims: &Value, e: &Expected) -> Result<Identity, TokenError> {
    // 2. "The Issuer Identifier … MUST exactly match the value of the iss (issuer) Claim."
    if claims["iss"].as_str() != Some(e.issuer) {
        return Err(TokenError::Issuer);
    }
    // 3. "The Client MUST validate that the aud (audience) Claim contains its client_id value
    // … The ID Token MUST be rejected if the ID Token does not list the Client as a valid
    // audience, or if it contains additional audiences not trusted by the Client."
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(TokenError::Audience),
    };
    if audiences.is_empty() || audiences.iter().any(|a| *a != e.client_id) {
        return Err(TokenError::Audience);
    }
    // 4–5. azp, when present, must be this client.
    if let Some(azp) = claims.get("azp")
        && azp.as_str() != Some(e.client_id)
    {
        return Err(TokenError::AuthorizedParty);
    }
    // 9. "The current time MUST be before the time represented by the exp Claim" (with skew).
    let exp = claims["exp"].as_i64().ok_or(TokenError::Expired)?;
    if e.now >= exp + CLOCK_SKEW_SECONDS {
        return Err(TokenError::Expired);
    }
    // 10. iat: issued neither in the future nor before this transaction could have started.
    let iat = claims["iat"].as_i64().ok_or(TokenError::IssuedAt)?;
    if iat > e.now + CLOCK_SKEW_SECONDS || iat < e.now - TRANSACTION_SECONDS - CLOCK_SKEW_SECONDS {
        return Err(TokenError::IssuedAt);
    }
    // 11. "the Client MUST verify that the nonce Claim Value is equal to the value of the nonce
    // parameter sent in the Authentication Request."
    if !claims["nonce"]
        .as_str()
        .is_some_and(|n| secure_eq(n, e.nonce))
    {
        return Err(TokenError::Nonce);
    }
    // Core §2: sub is "never reassigned", at most 255 ASCII characters.
    let sub = claims["sub"].as_str().unwrap_or("");
    if sub.is_empty() || sub.len() > 255 || !sub.is_ascii() {
        return Err(TokenError::Subject);
    }
    let text = |name: &str| {
        claims[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Ok(Identity {
        sub: sub.to_string(),
        email: text("email"),
        // Core §5.1: a boolean; a string "true" is not one.
        email_verified: claims["email_verified"].as_bool() == Some(true),
        preferred_username: text("preferred_username"),
        name: text("name"),
        picture: text("picture"),
        amr: claims["amr"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        acr: text("acr"),
        auth_time: claims["auth_time"].as_i64(),
        claims: claims.as_object().cloned().unwrap_or_default(),
    })
}

/// The profile read as the connection's claim mapping says (protocol/upstream_mapping.rs); the
/// identity unchanged where it names no claim. An address read from another claim than `email`
/// is never verified: Core §5.1 `email_verified` speaks of `email` only.
pub fn mapped(identity: Identity, m: &ClaimMapping) -> Identity {
    if *m == ClaimMapping::default() {
        return identity;
    }
    let text = |name: &str| claim_text(&identity.claims, name);
    Identity {
        preferred_username: text(m.username_claim()),
        email: text(m.email_claim()),
        email_verified: identity.email_verified && m.email_is_standard(),
        name: text(m.name_claim()),
        picture: text(m.picture_claim()),
        ..identity.clone()
    }
}

/// The factors an upstream sign-in counts as: one factor, and a second one only where the
/// connection trusts the upstream's word that it asked for several (RFC 8176 `mfa`, or an acr
/// Clavex reads as multi-factor).
pub fn factors(trust_upstream_mfa: bool, identity: &Identity) -> u8 {
    let says_mfa = identity.amr.iter().any(|a| a == "mfa")
        || identity
            .acr
            .as_deref()
            .is_some_and(|acr| MFA_ACRS.contains(&acr));
    if trust_upstream_mfa && says_mfa {
        UPSTREAM | UPSTREAM_MFA
    } else {
        UPSTREAM
    }
}

/// How long the page that confirms a link by a password sign-in (oidc/federation_link.rs) may
/// be answered: as long as the upstream sign-in it follows was given.
pub const CONFIRMATION_SECONDS: i64 = TRANSACTION_SECONDS;

/// The factors of a sign-in that confirms a link: the password and the upstream sign-in, never
/// the upstream's own second factor (an upstream account not linked to this user yet says
/// nothing about how *this* user authenticates; trusting its `mfa` here would let anyone with
/// an upstream account and a user's password skip that user's second factor).
///
/// Together they are still one factor, not "mfa" (RFC 8176 §2: "mfa — Multiple-factor
/// authentication", which NIST SP 800-63B §4.2 defines as factors of *different* types): the
/// upstream's factor is of a type Clavex does not know — most often a password too. So the
/// ID token says `amr` `["pwd", "fed"]` and the one-factor `acr`, and the gate asks a second
/// factor where the user has one or the policy requires one.
pub fn confirmation_factors() -> u8 {
    PWD | UPSTREAM
}

/// `auth_time` of the sign-in: when the person authenticated at the upstream if it says so (its
/// SSO session may be older than this interaction), never later than now.
pub fn auth_time(identity: &Identity, now: i64) -> i64 {
    identity.auth_time.filter(|t| *t <= now).unwrap_or(now)
}

/// A connection's options for a first sign-in.
#[derive(Debug, Clone, Copy)]
pub struct LinkOptions {
    pub jit_create: bool,
    pub link_by_verified_email: bool,
}

/// A Clavex user with the upstream's e-mail address, as stored.
#[derive(Debug, Clone, Copy)]
pub struct LocalMatch<'a> {
    pub user_id: &'a str,
    pub email_verified: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkDecision {
    /// Link the upstream account to this existing user.
    LinkExisting(String),
    /// Create a user from the claims and link it.
    Create,
    Refuse(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No linked user, and the connection neither creates users nor links by e-mail.
    NotLinked,
    /// A user has this address, but the connection does not link by e-mail, or the address is
    /// not verified on both sides.
    EmailBelongsToAnother,
    /// Creation needs an e-mail address (every Clavex user has one) and the upstream gave none.
    NoEmail,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NotLinked => "not_linked",
            Refusal::EmailBelongsToAnother => "email_belongs_to_another_account",
            Refusal::NoEmail => "no_email",
        }
    }

    /// What the person is told.
    pub fn explain(self) -> &'static str {
        match self {
            Refusal::NotLinked => {
                "Your account at this identity provider is not linked to an account here, and this organization does not create accounts on first sign-in. Ask an administrator, or sign in with your username and password."
            }
            Refusal::EmailBelongsToAnother => {
                "An account here already uses this e-mail address, and it is not linked to your account at this identity provider. Sign in with your username and password, or ask an administrator to link the accounts."
            }
            Refusal::NoEmail => {
                "The identity provider did not share an e-mail address, which an account here needs. Ask an administrator."
            }
        }
    }
}

/// A first sign-in (no link for this upstream `sub` yet): link, create or refuse. `by_email` is
/// the user holding the upstream's address, if any.
pub fn decide_link(
    options: LinkOptions,
    identity: &Identity,
    by_email: Option<LocalMatch>,
) -> LinkDecision {
    match (identity.email.as_deref(), by_email) {
        (Some(_), Some(local)) => {
            if options.link_by_verified_email && identity.email_verified && local.email_verified {
                LinkDecision::LinkExisting(local.user_id.to_string())
            } else {
                LinkDecision::Refuse(Refusal::EmailBelongsToAnother)
            }
        }
        (Some(_), None) if options.jit_create => LinkDecision::Create,
        (None, _) if options.jit_create => LinkDecision::Refuse(Refusal::NoEmail),
        _ => LinkDecision::Refuse(Refusal::NotLinked),
    }
}

/// A username for a user created from `identity`: `preferred_username`, else the e-mail's local
/// part, kept to Clavex's username characters; `suffix` (random) is added on a second try when
/// the first was taken.
pub fn username_for(identity: &Identity, suffix: Option<&str>) -> String {
    let base = identity
        .preferred_username
        .as_deref()
        .or_else(|| identity.email.as_deref().and_then(|e| e.split('@').next()))
        .unwrap_or("user");
    let mut name: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(48)
        .collect();
    if name.is_empty() {
        name = "user".into();
    }
    match suffix {
        Some(s) => format!("{name}-{s}"),
        None => name,
    }
}

/// The hash under which the audit trail names an upstream account (its `sub` may be an e-mail
/// address at some providers).
pub fn subject_hash(sub: &str) -> String {
    token_hash(sub)[..16].to_string()
}

/// The endpoints of an upstream, from its discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    /// Where the claims the ID token lacks are asked for (Core §5.3), when the upstream has one.
    pub userinfo_endpoint: Option<String>,
}

/// Discovery §4: "the string /.well-known/openid-configuration" appended to the issuer "with
/// any terminating / removed".
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Read a discovery document fetched for `issuer`. Discovery §4.3: "The issuer value returned
/// MUST be identical to the Issuer URL that was used as the prefix to
/// /.well-known/openid-configuration"; every endpoint Clavex calls or sends a browser to must be
/// one it may use (https, or loopback http while Clavex itself runs on http: `may_send`).
pub fn read_discovery(
    doc: &Value,
    issuer: &str,
    deployment_https: bool,
) -> Result<Discovery, String> {
    if doc["issuer"].as_str() != Some(issuer) {
        return Err(format!(
            "the discovery document names issuer {} instead of {issuer}",
            doc["issuer"]
        ));
    }
    let endpoint = |name: &str| -> Result<String, String> {
        let url = doc[name]
            .as_str()
            .ok_or_else(|| format!("the discovery document has no {name}"))?;
        if !crate::protocol::logout_token::may_send(url, deployment_https) {
            return Err(format!("{name} {url} is not https"));
        }
        Ok(url.to_string())
    };
    Ok(Discovery {
        issuer: issuer.to_string(),
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        jwks_uri: endpoint("jwks_uri")?,
        userinfo_endpoint: match doc.get("userinfo_endpoint") {
            None | Some(Value::Null) => None,
            Some(_) => Some(endpoint("userinfo_endpoint")?),
        },
    })
}

/// Whether the ID token left out claims a first sign-in needs (an e-mail address): many
/// providers, Clavex among them, release profile claims at userinfo only (Core §5.4).
pub fn needs_userinfo(identity: &Identity, m: &ClaimMapping, groups_claim: Option<&str>) -> bool {
    // The e-mail address (as mapped) always; the other mapped claims and the group claim only
    // where the connection names them, so a default connection asks no more than before.
    let explicit = [&m.username, &m.name, &m.picture]
        .into_iter()
        .filter_map(|c| c.as_deref());
    let missing = |name: &str| claim_text(&identity.claims, name).is_none();
    missing(m.email_claim())
        || explicit.chain(groups_claim).any(|name| {
            // A group claim may be a list, which claim_text does not read.
            !identity.claims.contains_key(name) && missing(name)
        })
}

/// The identity with the claims the ID token lacked taken from the userinfo answer. Core
/// §5.3.2: "The sub Claim in the UserInfo Response MUST be verified to exactly match the sub
/// Claim in the ID Token; if they do not match, the UserInfo Response values MUST NOT be used."
/// What the signed ID token says wins over userinfo.
pub fn with_userinfo(identity: Identity, userinfo: &Value) -> Identity {
    if userinfo["sub"].as_str() != Some(identity.sub.as_str()) {
        return identity;
    }
    let text = |name: &str| {
        userinfo[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let email_from_userinfo = identity.email.is_none() && text("email").is_some();
    let mut claims = identity.claims.clone();
    if let Some(extra) = userinfo.as_object() {
        for (name, value) in extra {
            claims.entry(name.clone()).or_insert_with(|| value.clone());
        }
    }
    Identity {
        claims,
        email_verified: if email_from_userinfo {
            userinfo["email_verified"].as_bool() == Some(true)
        } else {
            identity.email_verified
        },
        email: identity.email.or_else(|| text("email")),
        preferred_username: identity
            .preferred_username
            .or_else(|| text("preferred_username")),
        name: identity.name.or_else(|| text("name")),
        picture: identity.picture.or_else(|| text("picture")),
        ..identity
    }
}

/// The upstream's authorization request (Core §3.1.2.1, RFC 7636 §4.3).
pub fn authorization_url(
    d: &Discovery,
    client_id: &str,
    redirect_uri: &str,
    scopes: &str,
    t: &Transaction,
) -> String {
    let challenge = crate::crypto::b64url(&crate::crypto::sha256(t.code_verifier.as_bytes()));
    let mut url = url::Url::parse(&d.authorization_endpoint).expect("checked by read_discovery");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", scopes)
        .append_pair("state", &t.state)
        .append_pair("nonce", &t.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::b64url;
    use serde_json::json;

    fn keys() -> Keyring {
        Keyring::new("a-long-key-encryption-secret", &[]).unwrap()
    }

    fn transaction() -> Transaction {
        Transaction {
            connection_id: "con_1".into(),
            state: "st-1".into(),
            nonce: "n-1".into(),
            code_verifier: "v".repeat(43),
            request: AuthorizeRequest {
                client_id: "rocketchat".into(),
                redirect_uri: "https://chat.acme.eu/_oauth/clavex".into(),
                scope: "openid".into(),
                state: Some("s".into()),
                nonce: None,
                code_challenge: None,
                prompt: Default::default(),
                max_age: None,
                login_hint: None,
                id_token_hint: None,
                claims: None,
                acr_values: None,
                response_mode: Default::default(),
            },
            hint_sub: None,
            expires_at: 1000,
        }
    }

    #[test]
    fn a_transaction_opens_only_with_its_state_in_its_org_before_expiry() {
        let k = keys();
        let sealed = seal_transaction(&k, "acme", &transaction());
        let open = |cookie: Option<&str>, org: &str, state: Option<&str>, now| {
            open_transaction(&k, org, cookie, state, now)
        };
        assert_eq!(
            open(Some(&sealed), "acme", Some("st-1"), 999),
            Ok(transaction())
        );
        assert_eq!(
            open(Some(&sealed), "acme", Some("st-2"), 999),
            Err(TransactionError::StateMismatch)
        );
        assert_eq!(
            open(Some(&sealed), "acme", None, 999),
            Err(TransactionError::StateMismatch)
        );
        assert_eq!(
            open(Some(&sealed), "other", Some("st-1"), 999),
            Err(TransactionError::Invalid)
        );
        assert_eq!(
            open(Some(&sealed), "acme", Some("st-1"), 1000),
            Err(TransactionError::Expired)
        );
        assert_eq!(
            open(None, "acme", Some("st-1"), 1),
            Err(TransactionError::Missing)
        );
        let mut tampered = sealed.clone();
        let i = tampered.len() - 5;
        tampered.replace_range(i..i + 1, if &sealed[i..i + 1] == "A" { "B" } else { "A" });
        assert_eq!(
            open(Some(&tampered), "acme", Some("st-1"), 1),
            Err(TransactionError::Invalid)
        );
        // A form state (another purpose) is no transaction.
        let other = k.seal("sign-in-forms/v2", b"{}", b"acme");
        assert_eq!(
            open(Some(&other), "acme", Some("st-1"), 1),
            Err(TransactionError::Invalid)
        );
    }

    fn jws(header: Value, claims: Value, sig: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes()),
            b64url(sig)
        )
    }

    #[test]
    fn only_rs256_and_es256_compact_tokens_are_read() {
        let ok = parse_jws(&jws(
            json!({"alg":"RS256","kid":"k1"}),
            json!({"a":1}),
            b"sig",
        ))
        .unwrap();
        assert_eq!((ok.alg, ok.kid.as_deref()), (Alg::Rs256, Some("k1")));
        assert!(ok.signing_input.ends_with(&b64url(br#"{"a":1}"#)));
        assert!(parse_jws(&jws(json!({"alg":"ES256"}), json!({}), &[0; 64])).is_ok());
        for alg in ["none", "HS256", "RS512", ""] {
            assert!(matches!(
                parse_jws(&jws(json!({"alg": alg}), json!({}), b"s")),
                Err(TokenError::UnsupportedAlg(_))
            ));
        }
        assert_eq!(
            parse_jws(&jws(json!({"alg":"ES256"}), json!({}), &[0; 70])).unwrap_err(),
            TokenError::BadSignature,
            "DER is not JWS"
        );
        assert!(parse_jws("a.b").is_err());
        assert!(parse_jws("a.b.c.d").is_err());
        assert!(parse_jws(&jws(json!({"alg":"RS256","crit":["x"]}), json!({}), b"s")).is_err());
        assert!(parse_jws(&jws(json!({"alg":"RS256"}), json!([1]), b"s")).is_err());
    }

    #[test]
    fn keys_are_chosen_by_kid_and_algorithm() {
        let jwks = json!({"keys": [
            {"kty":"RSA","kid":"r1","n":"n","e":"AQAB","use":"sig"},
            {"kty":"RSA","kid":"r2","n":"n","e":"AQAB","use":"enc"},
            {"kty":"EC","kid":"e1","crv":"P-256","x":"x","y":"y"},
            {"kty":"EC","kid":"e2","crv":"P-384","x":"x","y":"y"}
        ]});
        let token = |alg: &str, kid: Option<&str>| {
            let mut h = json!({"alg": alg});
            if let Some(k) = kid {
                h["kid"] = json!(k);
            }
            parse_jws(&jws(h, json!({}), &[0; 64])).unwrap()
        };
        assert_eq!(
            select_key(&jwks, &token("RS256", Some("r1"))).unwrap()["kid"],
            "r1"
        );
        assert!(
            select_key(&jwks, &token("RS256", Some("r2"))).is_none(),
            "enc key"
        );
        assert!(
            select_key(&jwks, &token("RS256", Some("e1"))).is_none(),
            "wrong type"
        );
        assert_eq!(
            select_key(&jwks, &token("ES256", Some("e1"))).unwrap()["kid"],
            "e1"
        );
        assert!(
            select_key(&jwks, &token("ES256", Some("e2"))).is_none(),
            "P-384"
        );
        assert!(select_key(&jwks, &token("RS256", Some("zz"))).is_none());
        // Without kid: only when exactly one key fits.
        assert_eq!(
            select_key(&jwks, &token("RS256", None)).unwrap()["kid"],
            "r1"
        );
        let two =
            json!({"keys": [{"kty":"RSA","n":"a","e":"AQAB"},{"kty":"RSA","n":"b","e":"AQAB"}]});
        assert!(select_key(&two, &token("RS256", None)).is_none());
        assert!(select_key(&json!({}), &token("RS256", None)).is_none());
    }

    const NOW: i64 = 10_000;

    fn claims() -> Value {
        json!({
            "iss": "https://up.example", "aud": "clavex", "sub": "u-1", "nonce": "n-1",
            "exp": NOW + 300, "iat": NOW - 5, "email": "ann@example.test", "email_verified": true,
            "preferred_username": "ann", "amr": ["pwd"], "auth_time": NOW - 30
        })
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://up.example",
            client_id: "clavex",
            nonce: "n-1",
            now: NOW,
        }
    }

    fn with(changes: Value) -> Value {
        let mut c = claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    #[test]
    fn a_good_id_token_gives_the_identity() {
        let id = check_claims(&claims(), &expected()).unwrap();
        assert_eq!(id.sub, "u-1");
        assert_eq!(id.email.as_deref(), Some("ann@example.test"));
        assert!(id.email_verified);
        assert_eq!(id.auth_time, Some(NOW - 30));
        // An array audience with only us, and azp us, are fine.
        assert!(
            check_claims(
                &with(json!({"aud": ["clavex"], "azp": "clavex"})),
                &expected()
            )
            .is_ok()
        );
        // Within the skew.
        assert!(check_claims(&with(json!({"exp": NOW - 30})), &expected()).is_ok());
        assert!(
            !check_claims(&with(json!({"email_verified": "true"})), &expected())
                .unwrap()
                .email_verified
        );
    }

    #[test]
    fn every_claim_failure_is_refused() {
        let cases = [
            (json!({"iss": "https://other.example"}), TokenError::Issuer),
            (json!({"iss": "https://up.example/"}), TokenError::Issuer),
            (json!({"iss": null}), TokenError::Issuer),
            (json!({"aud": "someone-else"}), TokenError::Audience),
            (
                json!({"aud": ["clavex", "someone-else"], "azp": "clavex"}),
                TokenError::Audience,
            ),
            (json!({"aud": []}), TokenError::Audience),
            (json!({"aud": null}), TokenError::Audience),
            (json!({"azp": "someone-else"}), TokenError::AuthorizedParty),
            (
                json!({"exp": NOW - CLOCK_SKEW_SECONDS}),
                TokenError::Expired,
            ),
            (json!({"exp": null}), TokenError::Expired),
            (json!({"exp": "later"}), TokenError::Expired),
            (
                json!({"iat": NOW + CLOCK_SKEW_SECONDS + 1}),
                TokenError::IssuedAt,
            ),
            (
                json!({"iat": NOW - TRANSACTION_SECONDS - CLOCK_SKEW_SECONDS - 1}),
                TokenError::IssuedAt,
            ),
            (json!({"iat": null}), TokenError::IssuedAt),
            (json!({"nonce": "n-2"}), TokenError::Nonce),
            (json!({"nonce": null}), TokenError::Nonce),
            (json!({"sub": null}), TokenError::Subject),
            (json!({"sub": ""}), TokenError::Subject),
            (json!({"sub": "x".repeat(256)}), TokenError::Subject),
        ];
        for (change, error) in cases {
            assert_eq!(
                check_claims(&with(change.clone()), &expected()),
                Err(error),
                "{change}"
            );
        }
    }

    fn identity(email: Option<&str>, verified: bool) -> Identity {
        let mut c = with(json!({"email_verified": verified}));
        match email {
            Some(e) => c["email"] = json!(e),
            None => {
                c.as_object_mut().unwrap().remove("email");
            }
        }
        check_claims(&c, &expected()).unwrap()
    }

    #[test]
    fn linking_by_email_needs_the_option_and_both_sides_verified() {
        let opts = |jit, email| LinkOptions {
            jit_create: jit,
            link_by_verified_email: email,
        };
        let local = |verified| {
            Some(LocalMatch {
                user_id: "usr_1",
                email_verified: verified,
            })
        };
        let ann = identity(Some("ann@example.test"), true);
        assert_eq!(
            decide_link(opts(false, true), &ann, local(true)),
            LinkDecision::LinkExisting("usr_1".into())
        );
        // Not opted in, even with JIT on: never a second account with the address, never a link.
        for jit in [false, true] {
            assert_eq!(
                decide_link(opts(jit, false), &ann, local(true)),
                LinkDecision::Refuse(Refusal::EmailBelongsToAnother)
            );
        }
        // Upstream does not vouch for the address, or the local one is unverified.
        let unverified = identity(Some("ann@example.test"), false);
        assert_eq!(
            decide_link(opts(true, true), &unverified, local(true)),
            LinkDecision::Refuse(Refusal::EmailBelongsToAnother)
        );
        assert_eq!(
            decide_link(opts(true, true), &ann, local(false)),
            LinkDecision::Refuse(Refusal::EmailBelongsToAnother)
        );
        // Nobody has the address.
        assert_eq!(
            decide_link(opts(true, true), &ann, None),
            LinkDecision::Create
        );
        assert_eq!(
            decide_link(opts(true, false), &unverified, None),
            LinkDecision::Create
        );
        assert_eq!(
            decide_link(opts(false, true), &ann, None),
            LinkDecision::Refuse(Refusal::NotLinked)
        );
        let no_email = identity(None, false);
        assert_eq!(
            decide_link(opts(true, true), &no_email, None),
            LinkDecision::Refuse(Refusal::NoEmail)
        );
        assert_eq!(
            decide_link(opts(false, false), &no_email, None),
            LinkDecision::Refuse(Refusal::NotLinked)
        );
    }

    #[test]
    fn an_upstream_sign_in_is_one_factor_unless_trusted_and_multi_factor() {
        use crate::protocol::mfa::{self, has_second_factor};
        let id = |amr: &[&str], acr: Option<&str>| Identity {
            amr: amr.iter().map(|s| s.to_string()).collect(),
            acr: acr.map(str::to_string),
            ..identity(None, false)
        };
        let pwd = id(&["pwd"], None);
        let mfa_amr = id(&["pwd", "otp", "mfa"], None);
        let mfa_acr = id(&[], Some("urn:clavex:acr:mfa"));
        assert_eq!(factors(true, &pwd), UPSTREAM);
        assert_eq!(factors(false, &mfa_amr), UPSTREAM);
        assert_eq!(factors(true, &mfa_amr), UPSTREAM | UPSTREAM_MFA);
        assert_eq!(factors(true, &mfa_acr), UPSTREAM | UPSTREAM_MFA);
        assert!(!has_second_factor(UPSTREAM));
        assert!(has_second_factor(UPSTREAM | UPSTREAM_MFA));
        assert_eq!(mfa::amr(UPSTREAM), vec!["fed"]);
        assert_eq!(mfa::amr(UPSTREAM | UPSTREAM_MFA), vec!["fed", "mfa"]);
        assert_eq!(mfa::amr(UPSTREAM | mfa::OTP), vec!["fed", "otp", "mfa"]);
        for f in [UPSTREAM, UPSTREAM | UPSTREAM_MFA, UPSTREAM | mfa::OTP] {
            assert_eq!(mfa::factors_of(&mfa::amr(f).join(" ")), f);
        }
    }

    #[test]
    fn auth_time_is_the_upstream_one_never_in_the_future() {
        let mut id = identity(None, false);
        assert_eq!(auth_time(&id, NOW), NOW - 30);
        id.auth_time = Some(NOW + 10);
        assert_eq!(auth_time(&id, NOW), NOW);
        id.auth_time = None;
        assert_eq!(auth_time(&id, NOW), NOW);
    }

    #[test]
    fn usernames_come_from_the_claims_in_clavex_characters() {
        let mut id = identity(Some("Ann.Smith+x@example.test"), true);
        assert_eq!(username_for(&id, None), "ann");
        id.preferred_username = None;
        assert_eq!(username_for(&id, None), "Ann.Smithx");
        assert_eq!(username_for(&id, Some("a1b2")), "Ann.Smithx-a1b2");
        id.preferred_username = Some("ü ü".into());
        assert_eq!(username_for(&id, None), "user");
        assert_ne!(subject_hash("a"), subject_hash("b"));
        assert_eq!(subject_hash("a").len(), 16);
    }

    #[test]
    fn discovery_must_name_the_same_issuer_and_usable_endpoints() {
        assert_eq!(
            discovery_url("https://up.example/"),
            "https://up.example/.well-known/openid-configuration"
        );
        let doc = json!({
            "issuer": "https://up.example", "authorization_endpoint": "https://up.example/auth",
            "token_endpoint": "https://up.example/token", "jwks_uri": "https://up.example/jwks"
        });
        let d = read_discovery(&doc, "https://up.example", true).unwrap();
        assert_eq!(d.token_endpoint, "https://up.example/token");
        assert!(read_discovery(&doc, "https://up.example/", true).is_err());
        let mut http = doc.clone();
        http["token_endpoint"] = json!("http://up.example/token");
        assert!(read_discovery(&http, "https://up.example", true).is_err());
        let mut missing = doc.clone();
        missing.as_object_mut().unwrap().remove("jwks_uri");
        assert!(read_discovery(&missing, "https://up.example", true).is_err());
        let local = json!({
            "issuer": "http://127.0.0.1:8787/up", "authorization_endpoint": "http://127.0.0.1:8787/up/authorize",
            "token_endpoint": "http://127.0.0.1:8787/up/token", "jwks_uri": "http://127.0.0.1:8787/up/jwks"
        });
        assert!(read_discovery(&local, "http://127.0.0.1:8787/up", false).is_ok());
        assert!(read_discovery(&local, "http://127.0.0.1:8787/up", true).is_err());
    }

    #[test]
    fn the_authorization_url_carries_pkce_state_and_nonce() {
        let d = Discovery {
            issuer: "https://up.example".into(),
            authorization_endpoint: "https://up.example/auth?tenant=x".into(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
            userinfo_endpoint: None,
        };
        let t = transaction();
        let url = url::Url::parse(&authorization_url(
            &d,
            "clavex",
            "https://id.acme.eu/acme/connections/callback",
            "openid email",
            &t,
        ))
        .unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["tenant"], "x");
        assert_eq!(q["state"], t.state);
        assert_eq!(q["nonce"], t.nonce);
        assert_eq!(q["scope"], "openid email");
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(crate::protocol::pkce::verify_s256(
            &t.code_verifier,
            &q["code_challenge"]
        ));
    }

    #[test]
    fn userinfo_fills_what_the_id_token_lacks_only_for_the_same_sub() {
        let bare = identity(None, false);
        let plain = ClaimMapping::default();
        assert!(needs_userinfo(&bare, &plain, None));
        let info = json!({"sub": "u-1", "email": "ann@example.test", "email_verified": true, "name": "Ann"});
        let merged = with_userinfo(bare.clone(), &info);
        assert_eq!(merged.email.as_deref(), Some("ann@example.test"));
        assert!(merged.email_verified);
        assert_eq!(merged.name.as_deref(), Some("Ann"));
        assert_eq!(
            merged.preferred_username.as_deref(),
            Some("ann"),
            "the ID token's kept"
        );
        assert!(!needs_userinfo(&merged, &plain, None));
        assert!(
            needs_userinfo(&merged, &plain, Some("groups")),
            "a group claim neither gave"
        );
        assert_eq!(
            merged.claims["email"], "ann@example.test",
            "userinfo's, kept for mapping"
        );
        // Another sub: not used at all.
        let other = with_userinfo(
            bare.clone(),
            &json!({"sub": "u-2", "email": "x@example.test"}),
        );
        assert_eq!(other, bare);
        // The ID token's address and its verification win.
        let signed = identity(Some("ann@example.test"), false);
        let kept = with_userinfo(
            signed.clone(),
            &json!({"sub": "u-1", "email": "evil@example.test", "email_verified": true}),
        );
        assert_eq!(kept.email.as_deref(), Some("ann@example.test"));
        assert!(!kept.email_verified);
    }

    #[test]
    fn a_claim_mapping_reads_the_profile_from_the_claims_it_names() {
        let mut id = identity(Some("ann@example.test"), true);
        id.claims
            .insert("upn".into(), json!("ann.smith@corp.example"));
        id.claims.insert("given".into(), json!("Ann S."));
        let m = ClaimMapping {
            username: Some("upn".into()),
            name: Some("given".into()),
            ..ClaimMapping::default()
        };
        let out = mapped(id.clone(), &m);
        assert_eq!(
            out.preferred_username.as_deref(),
            Some("ann.smith@corp.example")
        );
        assert_eq!(out.name.as_deref(), Some("Ann S."));
        assert_eq!(out.email.as_deref(), Some("ann@example.test"));
        assert!(
            out.email_verified,
            "the standard email claim keeps its verification"
        );
        // An address from another claim is never verified, whatever email_verified says.
        let m = ClaimMapping {
            email: Some("upn".into()),
            ..ClaimMapping::default()
        };
        let out = mapped(id.clone(), &m);
        assert_eq!(out.email.as_deref(), Some("ann.smith@corp.example"));
        assert!(!out.email_verified);
        assert!(!needs_userinfo(&id, &m, None));
        assert!(needs_userinfo(
            &id,
            &ClaimMapping {
                picture: Some("avatar".into()),
                ..ClaimMapping::default()
            },
            None
        ));
        assert_eq!(mapped(id.clone(), &ClaimMapping::default()), id);
    }

    #[test]
    fn a_confirmed_link_is_one_factor_and_an_enrolled_user_is_still_asked_for_the_code() {
        use crate::protocol::mfa::{Step, acr, amr, has_second_factor, next_step};
        let f = confirmation_factors();
        assert_eq!(amr(f), vec!["pwd", "fed"], "no mfa");
        assert!(!has_second_factor(f));
        assert_eq!(acr(f), crate::protocol::mfa::ACR_PASSWORD);
        assert_eq!(
            next_step(f, true, false, false),
            Step::Challenge,
            "enrolled"
        );
        assert_eq!(next_step(f, false, false, true), Step::Enrol, "required");
        assert_eq!(next_step(f, false, false, false), Step::Done);
        assert_eq!(f & UPSTREAM_MFA, 0, "the upstream's mfa never counts here");
    }
}
