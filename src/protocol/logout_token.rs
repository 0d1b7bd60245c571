//! OpenID Connect Back-Channel Logout 1.0: who is told that a sign-in ended, what the logout
//! token says, and how a delivery is retried. Pure; edge/backchannel.rs sends them.

use serde_json::{Value, json};

/// §2.4: "events ... MUST contain the member name
/// http://schemas.openid.net/event/backchannel-logout".
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// §2.4: explicit typing of logout tokens ("typ" header "logout+jwt"), so one can never be
/// taken for an ID token.
pub const TYP: &str = "logout+jwt";
/// A logout token is used at once by the relying party; two minutes cover clock skew and the
/// retries below.
pub const LOGOUT_TOKEN_SECONDS: i64 = 120;
/// Waits before each delivery attempt: at once, then after 1 s and 4 s more. Bounded so that all
/// of it fits in the time a Worker may go on after its response (`waitUntil`, 30 s), with the
/// per-attempt timeout.
pub const ATTEMPT_WAITS_MS: [u64; 3] = [0, 1_000, 4_000];
/// How long one attempt may take before it counts as not answered.
pub const ATTEMPT_TIMEOUT_MS: u64 = 5_000;
/// The most logout tokens one event sends (one per client and session): bounded work after a
/// response, whatever a user has accumulated.
pub const MAX_DELIVERIES: usize = 50;

/// What ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended<'a> {
    /// One SSO session (the user signed out at Clavex): its `sid`, when the session has one.
    Session(Option<&'a str>),
    /// Every session of the user (disabled, deleted, signed out everywhere).
    User,
}

/// One of the user's live grants at a client that asked to be told (`backchannel_logout_uri`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantAt {
    pub client_id: String,
    pub uri: String,
    /// The client needs `sid` in every logout token (§2.2 backchannel_logout_session_required).
    pub session_required: bool,
    /// The SSO session the grant was issued under (None: from before sessions had ids).
    pub sid: Option<String>,
}

/// One logout token to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub client_id: String,
    pub uri: String,
    pub sid: Option<String>,
}

/// The logout tokens an event sends, one per client — or, for a client that needs `sid`, one
/// per session of the user there. §2.6: an RP receiving `sub` and `sid` ends that session;
/// `sub` alone ends every session of the user at the RP.
/// - A session ended: every client where the user holds a grant is told `sub` and the ended
///   session's `sid` (an RP that never saw that sid ends nothing). A session without a sid
///   (older than sids) can only be named by `sub`: clients that need `sid` are not told.
/// - The user ended: `sub` to every client; a client that needs `sid` gets one token per session
///   its grants came from.
pub fn deliveries(ended: &Ended<'_>, grants: &[GrantAt]) -> Vec<Delivery> {
    let mut out: Vec<Delivery> = Vec::new();
    let mut add = |g: &GrantAt, sid: Option<&str>| {
        let d = Delivery {
            client_id: g.client_id.clone(),
            uri: g.uri.clone(),
            sid: sid.map(str::to_string),
        };
        if !out.contains(&d) && out.len() < MAX_DELIVERIES {
            out.push(d);
        }
    };
    for g in grants {
        match ended {
            Ended::Session(Some(sid)) => add(g, Some(sid)),
            Ended::Session(None) if !g.session_required => add(g, None),
            Ended::Session(None) => {}
            Ended::User if !g.session_required => add(g, None),
            Ended::User => {
                if let Some(sid) = &g.sid {
                    add(g, Some(sid));
                }
            }
        }
    }
    out
}

/// The logout token's claims (§2.4): iss, aud, iat, exp, jti, events, and sub and/or sid —
/// never a nonce ("A nonce Claim MUST NOT be present").
pub fn claims(
    issuer: &str,
    client_id: &str,
    sub: &str,
    sid: Option<&str>,
    jti: &str,
    now: i64,
) -> Value {
    let mut c = json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + LOGOUT_TOKEN_SECONDS,
        "jti": jti,
        "sub": sub,
        "events": { EVENT: {} },
    });
    if let Some(sid) = sid {
        c["sid"] = json!(sid);
    }
    c
}

/// Whether an attempt that ended so is tried again. §2.8: the RP answers 200 (or 204) on
/// success and 400 when the token is not valid or the logout failed; a refusal will not change
/// on its own, while no answer, a server error or 429 may.
pub fn worth_retrying(status: Option<u16>) -> bool {
    match status {
        None => true,
        Some(s) => s == 429 || s >= 500,
    }
}

pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Relying parties' addresses are outbound calls from the Worker: plain http is sent only while
/// Clavex itself runs on plain http (local development), and only to a loopback host — the
/// admin API refuses anything else when the address is registered; this checks again when it
/// is used.
pub fn may_send(uri: &str, deployment_https: bool) -> bool {
    let Ok(url) = url::Url::parse(uri) else {
        return false;
    };
    match url.scheme() {
        "https" => true,
        "http" => {
            !deployment_https && matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(client: &str, required: bool, sid: Option<&str>) -> GrantAt {
        GrantAt {
            client_id: client.into(),
            uri: format!("https://{client}.example/bcl"),
            session_required: required,
            sid: sid.map(str::to_string),
        }
    }

    fn pairs(d: &[Delivery]) -> Vec<(&str, Option<&str>)> {
        d.iter()
            .map(|d| (d.client_id.as_str(), d.sid.as_deref()))
            .collect()
    }

    #[test]
    fn a_session_ended_tells_every_client_its_sid_once() {
        let grants = [
            grant("chat", false, Some("s1")),
            grant("chat", false, Some("s2")),
            grant("wiki", true, Some("s2")),
            grant("mail", true, None),
        ];
        let d = deliveries(&Ended::Session(Some("s1")), &grants);
        assert_eq!(
            pairs(&d),
            [
                ("chat", Some("s1")),
                ("wiki", Some("s1")),
                ("mail", Some("s1"))
            ]
        );
    }

    #[test]
    fn a_session_without_a_sid_is_named_by_sub_where_allowed() {
        let grants = [grant("chat", false, None), grant("wiki", true, Some("s2"))];
        let d = deliveries(&Ended::Session(None), &grants);
        assert_eq!(pairs(&d), [("chat", None)]);
    }

    #[test]
    fn a_user_ended_is_one_sub_token_per_client_or_one_per_session_where_sid_is_required() {
        let grants = [
            grant("chat", false, Some("s1")),
            grant("chat", false, Some("s2")),
            grant("wiki", true, Some("s1")),
            grant("wiki", true, Some("s2")),
            grant("wiki", true, None),
        ];
        let d = deliveries(&Ended::User, &grants);
        assert_eq!(
            pairs(&d),
            [("chat", None), ("wiki", Some("s1")), ("wiki", Some("s2"))]
        );
    }

    #[test]
    fn deliveries_are_bounded() {
        let grants: Vec<GrantAt> = (0..200)
            .map(|i| grant(&format!("c{i}"), false, None))
            .collect();
        assert_eq!(deliveries(&Ended::User, &grants).len(), MAX_DELIVERIES);
    }

    #[test]
    fn claims_follow_section_2_4() {
        let c = claims(
            "https://id.acme.eu/acme",
            "chat",
            "usr_1",
            Some("s1"),
            "j1",
            1000,
        );
        assert_eq!(c["iss"], "https://id.acme.eu/acme");
        assert_eq!(c["aud"], "chat");
        assert_eq!(c["sub"], "usr_1");
        assert_eq!(c["sid"], "s1");
        assert_eq!(c["jti"], "j1");
        assert_eq!(c["iat"], 1000);
        assert_eq!(c["exp"], 1000 + LOGOUT_TOKEN_SECONDS);
        assert_eq!(c["events"][EVENT], json!({}));
        assert!(c.get("nonce").is_none());
        assert!(claims("i", "c", "u", None, "j", 0).get("sid").is_none());
    }

    #[test]
    fn retries_only_what_may_change() {
        assert!(worth_retrying(None));
        assert!(worth_retrying(Some(503)));
        assert!(worth_retrying(Some(429)));
        assert!(!worth_retrying(Some(400)));
        assert!(!worth_retrying(Some(200)));
        assert!(delivered(200) && delivered(204) && !delivered(302) && !delivered(400));
    }

    #[test]
    fn plain_http_only_to_loopback_in_local_development() {
        assert!(may_send("https://chat.acme.eu/bcl", true));
        assert!(may_send("http://127.0.0.1:8080/bcl", false));
        assert!(may_send("http://localhost/bcl", false));
        assert!(!may_send("http://127.0.0.1:8080/bcl", true));
        assert!(!may_send("http://chat.acme.eu/bcl", false));
        assert!(!may_send("ftp://chat.acme.eu/bcl", false));
        assert!(!may_send("not a url", false));
    }
}
