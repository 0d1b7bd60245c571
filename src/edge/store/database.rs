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

use std::rc::Rc;

use wasm_bindgen::JsValue;
use worker::{D1Database, D1DatabaseSession, D1PreparedStatement, D1Result, Result};

use crate::edge::store::meter::{Meter, StorageKind};

enum Handle {
    Primary(D1Database),
    Session(D1DatabaseSession),
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

    fn kind(&self, writes: bool) -> StorageKind {
        match &*self.handle {
            Handle::Session(_) if !writes => StorageKind::D1Replica,
            _ => StorageKind::D1Primary,
        }
    }

    pub fn prepare(&self, sql: impl Into<String>) -> Stmt {
        let sql = sql.into();
        let kind = self.kind(writes(&sql));
        let inner = match &*self.handle {
            Handle::Primary(db) => db.prepare(sql),
            Handle::Session(session) => session.prepare(sql),
        };
        Stmt {
            inner,
            kind,
            meter: self.meter.clone(),
        }
    }

    /// One round trip and one transaction (D1 `batch`): at the primary if any statement writes.
    pub async fn batch(&self, statements: Vec<Stmt>) -> Result<Vec<D1Result>> {
        let kind = if statements.iter().any(|s| s.kind == StorageKind::D1Primary) {
            StorageKind::D1Primary
        } else {
            self.kind(false)
        };
        let inner = statements.into_iter().map(|s| s.inner).collect();
        let call = async {
            match &*self.handle {
                Handle::Primary(db) => db.batch(inner).await,
                Handle::Session(session) => session.batch(inner).await,
            }
        };
        self.meter.call(kind, call).await
    }
}

/// A prepared statement that is metered when it runs.
pub struct Stmt {
    inner: D1PreparedStatement,
    kind: StorageKind,
    meter: Meter,
}

impl Stmt {
    pub fn bind(self, values: &[JsValue]) -> Result<Stmt> {
        Ok(Stmt {
            inner: self.inner.bind(values)?,
            ..self
        })
    }

    pub async fn first<T>(&self, column: Option<&str>) -> Result<Option<T>>
    where
        T: for<'a> serde::Deserialize<'a>,
    {
        self.meter
            .call(self.kind, self.inner.first::<T>(column))
            .await
    }

    pub async fn run(&self) -> Result<D1Result> {
        self.meter.call(self.kind, self.inner.run()).await
    }

    pub async fn all(&self) -> Result<D1Result> {
        self.meter.call(self.kind, self.inner.all()).await
    }
}

#[cfg(test)]
mod tests {
    use super::writes;

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
