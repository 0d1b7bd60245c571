//! Guesses of a secret a person types — a password, a TOTP code, a recovery code — counted
//! before they are answered (issue 15). `guess` first reserves the attempt at the D1 primary: it
//! is counted as a failure under every limit, atomically with the check that none of them is
//! locked (`throttles::count_failure`), and only a reserved attempt is checked at all. Of any
//! number of concurrent guesses, at most the threshold are checked and answered; the rest get 429
//! without their password even being hashed, so a right guess inside a burst that crossed the
//! threshold does not sign in, however slowly the burst is served. A right guess gives its
//! reservation back after the response (`throttles::refund`; a success resets the account).
//!
//! The reservation is one round trip to the D1 primary, the same for right and wrong guesses
//! and for known and unknown names, so neither the answer's timing nor its path tells which.
//! (The admin token, whose check costs nothing, is judged after its check instead: admin/mod.rs.)
//!
//! Limits: the account (its user id, or for a name that matches no account a hash of the name),
//! and the client's address (IPv4, or IPv6 per /64) unless this browser has signed in to the
//! account before (oidc/device.rs): a sprayer behind one address is slowed, while the people of
//! an office behind the same NAT keep signing in on their own browsers. TOTP codes are also
//! capped per 30-second step.

use worker::Result;

use crate::edge::context::Ctx;
use crate::edge::store::orgs::Organization;
use crate::edge::store::throttles::{self, Limit};
use crate::protocol::throttle::{address_key, totp_step_key, user_key};

/// The limits one guess is under.
pub struct Attempt {
    scope: String,
    account: String,
    limits: Vec<Limit>,
}

/// What a guess may be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Right, and no limit stands in the way.
    Accepted,
    /// Wrong, counted; `wait` when this failure (or an earlier one) started a wait.
    Wrong { wait: Option<i64> },
    /// Refused without an answer: a limit is waiting out earlier failures (seconds).
    Throttled { wait: i64 },
}

impl Attempt {
    /// A guess for the account `account_key` (`throttle::user_key` or `throttle::name_key`).
    /// `trusted_browser`: this browser has signed in to that account before, so the address
    /// limit does not apply to it.
    pub fn new(ctx: &Ctx, org: &Organization, account_key: String, trusted_browser: bool) -> Self {
        let policy = org.throttle_policy();
        let mut limits = vec![Limit {
            key: account_key.clone(),
            threshold: policy.account_failures,
            first_wait: 1,
            max_wait: policy.max_wait,
            reset_after: policy.reset_after,
        }];
        if let (Some(ip), false) = (ctx.client_ip.as_deref(), trusted_browser) {
            limits.push(Limit {
                key: address_key(ip),
                threshold: policy.ip_failures,
                first_wait: 1,
                max_wait: policy.max_wait,
                reset_after: policy.reset_after,
            });
        }
        Attempt {
            scope: org.slug.clone(),
            account: account_key,
            limits,
        }
    }

    /// A guess of `user_id`'s one-time code: also capped per 30-second step, so the account's
    /// short first waits cannot be spent inside one code's lifetime on more guesses than the
    /// threshold.
    pub fn one_time_code(mut self, ctx: &Ctx, org: &Organization, user_id: &str) -> Self {
        let step = (ctx.now.max(0) as u64) / 30;
        self.limits.push(Limit {
            key: totp_step_key(user_id, step),
            threshold: org.throttle_policy().account_failures,
            // Locked for the rest of the step and the next (a code is accepted one step either
            // way): at most the threshold of guesses per step, however the requests are timed.
            first_wait: 60,
            max_wait: 60,
            reset_after: 90,
        });
        self
    }

    /// Reserve the attempt, then — only if it was reserved — run `check` (whether the guess is
    /// right), and decide what it may be told. `reset_account`: a right guess also forgets the
    /// account's failures (not when a second factor is still to come — otherwise a known
    /// password would reset the count between guesses of the code).
    /// `check` answers whether the guess is right, and what it found (`None` when it did not
    /// run).
    pub async fn guess<T, F, Fut>(
        &self,
        ctx: &Ctx,
        reset_account: bool,
        check: F,
    ) -> Result<(Verdict, Option<T>)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(bool, T)>>,
    {
        let db = ctx.primary()?;
        let reserved = throttles::count_failure(&db, &self.scope, &self.limits, ctx.now_ms).await?;
        if !reserved.counted {
            let wait = reserved.wait.unwrap_or(1);
            return Ok((Verdict::Throttled { wait }, None));
        }
        let (right, found) = check().await?;
        if !right {
            let wait = reserved.wait;
            return Ok((Verdict::Wrong { wait }, Some(found)));
        }
        let (scope, limits, now_ms) = (self.scope.clone(), self.limits.clone(), ctx.now_ms);
        let reset = reset_account.then(|| self.account.clone());
        ctx.defer(async move {
            if let Err(e) = throttles::refund(&db, &scope, &limits, reset.as_deref(), now_ms).await
            {
                worker::console_error!("a right guess's reservation was not given back: {e}");
            }
        });
        Ok((Verdict::Accepted, Some(found)))
    }
}

/// The account key of a user.
pub fn account_of(user_id: &str) -> String {
    user_key(user_id)
}
