//! `POST /_development/replica/sync` — development only: bring the lagging replica up to date.
//!
//! Under `wrangler dev` there is one SQLite database and no replica, so nothing that depends on
//! replica lag could be tested. With `SIMULATED_LAGGING_REPLICA=on` (honoured only for requests
//! to a loopback address, like `SIMULATED_STORAGE_LATENCY`) replica reads go to a second local
//! database, `DB_LAGGING_REPLICA` (see `Ctx::replica`, store/database.rs), which changes only
//! when a test calls this endpoint: it copies every table of the primary into it in one
//! transaction, so the replica jumps from one consistent state of the primary to a later one, as
//! a real replica does. The copy goes through the Worker (two D1 batches) rather than through the
//! SQLite files, which workerd holds open. Otherwise, and without the admin token, it is a 404.

use serde_json::{Map, Value};
use worker::{Method, Request, Response, Result};

use crate::admin::auth;
use crate::edge::config::LAGGING_REPLICA_BINDING;
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::database::Db;
use crate::edge::store::meter::Meter;

pub async fn handle(req: Request, ctx: &Ctx) -> Result<Response> {
    if !ctx.config.lagging_replica {
        return http::not_found();
    }
    if req.method() != Method::Post {
        return http::method_not_allowed("POST");
    }
    if let Some(refused) = auth::check(&req, &ctx.config.admin_token)? {
        return Ok(refused);
    }
    let primary = Db::primary(ctx.env.d1("DB")?, Meter::default());
    let replica = Db::primary(ctx.env.d1(LAGGING_REPLICA_BINDING)?, Meter::default());
    let tables = copy(&primary, &replica).await?;
    http::json(200, &serde_json::json!({ "synced_tables": tables }))
}

/// Copy every application table of `from` into `to`, replacing what `to` held. Both have the
/// same schema (the harness applies the migrations to both). Tables are listed in creation
/// order, which is the order of their foreign keys: children are emptied first, parents filled
/// first.
async fn copy(from: &Db, to: &Db) -> Result<usize> {
    #[derive(serde::Deserialize)]
    struct Table {
        name: String,
    }
    let tables: Vec<String> = from
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' \
             AND name NOT LIKE '!_cf!_%' ESCAPE '!' AND name != 'd1_migrations' ORDER BY rowid",
        )
        .all()
        .await?
        .results::<Table>()?
        .into_iter()
        .map(|t| t.name)
        .collect();
    if tables.is_empty() {
        return Ok(0);
    }
    // One batch: one consistent snapshot of the primary.
    let mut reads = Vec::new();
    for table in &tables {
        reads.push(from.prepare(format!("SELECT * FROM {}", quoted(table))));
    }
    let snapshot = from.batch(reads).await?;
    let mut writes = Vec::new();
    for table in tables.iter().rev() {
        writes.push(to.prepare(format!("DELETE FROM {}", quoted(table))));
    }
    for (table, result) in tables.iter().zip(&snapshot) {
        let rows = result.results::<Map<String, Value>>()?;
        let Some(first) = rows.first() else { continue };
        let columns: Vec<&String> = first.keys().collect();
        let names = columns
            .iter()
            .map(|c| quoted(c))
            .collect::<Vec<_>>()
            .join(", ");
        // json_extract gives each value back with its SQL type (integer, real, text, null).
        let values = columns
            .iter()
            .map(|c| format!("json_extract(j.value, '$.\"{c}\"')"))
            .collect::<Vec<_>>()
            .join(", ");
        let json = serde_json::to_string(&rows)?;
        writes.push(
            to.prepare(format!(
                "INSERT INTO {} ({names}) SELECT {values} FROM json_each(?1) j",
                quoted(table)
            ))
            .bind(&[json.into()])?,
        );
    }
    to.batch(writes).await?;
    Ok(tables.len())
}

/// An SQL identifier, quoted (the names come from sqlite_master, never from a request).
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
