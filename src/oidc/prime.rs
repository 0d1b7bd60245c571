//! What a request needs before its own work — the organization, the client, the signing key —
//! read in one replica round trip when this isolate does not hold them (issue 18: one read per
//! request). Each is cached per isolate (oidc/request.rs, oidc/client_cache.rs, oidc/signer.rs),
//! so on a warm isolate this makes no call at all. On a cold one it used to cost one round trip
//! each, one after the other, in front of the read the request really needs; the code exchange,
//! which reads nothing else at a replica, made three.
//!
//! Priming only fills the caches. The endpoints then ask for each as before, so every rule about
//! them still holds in one place: a row the replica lacks is looked for at the primary (a client
//! or an organization created moments ago), and a missing row is simply not cached here; the
//! endpoint's own read finds out. The client is not put in the isolate's cache but kept for this
//! request (`Ctx::keep_read_ahead_client`): client_cache.rs judges it as the replica read it is,
//! so a lagging replica's copy never becomes the cached one (the `replica-lag` test caught that).

use worker::{D1Result, Result};

use crate::edge::context::Ctx;
use crate::edge::store::clients::{client_of, client_statement};
use crate::edge::store::database::Stmt;
use crate::edge::store::keys::{SigningKey, active_key_statement};
use crate::edge::store::orgs::{Organization, org_statement};
use crate::oidc::{client_cache, request, signer};

/// What the request will ask for.
#[derive(Default)]
pub struct Needs<'a> {
    /// The client named by the request, when it names one.
    pub client_id: Option<&'a str>,
    /// The organization's active signing key (the token endpoint signs).
    pub signing_key: bool,
    /// The request's own read, when it is known from the request alone (the user a login form
    /// names, the refresh token presented): a replica read, answered in the same round trip.
    pub ahead: Option<Stmt>,
}

/// Read whatever of the organization and `needs` this isolate does not hold fresh, with the
/// request's own read, in one D1 `batch` at the nearest replica; keep what was found and return
/// the result of `ahead`.
pub async fn prime(ctx: &Ctx, slug: &str, needs: Needs<'_>) -> Result<Option<D1Result>> {
    let want_org = !request::organization_cached(ctx, slug);
    let want_client = needs
        .client_id
        .filter(|id| !id.is_empty() && !client_cache::cached(ctx, slug, id));
    let want_key = needs.signing_key && !signer::active_cached(ctx, slug);
    let wanted = usize::from(want_org) + usize::from(want_client.is_some()) + usize::from(want_key);
    let Some(ahead) = needs.ahead else {
        // Only one thing to read: the endpoint's own read of it is the same one round trip.
        if wanted < 2 {
            return Ok(None);
        }
        prime_batch(ctx, slug, want_org, want_client, want_key, None).await?;
        return Ok(None);
    };
    if wanted == 0 {
        return Ok(Some(ahead.all().await?));
    }
    prime_batch(ctx, slug, want_org, want_client, want_key, Some(ahead)).await
}

async fn prime_batch(
    ctx: &Ctx,
    slug: &str,
    want_org: bool,
    want_client: Option<&str>,
    want_key: bool,
    ahead: Option<Stmt>,
) -> Result<Option<D1Result>> {
    let db = ctx.replica()?;
    let mut statements = Vec::with_capacity(4);
    if want_org {
        statements.push(org_statement(&db, slug)?);
    }
    if let Some(id) = want_client {
        statements.push(client_statement(&db, slug, id)?);
    }
    if want_key {
        statements.push(active_key_statement(&db, slug)?);
    }
    let wants_ahead = ahead.is_some();
    statements.extend(ahead);
    let mut results = db.batch(statements).await?;
    let ahead = if wants_ahead { results.pop() } else { None };
    let mut results = results.iter();
    if want_org
        && let Some(org) = results
            .next()
            .map(|r| r.results::<Organization>())
            .transpose()?
            .and_then(|rows| rows.into_iter().next())
    {
        request::remember_organization(&org, ctx.now);
    }
    if want_client.is_some()
        && let Some(client) = results.next().map(client_of).transpose()?.flatten()
    {
        ctx.keep_read_ahead_client(client);
    }
    if want_key
        && let Some(key) = results
            .next()
            .map(|r| r.results::<SigningKey>())
            .transpose()?
            .and_then(|rows| rows.into_iter().next())
    {
        signer::remember_active(&key, ctx.now);
    }
    Ok(ahead)
}
