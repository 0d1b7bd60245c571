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
use crate::oidc::account_client::{self, ACCOUNT_CLIENT_ID};

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
    // The account page's own client is made, not read (oidc/account_client.rs).
    if client_id == ACCOUNT_CLIENT_ID {
        let made = account_client::client(ctx, org);
        return Ok(usable(&made).then_some(made));
    }
    let key = (org.to_string(), client_id.to_string());
    let cached = CACHE.with(|c| {
        c.borrow()
            .get(&key)
            .filter(|(_, at)| ctx.now - at < CLIENT_CACHE_SECONDS && ctx.now >= *at)
            .map(|(client, _)| client.clone())
    });
    let kept_unusable = match cached {
        Some(client) if usable(&client) => return Ok(Some(client)),
        Some(client) => Some(client.updated_at),
        None => None,
    };
    // The copy this request read ahead at the replica (oidc/prime.rs) stands for the replica's
    // read here: kept if usable, else the primary is asked — exactly as `Ctx::fresh` would.
    let read_ahead = ctx
        .take_read_ahead_client()
        .filter(|c| c.org == org && c.client_id == client_id);
    let found = match read_ahead {
        Some(client) if usable(&client) => Some(client),
        Some(_) => get_client(&ctx.primary()?, org, client_id).await?,
        None => {
            ctx.fresh(
                |db| async move { get_client(&db, org, client_id).await },
                &usable,
            )
            .await?
        }
    };
    match &found {
        // A copy read because the kept one would not do replaces it only when it is a newer
        // version: one no newer is a lagging replica's (an old secret, an old redirect URI list,
        // served while the replica has nothing newer) and must not outlive that replica's lag.
        Some(client) if kept_unusable.is_none_or(|kept| client.updated_at > kept) => {
            remember(key, client.clone(), ctx.now)
        }
        Some(_) => {}
        // Gone (deleted): forget any copy, so it is not served again.
        None => {
            CACHE.with(|c| c.borrow_mut().remove(&key));
        }
    }
    Ok(found)
}

/// Whether this isolate holds a fresh copy of the client (oidc/prime.rs reads it with the
/// request's other reads when it does not).
pub fn cached(ctx: &Ctx, org: &str, client_id: &str) -> bool {
    if client_id == ACCOUNT_CLIENT_ID {
        return true;
    }
    CACHE.with(|c| {
        c.borrow()
            .get(&(org.to_string(), client_id.to_string()))
            .is_some_and(|(_, at)| ctx.now - at < CLIENT_CACHE_SECONDS && ctx.now >= *at)
    })
}

/// Keep `client` as read now — unless a newer version of it is already kept (two requests of
/// this isolate may read it from places that differ in lag).
fn remember(key: Key, client: Client, now: i64) {
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.get(&key)
            .is_some_and(|(kept, _)| kept.updated_at > client.updated_at)
        {
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: &str, updated_at: i64) -> Client {
        serde_json::from_value(serde_json::json!({
            "org": "acme", "client_id": id, "client_name": "C", "token_endpoint_auth_method": "none",
            "secret_hash": null, "grant_types": [], "redirect_uris": [], "post_logout_redirect_uris": [],
            "scopes": [], "created_at": 0, "updated_at": updated_at, "groups_claim": "groups",
            "roles_claim": "roles", "groups_in_id_token": false, "attributes_in_id_token": false,
            "role_mappings": [], "allowed_groups": [], "require_mfa": false,
            "backchannel_logout_uri": null, "backchannel_logout_session_required": false
        }))
        .unwrap()
    }

    fn kept(id: &str) -> Option<i64> {
        CACHE.with(|c| {
            c.borrow()
                .get(&("acme".to_string(), id.to_string()))
                .map(|(c, _)| c.updated_at)
        })
    }

    #[test]
    fn an_older_copy_never_replaces_a_newer_one_and_forget_drops_the_org() {
        let key = |id: &str| ("acme".to_string(), id.to_string());
        remember(key("a"), client("a", 20), 100);
        remember(key("a"), client("a", 10), 101);
        assert_eq!(kept("a"), Some(20), "a lagging replica's copy is not kept");
        remember(key("a"), client("a", 30), 102);
        assert_eq!(kept("a"), Some(30));
        remember(("other".into(), "a".into()), client("a", 1), 100);
        forget_org("acme");
        assert_eq!(kept("a"), None);
        assert!(CACHE.with(|c| {
            c.borrow()
                .contains_key(&("other".to_string(), "a".to_string()))
        }));
    }
}
