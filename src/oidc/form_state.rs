//! The state every sign-in form carries, sealed (AES-256-GCM under a key derived from
//! KEY_ENCRYPTION_SECRET for this purpose, the organization as associated data): the step it was
//! shown for, the authorization request it continues, who had authenticated and how, the SSO
//! session it was shown under, the browser's CSRF token, and an expiry. Nothing is stored
//! server-side between a page and its submission.
//!
//! A state opens only at the step it names (a login form's state posted to /consent is refused),
//! only in the browser it was shown in (CSRF cookie and hidden field both match), and only before
//! it expires; a state shown under an SSO session must be posted under that same session
//! (`shown_under`), so a page shown to one user is useless after they sign out and another signs
//! in. What the state then allows is decided by the gate (protocol/gate.rs) at submission, with
//! the client, user and policy as they are then.

use serde::{Deserialize, Serialize};

use crate::crypto::{Keyring, secure_eq};
use crate::protocol::authorize::AuthorizeRequest;
use crate::protocol::gate::Authentication;

const PURPOSE: &str = "sign-in-forms/v2";

/// Which page a state belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub enum Step {
    /// The login form (username and password).
    Login,
    /// Allow or deny (prompt=consent).
    Consent,
    /// A TOTP or recovery code is asked for.
    Challenge,
    /// A new TOTP secret is being confirmed (its bytes, base64url); `required` when the sign-in
    /// cannot go on without it.
    Enrol {
        secret: String,
        required: bool,
    },
    /// The recovery codes were shown after an enrolment: go on with the sign-in.
    Finish,
    /// The account page asks for the password again.
    AccountPassword,
    /// The account page's forms (oidc/account.rs): each its own step, so one form's state
    /// cannot be posted to another's action.
    ChangePassword,
    SignOutEverywhere,
    RemoveTotp,
    RenewRecoveryCodes,
    /// An upstream account with no link here: the person signs in once with a password to
    /// link it to their account (oidc/federation_link.rs). `label` is the connection's.
    ConfirmLink {
        link: PendingLink,
        label: String,
    },
    /// The page of a one-time link (oidc/setup_link.rs): the SHA-256 of the link's token, so a
    /// state shown for one link is refused at another's address, and whether the page asks for
    /// a new password.
    SetupLink {
        link: String,
        password: bool,
    },
    /// The same page's "Register a passkey" form (a link finished with a passkey instead of a
    /// password): the link's token hash, as above, and the WebAuthn challenge the form showed.
    /// The challenge needs no claim of its own: the link's claim is single use, and the passkey
    /// is stored only in that claim's transaction.
    SetupLinkPasskey {
        link: String,
        challenge: String,
    },
    /// "Forgot password?" (oidc/forgot_password.rs).
    ForgotPassword,
    /// The login page's passkey form: the WebAuthn challenge it showed (base64url), used once
    /// (oidc/passkeys.rs claims it at the primary).
    PasskeySignIn {
        challenge: String,
    },
    /// The second-factor page's "Use a passkey" form (oidc/passkeys.rs `handle_second_factor`):
    /// its challenge, claimed once like a sign-in's; the authentication so far travels in the
    /// state as for a code.
    ChallengePasskey {
        challenge: String,
    },
    /// The account page's "Add a passkey" form and its challenge.
    PasskeyAdd {
        challenge: String,
    },
    PasskeyRename,
    PasskeyRemove,
}

