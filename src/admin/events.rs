//! GET /organizations/{org}/events: the audit trail, newest first, filtered by `type`,
//! `user_id`, `client_id` and a time range (`since`, `until`, Unix seconds), paginated with
//! `limit` (1–500, default 50) and `cursor` (the previous page's `next_cursor`).

use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::{Outcome, organizations};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::events;
use crate::protocol::audit::parse_query;

pub async fn list(req: &Request, ctx: &Ctx, org: &str) -> Outcome {
    let url = req.url()?;
    let q = parse_query(
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned())),
    )
    .map_err(|(field, message)| ApiError::invalid_field(&field, message))?;
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    // One more than asked tells whether another page exists without a COUNT.
    let mut page = events::list(&db, org, &q, q.limit + 1).await?;
    let next_cursor = if page.len() > q.limit as usize {
        page.truncate(q.limit as usize);
        page.last().map(|e| e.id)
    } else {
        None
    };
    Ok(http::json(
        200,
        &serde_json::json!({ "events": page, "next_cursor": next_cursor }),
    )?)
}
