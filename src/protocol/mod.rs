//! OAuth 2.0 and OpenID Connect rules in plain Rust: no Worker, web-sys or js-sys types, so
//! `cargo test` checks them natively. Time and randomness are passed in.

pub mod lifetimes;
