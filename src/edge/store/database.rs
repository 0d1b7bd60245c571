//! The one door to D1: a handle that knows whether it reads at the primary or at the nearest
//! replica, and meters every call (store/meter.rs). Store modules take a `Db` and never learn
//! which one they were given; the endpoints choose, because only they know when a possibly stale
//! answer is acceptable.
//!
//! - `Db` from `Ctx::primary()`: plain `env.DB`, every query at the primary (strongly
//!   consistent; what single use, rotation and the admin API need).
//! - `Db` from `Ctx::replica()`: the request's D1 Sessions API session, `first-unconstrained`:
//!   reads may be served by the nearest replica, and within the session they are sequentially
//!   consistent (a read after the session's own write sees it). Writes made through it are
//!   forwarded to the primary, and are counted as such.
//! - `Db` from `Ctx::replica()` under `SIMULATED_LAGGING_REPLICA` (development only): a replica
//!   that really lags. Reads go to a second local database (binding `DB_LAGGING_REPLICA`) that
//!   is brought up to date only when a test asks (edge/dev_replica.rs); writes go to the primary,
//!   and once the session has written, its reads go to the primary too — as a D1 session's would
//!   wait for a replica that has its own writes (read-your-writes).

use std::cell::Cell;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::{D1Database, D1DatabaseSession, D1PreparedStatement, D1Result, Result};

use crate::edge::store::meter::{Meter, StorageKind, error_message};

enum Handle {
    Primary(D1Database),
    Session(D1DatabaseSession),
    /// The development stand-in for a session at a lagging replica.
    Lagging {
        primary: D1Database,
        replica: D1Database,
        /// Whether this session has sent a write (its reads then go to the primary).
        wrote: Cell<bool>,
    },
}

