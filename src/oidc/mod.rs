//! The per-organization OpenID Connect endpoints. Each file is one endpoint: it parses the
//! request, calls the rules in `protocol/`, and reads or writes through `edge/store/`.

pub mod authorize;
pub mod consent;
pub mod cookies;
pub mod discovery;
pub mod introspect;
pub mod issue;
pub mod jwks;
pub mod login;
pub mod login_state;
pub mod login_throttle;
pub mod logout;
pub mod mfa;
pub mod mfa_state;
pub mod pages;
pub mod request;
pub mod revoke;
pub mod signer;
pub mod sso;
pub mod token;
pub mod userinfo;
