//! What to do with an authorization request given the browser's SSO session (OpenID Connect
//! Core §3.1.2.1 `prompt`, `max_age`, `id_token_hint`; §3.1.2.6 errors for prompt=none).

use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::error::{ErrorCode, OAuthError};

/// The part of an SSO session the decision needs.
pub struct SessionView<'a> {
    pub user_id: &'a str,
    pub auth_time: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Issue a code now, without any page.
    IssueCode,
    ShowLogin,
    ShowConsent,
    /// Redirect this error to the client.
    Fail(OAuthError),
}

/// `hint_sub` is the `sub` of a verified `id_token_hint`, if one was sent.
pub fn decide(
    req: &AuthorizeRequest,
    session: Option<&SessionView>,
    hint_sub: Option<&str>,
    now: i64,
) -> Next {
    let interaction = |why: &str| {
        if req.prompt.none {
            Next::Fail(OAuthError::new(ErrorCode::LoginRequired, why))
        } else {
            Next::ShowLogin
        }
    };
    let Some(session) = session else {
        return interaction("the user is not signed in");
    };
    if hint_sub.is_some_and(|sub| sub != session.user_id) {
        return interaction("the signed-in user is not the one id_token_hint names");
    }
    if req.prompt.login {
        return Next::ShowLogin;
    }
    // max_age=0 means "authenticate now", like prompt=login (Core §3.1.2.1).
    if req
        .max_age
        .is_some_and(|max_age| max_age == 0 || now - session.auth_time > max_age)
    {
        return interaction("the last sign-in is older than max_age");
    }
    if req.prompt.consent {
        return Next::ShowConsent;
    }
    Next::IssueCode
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::authorize::Prompt;

    fn req(prompt: Prompt, max_age: Option<i64>) -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: "c".into(),
            redirect_uri: "https://rp/cb".into(),
            scope: "openid".into(),
            state: None,
            nonce: None,
            code_challenge: None,
            prompt,
            max_age,
            login_hint: None,
            id_token_hint: None,
            claims: None,
            acr_values: None,
        }
    }
    const NONE: Prompt = Prompt {
        none: true,
        login: false,
        consent: false,
    };
    const LOGIN: Prompt = Prompt {
        none: false,
        login: true,
        consent: false,
    };

    #[test]
    fn without_a_session_login_is_shown_or_login_required_for_prompt_none() {
        assert_eq!(
            decide(&req(Prompt::default(), None), None, None, 100),
            Next::ShowLogin
        );
        match decide(&req(NONE, None), None, None, 100) {
            Next::Fail(e) => assert_eq!(e.code, ErrorCode::LoginRequired),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_session_issues_a_code_silently_unless_prompt_login() {
        let s = SessionView {
            user_id: "u1",
            auth_time: 50,
        };
        assert_eq!(
            decide(&req(NONE, None), Some(&s), None, 100),
            Next::IssueCode
        );
        assert_eq!(
            decide(&req(LOGIN, None), Some(&s), None, 100),
            Next::ShowLogin
        );
    }

    #[test]
    fn max_age_forces_a_fresh_login_only_when_exceeded() {
        let s = SessionView {
            user_id: "u1",
            auth_time: 50,
        };
        assert_eq!(
            decide(&req(Prompt::default(), Some(1)), Some(&s), None, 52),
            Next::ShowLogin
        );
        assert_eq!(
            decide(&req(Prompt::default(), Some(3600)), Some(&s), None, 52),
            Next::IssueCode
        );
        assert!(matches!(
            decide(&req(NONE, Some(1)), Some(&s), None, 52),
            Next::Fail(_)
        ));
        assert_eq!(
            decide(&req(Prompt::default(), Some(0)), Some(&s), None, 50),
            Next::ShowLogin
        );
    }

    #[test]
    fn id_token_hint_for_another_user_needs_a_login() {
        let s = SessionView {
            user_id: "u1",
            auth_time: 50,
        };
        assert_eq!(
            decide(&req(NONE, None), Some(&s), Some("u1"), 60),
            Next::IssueCode
        );
        assert!(matches!(
            decide(&req(NONE, None), Some(&s), Some("u2"), 60),
            Next::Fail(_)
        ));
    }

    #[test]
    fn prompt_consent_shows_consent_with_a_session() {
        let s = SessionView {
            user_id: "u1",
            auth_time: 50,
        };
        let consent = Prompt {
            none: false,
            login: false,
            consent: true,
        };
        assert_eq!(
            decide(&req(consent, None), Some(&s), None, 60),
            Next::ShowConsent
        );
    }
}
