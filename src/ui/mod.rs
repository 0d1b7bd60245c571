//! Server-rendered pages. Templates live in `templates/`; askama escapes every value by
//! construction, so user-controlled text (usernames, redirect URIs, org names) cannot inject
//! markup. Pages work without JavaScript.

use askama::Template;

pub mod form_post;
pub mod link_confirm;
pub mod passkey;

/// The organization's look: its name, optional logo, and primary colour.
pub struct Brand {
    pub name: String,
    pub logo_url: Option<String>,
    /// Always a `#rrggbb` value (checked here, since it lands in CSS).
    pub color: String,
}

impl Brand {
    pub fn new(name: &str, logo_url: Option<&str>, color: Option<&str>) -> Brand {
        let color = color
            .filter(|c| {
                c.len() == 7
                    && c.starts_with('#')
                    && c[1..].chars().all(|ch| ch.is_ascii_hexdigit())
            })
            .unwrap_or("#1D9E75");
        Brand {
            name: name.to_string(),
            logo_url: logo_url
                .filter(|u| u.starts_with("https://"))
                .map(str::to_string),
            color: color.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub brand: &'a Brand,
    pub client_name: &'a str,
    pub action: &'a str,
    pub request: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub error: Option<&'a str>,
    /// The account page for setting up a second factor, where the organization offers one.
    pub account_mfa: Option<&'a str>,
    /// "Sign in with {label}" links: (href, label), one per upstream connection.
    pub connections: &'a [(String, String)],
    /// Whether the password form is shown (the organization's `password_signin`).
    pub password_signin: bool,
    /// "Forgot password?" where e-mail is configured (oidc/forgot_password.rs); otherwise the
    /// page says to ask an administrator.
    pub forgot_password: Option<&'a str>,
    /// "Sign in with a passkey", where the organization allows passkeys.
    pub passkey: Option<&'a PasskeySignIn>,
    /// The passkey script (ui/passkey.rs), allowed by its hash.
    pub script: &'static str,
}

/// The login page's passkey form: its action, sealed state (with the challenge) and what the
/// script passes to `navigator.credentials.get`.
pub struct PasskeySignIn {
    pub action: String,
    pub state: String,
    pub challenge: String,
    pub rp_id: String,
}

/// One of the user's passkeys as the account page lists it.
pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub synced: bool,
}

/// The account page's passkey section.
pub struct AccountPasskeys {
    pub rows: Vec<PasskeyRow>,
    pub add_action: String,
    pub add_state: String,
    pub challenge: String,
    pub rp_id: String,
    pub rp_name: String,
    /// base64url of the WebAuthn user handle (the user's id).
    pub user_handle: String,
    pub user_name: String,
    pub display_name: String,
    /// JSON list of the user's credential ids (base64url): `excludeCredentials`.
    pub exclude: String,
    /// The session is not fresh: the add form asks for the password.
    pub need_password: bool,
    /// The session is not fresh and the user has no password: sign in again first.
    pub sign_in_again: bool,
    pub rename_action: String,
    pub rename_state: String,
    pub remove_action: String,
    pub remove_state: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub brand: &'a Brand,
    pub client_name: &'a str,
    pub username: &'a str,
    pub permissions: Vec<&'static str>,
    pub action: &'a str,
    pub request: &'a str,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub brand: &'a Brand,
    pub title: &'a str,
    pub description: &'a str,
    pub code: &'a str,
    pub redirect_uri: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub brand: &'a Brand,
    pub title: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "mfa.html")]
pub struct MfaPage<'a> {
    pub brand: &'a Brand,
    pub client_name: &'a str,
    pub action: &'a str,
    pub state: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
    /// The user has TOTP: the code form (TOTP or a recovery code).
    pub totp: bool,
    /// The user has a passkey the organization accepts: "Use a passkey".
    pub passkey: Option<MfaPasskey>,
    pub script: &'static str,
}

/// The second-factor page's passkey form: WebAuthn request options (no credential list: the
/// browser offers the user's passkeys for this site, and the server checks the one used is
/// theirs).
pub struct MfaPasskey {
    pub action: String,
    pub state: String,
    pub challenge: String,
    pub rp_id: String,
}

