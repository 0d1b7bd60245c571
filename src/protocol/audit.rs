//! The audit trail's vocabulary: what is recorded, and the rules for what an event may carry.
//! Pure. Events are written to D1 after the response (`waitUntil`, edge/audit.rs) and printed as
//! one JSON line each for Workers Logs; they never hold a secret, a password or a token.

use serde::Serialize;
use serde_json::{Map, Value};

pub const DEFAULT_RETENTION_DAYS: i64 = 90;

/// Every kind of event, with its stable name (the `type` filter of the admin API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// Every factor the sign-in needed was given: a new SSO session (or a step-up of one).
    SignInSucceeded,
    /// A wrong password, an unknown or disabled user.
    SignInFailed,
    /// Refused without checking: the account or address is waiting out failures.
    SignInThrottled,
    /// A sign-in through an existing SSO session (no password asked).
    SignInSso,
    /// A right TOTP or recovery code; the sign-in goes on (it succeeds once every factor it
    /// needs is given: `signin.succeeded`).
    SecondFactorPassed,
    /// The user is not in a group the client admits.
    SignInDenied,
    Logout,
    /// A logout token sent (or not) to a relying party's `backchannel_logout_uri`; `detail`
    /// says whether it was delivered, after how many attempts, and the last HTTP status.
    BackchannelLogout,
    CodeIssued,
    CodeRedeemed,
    /// A code presented again: what its first redemption issued is revoked.
    CodeReplayed,
    /// A code whose user the primary refused at redemption (disabled, deleted, or no longer in
    /// the client's allowed groups): burnt, nothing issued; `detail.reason` says which.
    CodeRefused,
    /// A rotated refresh token presented again: the grant is revoked.
    RefreshReuseDetected,
    TokenRevoked,
    ClientAuthFailed,
    /// Recorded by earlier releases, which throttled client secrets; kept so the events they
    /// stored can still be listed by type.
    ClientAuthThrottled,
    AdminAuthFailed,
    /// A successful write through the admin API.
    AdminChange,
    /// A user set up a second factor.
    MfaEnrolled,
    /// A user removed their second factor on the account page.
    MfaRemoved,
    /// A user replaced their recovery codes on the account page.
    RecoveryCodesRenewed,
    /// A user changed their password on the account page (their other sessions ended).
    PasswordChanged,
    /// Every SSO session and grant of the user ended (the account page, or the admin API).
    LogoutEverywhere,
    /// A request of the organization failed because storage (D1, KV) did not answer; it was
    /// told to retry (503). Stored only if the audit write itself succeeds afterwards.
    StorageUnavailable,
    /// A sign-in at an upstream identity provider was verified and names a Clavex user
    /// (`detail`: the connection, the factors it counts as); the gate decides what follows.
    UpstreamSignIn,
    /// A user was linked to an upstream account on a first sign-in (`detail.how`: `created`
    /// with a new user, or `email` to an existing one).
    UpstreamLinkCreated,
    /// A user linked an upstream account to their account by signing in once with their
    /// password (and any second factor) on the confirmation page (`detail`: the connection and
    /// a hash of the upstream `sub`).
    UpstreamLinkConfirmed,
    /// An administrator removed a user's link to an upstream account (`detail`: the connection
    /// and a hash of the upstream `sub`); recorded besides the `admin.change` of the request.
    UpstreamLinkRemoved,
    /// An upstream sign-in was refused (`detail.reason`): a failed verification, an upstream
    /// error, or no account to link.
    UpstreamRefused,
    /// A one-time link was made (`detail`: its purpose, what it resets, who asked — `admin` or
    /// `forgot_password` — and whether it was e-mailed). Never the link itself.
    LinkIssued,
    /// A one-time link was used (`detail`: its purpose and what it reset).
    LinkUsed,
    /// A one-time link was refused at its page (`detail.reason`: used, superseded, expired,
    /// disabled), or a "forgot password" request made no link (`detail.reason`: throttled).
    LinkRefused,
    /// A user registered a passkey (`detail`: its id and name).
    PasskeyAdded,
    /// A passkey was removed, by its user on the account page or by an administrator.
    PasskeyRemoved,
    /// A passkey response was refused (`detail.reason`: which check failed, protocol/webauthn.rs).
    PasskeyRefused,
    /// WebAuthn §7.2 step 21: a non-zero signature counter that did not increase — the
    /// authenticator may have been cloned (`detail`: the passkey, stored and received counts).
    PasskeyCounterRegressed,
}