impl Step {
    /// The step without its data, to compare the step a form was shown for with the endpoint.
    pub fn kind(&self) -> StepKind {
        match self {
            Step::Login => StepKind::Login,
            Step::Consent => StepKind::Consent,
            Step::Challenge => StepKind::Challenge,
            Step::Enrol { .. } => StepKind::Enrol,
            Step::Finish => StepKind::Finish,
            Step::AccountPassword => StepKind::AccountPassword,
            Step::ChangePassword => StepKind::ChangePassword,
            Step::SignOutEverywhere => StepKind::SignOutEverywhere,
            Step::RemoveTotp => StepKind::RemoveTotp,
            Step::RenewRecoveryCodes => StepKind::RenewRecoveryCodes,
            Step::ConfirmLink { .. } => StepKind::ConfirmLink,
            Step::SetupLink { .. } => StepKind::SetupLink,
            Step::SetupLinkPasskey { .. } => StepKind::SetupLinkPasskey,
            Step::ForgotPassword => StepKind::ForgotPassword,
            Step::PasskeySignIn { .. } => StepKind::PasskeySignIn,
            Step::ChallengePasskey { .. } => StepKind::ChallengePasskey,
            Step::PasskeyAdd { .. } => StepKind::PasskeyAdd,
            Step::PasskeyRename => StepKind::PasskeyRename,
            Step::PasskeyRemove => StepKind::PasskeyRemove,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Login,
    Consent,
    Challenge,
    Enrol,
    Finish,
    AccountPassword,
    ChangePassword,
    SignOutEverywhere,
    RemoveTotp,
    RenewRecoveryCodes,
    PasskeySignIn,
    ChallengePasskey,
    PasskeyAdd,
    PasskeyRename,
    PasskeyRemove,
    SetupLink,
    SetupLinkPasskey,
    ForgotPassword,
    ConfirmLink,
}

/// An upstream account (connection, upstream `sub`) to link to whoever completes the sign-in
/// that carries it (oidc/federation_link.rs): linked only once the gate has every factor it asks
/// of that user, so a password alone never attaches an upstream account to an account with a
/// second factor. `id` is random; its first use is recorded at the D1 primary (store/once.rs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingLink {
    pub id: String,
    pub connection_id: String,
    pub upstream_sub: String,
    /// When the confirmation expires (the single-use marker is kept until then).
    pub expires_at: i64,
}

/// The authorization being worked on: the validated request and the `sub` of its verified
/// `id_token_hint` (verified once, at /authorize).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Interaction {
    pub request: AuthorizeRequest,
    pub hint_sub: Option<String>,
    /// `idp_hint`: the upstream connection to send the person to instead of showing the login
    /// form (oidc/federation.rs). Absent in states sealed before connections existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_hint: Option<String>,
    /// An upstream account to link once this sign-in has all its factors (a confirmed link,
    /// oidc/federation_link.rs). Absent everywhere else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<PendingLink>,
}

/// An authentication carried between pages (the gate's `Authentication`, owned).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Authenticated {
    pub user_id: String,
    pub auth_time: i64,
    pub factors: u8,
    pub in_this_interaction: bool,
}

