//! Organizations (D1 table `organizations`). Contract used by the OIDC endpoints; the admin API
//! owns writes.

use serde::{Deserialize, Serialize};
use worker::{D1Database, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Organization {
    pub slug: String,
    pub name: String,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub async fn get_org(db: &D1Database, slug: &str) -> Result<Option<Organization>> {
    db.prepare("SELECT * FROM organizations WHERE slug = ?1")
        .bind(&[slug.into()])?
        .first::<Organization>(None)
        .await
}

// ---- Writes (admin API) ----

fn opt(value: &Option<String>) -> wasm_bindgen::JsValue {
    crate::edge::store::d1::opt_text(value.as_deref())
}

/// Inserts the organization and its first signing key in one D1 batch: a batch is one
/// transaction, so either both rows exist afterwards or neither does.
pub async fn create_org_with_key(
    db: &D1Database,
    org: &Organization,
    key: &crate::edge::store::keys::SigningKey,
) -> Result<()> {
    use crate::edge::store::d1::int;
    let insert_org = db
        .prepare(
            "INSERT INTO organizations (slug, name, logo_url, primary_color, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&[
            org.slug.as_str().into(),
            org.name.as_str().into(),
            opt(&org.logo_url),
            opt(&org.primary_color),
            int(org.created_at),
            int(org.updated_at),
        ])?;
    let insert_key = crate::edge::store::keys::insert_key_statement(db, key)?;
    db.batch(vec![insert_org, insert_key]).await?;
    Ok(())
}

pub async fn list_orgs(db: &D1Database) -> Result<Vec<Organization>> {
    db.prepare("SELECT * FROM organizations ORDER BY slug")
        .all()
        .await?
        .results::<Organization>()
}

/// Writes name and branding; `None` when the organization does not exist.
pub async fn update_org(db: &D1Database, org: &Organization) -> Result<Option<Organization>> {
    db.prepare(
        "UPDATE organizations SET name = ?2, logo_url = ?3, primary_color = ?4, updated_at = ?5 \
         WHERE slug = ?1 RETURNING *",
    )
    .bind(&[
        org.slug.as_str().into(),
        org.name.as_str().into(),
        opt(&org.logo_url),
        opt(&org.primary_color),
        crate::edge::store::d1::int(org.updated_at),
    ])?
    .first::<Organization>(None)
    .await
}

/// Deletes the organization; its clients, users, signing keys and grants go with it through the
/// schema's ON DELETE CASCADE (D1 enforces foreign keys). Whether it existed.
pub async fn delete_org(db: &D1Database, slug: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM organizations WHERE slug = ?1 RETURNING slug")
        .bind(&[slug.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// The KV key prefixes an organization owns: SSO sessions and pending authorization codes. The
/// trailing `:` keeps `acme` from matching `acme-labs`.
pub fn kv_prefixes(slug: &str) -> [String; 2] {
    [format!("session:{slug}:"), format!("code:{slug}:")]
}

/// Deletes every KV entry under the organization's prefixes, following list cursors (KV lists at
/// most 1000 keys per call).
pub async fn delete_org_kv(kv: &worker::kv::KvStore, slug: &str) -> Result<()> {
    for prefix in kv_prefixes(slug) {
        let mut cursor: Option<String> = None;
        loop {
            let mut list = kv.list().prefix(prefix.clone());
            if let Some(c) = cursor.take() {
                list = list.cursor(c);
            }
            let page = list.execute().await?;
            for key in &page.keys {
                kv.delete(&key.name).await?;
            }
            match page.cursor {
                Some(c) if !page.list_complete && !c.is_empty() => cursor = Some(c),
                _ => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_prefixes_end_with_a_separator() {
        assert_eq!(
            kv_prefixes("acme"),
            ["session:acme:".to_string(), "code:acme:".to_string()]
        );
        assert!(!"session:acme-labs:x".starts_with(&kv_prefixes("acme")[0]));
    }
}
