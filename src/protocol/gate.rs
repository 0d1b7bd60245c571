//! The one gate before every authorization code. Every path that can end in a code — authorize
//! with an SSO session, the login POST, the second-factor POSTs, the consent POST, and whatever
//! comes later — describes what it knows (the request, who authenticated and how, the user and
//! client as stored now, the organization's policy, whether consent was just given) and asks
//! `decide`. Only `decide` can make an [`Issuance`], and minting a code (`oidc::issue::code`)
//! takes nothing else, so a path that forgets a check cannot compile into a code.
//!
//! The rules, in order (OpenID Connect Core §3.1.2.1 and §3.1.2.6):
//! 1. Someone must have authenticated, as an enabled user: else the login form
//!    (`login_required` for `prompt=none`).
//! 2. `id_token_hint` names the user the client expects: another user needs a login.
//! 3. `prompt=login` and `max_age=0` need an authentication made during this interaction;
//!    `max_age=N` one at most N seconds old.
//! 4. The client's `allowed_groups` must admit the user: else `access_denied`.
//! 5. The second factor the organization or the client requires, or that `acr_values` (a
//!    preference list) or an essential `acr` claim (a demand) asks for (protocol/acr.rs), must be
//!    among the factors given (a user who enrolled one is always asked): else ask for it, or
//!    enrol it (`interaction_required` for `prompt=none`). An essential `acr` claim naming no
//!    value Clavex knows is refused (`access_denied`). The acr value chosen becomes the ID
//!    token's `acr`.
//! 6. `prompt=consent` needs consent given during this interaction.
//!
//! Pure: no storage, no clock (`now` is passed in), tested natively.

use crate::protocol::acr;
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::error::{ErrorCode, OAuthError};
use crate::protocol::groups::may_sign_in;
use crate::protocol::mfa::{self, Policy, Step};

/// Who authenticated in this browser, when, and with which factors (protocol/mfa.rs bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authentication<'a> {
    pub user_id: &'a str,
    /// When the first factor was given (`auth_time`): a later second factor does not move it.
    pub auth_time: i64,
    pub factors: u8,
    /// Whether this authentication was made during this interaction (the password typed after
    /// the request arrived), as opposed to an SSO session that predates it.
    pub in_this_interaction: bool,
}

/// The authenticated user as stored now.
#[derive(Debug, Clone, Copy)]
pub struct UserFacts<'a> {
    pub id: &'a str,
    pub disabled: bool,
    /// Has a TOTP secret enrolled.
    pub enrolled: bool,
    /// Has a passkey the organization accepts: asked for as the second factor where one is
    /// required (protocol/mfa.rs `next_step`).
    pub passkey: bool,
    pub groups: &'a [String],
}

/// The client as stored now.
#[derive(Debug, Clone, Copy)]
pub struct ClientFacts<'a> {
    pub require_mfa: bool,
    pub allowed_groups: &'a [String],
}

/// Everything the decision rests on.
pub struct Input<'a> {
    pub request: &'a AuthorizeRequest,
    /// The `sub` of the verified `id_token_hint`, if one was sent.
    pub hint_sub: Option<&'a str>,
    pub authentication: Option<Authentication<'a>>,
    /// The authenticated user's current row (`None` when deleted).
    pub user: Option<UserFacts<'a>>,
    pub client: ClientFacts<'a>,
    pub policy: Policy,
    /// The user allowed the request on the consent page during this interaction.
    pub consented: bool,
    pub now: i64,
}

/// The next step of the interaction.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    ShowLogin,
    /// Ask for the enrolled second factor (TOTP or a recovery code).
    AskSecondFactor,
    /// The sign-in needs a second factor the user has not set up: enrol one now.
    EnrolSecondFactor,
    AskConsent,
    /// Send this error to the client's redirect URI.
    Refuse(OAuthError),
    Issue(Box<Issuance>),
}