impl Handle {
    /// Lagging only: where a statement runs now.
    fn lagging_target(&self, writes: bool) -> Option<&D1Database> {
        match self {
            Handle::Lagging {
                primary,
                replica,
                wrote,
            } => {
                if writes {
                    wrote.set(true);
                }
                Some(if wrote.get() { primary } else { replica })
            }
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct Db {
    handle: Rc<Handle>,
    meter: Meter,
}

/// Whether a statement writes (and so goes to the primary whatever handle runs it). Clavex's
/// reads all start with SELECT.
fn writes(sql: &str) -> bool {
    let head = sql.trim_start();
    !head
        .get(..6)
        .is_some_and(|w| w.eq_ignore_ascii_case("select"))
}

impl Db {
    pub fn primary(db: D1Database, meter: Meter) -> Db {
        Db {
            handle: Rc::new(Handle::Primary(db)),
            meter,
        }
    }

    pub fn replica(session: D1DatabaseSession, meter: Meter) -> Db {
        Db {
            handle: Rc::new(Handle::Session(session)),
            meter,
        }
    }

    /// Reads through a lagging replica (development only): reads at `replica` until the session
    /// writes, every write at `primary`.
    pub fn lagging(primary: D1Database, replica: D1Database, meter: Meter) -> Db {
        Db {
            handle: Rc::new(Handle::Lagging {
                primary,
                replica,
                wrote: Cell::new(false),
            }),
            meter,
        }
    }

    fn kind(&self, writes: bool) -> StorageKind {
        match &*self.handle {
            Handle::Session(_) | Handle::Lagging { .. } if !writes => StorageKind::D1Replica,
            _ => StorageKind::D1Primary,
        }
    }

    pub fn prepare(&self, sql: impl Into<String>) -> Stmt {
        let sql = sql.into();
        let writes = writes(&sql);
        let kind = self.kind(writes);
        let (inner, deferred) = match &*self.handle {
            Handle::Primary(db) => (db.prepare(sql), None),
            Handle::Session(session) => (session.prepare(sql), None),
            // Where it runs is decided when it runs (a read after a write goes elsewhere), so the
            // statement is kept to be prepared again then.
            Handle::Lagging { primary, .. } => (
                primary.prepare(sql.clone()),
                Some(Deferred {
                    handle: self.handle.clone(),
                    sql,
                    values: Vec::new(),
                    writes,
                }),
            ),
        };
        Stmt {
            inner,
            kind,
            meter: self.meter.clone(),
            deferred,
        }
    }

    /// One round trip and one transaction (D1 `batch`): at the primary if any statement writes.
    pub async fn batch(&self, statements: Vec<Stmt>) -> Result<Vec<D1Result>> {
        let kind = if statements.iter().any(|s| s.kind == StorageKind::D1Primary) {
            StorageKind::D1Primary
        } else {
            self.kind(false)
        };
        if let Some(target) = self.handle.lagging_target(kind == StorageKind::D1Primary) {
            let mut inner = Vec::with_capacity(statements.len());
            for s in &statements {
                inner.push(s.deferred_on(target)?);
            }
            return retrying(&self.meter, kind, || Ok(target.batch(inner.clone()))).await;
        }
        let inner: Vec<D1PreparedStatement> = statements.into_iter().map(|s| s.inner).collect();
        retrying(&self.meter, kind, || {
            let inner = inner.clone();
            Ok(async move {
                match &*self.handle {
                    Handle::Primary(db) => db.batch(inner).await,
                    Handle::Session(session) => session.batch(inner).await,
                    Handle::Lagging { .. } => unreachable!("handled above"),
                }
            })
        })
        .await
    }
}

/// A statement of a lagging handle, kept to be prepared where it runs.
struct Deferred {
    handle: Rc<Handle>,
    sql: String,
    values: Vec<JsValue>,
    writes: bool,
}

/// A prepared statement that is metered when it runs.
pub struct Stmt {
    inner: D1PreparedStatement,
    kind: StorageKind,
    meter: Meter,
    deferred: Option<Deferred>,
}

impl Stmt {
    pub fn bind(self, values: &[JsValue]) -> Result<Stmt> {
        let deferred = self.deferred.map(|d| Deferred {
            values: values.to_vec(),
            ..d
        });
        Ok(Stmt {
            inner: self.inner.bind(values)?,
            deferred,
            ..self
        })
    }

    /// The statement prepared on `target` (a lagging handle's), or as prepared.
    fn deferred_on(&self, target: &D1Database) -> Result<D1PreparedStatement> {
        match &self.deferred {
            Some(d) => target.prepare(d.sql.clone()).bind(&d.values),
            None => Err(worker::Error::RustError(
                "a statement of another handle in a lagging batch".into(),
            )),
        }
    }

    /// The statement to run: as prepared, or (lagging handle) prepared where it runs now.
    fn ready(&self) -> Result<Option<D1PreparedStatement>> {
        match &self.deferred {
            None => Ok(None),
            Some(d) => match d.handle.lagging_target(d.writes) {
                Some(target) => Ok(Some(target.prepare(d.sql.clone()).bind(&d.values)?)),
                None => Ok(None),
            },
        }
    }

    pub async fn first<T>(&self, column: Option<&str>) -> Result<Option<T>>
    where
        T: for<'a> serde::Deserialize<'a>,
    {
        let ready = self.ready()?;
        let inner = ready.as_ref().unwrap_or(&self.inner);
        retrying(&self.meter, self.kind, || Ok(inner.first::<T>(column))).await
    }

    pub async fn run(&self) -> Result<D1Result> {
        let ready = self.ready()?;
        let inner = ready.as_ref().unwrap_or(&self.inner);
        retrying(&self.meter, self.kind, || Ok(inner.run())).await
    }

    pub async fn all(&self) -> Result<D1Result> {
        let ready = self.ready()?;
        let inner = ready.as_ref().unwrap_or(&self.inner);
        retrying(&self.meter, self.kind, || Ok(inner.all())).await
    }
}

/// Waits before running a statement again that SQLite refused as busy: the statement did not
/// run, so running it again is safe. Under `wrangler dev`, two processes sharing one local
/// database (the two-location tests) meet it whenever both write at once; workerd opens SQLite
/// without a busy timeout, so the refusal is immediate and lasts as long as the other process's
/// write. The waits grow (with jitter, so that writers refused together do not come back
/// together) to about 1.6 s in all; past them it is an outage (503, edge/failure.rs).
const BUSY_WAITS_MS: [u64; 7] = [10, 25, 50, 100, 200, 400, 800];

/// Whether a D1 error means "busy, nothing ran". SQLite says "database is locked"
/// (SQLITE_BUSY); the local D1 of `wrangler dev` reports that same refusal to the Worker only as
/// an opaque internal error (workerd logs `sqlite.c++: SQLite failed; database is locked:
/// SQLITE_BUSY ... sentryErrorContext = jsgInternalError` and the Worker sees `D1_ERROR: Failed
/// to parse body as JSON, got: Error: internal error; reference = …`). An internal error of the
/// local database object is raised before its statement commits (each runs in its own
/// transaction), so running it again is safe there too.
fn is_busy(message: &str) -> bool {
    message.contains("database is locked")
        || message.contains("SQLITE_BUSY")
        || (message.contains("D1_ERROR") && message.contains("internal error; reference ="))
}

/// `wait` stretched by up to a half again, at random.
fn jittered(wait: u64) -> u64 {
    let [r] = crate::crypto::random_bytes::<1>();
    wait + wait * u64::from(r) / 510
}

/// One storage call through the meter, run again after a short wait while SQLite says it is
/// busy — never for a fault the development switch injected on purpose.
async fn retrying<T, F, Fut>(meter: &Meter, kind: StorageKind, mut make: F) -> Result<T>
where
    F: FnMut() -> Result<Fut>,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut waits = BUSY_WAITS_MS.iter();
    let clear_before = meter.fault().is_none();
    let mut retried = false;
    loop {
        let out = meter.call(kind, make()?).await;
        if out.is_ok() && retried && clear_before {
            meter.forget_fault();
        }
        match (&out, waits.next()) {
            (Err(e), Some(ms))
                if is_busy(&error_message(e)) && !meter.fault().is_some_and(|f| f.simulated) =>
            {
                worker::Delay::from(std::time::Duration::from_millis(jittered(*ms))).await;
                retried = true;
            }
            _ => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{is_busy, jittered, writes};

    #[test]
    fn busy_is_sqlite_busy_in_either_form_and_nothing_else() {
        assert!(is_busy("D1_ERROR: database is locked: SQLITE_BUSY"));
        // What a Worker under `wrangler dev` sees when the other process holds the write lock.
        assert!(is_busy(
            "D1_ERROR: Failed to parse body as JSON, got: Error: internal error; reference = 4j7mqpislmn4neduq52r96dn at D1DatabaseObject.queryExecute"
        ));
        assert!(!is_busy(
            "D1_ERROR: UNIQUE constraint failed: users.username: SQLITE_CONSTRAINT"
        ));
        assert!(!is_busy("D1_ERROR: no such table: users"));
        assert!(!is_busy("simulated storage fault (d1-primary)"));
    }

    #[test]
    fn jitter_stretches_a_wait_by_at_most_half() {
        for _ in 0..200 {
            let w = jittered(100);
            assert!((100..=150).contains(&w), "{w}");
        }
    }

    #[test]
    fn selects_read_everything_else_writes() {
        assert!(!writes("SELECT 1"));
        assert!(!writes("  select * FROM users"));
        assert!(writes("INSERT INTO grants VALUES (1)"));
        assert!(writes("UPDATE refresh_tokens SET rotated_at = 1"));
        assert!(writes("DELETE FROM users"));
        assert!(writes(""));
    }
}