pub const ALL: &[Kind] = &[
    Kind::SignInSucceeded,
    Kind::SignInFailed,
    Kind::SignInThrottled,
    Kind::SignInSso,
    Kind::SecondFactorPassed,
    Kind::SignInDenied,
    Kind::Logout,
    Kind::BackchannelLogout,
    Kind::CodeIssued,
    Kind::CodeRedeemed,
    Kind::CodeReplayed,
    Kind::CodeRefused,
    Kind::RefreshReuseDetected,
    Kind::TokenRevoked,
    Kind::ClientAuthFailed,
    Kind::ClientAuthThrottled,
    Kind::AdminAuthFailed,
    Kind::AdminChange,
    Kind::MfaEnrolled,
    Kind::MfaRemoved,
    Kind::RecoveryCodesRenewed,
    Kind::PasswordChanged,
    Kind::LogoutEverywhere,
    Kind::StorageUnavailable,
    Kind::UpstreamSignIn,
    Kind::UpstreamLinkCreated,
    Kind::UpstreamLinkConfirmed,
    Kind::UpstreamLinkRemoved,
    Kind::UpstreamRefused,
    Kind::LinkIssued,
    Kind::LinkUsed,
    Kind::LinkRefused,
    Kind::PasskeyAdded,
    Kind::PasskeyRemoved,
    Kind::PasskeyRefused,
    Kind::PasskeyCounterRegressed,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::SignInSucceeded => "signin.succeeded",
            Kind::SignInFailed => "signin.failed",
            Kind::SignInThrottled => "signin.throttled",
            Kind::SignInSso => "signin.sso",
            Kind::SecondFactorPassed => "signin.second_factor_passed",
            Kind::SignInDenied => "signin.denied",
            Kind::Logout => "logout",
            Kind::BackchannelLogout => "logout.backchannel",
            Kind::CodeIssued => "code.issued",
            Kind::CodeRedeemed => "code.redeemed",
            Kind::CodeReplayed => "code.replayed",
            Kind::CodeRefused => "code.refused",
            Kind::RefreshReuseDetected => "refresh.reuse_detected",
            Kind::TokenRevoked => "token.revoked",
            Kind::ClientAuthFailed => "client.auth_failed",
            Kind::ClientAuthThrottled => "client.auth_throttled",
            Kind::AdminAuthFailed => "admin.auth_failed",
            Kind::AdminChange => "admin.change",
            Kind::MfaEnrolled => "mfa.enrolled",
            Kind::MfaRemoved => "mfa.removed",
            Kind::RecoveryCodesRenewed => "mfa.recovery_codes_renewed",
            Kind::PasswordChanged => "password.changed",
            Kind::LogoutEverywhere => "logout.everywhere",
            Kind::StorageUnavailable => "storage.unavailable",
            Kind::UpstreamSignIn => "upstream.signin",
            Kind::UpstreamLinkCreated => "upstream.link.created",
            Kind::UpstreamLinkConfirmed => "upstream.link.confirmed",
            Kind::UpstreamLinkRemoved => "upstream.link.removed",
            Kind::UpstreamRefused => "upstream.refused",
            Kind::LinkIssued => "link.issued",
            Kind::LinkUsed => "link.used",
            Kind::LinkRefused => "link.refused",
            Kind::PasskeyAdded => "passkey.added",
            Kind::PasskeyRemoved => "passkey.removed",
            Kind::PasskeyRefused => "passkey.refused",
            Kind::PasskeyCounterRegressed => "passkey.counter_regressed",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        ALL.iter().copied().find(|k| k.name() == name)
    }
}

/// One event, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub org: String,
    pub at: i64,
    pub kind: Kind,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Map<String, Value>,
}

/// Members an event's detail may never carry, whatever a caller passes: they would put a secret
/// into the logs (defence in depth; no caller passes them).
const NEVER: &[&str] = &[
    "password",
    "client_secret",
    "secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "code",
    "code_verifier",
    "authorization",
    "cookie",
];

/// A user agent is kept to this many characters (enough to tell browsers and libraries apart).
pub const MAX_USER_AGENT: usize = 256;