impl Authenticated {
    pub fn view(&self) -> Authentication<'_> {
        Authentication {
            user_id: &self.user_id,
            auth_time: self.auth_time,
            factors: self.factors,
            in_this_interaction: self.in_this_interaction,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FormState {
    pub step: Step,
    /// None on the account pages, which continue no authorization.
    pub interaction: Option<Interaction>,
    /// Who had authenticated when the page was shown (None on the login form).
    pub authenticated: Option<Authenticated>,
    /// The SHA-256 of the SSO session id the page was shown under, if any.
    pub session: Option<String>,
    pub csrf: String,
    pub expires_at: i64,
}

impl FormState {
    /// Whether this state may be used under the browser's current SSO session (`current`: the
    /// hash of its id, if it has one). A state shown under a session needs that very session; a
    /// state shown without one (the login form, a second factor right after the password) is
    /// bound to the browser's CSRF cookie alone, which a logout replaces.
    pub fn shown_under(&self, current: Option<&str>) -> bool {
        match (&self.session, current) {
            (None, _) => true,
            (Some(shown), Some(now)) => secure_eq(shown, now),
            (Some(_), None) => false,
        }
    }
}

pub fn seal_state(secret: &Keyring, org: &str, state: &FormState) -> String {
    let json = serde_json::to_vec(state).expect("a form state always serializes");
    secret.seal(PURPOSE, &json, org.as_bytes())
}

#[derive(Debug, PartialEq, Eq)]
pub enum StateError {
    /// Tampered, from another organization, or sealed with another secret.
    Invalid,
    Expired,
    /// The CSRF cookie and the form's token do not both match the sealed one.
    CsrfMismatch,
    /// A state shown for another step (or another kind of page).
    WrongStep,
}

/// Open a submitted form's state for the step `expected`. `cookie_csrf` is the CSRF cookie,
/// `form_csrf` the hidden field.
pub fn open_state(
    secret: &Keyring,
    org: &str,
    sealed: &str,
    cookie_csrf: Option<&str>,
    form_csrf: Option<&str>,
    now: i64,
    expected: StepKind,
) -> Result<FormState, StateError> {
    let bytes = secret
        .open(PURPOSE, sealed, org.as_bytes())
        .ok_or(StateError::Invalid)?;
    let state: FormState = serde_json::from_slice(&bytes).map_err(|_| StateError::Invalid)?;
    let (Some(cookie), Some(field)) = (cookie_csrf, form_csrf) else {
        return Err(StateError::CsrfMismatch);
    };
    if !(secure_eq(cookie, &state.csrf) & secure_eq(field, &state.csrf)) {
        return Err(StateError::CsrfMismatch);
    }
    if now >= state.expires_at {
        return Err(StateError::Expired);
    }
    if state.step.kind() != expected {
        return Err(StateError::WrongStep);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::authorize::Prompt;

    pub fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            client_id: "rocketchat".into(),
            redirect_uri: "https://chat.acme.eu/_oauth/clavex".into(),
            scope: "openid".into(),
            state: Some("s+/=".into()),
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
    static KEYS: std::sync::LazyLock<Keyring> =
        std::sync::LazyLock::new(|| Keyring::new("a-long-key-encryption-secret", &[]).unwrap());
    const SECRET: &std::sync::LazyLock<Keyring> = &KEYS;

    fn state(step: Step, session: Option<&str>) -> FormState {
        FormState {
            step,
            interaction: Some(Interaction {
                request: request(),
                hint_sub: None,
                idp_hint: None,
                link: None,
            }),
            authenticated: None,
            session: session.map(str::to_string),
            csrf: "csrf1".into(),
            expires_at: 1000,
        }
    }

    #[test]
    fn round_trips_at_its_own_step_only() {
        let sealed = seal_state(SECRET, "acme", &state(Step::Consent, Some("s1")));
        let open = |kind| {
            open_state(
                SECRET,
                "acme",
                &sealed,
                Some("csrf1"),
                Some("csrf1"),
                999,
                kind,
            )
        };
        assert_eq!(
            open(StepKind::Consent),
            Ok(state(Step::Consent, Some("s1")))
        );
        for other in [
            StepKind::Login,
            StepKind::Challenge,
            StepKind::Enrol,
            StepKind::Finish,
            StepKind::AccountPassword,
            StepKind::ChangePassword,
            StepKind::SignOutEverywhere,
            StepKind::RemoveTotp,
            StepKind::RenewRecoveryCodes,
            StepKind::ConfirmLink,
            StepKind::SetupLink,
            StepKind::SetupLinkPasskey,
            StepKind::ForgotPassword,
        ] {
            assert_eq!(open(other), Err(StateError::WrongStep), "{other:?}");
        }
    }

    #[test]
    fn refuses_csrf_mismatch_other_org_tampering_and_expiry() {
        let sealed = seal_state(SECRET, "acme", &state(Step::Login, None));
        let login = StepKind::Login;
        assert_eq!(
            open_state(
                SECRET,
                "acme",
                &sealed,
                Some("csrf2"),
                Some("csrf1"),
                2,
                login
            ),
            Err(StateError::CsrfMismatch)
        );
        assert_eq!(
            open_state(SECRET, "acme", &sealed, None, Some("csrf1"), 2, login),
            Err(StateError::CsrfMismatch)
        );
        assert_eq!(
            open_state(
                SECRET,
                "other",
                &sealed,
                Some("csrf1"),
                Some("csrf1"),
                2,
                login
            ),
            Err(StateError::Invalid)
        );
        let mut tampered = sealed.clone();
        tampered.replace_range(20..21, if &sealed[20..21] == "A" { "B" } else { "A" });
        assert_eq!(
            open_state(
                SECRET,
                "acme",
                &tampered,
                Some("csrf1"),
                Some("csrf1"),
                2,
                login
            ),
            Err(StateError::Invalid)
        );
        assert_eq!(
            open_state(
                SECRET,
                "acme",
                &sealed,
                Some("csrf1"),
                Some("csrf1"),
                1000,
                login
            ),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn a_state_shown_under_a_session_needs_that_session() {
        let under = state(Step::Consent, Some("hash-a"));
        assert!(under.shown_under(Some("hash-a")));
        assert!(!under.shown_under(Some("hash-b")), "another sign-in");
        assert!(!under.shown_under(None), "after logout");
        let without = state(Step::Challenge, None);
        assert!(without.shown_under(None) && without.shown_under(Some("hash-b")));
    }
}
