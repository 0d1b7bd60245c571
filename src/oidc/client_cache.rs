//! OAuth clients as this isolate last read them, for a bounded time (issue 18: one storage read
//! per request). Every hot path — authorize, the login and consent forms, the token endpoint —
//! needs the client before anything else; read each time, it was a replica round trip of its own
//! in front of the one the request really needs (the user, the code's claim, the refresh token).
//!
//! What the cache may not change:
//! - **A refusal is never served from it.** A cached copy that does not have the redirect URI,
//!   the post-logout URI or the secret presented is read again (replica, then primary): a client
//!   created, extended or rotated moments ago works at once, as before.
//! - **The isolate that changes a client forgets it at once** (admin/mod.rs forgets every client
//!   of the organization after any admin write under it: clients, groups, the organization).
//! - **Elsewhere, a change reaches hot paths within `CLIENT_CACHE_SECONDS`.** What would be
//!   unsafe to serve stale is decided again at the primary anyway: a code's redemption judges
//!   the user against the client's `allowed_groups` and `require_mfa` as stored now
//!   (store/grants.rs `claim_sql`), and a deleted client's codes cannot be claimed (its foreign
//!   key). A secret rotated out keeps working for at most the bound — as it did for a replica's lag.

use std::cell::RefCell;
use std::collections::HashMap;

use worker::Result;

use crate::edge::context::Ctx;
use crate::edge::store::clients::{Client, get_client};

/// How long an isolate keeps a client it has read; the same bound as organizations
/// (oidc/request.rs `ORG_CACHE_SECONDS`), said in the README.
pub const CLIENT_CACHE_SECONDS: i64 = 30;

/// Bounded so a flood of client ids cannot grow an isolate's memory without end.
const MAX_CACHED_CLIENTS: usize = 1024;

type Key = (String, String);

thread_local! {
    static CACHE: RefCell<HashMap<Key, (Client, i64)>> = RefCell::new(HashMap::new());
}

/// The client, from this isolate's cache while fresh and `usable`; otherwise read at the nearest
/// replica, and at the primary when the replica's copy is missing or not `usable` (`Ctx::fresh`).
/// Unknown clients are not cached, so a client is usable as soon as it is created.
pub async fn client(
    ctx: &Ctx,
    org: &str,
    client_id: &str,
    usable: impl Fn(&Client) -> bool,
) -> Result<Option<Client>> {
    let key = (org.to_string(), client_id.to_string());
    let cached = CACHE.with(|c| {
        c.borrow()
            .get(&key)
            .filter(|(_, at)| ctx.now - at < CLIENT_CACHE_SECONDS && ctx.now >= *at)
            .map(|(client, _)| client.clone())
    });
    if let Some(client) = cached.filter(|c| usable(c)) {
        return Ok(Some(client));
    }
    let found = ctx
        .fresh(
            |db| async move { get_client(&db, org, client_id).await },
            &usable,
        )
        .await?;
    match &found {
        Some(client) => remember(key, client.clone(), ctx.now),
        // Gone (deleted): forget any copy, so it is not served again.
        None => {
            CACHE.with(|c| c.borrow_mut().remove(&key));
        }
    }
    Ok(found)
}

/// Any client the caller has read itself, as it read it (a primary read on a refusal path).
fn remember(key: Key, client: Client, now: i64) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAX_CACHED_CLIENTS && !c.contains_key(&key) {
            c.clear();
        }
        c.insert(key, (client, now));
    });
}

/// Drop every cached client of `org`: after any admin write under it in this isolate (a client
/// changed or deleted, a group renamed or deleted — clients carry group names — or the
/// organization itself), so the isolate that made the change never serves the old version.
pub fn forget_org(org: &str) {
    CACHE.with(|c| c.borrow_mut().retain(|(o, _), _| o != org));
}
