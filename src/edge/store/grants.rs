//! (OIDC work in progress)
