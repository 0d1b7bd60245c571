//! The account page's own sign-in: `/{org}/account` without a session sends the browser through
//! the ordinary authorization flow for a client that exists in no database — `clavex-account`,
//! made here for each organization — and back to the account page. Every rule of a sign-in
//! (the login form, passkeys, upstream connections, the second factor, the gate) applies as for
//! any relying party; nothing is written for the client.
//!
//! Its code is never redeemed: the request carries a PKCE challenge of random bytes whose
//! verifier nobody knows, and the token, introspection and revocation endpoints treat the id as
//! unknown (oidc/request.rs), so the code that lands at `/{org}/account/signed-in` is dropped
//! there; the SSO session the sign-in started is what the account page uses. The admin API
//! refuses the id for a client of its own (admin/validate.rs).

use crate::crypto::{b64url, random_bytes};
use crate::edge::context::Ctx;
use crate::edge::store::clients::Client;

pub const ACCOUNT_CLIENT_ID: &str = "clavex-account";

/// Where the flow lands: `/{org}/account/signed-in`, which goes on to the account page.
fn landing(ctx: &Ctx, org: &str) -> String {
    format!("{}/account/signed-in", ctx.config.issuer(org))
}

/// The client, as the flow's endpoints need it: public (no secret), the code flow only, the
/// `openid` scope, and the landing page as its one redirect URI.
pub fn client(ctx: &Ctx, org: &str) -> Client {
    Client {
        org: org.to_string(),
        client_id: ACCOUNT_CLIENT_ID.to_string(),
        client_name: "your account".to_string(),
        token_endpoint_auth_method: "none".to_string(),
        secret_hash: None,
        grant_types: vec!["authorization_code".to_string()],
        redirect_uris: vec![landing(ctx, org)],
        post_logout_redirect_uris: Vec::new(),
        scopes: vec!["openid".to_string()],
        created_at: 0,
        updated_at: 0,
        groups_claim: "groups".to_string(),
        roles_claim: "roles".to_string(),
        groups_in_id_token: false,
        attributes_in_id_token: false,
        role_mappings: Vec::new(),
        allowed_groups: Vec::new(),
        require_mfa: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
    }
}

/// The authorization request that signs the browser in for the account page (relative to the
/// host, like the page's other links). The PKCE challenge is 32 random bytes: no verifier exists.
pub fn sign_in_path(ctx: &Ctx, org: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "/{org}/authorize?client_id={ACCOUNT_CLIENT_ID}&response_type=code&scope=openid&redirect_uri={}&state={}&code_challenge={}&code_challenge_method=S256",
        enc(&landing(ctx, org)),
        b64url(&random_bytes::<16>()),
        b64url(&random_bytes::<32>()),
    )
}