/// The gate's permission to mint one code: for this request, this user, this authentication.
/// Its fields are private and it has no public constructor, so only `decide` can make one.
#[derive(Debug, PartialEq, Eq)]
pub struct Issuance {
    request: AuthorizeRequest,
    user_id: String,
    auth_time: i64,
    factors: u8,
    acr: Option<&'static str>,
}

impl Issuance {
    pub fn request(&self) -> &AuthorizeRequest {
        &self.request
    }
    pub fn user_id(&self) -> &str {
        &self.user_id
    }
    pub fn auth_time(&self) -> i64 {
        self.auth_time
    }
    pub fn factors(&self) -> u8 {
        self.factors
    }
    /// The acr value `acr_values` or the `claims` parameter chose, when Clavex issues it; `None`:
    /// the ID token's `acr` follows the factors.
    pub fn acr(&self) -> Option<&'static str> {
        self.acr
    }
}

pub fn decide(input: &Input) -> Decision {
    let request = input.request;
    // Core §3.1.2.6: with prompt=none, what would need the user is an error instead.
    let interaction = |code: ErrorCode, why: &str, otherwise: Decision| {
        if request.prompt.none {
            Decision::Refuse(OAuthError::new(code, why))
        } else {
            otherwise
        }
    };
    let login = |why: &str| interaction(ErrorCode::LoginRequired, why, Decision::ShowLogin);

    // 1. An enabled user authenticated.
    let (Some(auth), Some(user)) = (input.authentication, input.user) else {
        return login("the user is not signed in");
    };
    if user.id != auth.user_id || user.disabled {
        return login("the user is not signed in");
    }
    // 2. id_token_hint (Core §3.1.2.1: "If the End-User identified by the ID Token is logged in
    // or is logged in by the request, then the Authorization Server returns a positive response;
    // otherwise, it SHOULD return an error, such as login_required").
    if input.hint_sub.is_some_and(|sub| sub != auth.user_id) {
        if auth.in_this_interaction {
            return Decision::Refuse(OAuthError::new(
                ErrorCode::LoginRequired,
                "the user who signed in is not the one id_token_hint names",
            ));
        }
        return login("the signed-in user is not the one id_token_hint names");
    }
    // 3. Freshness. prompt=login: "The Authorization Server SHOULD prompt the End-User for
    // reauthentication"; max_age=0 is the same; max_age=N bounds the age of auth_time.
    if !auth.in_this_interaction {
        if request.prompt.login {
            return Decision::ShowLogin;
        }
        if request
            .max_age
            .is_some_and(|max_age| max_age == 0 || input.now - auth.auth_time > max_age)
        {
            return login("the last sign-in is older than max_age");
        }
    }
    // 4. The client admits the user.
    if !may_sign_in(input.client.allowed_groups, user.groups) {
        return Decision::Refuse(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user is not in a group allowed to use this application",
        ));
    }
    // 5. The second factor.
    let Ok(chosen) = acr::choose(
        request.acr_values.as_deref(),
        request.claims.as_deref(),
        auth.factors,
        user.enrolled,
    ) else {
        // Core §5.5.1.1: an essential acr that cannot be met is "a failed authentication attempt".
        return Decision::Refuse(OAuthError::new(
            ErrorCode::AccessDenied,
            "none of the essential acr values is one this server can satisfy",
        ));
    };
    let required = mfa::required(input.policy, input.client.require_mfa) || chosen.second_factor;
    match mfa::next_step(auth.factors, user.enrolled, user.passkey, required) {
        Step::Done => {}
        Step::Challenge => {
            return interaction(
                ErrorCode::InteractionRequired,
                "a second factor is required and the session has none",
                Decision::AskSecondFactor,
            );
        }
        Step::Enrol => {
            return interaction(
                ErrorCode::InteractionRequired,
                "a second factor is required and the user has none set up",
                Decision::EnrolSecondFactor,
            );
        }
    }
    // 6. Consent asked for with prompt=consent (prompt=none with consent is refused earlier,
    // at validation).
    if request.prompt.consent && !input.consented {
        return Decision::AskConsent;
    }
    Decision::Issue(Box::new(Issuance {
        request: request.clone(),
        user_id: auth.user_id.to_string(),
        auth_time: auth.auth_time,
        factors: auth.factors,
        acr: chosen.acr,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::authorize::Prompt;
    use crate::protocol::mfa::{OTP, PWD};

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: "chat".into(),
            redirect_uri: "https://chat/cb".into(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            prompt: Prompt::default(),
            max_age: None,
            login_hint: None,
            id_token_hint: None,
            claims: None,
            acr_values: None,
            response_mode: Default::default(),
        }
    }

    const NO_GROUPS: &[String] = &[];

    struct Case {
        request: AuthorizeRequest,
        hint: Option<&'static str>,
        auth: Option<Authentication<'static>>,
        user_disabled: bool,
        enrolled: bool,
        passkey: bool,
        user_groups: Vec<String>,
        require_mfa: bool,
        allowed: Vec<String>,
        policy: Policy,
        consented: bool,
    }

    fn session(auth_time: i64, factors: u8) -> Option<Authentication<'static>> {
        Some(Authentication {
            user_id: "u1",
            auth_time,
            factors,
            in_this_interaction: false,
        })
    }

    fn fresh(factors: u8) -> Option<Authentication<'static>> {
        Some(Authentication {
            user_id: "u1",
            auth_time: 1000,
            factors,
            in_this_interaction: true,
        })
    }

    fn case(auth: Option<Authentication<'static>>) -> Case {
        Case {
            request: request(),
            hint: None,
            auth,
            user_disabled: false,
            enrolled: false,
            passkey: false,
            user_groups: vec![],
            require_mfa: false,
            allowed: vec![],
            policy: Policy::Off,
            consented: false,
        }
    }

    fn run(c: &Case) -> Decision {
        decide(&Input {
            request: &c.request,
            hint_sub: c.hint,
            authentication: c.auth,
            user: Some(UserFacts {
                id: "u1",
                disabled: c.user_disabled,
                enrolled: c.enrolled,
                passkey: c.passkey,
                groups: &c.user_groups,
            }),
            client: ClientFacts {
                require_mfa: c.require_mfa,
                allowed_groups: &c.allowed,
            },
            policy: c.policy,
            consented: c.consented,
            now: 1000,
        })
    }

    fn refused(d: Decision) -> ErrorCode {
        match d {
            Decision::Refuse(e) => e.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn only_the_gate_issues_and_it_carries_the_authentication() {
        match run(&case(session(900, PWD))) {
            Decision::Issue(i) => {
                assert_eq!((i.user_id(), i.auth_time(), i.factors()), ("u1", 900, PWD));
                assert_eq!(i.request(), &request());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nobody_signed_in_means_login_or_login_required() {
        assert_eq!(run(&case(None)), Decision::ShowLogin);
        let mut c = case(None);
        c.request.prompt.none = true;
        assert_eq!(refused(run(&c)), ErrorCode::LoginRequired);
        let mut disabled = case(session(900, PWD));
        disabled.user_disabled = true;
        assert_eq!(run(&disabled), Decision::ShowLogin);
        let gone = decide(&Input {
            request: &request(),
            hint_sub: None,
            authentication: session(900, PWD),
            user: None,
            client: ClientFacts {
                require_mfa: false,
                allowed_groups: NO_GROUPS,
            },
            policy: Policy::Off,
            consented: false,
            now: 1000,
        });
        assert_eq!(gone, Decision::ShowLogin);
    }

    #[test]
    fn another_users_row_is_no_authentication() {
        let c = case(Some(Authentication {
            user_id: "u2",
            auth_time: 900,
            factors: PWD,
            in_this_interaction: true,
        }));
        assert_eq!(run(&c), Decision::ShowLogin);
    }

    #[test]
    fn prompt_login_and_max_age_need_an_authentication_of_this_interaction() {
        let mut c = case(session(900, PWD | OTP));
        c.request.prompt.login = true;
        assert_eq!(run(&c), Decision::ShowLogin, "a session is not a new login");
        c.auth = fresh(PWD);
        assert!(matches!(run(&c), Decision::Issue(_)));

        let mut m = case(session(900, PWD));
        m.request.max_age = Some(0);
        assert_eq!(run(&m), Decision::ShowLogin);
        m.request.max_age = Some(99);
        assert_eq!(run(&m), Decision::ShowLogin, "100 s old > 99");
        m.request.max_age = Some(100);
        assert!(matches!(run(&m), Decision::Issue(_)));
        m.request.max_age = Some(0);
        m.request.prompt.none = true;
        assert_eq!(refused(run(&m)), ErrorCode::LoginRequired);
        m.auth = fresh(PWD);
        m.request.prompt.none = false;
        assert!(matches!(run(&m), Decision::Issue(_)));
    }

    #[test]
    fn id_token_hint_for_another_user() {
        let mut c = case(session(900, PWD));
        c.hint = Some("u1");
        assert!(matches!(run(&c), Decision::Issue(_)));
        c.hint = Some("u2");
        assert_eq!(run(&c), Decision::ShowLogin);
        c.request.prompt.none = true;
        assert_eq!(refused(run(&c)), ErrorCode::LoginRequired);
        c.request.prompt.none = false;
        c.auth = fresh(PWD);
        assert_eq!(
            refused(run(&c)),
            ErrorCode::LoginRequired,
            "signed in just now, as someone else"
        );
    }

    #[test]
    fn allowed_groups_refuse_with_access_denied_before_any_second_factor() {
        let mut c = case(fresh(PWD));
        c.allowed = vec!["staff".into()];
        c.require_mfa = true;
        assert_eq!(refused(run(&c)), ErrorCode::AccessDenied);
        c.user_groups = vec!["staff".into()];
        assert_eq!(run(&c), Decision::EnrolSecondFactor);
    }

    #[test]
    fn the_second_factor_from_every_source_of_policy() {
        for (policy, require_mfa, acr) in [
            (Policy::Required, false, None),
            (Policy::Off, true, None),
            (Policy::Optional, false, Some("urn:clavex:acr:mfa")),
        ] {
            let mut c = case(session(900, PWD));
            c.policy = policy;
            c.require_mfa = require_mfa;
            c.request.acr_values = acr.map(str::to_string);
            assert_eq!(run(&c), Decision::EnrolSecondFactor, "{policy:?}");
            c.enrolled = true;
            assert_eq!(run(&c), Decision::AskSecondFactor);
            c.request.prompt.none = true;
            assert_eq!(refused(run(&c)), ErrorCode::InteractionRequired);
            c.request.prompt.none = false;
            c.auth = session(900, PWD | OTP);
            assert!(matches!(run(&c), Decision::Issue(i) if i.factors() == PWD | OTP));
        }
        // A user with a passkey and no TOTP: asked for the passkey where a second factor is
        // required (never sent to enrol another factor with the password alone), not otherwise;
        // a passkey after the password meets the requirement.
        let mut passkey = case(fresh(PWD));
        passkey.passkey = true;
        assert_eq!(
            run(&passkey),
            Decision::Issue(Box::new(Issuance {
                request: request(),
                user_id: "u1".into(),
                auth_time: 1000,
                factors: PWD,
                acr: None,
            }))
        );
        passkey.policy = Policy::Required;
        assert_eq!(run(&passkey), Decision::AskSecondFactor);
        passkey.auth = fresh(PWD | mfa::PASSKEY);
        assert!(matches!(run(&passkey), Decision::Issue(i) if i.factors() == PWD | mfa::PASSKEY));
        let mut enrolled = case(fresh(PWD));
        enrolled.enrolled = true;
        assert_eq!(
            run(&enrolled),
            Decision::AskSecondFactor,
            "an enrolled user is always asked"
        );
    }

    fn issued(d: Decision) -> Issuance {
        match d {
            Decision::Issue(i) => *i,
            other => panic!("expected a code, got {other:?}"),
        }
    }

    #[test]
    fn acr_values_are_a_preference_and_the_chosen_one_is_issued() {
        // Password first, a password-only session: no second factor asked, acr pwd.
        let mut c = case(session(900, PWD));
        c.request.acr_values = Some("urn:clavex:acr:pwd urn:clavex:acr:mfa".into());
        assert_eq!(issued(run(&c)).acr(), Some(mfa::ACR_PASSWORD));
        // MFA first: asked for (enrolment for a user without a factor and no later value met).
        c.request.acr_values = Some("urn:clavex:acr:mfa urn:clavex:acr:pwd".into());
        c.enrolled = true;
        assert_eq!(run(&c), Decision::AskSecondFactor);
        c.auth = session(900, PWD | OTP);
        assert_eq!(issued(run(&c)).acr(), Some(mfa::ACR_MFA));
        // MFA first, a user with no factor: the password value after it is met, no enrolment.
        c.enrolled = false;
        c.auth = session(900, PWD);
        assert_eq!(issued(run(&c)).acr(), Some(mfa::ACR_PASSWORD));
        // Unknown values only: nothing chosen, acr follows the factors.
        c.request.acr_values = Some("gold silver".into());
        assert_eq!(issued(run(&c)).acr(), None);
    }

    #[test]
    fn a_preference_never_lowers_the_policy() {
        for (policy, require_mfa) in [(Policy::Required, false), (Policy::Off, true)] {
            let mut c = case(session(900, PWD));
            c.policy = policy;
            c.require_mfa = require_mfa;
            c.request.acr_values = Some("urn:clavex:acr:pwd".into());
            assert_eq!(run(&c), Decision::EnrolSecondFactor, "{policy:?}");
            c.enrolled = true;
            assert_eq!(run(&c), Decision::AskSecondFactor);
        }
        // A user who set up a factor is asked for it even when the client prefers pwd.
        let mut c = case(fresh(PWD));
        c.enrolled = true;
        c.request.acr_values = Some("urn:clavex:acr:pwd".into());
        assert_eq!(run(&c), Decision::AskSecondFactor);
    }

    #[test]
    fn an_essential_acr_claim_is_a_demand() {
        let mut c = case(session(900, PWD));
        c.request.claims = Some(
            r#"{"id_token":{"acr":{"essential":true,"values":["urn:clavex:acr:mfa"]}}}"#.into(),
        );
        c.request.acr_values = Some("urn:clavex:acr:pwd".into());
        assert_eq!(run(&c), Decision::EnrolSecondFactor);
        c.request.prompt.none = true;
        assert_eq!(refused(run(&c)), ErrorCode::InteractionRequired);
        c.request.prompt.none = false;
        c.auth = session(900, PWD | OTP);
        assert_eq!(issued(run(&c)).acr(), Some(mfa::ACR_MFA));
        c.request.claims =
            Some(r#"{"id_token":{"acr":{"essential":true,"values":["gold"]}}}"#.into());
        assert_eq!(refused(run(&c)), ErrorCode::AccessDenied);
    }

    #[test]
    fn consent_is_asked_once_per_interaction_and_only_after_every_factor() {
        let mut c = case(session(900, PWD));
        c.request.prompt.consent = true;
        c.require_mfa = true;
        c.enrolled = true;
        assert_eq!(run(&c), Decision::AskSecondFactor);
        c.auth = session(900, PWD | OTP);
        assert_eq!(run(&c), Decision::AskConsent);
        c.consented = true;
        assert!(matches!(run(&c), Decision::Issue(_)));
    }
}
