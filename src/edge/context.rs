//! What every endpoint gets: the environment's bindings, configuration, the clock, and the
//! request's storage meter.

use std::cell::OnceCell;
use std::future::Future;

use worker::{Env, Result};

use crate::edge::config::Config;
use crate::edge::store::database::Db;
use crate::edge::store::kv::Kv;
use crate::edge::store::meter::Meter;

pub struct Ctx {
    pub env: Env,
    pub config: Config,
    /// Unix seconds at the start of the request; passed down so rules never read the clock.
    pub now: i64,
    /// Counts (and in development delays) every storage call this request makes.
    meter: Meter,
    replica: OnceCell<Db>,
}

impl Ctx {
    pub fn new(env: Env, config: Config, now: i64, meter: Meter) -> Ctx {
        Ctx {
            env,
            config,
            now,
            meter,
            replica: OnceCell::new(),
        }
    }

    /// D1 at the primary: for every write, and for reads that must see the latest write made
    /// anywhere (single use, rotation, the admin API).
    pub fn primary(&self) -> Result<Db> {
        Ok(Db::primary(self.env.d1("DB")?, self.meter.clone()))
    }

    /// D1 at the nearest replica: one Sessions API session per request (`first-unconstrained`),
    /// so the request's reads are sequentially consistent with each other. A replica may lag the
    /// primary; use `fresh` when a miss must not be believed.
    pub fn replica(&self) -> Result<Db> {
        if let Some(db) = self.replica.get() {
            return Ok(db.clone());
        }
        let session = self
            .env
            .d1("DB")?
            .with_session(Some("first-unconstrained"))?;
        let db = Db::replica(session, self.meter.clone());
        let _ = self.replica.set(db.clone());
        Ok(db)
    }

    pub fn kv(&self) -> Result<Kv> {
        Ok(Kv::new(self.env.kv("KV")?, self.meter.clone()))
    }

    /// Read at the nearest replica, and again at the primary only when the replica's answer is
    /// not `usable` — a row written moments ago elsewhere (a client, user or token just created)
    /// may not have reached the replica yet, and a refusal must not rest on a stale read. The
    /// common, successful case costs no round trip to the primary.
    pub async fn fresh<T, F, Fut>(&self, read: F, usable: impl Fn(&T) -> bool) -> Result<Option<T>>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        match read(self.replica()?).await? {
            Some(found) if usable(&found) => Ok(Some(found)),
            _ => read(self.primary()?).await,
        }
    }

    /// `fresh` where any row found is usable: the primary is asked only on a miss.
    pub async fn found<T, F, Fut>(&self, read: F) -> Result<Option<T>>
    where
        F: Fn(Db) -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        self.fresh(read, |_| true).await
    }
}

pub fn now_seconds() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}