#[derive(Template)]
#[template(path = "enrol.html")]
pub struct EnrolPage<'a> {
    pub brand: &'a Brand,
    pub required: bool,
    /// Rendered by the `qrcode` crate from our own `otpauth://` URI: markup we made, not input.
    pub qr_svg: &'a str,
    pub secret: &'a str,
    pub action: &'a str,
    pub state: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery.html")]
pub struct RecoveryPage<'a> {
    pub brand: &'a Brand,
    pub codes: &'a [String],
    pub action: &'a str,
    pub state: &'a str,
    pub csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "account_password.html")]
pub struct AccountPasswordPage<'a> {
    pub brand: &'a Brand,
    pub username: &'a str,
    pub action: &'a str,
    pub state: &'a str,
    pub csrf_token: &'a str,
    pub error: Option<&'a str>,
}

/// The account page (oidc/account.rs): one CSRF token, and each form with its own sealed state.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub brand: &'a Brand,
    pub username: &'a str,
    pub email: &'a str,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    pub csrf_token: &'a str,
    pub password_action: &'a str,
    pub password_state: &'a str,
    /// The user has a password: the form changes it (and asks for it). Without one (a passkey
    /// account) the form sets one, after a recent sign-in.
    pub has_password: bool,
    /// Whether the password section is shown: not in a passwordless organization.
    pub may_set_password: bool,
    /// No password, and the session's sign-in is not recent: sign in again first.
    pub set_needs_sign_in: bool,
    /// A recent passkey or second-factor sign-in: the current password may be left empty.
    pub current_password_waived: bool,
    pub totp_on: bool,
    pub may_remove: bool,
    pub remove_action: &'a str,
    pub remove_state: &'a str,
    pub renew_action: &'a str,
    pub renew_state: &'a str,
    /// The enrolment page, where the organization offers a second factor.
    pub enrol_link: Option<&'a str>,
    pub sign_out_action: &'a str,
    pub sign_out_state: &'a str,
    /// Where the organization allows passkeys.
    pub passkeys: Option<&'a AccountPasskeys>,
    pub script: &'static str,
}

/// New recovery codes from the account page, shown once.
#[derive(Template)]
#[template(path = "account_codes.html")]
pub struct AccountCodesPage<'a> {
    pub brand: &'a Brand,
    pub codes: &'a [String],
    pub back: &'a str,
}

/// The page of a one-time link (oidc/setup_link.rs): whose account it is, and the form that uses
/// the link — a new password, or (a recovery of the second factor only) one button.
#[derive(Template)]
#[template(path = "setup_link.html")]
pub struct SetupLinkPage<'a> {
    pub brand: &'a Brand,
    pub heading: &'a str,
    pub username: &'a str,
    pub email: &'a str,
    pub error: Option<&'a str>,
    pub action: &'a str,
    pub state: &'a str,
    pub csrf_token: &'a str,
    /// The form asks for a new password.
    pub password: bool,
    /// The link also removes the second factor.
    pub second_factor: bool,
    /// When the link stops working ("9 Dec 2026, 14:05 UTC").
    pub expires: &'a str,
    /// "Register a passkey instead" (where the link resets the password and the organization
    /// allows passkeys); its form runs the passkey script.
    pub passkey: Option<&'a LinkPasskey>,
    /// The password form is hidden: the organization signs in without passwords.
    pub passwordless: bool,
    pub script: &'static str,
}

/// The one-time link page's passkey form (oidc/setup_link.rs): WebAuthn creation options.
pub struct LinkPasskey {
    pub action: String,
    pub state: String,
    pub challenge: String,
    pub rp_id: String,
    pub rp_name: String,
    /// base64url of the WebAuthn user handle (the user's id).
    pub user_handle: String,
    pub user_name: String,
    /// JSON array of the credential ids the user has already (excluded from registration).
    pub exclude: String,
}

/// "Forgot password?" (oidc/forgot_password.rs): the form, or after it the answer that is the
/// same whether or not an account matched.
#[derive(Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPasswordPage<'a> {
    pub brand: &'a Brand,
    pub action: &'a str,
    pub state: &'a str,
    pub csrf_token: &'a str,
    /// Shown after a request instead of the form.
    pub sent: bool,
    pub minutes: i64,
}

