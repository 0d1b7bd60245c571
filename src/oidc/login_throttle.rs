//! Login throttling (protocol/throttle.rs) around the password check of POST /{org}/login: per
//! account and per client address, consistent across locations because every failure is counted
//! at the D1 primary. A name that matches no account is throttled exactly like one that does, so
//! neither the answer nor its timing tells an attacker which accounts exist.

use std::collections::HashMap;

use worker::Result;

use crate::edge::context::Ctx;
use crate::edge::store::orgs::Organization;
use crate::edge::store::throttles::{self, ip_key, login_key, user_key};
use crate::edge::store::users::User;
use crate::protocol::throttle::{Counter, locked_for};

/// The counters of one login attempt, read before the password is checked.
pub struct Gate {
    counters: HashMap<String, Counter>,
    login: String,
    ip: Option<String>,
}

impl Gate {
    /// One read at the nearest replica (a lock set moments ago elsewhere is seen within the
    /// replica's lag; every failure is still counted at the primary).
    pub async fn open(ctx: &Ctx, org: &Organization, login: &str) -> Result<Gate> {
        let counters =
            throttles::for_login(&ctx.replica()?, &org.slug, login, ctx.client_ip.as_deref())
                .await?;
        Ok(Gate {
            counters,
            login: login.to_string(),
            ip: ctx.client_ip.clone(),
        })
    }

    /// Seconds until this attempt may be checked, if the account, the name or the address is
    /// waiting out its failures (`now_ms`: Unix milliseconds).
    pub fn locked_for(&self, now_ms: i64) -> Option<i64> {
        self.counters
            .values()
            .filter_map(|c| locked_for(Some(c), now_ms))
            .max()
    }

    /// Count a failure for the account (the user's id when the name is one, else the name) and
    /// the address; the wait it starts, if any.
    pub async fn failed(
        &self,
        ctx: &Ctx,
        org: &Organization,
        user: Option<&User>,
    ) -> Result<Option<i64>> {
        let policy = org.throttle_policy();
        let account = match user {
            Some(u) => user_key(&u.id),
            None => login_key(&self.login),
        };
        let mut keys = vec![(account, policy.account_failures)];
        if let Some(ip) = &self.ip {
            keys.push((ip_key(ip), policy.ip_failures));
        }
        let after = throttles::record_failures(
            &ctx.primary()?,
            &org.slug,
            &keys,
            policy.max_wait,
            policy.reset_after,
            ctx.now_ms,
        )
        .await?;
        Ok(after
            .values()
            .filter_map(|c| locked_for(Some(c), ctx.now_ms))
            .max())
    }

    /// A success resets the account (ASVS 6.3.1; Keycloak and Auth0 do the same). A write only
    /// when the account had failures, so a normal sign-in still makes no primary round trip.
    pub async fn succeeded(&self, ctx: &Ctx, org: &Organization, user: &User) -> Result<()> {
        let key = user_key(&user.id);
        if self.counters.get(&key).is_some_and(|c| c.failures > 0) {
            throttles::clear(&ctx.primary()?, &org.slug, &key).await?;
        }
        Ok(())
    }
}
