//! Configuration read from the Worker's environment: vars and secrets (see wrangler.toml).

use worker::{Env, Error, Result, Url};

use crate::crypto::Keyring;
use crate::edge::store::meter::Latency;

pub struct Config {
    /// `https://id.acme.eu` — no trailing slash. Issuers are `{base_url}/{org}`.
    pub base_url: String,
    pub admin_token: String,
    /// `KEY_ENCRYPTION_SECRET` (seals everything new) and `KEY_ENCRYPTION_SECRET_PREVIOUS` (a
    /// comma-separated list, for opening only while a rotation re-seals; crypto/keyring.rs).
    pub key_encryption_secret: Keyring,
    /// `STORAGE_TIMING=on`: every response says in `Server-Timing` how many storage calls of each
    /// kind it took (off by default: it tells the world how Clavex stores things).
    pub storage_timing: bool,
    /// `SIMULATED_STORAGE_LATENCY` (development only): a delay per storage call by kind, for the
    /// benchmark's far-user profile. Ignored unless the request came to a loopback address.
    pub simulated_latency: Latency,
    /// `SIMULATED_LAGGING_REPLICA=on` (development only, loopback requests only): replica reads
    /// go to the D1 binding `DB_LAGGING_REPLICA`, a second local database that holds the
    /// primary's state as of the last `POST /_development/replica/sync` — a replica that lags
    /// for as long as a test wants. The deployed wrangler.toml has no such binding.
    pub lagging_replica: bool,
    /// `SIMULATED_CLOCK_OFFSET` (development only, loopback requests only): seconds added to the
    /// clock of every request, so a test can stand a minute (or a day) after another Worker
    /// sharing its D1 database without waiting for it.
    pub clock_offset_seconds: i64,
    /// `SIMULATED_STORAGE_FAULTS=on` (development only): a request may ask for storage faults
    /// with `X-Clavex-Fail-Storage` (store/fault.rs). Ignored unless the request came to a
    /// loopback address, so a deployed Worker never honours the header.
    pub simulated_faults: bool,
}

/// The D1 binding of the development-only lagging replica (see `Config::lagging_replica`).
pub const LAGGING_REPLICA_BINDING: &str = "DB_LAGGING_REPLICA";

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
        let var = |name: &str| env.var(name).map(|v| v.to_string()).unwrap_or_default();
        let loopback = is_loopback(request_url);
        let simulated_latency = if loopback {
            Latency::parse(&var("SIMULATED_STORAGE_LATENCY"))
                .map_err(|e| Error::RustError(format!("SIMULATED_STORAGE_LATENCY: {e}")))?
        } else {
            Latency::default()
        };
        let lagging_replica = loopback && is_on(&var("SIMULATED_LAGGING_REPLICA"));
        if lagging_replica && env.d1(LAGGING_REPLICA_BINDING).is_err() {
            return Err(Error::RustError(format!(
                "SIMULATED_LAGGING_REPLICA needs the D1 binding {LAGGING_REPLICA_BINDING}"
            )));
        }
        let clock_offset_seconds = if loopback {
            clock_offset(&var("SIMULATED_CLOCK_OFFSET"))
                .map_err(|e| Error::RustError(format!("SIMULATED_CLOCK_OFFSET: {e}")))?
        } else {
            0
        };
        let simulated_faults = is_loopback(request_url) && is_on(&var("SIMULATED_STORAGE_FAULTS"));
        Ok(Config {
            base_url,
            admin_token: secret("ADMIN_TOKEN")?,
            key_encryption_secret: keyring(env)?,
            storage_timing: is_on(&var("STORAGE_TIMING")),
            simulated_latency,
            lagging_replica,
            clock_offset_seconds,
            simulated_faults,
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

/// The master secrets (also for the scheduled handler, which has no request). A previous secret
/// equal to the current one, too short or listed twice is a configuration error that names the
/// variable, never a value.
pub fn keyring(env: &Env) -> Result<Keyring> {
    let read = |name: &str| env.secret(name).map(|s| s.to_string()).ok();
    let current = read("KEY_ENCRYPTION_SECRET")
        .ok_or_else(|| Error::RustError("secret KEY_ENCRYPTION_SECRET is not set".into()))?;
    let previous = read("KEY_ENCRYPTION_SECRET_PREVIOUS").unwrap_or_default();
    Keyring::from_config(&current, &previous).map_err(Error::RustError)
}

fn is_on(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "on" | "true" | "yes"
    )
}

/// Seconds, at most a year either way; empty is 0.
fn clock_offset(value: &str) -> std::result::Result<i64, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(0);
    }
    value
        .parse::<i64>()
        .ok()
        .filter(|s| s.abs() <= 366 * 24 * 3600)
        .ok_or_else(|| format!("`{value}` is not a number of seconds within a year"))
}

/// Whether the request came to this machine itself (`wrangler dev`), never a public host.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_latency_is_for_loopback_requests_only() {
        for local in [
            "http://127.0.0.1:8787/x",
            "http://localhost:8787/",
            "http://[::1]/",
        ] {
            assert!(is_loopback(&Url::parse(local).unwrap()), "{local}");
        }
        for public in [
            "https://id.acme.eu/acme",
            "http://10.0.0.1/",
            "https://localhost.acme.eu/",
        ] {
            assert!(!is_loopback(&Url::parse(public).unwrap()), "{public}");
        }
    }

    #[test]
    fn clock_offsets_are_bounded_seconds() {
        assert_eq!(clock_offset(""), Ok(0));
        assert_eq!(clock_offset(" 120 "), Ok(120));
        assert_eq!(clock_offset("-60"), Ok(-60));
        assert!(clock_offset("2m").is_err());
        assert!(clock_offset("99999999999").is_err());
    }

    #[test]
    fn storage_timing_switch() {
        assert!(is_on("on") && is_on("TRUE") && is_on("1"));
        assert!(!is_on("") && !is_on("off") && !is_on("0"));
    }
}
