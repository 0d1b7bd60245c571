//! The browsers a person has signed in from (OWASP's "device cookie" against online guessing):
//! after a sign-in with a password, the browser gets a long-lived cookie naming the accounts that
//! signed in on it, sealed (AES-256-GCM under a key derived for this purpose, the organization as
//! associated data) so it cannot be forged or read. A login attempt for one of those accounts
//! from that browser is not held to the per-address limit: a building behind one NAT address
//! keeps signing in while a password sprayer on the same address waits. The per-account limit
//! still applies to every browser.

use serde::{Deserialize, Serialize};
use worker::Request;

use crate::edge::context::Ctx;
use crate::oidc::cookies;
use crate::oidc::request::header;

pub const COOKIE: &str = "clavex_device";
const PURPOSE: &str = "device-cookies";
/// Long enough to cover people who sign in rarely; the cookie is refreshed at every sign-in.
pub const DEVICE_COOKIE_SECONDS: i64 = 180 * 24 * 3600;
/// A shared computer keeps the last few accounts, no more.
const MAX_ACCOUNTS: usize = 5;

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Device {
    users: Vec<String>,
    issued_at: i64,
}

fn read(ctx: &Ctx, req: &Request, org: &str) -> Device {
    let Some(value) = cookies::read(header(req, "Cookie").as_deref(), COOKIE) else {
        return Device::default();
    };
    // Under whichever configured secret sealed it; a cookie sealed under a secret since removed
    // reads as no cookie (an unknown browser) until the next sign-in renews it.
    ctx.config
        .key_encryption_secret
        .open(PURPOSE, &value, org.as_bytes())
        .and_then(|bytes| serde_json::from_slice::<Device>(&bytes).ok())
        .filter(|d| ctx.now - d.issued_at < DEVICE_COOKIE_SECONDS)
        .unwrap_or_default()
}

/// Whether this browser has signed in to `user_id` before.
pub fn knows(ctx: &Ctx, req: &Request, org: &str, user_id: &str) -> bool {
    read(ctx, req, org).users.iter().any(|u| u == user_id)
}

/// The Set-Cookie that adds `user_id` to this browser's accounts (most recent first).
pub fn remember(ctx: &Ctx, req: &Request, org: &str, user_id: &str) -> String {
    let mut device = read(ctx, req, org);
    device.users.retain(|u| u != user_id);
    device.users.insert(0, user_id.to_string());
    device.users.truncate(MAX_ACCOUNTS);
    device.issued_at = ctx.now;
    let json = serde_json::to_vec(&device).expect("a device record always serializes");
    let sealed = ctx
        .config
        .key_encryption_secret
        .seal(PURPOSE, &json, org.as_bytes());
    cookies::set(
        COOKIE,
        &sealed,
        org,
        ctx.config.secure_cookies(),
        DEVICE_COOKIE_SECONDS,
    )
}
