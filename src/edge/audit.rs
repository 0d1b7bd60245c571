//! Recording audit events: endpoints note them on the request's `Ctx` (no I/O), and the
//! dispatcher stores them after the response has been sent, through `waitUntil` — one batch at
//! the D1 primary that no user waits for — and prints each as a JSON line for Workers Logs.

use serde_json::{Map, Value};
use worker::Context;

use crate::edge::context::Ctx;
use crate::edge::store::database::Db;
use crate::edge::store::events;
use crate::edge::store::meter::Meter;
use crate::protocol::audit::{Event, Kind};

/// Note an event of `kind` in `org` for this request (its time, address and user agent).
pub fn note(
    ctx: &Ctx,
    kind: Kind,
    org: &str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    detail: Map<String, Value>,
) {
    ctx.record(Event {
        org: org.to_string(),
        at: ctx.now,
        kind,
        user_id: user_id.map(str::to_string),
        client_id: client_id.map(str::to_string),
        ip: ctx.client_ip.clone(),
        user_agent: ctx.user_agent.clone(),
        detail,
    });
}

/// A detail object from pairs.
pub fn detail<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Store and log this request's events once the response is on its way.
pub fn flush(ctx: &Ctx, context: &Context) {
    let events = ctx.take_events();
    if events.is_empty() {
        return;
    }
    for e in &events {
        // A storage failure has already been logged, as one line, by edge/failure.rs.
        if e.kind != Kind::StorageUnavailable {
            worker::console_log!("{}", e.log_line());
        }
    }
    // Events outside any organization (wrong admin tokens) are log lines only.
    let events: Vec<Event> = events.into_iter().filter(|e| !e.org.is_empty()).collect();
    if events.is_empty() {
        return;
    }
    let Ok(d1) = ctx.env.d1("DB") else { return };
    // Not the request's meter: this write happens after the response and is not the user's wait.
    let db = Db::primary(d1, Meter::default());
    context.wait_until(async move {
        if let Err(e) = events::insert(&db, &events).await {
            worker::console_error!("audit events not stored: {e}");
        }
    });
}
