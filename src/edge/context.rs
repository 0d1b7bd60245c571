//! What every endpoint gets: the environment's bindings, configuration, and the clock.

use worker::{D1Database, Env, Result, kv::KvStore};

use crate::edge::config::Config;

pub struct Ctx {
    pub env: Env,
    pub config: Config,
    /// Unix seconds at the start of the request; passed down so rules never read the clock.
    pub now: i64,
}

impl Ctx {
    pub fn db(&self) -> Result<D1Database> {
        self.env.d1("DB")
    }

    pub fn kv(&self) -> Result<KvStore> {
        self.env.kv("KV")
    }
}

pub fn now_seconds() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}
