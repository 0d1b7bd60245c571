//! The scheduled clean-up (cron trigger in wrangler.toml): deletes expired tokens and finished
//! grants from D1, by the cut-offs in `protocol/retention.rs`. KV records expire on their own.

use worker::Result;

use crate::edge::store::d1::int;
use crate::edge::store::database::Db;
use crate::protocol::retention::cutoffs;

pub async fn run(db: &Db, now: i64) -> Result<()> {
    let c = cutoffs(now);
    db.batch(vec![
        db.prepare("DELETE FROM access_tokens WHERE expires_at < ?1")
            .bind(&[int(c.access_expired_before)])?,
        db.prepare("DELETE FROM refresh_tokens WHERE expires_at < ?1")
            .bind(&[int(c.refresh_expired_before)])?,
        db.prepare(
            "DELETE FROM grants WHERE created_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id) \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)",
        )
        .bind(&[int(c.grant_created_before)])?,
    ])
    .await?;
    Ok(())
}