impl Event {
    /// Drops forbidden detail members and trims the user agent.
    pub fn scrubbed(mut self) -> Event {
        self.detail
            .retain(|k, _| !NEVER.contains(&k.to_ascii_lowercase().as_str()));
        if let Some(ua) = &self.user_agent {
            self.user_agent = Some(ua.chars().take(MAX_USER_AGENT).collect());
        }
        self
    }

    /// The structured log line (Workers Logs indexes JSON printed to the console).
    pub fn log_line(&self) -> String {
        serde_json::json!({
            "audit": self.kind.name(),
            "org": self.org,
            "at": self.at,
            "user_id": self.user_id,
            "client_id": self.client_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "detail": self.detail,
        })
        .to_string()
    }
}

/// Filters of `GET /organizations/{org}/events`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub kind: Option<&'static str>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Events older (smaller id) than this cursor.
    pub before: Option<i64>,
    pub limit: u32,
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

/// The query string of the events list; every error names its parameter.
pub fn parse_query<'a>(
    pairs: impl Iterator<Item = (String, String)> + 'a,
) -> Result<Query, (String, String)> {
    let mut q = Query {
        limit: DEFAULT_PAGE,
        ..Query::default()
    };
    let int = |name: &str, v: &str| {
        v.parse::<i64>()
            .map_err(|_| (name.to_string(), format!("{name} must be an integer")))
    };
    for (key, value) in pairs {
        match key.as_str() {
            "type" => {
                q.kind = Some(Kind::parse(&value).map(Kind::name).ok_or_else(|| {
                    let names: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
                    (
                        "type".to_string(),
                        format!("unknown event type; use one of {}", names.join(", ")),
                    )
                })?)
            }
            "user_id" => q.user_id = Some(value),
            "client_id" => q.client_id = Some(value),
            "since" => q.since = Some(int("since", &value)?),
            "until" => q.until = Some(int("until", &value)?),
            "cursor" => q.before = Some(int("cursor", &value)?),
            "limit" => {
                q.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| ("limit".to_string(), format!("limit must be 1-{MAX_PAGE}")))?
            }
            other => {
                return Err((
                    other.to_string(),
                    format!(
                        "unknown parameter {other}; use type, user_id, client_id, since, until, limit, cursor"
                    ),
                ));
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> impl Iterator<Item = (String, String)> {
        url::form_urlencoded::parse(q.as_bytes()).into_owned()
    }

    #[test]
    fn names_round_trip_and_are_unique() {
        for k in ALL {
            assert_eq!(Kind::parse(k.name()), Some(*k));
        }
        let mut names: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn details_never_carry_secrets() {
        let mut detail = Map::new();
        detail.insert("password".into(), "hunter2".into());
        detail.insert("Client_Secret".into(), "cs_x".into());
        detail.insert("fields".into(), serde_json::json!(["name"]));
        let e = Event {
            org: "acme".into(),
            at: 1,
            kind: Kind::AdminChange,
            user_id: None,
            client_id: None,
            ip: Some("203.0.113.9".into()),
            user_agent: Some("x".repeat(1000)),
            detail,
        }
        .scrubbed();
        assert_eq!(e.detail.keys().collect::<Vec<_>>(), vec!["fields"]);
        assert_eq!(e.user_agent.as_ref().unwrap().len(), MAX_USER_AGENT);
        let line: Value = serde_json::from_str(&e.log_line()).unwrap();
        assert_eq!(line["audit"], "admin.change");
        assert!(!e.log_line().contains("hunter2"));
    }

    #[test]
    fn query_parameters_and_their_errors() {
        let q = parse_query(pairs(
            "type=signin.failed&user_id=usr_1&since=10&until=20&limit=5&cursor=99",
        ))
        .unwrap();
        assert_eq!(q.kind, Some("signin.failed"));
        assert_eq!(
            (q.since, q.until, q.before, q.limit),
            (Some(10), Some(20), Some(99), 5)
        );
        assert_eq!(parse_query(pairs("")).unwrap().limit, DEFAULT_PAGE);
        for (bad, field) in [
            ("type=nope", "type"),
            ("since=yesterday", "since"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("cursor=x", "cursor"),
            ("usr=1", "usr"),
        ] {
            assert_eq!(parse_query(pairs(bad)).unwrap_err().0, field, "{bad}");
        }
    }
}
