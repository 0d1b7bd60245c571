//! What every endpoint gets: the environment's bindings, configuration, the clock, and the
//! request's storage meter.

use std::cell::{OnceCell, RefCell};
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
    /// The same instant in milliseconds, for throttle waits (a 1 s wait must last a second).
    pub now_ms: i64,
    /// Counts (and in development delays) every storage call this request makes.
    meter: Meter,
    replica: OnceCell<Db>,
    /// Who sent the request: Cloudflare's `CF-Connecting-IP` (set by the edge; a client cannot
    /// forge it in production) and the `User-Agent`, for throttling and the audit trail.
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Audit events of this request, written after the response (edge/audit.rs).
    events: RefCell<Vec<crate::protocol::audit::Event>>,
    /// The members an admin body carried (names only), for the audit record of the change.
    admin_fields: RefCell<Vec<String>>,
    /// Writes nobody needs to wait for, run after the response (`waitUntil`).
    deferred: RefCell<Vec<Deferred>>,
    /// The client as the replica had it in this request's first batch (oidc/prime.rs), until
    /// oidc/client_cache.rs judges it as that read.
    read_ahead_client: RefCell<Option<crate::edge::store::clients::Client>>,
}

/// A write run after the response.
pub type Deferred = std::pin::Pin<Box<dyn Future<Output = ()> + 'static>>;

impl Ctx {
    pub fn new(env: Env, config: Config, now: i64, meter: Meter) -> Ctx {
        Ctx {
            env,
            config,
            now,
            now_ms: now * 1000,
            meter,
            replica: OnceCell::new(),
            client_ip: None,
            user_agent: None,
            events: RefCell::new(Vec::new()),
            admin_fields: RefCell::new(Vec::new()),
            deferred: RefCell::new(Vec::new()),
            read_ahead_client: RefCell::new(None),
        }
    }

    /// Keep the client read ahead at the replica for this request (oidc/prime.rs).
    pub fn keep_read_ahead_client(&self, client: crate::edge::store::clients::Client) {
        self.read_ahead_client.replace(Some(client));
    }

    /// The client read ahead for this request, once (oidc/client_cache.rs).
    pub fn take_read_ahead_client(&self) -> Option<crate::edge::store::clients::Client> {
        self.read_ahead_client.take()
    }

    pub fn note_admin_fields(&self, names: Vec<String>) {
        *self.admin_fields.borrow_mut() = names;
    }

    pub fn admin_fields(&self) -> Vec<String> {
        self.admin_fields.borrow().clone()
    }

    /// Note an audit event; it is stored after the response is sent.
    pub fn record(&self, event: crate::protocol::audit::Event) {
        self.events.borrow_mut().push(event.scrubbed());
    }

    /// Run `work` after the response has been sent (a write no answer depends on).
    pub fn defer(&self, work: impl Future<Output = ()> + 'static) {
        self.deferred.borrow_mut().push(Box::pin(work));
    }

    pub fn take_deferred(&self) -> Vec<Deferred> {
        std::mem::take(&mut self.deferred.borrow_mut())
    }

    pub fn take_events(&self) -> Vec<crate::protocol::audit::Event> {
        std::mem::take(&mut self.events.borrow_mut())
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
        let primary = self.env.d1("DB")?;
        let db = if self.config.lagging_replica {
            let lagging = self.env.d1(crate::edge::config::LAGGING_REPLICA_BINDING)?;
            Db::lagging(primary, lagging, self.meter.clone())
        } else {
            let session = primary.with_session(Some("first-unconstrained"))?;
            Db::replica(session, self.meter.clone())
        };
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

pub fn now_millis() -> i64 {
    js_sys::Date::now() as i64
}

pub fn now_seconds() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}
