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
