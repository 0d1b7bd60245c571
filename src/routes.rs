//! The route table. Every URL Clavex serves is resolved here, from the path alone; methods are
//! checked by each endpoint. Pure so that `cargo test` can check it natively.

/// Path segments that can never be an organization slug, because the router uses them.
pub const RESERVED_SLUGS: &[&str] = &[
    "api",
    ".well-known",
    "healthz",
    "static",
    "assets",
    "favicon.ico",
    "robots.txt",
    "admin",
    "login",
    "logout",
    "oauth",
    "oidc",
];

#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Health,
    /// Everything under /api/v1/, with the segments after it.
    Admin(Vec<&'a str>),
    Discovery(&'a str),
    /// RFC 8414 §3: /.well-known/oauth-authorization-server/{org}
    AuthServerMetadata(&'a str),
    Jwks(&'a str),
    Authorize(&'a str),
    Login(&'a str),
    Consent(&'a str),
    Token(&'a str),
    Userinfo(&'a str),
    Revoke(&'a str),
    Introspect(&'a str),
    EndSession(&'a str),
    /// The second factor's forms: the challenge, the enrolment, and finishing after the
    /// recovery codes; and the account page that enrols by choice.
    Mfa(&'a str),
    /// POST: a passkey as the second factor (oidc/passkeys.rs `handle_second_factor`).
    MfaPasskey(&'a str),
    MfaEnrol(&'a str),
    MfaFinish(&'a str),
    AccountMfa(&'a str),
    /// The account page (oidc/account.rs) and its forms: change the password, sign out
    /// everywhere, remove the second factor.
    Account(&'a str),
    /// GET: where the account page's own sign-in lands (oidc/account_client.rs).
    AccountSignedIn(&'a str),
    AccountPassword(&'a str),
    AccountSignOut(&'a str),
    AccountMfaRemove(&'a str),
    AccountRecoveryCodes(&'a str),
    /// A one-time link's page (oidc/setup_link.rs): the organization and the token.
    SetupLink(&'a str, &'a str),
    /// POST: a one-time link finished with a passkey instead of a password (oidc/setup_link.rs).
    SetupLinkPasskey(&'a str, &'a str),
    /// "Forgot password?" (oidc/forgot_password.rs).
    ForgotPassword(&'a str),
    /// POST: the login page's "Sign in with a passkey" (oidc/passkeys.rs).
    PasskeySignIn(&'a str),
    /// POST: the account page's passkey forms: add, rename, remove.
    AccountPasskeyAdd(&'a str),
    AccountPasskeyRename(&'a str),
    AccountPasskeyRemove(&'a str),
    /// Sign-in through an upstream connection (oidc/federation.rs): its start (org, connection
    /// id) and the organization's one callback.
    ConnectionStart(&'a str, &'a str),
    ConnectionCallback(&'a str),
    /// POST: confirm linking an upstream account by signing in once (oidc/federation_link.rs).
    ConnectionLink(&'a str),
    /// Development only: bring the lagging replica up to date (edge/dev_replica.rs). A 404
    /// unless `SIMULATED_LAGGING_REPLICA` is on; `_` is never in an organization slug.
    DevReplicaSync,
    NotFound,
}

impl Route<'_> {
    /// A short, stable name for logs (never the path itself, which may carry a code or token in
    /// its query).
    pub fn name(&self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Admin(_) => "admin",
            Route::DevReplicaSync => "development_replica_sync",
            Route::Discovery(_) => "discovery",
            Route::AuthServerMetadata(_) => "authorization_server_metadata",
            Route::Jwks(_) => "jwks",
            Route::Authorize(_) => "authorize",
            Route::Login(_) => "login",
            Route::Consent(_) => "consent",
            Route::Token(_) => "token",
            Route::Userinfo(_) => "userinfo",
            Route::Revoke(_) => "revoke",
            Route::Introspect(_) => "introspect",
            Route::EndSession(_) => "logout",
            Route::Mfa(_) => "mfa",
            Route::MfaPasskey(_) => "mfa_passkey",
            Route::MfaEnrol(_) => "mfa_enrol",
            Route::MfaFinish(_) => "mfa_finish",
            Route::AccountMfa(_) => "account_mfa",
            Route::Account(_) => "account",
            Route::AccountSignedIn(_) => "account_signed_in",
            Route::AccountPassword(_) => "account_password",
            Route::AccountSignOut(_) => "account_sign_out",
            Route::AccountMfaRemove(_) => "account_mfa_remove",
            Route::AccountRecoveryCodes(_) => "account_recovery_codes",
            // Never the token: names are logged.
            Route::SetupLink(..) => "setup_link",
            Route::SetupLinkPasskey(..) => "setup_link_passkey",
            Route::ForgotPassword(_) => "forgot_password",
            Route::PasskeySignIn(_) => "passkey_sign_in",
            Route::AccountPasskeyAdd(_) => "account_passkey_add",
            Route::AccountPasskeyRename(_) => "account_passkey_rename",
            Route::AccountPasskeyRemove(_) => "account_passkey_remove",
            Route::ConnectionStart(..) => "connection_start",
            Route::ConnectionCallback(_) => "connection_callback",
            Route::ConnectionLink(_) => "connection_link",
            Route::NotFound => "not_found",
        }
    }

    /// The organization the request is about, as the path names it (it may not exist): the
    /// issuer's slug, or `/api/v1/organizations/{org}/…`.
    pub fn org(&self) -> Option<&str> {
        match self {
            Route::Health | Route::NotFound | Route::DevReplicaSync => None,
            Route::Admin(segments) => match segments.as_slice() {
                ["organizations", org, ..] if !org.is_empty() => Some(org),
                _ => None,
            },
            Route::Discovery(org)
            | Route::AuthServerMetadata(org)
            | Route::Jwks(org)
            | Route::Authorize(org)
            | Route::Login(org)
            | Route::Consent(org)
            | Route::Token(org)
            | Route::Userinfo(org)
            | Route::Revoke(org)
            | Route::Introspect(org)
            | Route::EndSession(org)
            | Route::Mfa(org)
            | Route::MfaPasskey(org)
            | Route::MfaEnrol(org)
            | Route::MfaFinish(org)
            | Route::AccountMfa(org)
            | Route::Account(org)
            | Route::AccountSignedIn(org)
            | Route::AccountPassword(org)
            | Route::AccountSignOut(org)
            | Route::AccountMfaRemove(org)
            | Route::AccountRecoveryCodes(org)
            | Route::SetupLink(org, _)
            | Route::SetupLinkPasskey(org, _)
            | Route::ForgotPassword(org)
            | Route::PasskeySignIn(org)
            | Route::AccountPasskeyAdd(org)
            | Route::AccountPasskeyRename(org)
            | Route::AccountPasskeyRemove(org)
            | Route::ConnectionStart(org, _)
            | Route::ConnectionCallback(org)
            | Route::ConnectionLink(org) => Some(org),
        }
    }
}

pub fn resolve(path: &str) -> Route<'_> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let segments: Vec<&str> = trimmed.split('/').collect();
    match segments.as_slice() {
        ["healthz"] => Route::Health,
        ["_development", "replica", "sync"] => Route::DevReplicaSync,
        ["api", "v1", rest @ ..] => Route::Admin(rest.to_vec()),
        [".well-known", "oauth-authorization-server", org] => Route::AuthServerMetadata(org),
        [org, ".well-known", "openid-configuration"] => Route::Discovery(org),
        [org, endpoint] if !RESERVED_SLUGS.contains(org) => match *endpoint {
            "jwks" => Route::Jwks(org),
            "authorize" => Route::Authorize(org),
            "login" => Route::Login(org),
            "consent" => Route::Consent(org),
            "token" => Route::Token(org),
            "userinfo" => Route::Userinfo(org),
            "revoke" => Route::Revoke(org),
            "introspect" => Route::Introspect(org),
            "logout" => Route::EndSession(org),
            "mfa" => Route::Mfa(org),
            "account" => Route::Account(org),
            "forgot-password" => Route::ForgotPassword(org),
            _ => Route::NotFound,
        },
        [org, "mfa", "enrol"] if !RESERVED_SLUGS.contains(org) => Route::MfaEnrol(org),
        [org, "mfa", "passkey"] if !RESERVED_SLUGS.contains(org) => Route::MfaPasskey(org),
        [org, "mfa", "finish"] if !RESERVED_SLUGS.contains(org) => Route::MfaFinish(org),
        [org, "account", "mfa"] if !RESERVED_SLUGS.contains(org) => Route::AccountMfa(org),
        [org, "account", "signed-in"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountSignedIn(org)
        }
        [org, "account", "password"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountPassword(org)
        }
        [org, "account", "sign-out-everywhere"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountSignOut(org)
        }
        [org, "account", "mfa", "remove"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountMfaRemove(org)
        }
        [org, "account", "mfa", "recovery-codes"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountRecoveryCodes(org)
        }
        [org, "setup", token] if !RESERVED_SLUGS.contains(org) && !token.is_empty() => {
            Route::SetupLink(org, token)
        }
        [org, "setup", token, "passkey"] if !RESERVED_SLUGS.contains(org) && !token.is_empty() => {
            Route::SetupLinkPasskey(org, token)
        }
        [org, "passkeys", "sign-in"] if !RESERVED_SLUGS.contains(org) => Route::PasskeySignIn(org),
        [org, "account", "passkeys"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountPasskeyAdd(org)
        }
        [org, "account", "passkeys", "rename"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountPasskeyRename(org)
        }
        [org, "account", "passkeys", "remove"] if !RESERVED_SLUGS.contains(org) => {
            Route::AccountPasskeyRemove(org)
        }
        [org, "connections", "callback"] if !RESERVED_SLUGS.contains(org) => {
            Route::ConnectionCallback(org)
        }
        [org, "connections", "link"] if !RESERVED_SLUGS.contains(org) => Route::ConnectionLink(org),
        [org, "connections", id, "start"] if !RESERVED_SLUGS.contains(org) && !id.is_empty() => {
            Route::ConnectionStart(org, id)
        }
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_oidc_endpoint_under_the_org() {
        assert_eq!(resolve("/acme/authorize"), Route::Authorize("acme"));
        assert_eq!(resolve("/acme/token"), Route::Token("acme"));
        assert_eq!(resolve("/acme/userinfo"), Route::Userinfo("acme"));
        assert_eq!(resolve("/acme/jwks"), Route::Jwks("acme"));
        assert_eq!(resolve("/acme/revoke"), Route::Revoke("acme"));
        assert_eq!(resolve("/acme/introspect"), Route::Introspect("acme"));
        assert_eq!(resolve("/acme/logout"), Route::EndSession("acme"));
        assert_eq!(resolve("/acme/login"), Route::Login("acme"));
        assert_eq!(resolve("/acme/mfa"), Route::Mfa("acme"));
        assert_eq!(resolve("/acme/mfa/passkey"), Route::MfaPasskey("acme"));
        assert_eq!(resolve("/acme/mfa/enrol"), Route::MfaEnrol("acme"));
        assert_eq!(resolve("/acme/mfa/finish"), Route::MfaFinish("acme"));
        assert_eq!(resolve("/acme/account/mfa"), Route::AccountMfa("acme"));
        assert_eq!(resolve("/acme/account"), Route::Account("acme"));
        assert_eq!(
            resolve("/acme/account/signed-in"),
            Route::AccountSignedIn("acme")
        );
        assert_eq!(
            resolve("/acme/account/password"),
            Route::AccountPassword("acme")
        );
        assert_eq!(
            resolve("/acme/account/sign-out-everywhere"),
            Route::AccountSignOut("acme")
        );
        assert_eq!(
            resolve("/acme/account/mfa/remove"),
            Route::AccountMfaRemove("acme")
        );
        assert_eq!(
            resolve("/acme/account/mfa/recovery-codes"),
            Route::AccountRecoveryCodes("acme")
        );
        assert_eq!(resolve("/api/account/password"), Route::NotFound);
        assert_eq!(resolve("/acme/setup/tok"), Route::SetupLink("acme", "tok"));
        assert_eq!(resolve("/acme/setup/tok").name(), "setup_link");
        assert_eq!(
            resolve("/acme/setup/tok/passkey"),
            Route::SetupLinkPasskey("acme", "tok")
        );
        assert_eq!(resolve("/acme/setup//passkey"), Route::NotFound);
        assert_eq!(resolve("/acme/setup/"), Route::NotFound);
        assert_eq!(resolve("/api/setup/tok"), Route::NotFound);
        assert_eq!(
            resolve("/acme/forgot-password"),
            Route::ForgotPassword("acme")
        );
        assert_eq!(
            resolve("/acme/passkeys/sign-in"),
            Route::PasskeySignIn("acme")
        );
        assert_eq!(
            resolve("/acme/account/passkeys"),
            Route::AccountPasskeyAdd("acme")
        );
        assert_eq!(
            resolve("/acme/account/passkeys/rename"),
            Route::AccountPasskeyRename("acme")
        );
        assert_eq!(
            resolve("/acme/account/passkeys/remove"),
            Route::AccountPasskeyRemove("acme")
        );
        assert_eq!(
            resolve("/acme/connections/callback"),
            Route::ConnectionCallback("acme")
        );
        assert_eq!(
            resolve("/acme/connections/con_1/start"),
            Route::ConnectionStart("acme", "con_1")
        );
        assert_eq!(resolve("/acme/connections//start"), Route::NotFound);
        assert_eq!(
            resolve("/acme/connections/link"),
            Route::ConnectionLink("acme")
        );
        assert_eq!(resolve("/api/connections/callback"), Route::NotFound);
        assert_eq!(resolve("/api/mfa/enrol"), Route::NotFound);
        assert_eq!(
            resolve("/acme/.well-known/openid-configuration"),
            Route::Discovery("acme")
        );
        assert_eq!(
            resolve("/.well-known/oauth-authorization-server/acme"),
            Route::AuthServerMetadata("acme")
        );
    }

    #[test]
    fn admin_paths_keep_their_segments() {
        assert_eq!(
            resolve("/api/v1/organizations/acme/clients"),
            Route::Admin(vec!["organizations", "acme", "clients"])
        );
        assert_eq!(
            resolve("/api/v1/organizations/"),
            Route::Admin(vec!["organizations"])
        );
    }

    #[test]
    fn routes_name_their_organization() {
        assert_eq!(resolve("/acme/token").org(), Some("acme"));
        assert_eq!(resolve("/acme/token").name(), "token");
        assert_eq!(resolve("/acme/account/mfa").org(), Some("acme"));
        assert_eq!(
            resolve("/api/v1/organizations/acme/clients/x").org(),
            Some("acme")
        );
        assert_eq!(resolve("/api/v1/organizations").org(), None);
        assert_eq!(resolve("/api/v1/openapi.json").org(), None);
        assert_eq!(
            resolve("/.well-known/oauth-authorization-server/acme").org(),
            Some("acme")
        );
        assert_eq!(resolve("/healthz").org(), None);
    }

    #[test]
    fn reserved_words_are_not_organizations() {
        assert_eq!(resolve("/api/token"), Route::NotFound);
        assert_eq!(resolve("/healthz"), Route::Health);
        assert_eq!(resolve("/acme/nope"), Route::NotFound);
        assert_eq!(resolve("/acme/token/extra"), Route::NotFound);
    }

    #[test]
    fn the_development_sync_path_is_no_organization_path() {
        assert_eq!(resolve("/_development/replica/sync"), Route::DevReplicaSync);
        // `_` is not allowed in a slug (admin/validate.rs), so no organization can shadow it.
        assert!(crate::admin::validate::slug("slug", "_development").is_err());
    }
}
