//! Configuration read from the Worker's environment: vars and secrets (see wrangler.toml).

use worker::{Env, Error, Result, Url};

pub struct Config {
    /// `https://id.acme.eu` — no trailing slash. Issuers are `{base_url}/{org}`.
    pub base_url: String,
    pub admin_token: String,
    pub key_encryption_secret: String,
}

impl Config {
    pub fn from_env(env: &Env, request_url: &Url) -> Result<Config> {
        let configured = env
            .var("PUBLIC_BASE_URL")
            .map(|v| v.to_string())
            .unwrap_or_default();
        let base_url = if configured.trim().is_empty() {
            // Local development: the origin the request came to.
            request_url.origin().ascii_serialization()
        } else {
            configured.trim().trim_end_matches('/').to_string()
        };
        let secret = |name: &str| -> Result<String> {
            let value = env
                .secret(name)
                .map(|s| s.to_string())
                .map_err(|_| Error::RustError(format!("secret {name} is not set")))?;
            if value.len() < 16 {
                return Err(Error::RustError(format!(
                    "secret {name} is shorter than 16 characters"
                )));
            }
            Ok(value)
        };
        Ok(Config {
            base_url,
            admin_token: secret("ADMIN_TOKEN")?,
            key_encryption_secret: secret("KEY_ENCRYPTION_SECRET")?,
        })
    }

    pub fn issuer(&self, org: &str) -> String {
        format!("{}/{}", self.base_url, org)
    }

    /// Cookies get `Secure` except on plain-http localhost during development.
    pub fn secure_cookies(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}
