//! OAuth 2.0 and OpenID Connect rules in plain Rust: no Worker, web-sys or js-sys types, so
//! `cargo test` checks them natively. Time and randomness are passed in.

pub mod account;
pub mod acr;
pub mod attributes;
pub mod audit;
pub mod authorize;
pub mod bearer;
pub mod claim_formats;
pub mod claims;
pub mod client_auth;
pub mod code;
pub mod dates;
pub mod discovery;
pub mod error;
pub mod form;
pub mod gate;
pub mod groups;
pub mod id_token;
pub mod lifetimes;
pub mod links;
pub mod logout_token;
pub mod mfa;
pub mod origin;
pub mod password_policy;
pub mod pkce;
pub mod redirect;
pub mod refresh;
pub mod response_mode;
pub mod retention;
pub mod scopes;
pub mod standard_claims;
pub mod throttle;
pub mod token_request;
pub mod upstream;
pub mod upstream_mapping;
pub mod webauthn;
