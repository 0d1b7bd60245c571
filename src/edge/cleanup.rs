//! The scheduled clean-up (cron trigger in wrangler.toml): deletes expired tokens and finished
//! grants from D1, by the cut-offs in `protocol/retention.rs`, audit events older than their
//! organization's retention, throttle counters quiet for longer than their reset period, and
//! the single-use markers of sealed values that have expired. KV records expire on their own.

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
        db.prepare(
            "DELETE FROM events WHERE at < ?1 - 86400 * \
             (SELECT o.audit_retention_days FROM organizations o WHERE o.slug = events.org)",
        )
        .bind(&[int(now)])?,
        // A counter whose last failure is older than any reset period can never matter again.
        db.prepare(
            "DELETE FROM throttles WHERE updated_at_ms < ?1 * 1000 AND locked_until_ms < ?2 * 1000",
        )
        .bind(&[int(c.throttle_quiet_since), int(now)])?,
        // A single-use marker outlives the sealed value it names by nothing: once that value has
        // expired it is refused anyway (edge/store/once.rs).
        db.prepare("DELETE FROM used_once WHERE expires_at < ?1")
            .bind(&[int(now)])?,
        // One-time links kept a while after they expired, so their page could still say why
        // they no longer work (protocol/links.rs).
        db.prepare(crate::edge::store::links::CLEAN_UP)
            .bind(&[int(now - crate::protocol::links::KEEP_AFTER_EXPIRY_SECONDS)])?,
        // A used passkey challenge matters only while the page that showed it could be posted.
        db.prepare("DELETE FROM passkey_challenges_used WHERE expires_at < ?1")
            .bind(&[int(now)])?,
    ])
    .await?;
    Ok(())
}