/// What a scope lets the application see, in words for the consent page.
pub fn describe_scope(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Know who you are (your account identifier)"),
        "profile" => Some(
            "See your name, username, picture and other profile details (such as birthdate, time zone and language)",
        ),
        "email" => Some("See your email address"),
        "phone" => Some("See your phone number"),
        "address" => Some("See your postal address"),
        "offline_access" => Some("Stay connected when you are not using it"),
        "groups" => Some("See your groups and your roles in it"),
        _ => None,
    }
}

pub fn render(template: &impl Template) -> String {
    template.render().unwrap_or_else(|_| {
        "<!doctype html><title>Error</title><p>Page could not be rendered.</p>".into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_page_describes_every_supported_scope() {
        for scope in crate::protocol::scopes::SUPPORTED_SCOPES {
            assert!(describe_scope(scope).is_some(), "{scope}");
        }
        assert_eq!(describe_scope("phone"), Some("See your phone number"));
        assert!(describe_scope("unknown").is_none());
    }

    #[test]
    fn error_page_escapes_the_redirect_uri() {
        let brand = Brand::new("Acme <Corp>", None, Some("red;}</style>"));
        let html = render(&ErrorPage {
            brand: &brand,
            title: "Redirect URI not registered",
            description: "x",
            code: "error_uri_mismatch",
            redirect_uri: Some("https://evil.example/\"><script>alert(1)</script>"),
        });
        assert!(html.contains("error_uri_mismatch"));
        assert!(!html.contains("<script>alert(1)"));
        assert!(html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"));
        assert!(html.contains("Acme &#60;Corp&#62;") || html.contains("Acme &lt;Corp&gt;"));
        assert!(
            html.contains("--brand: #1D9E75"),
            "invalid colours fall back to the default"
        );
    }

    #[test]
    fn login_page_links_each_connection_escaped() {
        let brand = Brand::new("Acme", None, None);
        let links = vec![(
            "/acme/connections/con_1/start?request=a%2Bb".to_string(),
            "Example <IdP>".to_string(),
        )];
        let html = render(&LoginPage {
            brand: &brand,
            client_name: "Rocket.Chat",
            action: "/acme/login",
            request: "sealed",
            csrf_token: "tok",
            username: "",
            error: None,
            account_mfa: None,
            connections: &links,
            password_signin: true,
            forgot_password: None,
            passkey: None,
            script: "",
        });
        assert!(
            html.contains("Sign in with Example &#60;IdP&#62;")
                || html.contains("Sign in with Example &lt;IdP&gt;"),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/acme/connections/con_1/start?request=a%2Bb""#),
            "{html}"
        );
    }

    #[test]
    fn login_page_has_the_form_fields() {
        let brand = Brand::new("Acme", Some("https://acme.eu/logo.png"), Some("#112233"));
        let html = render(&LoginPage {
            brand: &brand,
            client_name: "Rocket.Chat",
            action: "/acme/login",
            request: "sealed",
            csrf_token: "tok",
            username: "alice",
            error: Some("Incorrect username or password."),
            account_mfa: None,
            connections: &[],
            password_signin: true,
            forgot_password: None,
            passkey: None,
            script: "",
        });
        for needle in [
            r#"action="/acme/login""#,
            r#"name="request" value="sealed""#,
            r#"name="csrf_token" value="tok""#,
            r#"name="username" value="alice""#,
            r#"name="password""#,
            "Incorrect username or password.",
            "--brand: #112233",
        ] {
            assert!(html.contains(needle), "missing {needle}");
        }
    }

    #[test]
    fn without_password_signin_only_the_connections_are_shown() {
        let brand = Brand::new("Acme", None, None);
        let links = vec![(
            "/acme/connections/con_1/start?request=x".to_string(),
            "Upstream".to_string(),
        )];
        let html = render(&LoginPage {
            brand: &brand,
            client_name: "Rocket.Chat",
            action: "/acme/login",
            request: "sealed",
            csrf_token: "tok",
            username: "",
            error: None,
            account_mfa: None,
            connections: &links,
            password_signin: false,
            forgot_password: None,
            passkey: None,
            script: "",
        });
        assert!(html.contains("Sign in with Upstream"), "{html}");
        for absent in [
            r#"name="password""#,
            r#"action="/acme/login""#,
            "Or sign in",
        ] {
            assert!(!html.contains(absent), "{absent} in {html}");
        }
    }
}
