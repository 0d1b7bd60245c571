//! The per-organization OpenID Connect endpoints. Each file is one endpoint: it parses the
//! request, calls the rules in `protocol/`, and reads or writes through `edge/store/`.

pub mod account;
pub mod account_client;
pub mod attempts;
pub mod authorize;
pub mod backchannel;
pub mod client_cache;
pub mod consent;
pub mod cookies;
pub mod device;
pub mod discovery;
pub mod factor_secrets;
pub mod federation;
pub mod federation_link;
pub mod forgot_password;
pub mod form_state;
pub mod forms;
pub mod interaction;
pub mod introspect;
pub mod issue;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod mfa;
pub mod pages;
pub mod passkeys;
pub mod prime;
pub mod request;
pub mod revoke;
pub mod screens;
pub mod setup_link;
pub mod signer;
pub mod sso;
pub mod token;
pub mod userinfo;
