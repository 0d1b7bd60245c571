//! Organizations (D1 table `organizations`). Contract used by the OIDC endpoints; the admin API
//! owns writes.

use serde::{Deserialize, Serialize};
use worker::Result;

use crate::edge::store::assign::{Assignments, SqlValue};
use crate::edge::store::database::{Db, Stmt};
use crate::edge::store::kv::Kv;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Organization {
    pub slug: String,
    pub name: String,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Brute-force throttling (protocol/throttle.rs) and audit retention.
    pub throttle_account_failures: i64,
    pub throttle_ip_failures: i64,
    pub throttle_max_wait_seconds: i64,
    pub throttle_reset_seconds: i64,
    pub audit_retention_days: i64,
    /// Second factors: `off`, `optional` or `required` (protocol/mfa.rs).
    pub mfa: String,
    /// Whether the login page offers the password form (migration 0009g). Where false, people
    /// sign in only through the organization's upstream connections.
    #[serde(default = "yes", deserialize_with = "crate::edge::store::d1::int_bool")]
    pub password_signin: bool,
    /// Whether passkeys may be registered and used to sign in (migration 0011p, default on).
    #[serde(default = "yes", deserialize_with = "crate::edge::store::d1::int_bool")]
    pub passkeys: bool,
    /// The names of the organization's custom attributes, read with the organization by
    /// `get_org` (for discovery's `claims_supported`); empty where a query does not ask.
    #[serde(
        default,
        skip_serializing,
        deserialize_with = "crate::edge::store::d1::json_list"
    )]
    pub attribute_names: Vec<String>,
    /// The organization's upstream connections as the login page shows them (id and label),
    /// read with the organization by `get_org` and cached with it: the page needs no read of
    /// its own.
    #[serde(
        default,
        skip_serializing,
        deserialize_with = "crate::edge::store::d1::json_list"
    )]
    pub connection_buttons: Vec<ConnectionButton>,
}

/// One "Sign in with …" button of the login page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConnectionButton {
    pub id: String,
    pub label: String,
}

fn yes() -> bool {
    true
}

impl Organization {
    pub fn throttle_policy(&self) -> crate::protocol::throttle::Policy {
        crate::protocol::throttle::Policy {
            account_failures: self.throttle_account_failures,
            ip_failures: self.throttle_ip_failures,
            max_wait: self.throttle_max_wait_seconds,
            reset_after: self.throttle_reset_seconds,
        }
    }

    /// Whether no password signs in here (`password_signin` off: people sign in with passkeys
    /// or through upstream connections). No password is taken then — not by a link that resets
    /// one, the account page, or "forgot password": a password the login page refuses must not
    /// be stored, nor count as a factor.
    pub fn passwordless(&self) -> bool {
        !self.password_signin
    }
}

pub async fn get_org(db: &Db, slug: &str) -> Result<Option<Organization>> {
    org_statement(db, slug)?.first::<Organization>(None).await
}

/// The read `get_org` makes, to batch with others (oidc/prime.rs); its rows are `Organization`s.
pub fn org_statement(db: &Db, slug: &str) -> Result<Stmt> {
    // The attribute names and the connection buttons come in the same query: discovery and the
    // login page read them with the (cached) organization, no read of their own.
    db.prepare(
        "SELECT o.*, (SELECT json_group_array(a.name) FROM attributes a WHERE a.org = o.slug) \
         AS attribute_names, \
         (SELECT json_group_array(json_object('id', c.id, 'label', c.label)) FROM \
         (SELECT id, label FROM connections WHERE org = o.slug ORDER BY created_at, id) c) \
         AS connection_buttons FROM organizations o WHERE o.slug = ?1",
    )
    .bind(&[slug.into()])
}

// ---- Writes (admin API) ----

fn opt(value: &Option<String>) -> wasm_bindgen::JsValue {
    crate::edge::store::d1::opt_text(value.as_deref())
}

/// Inserts the organization and its first signing key in one D1 batch: a batch is one
/// transaction, so either both rows exist afterwards or neither does.
pub async fn create_org_with_key(
    db: &Db,
    org: &Organization,
    key: &crate::edge::store::keys::SigningKey,
) -> Result<()> {
    use crate::edge::store::d1::int;
    let insert_org = db
        .prepare(
            "INSERT INTO organizations (slug, name, logo_url, primary_color, created_at, updated_at, \
             throttle_account_failures, throttle_ip_failures, throttle_max_wait_seconds, \
             throttle_reset_seconds, audit_retention_days, mfa, password_signin, passkeys) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .bind(&[
            org.slug.as_str().into(),
            org.name.as_str().into(),
            opt(&org.logo_url),
            opt(&org.primary_color),
            int(org.created_at),
            int(org.updated_at),
            int(org.throttle_account_failures),
            int(org.throttle_ip_failures),
            int(org.throttle_max_wait_seconds),
            int(org.throttle_reset_seconds),
            int(org.audit_retention_days),
            org.mfa.as_str().into(),
            crate::edge::store::d1::boolean(org.password_signin),
            crate::edge::store::d1::boolean(org.passkeys),
        ])?;
    let insert_key = crate::edge::store::keys::insert_key_statement(db, key)?;
    db.batch(vec![insert_org, insert_key]).await?;
    Ok(())
}

pub async fn list_orgs(db: &Db) -> Result<Vec<Organization>> {
    db.prepare("SELECT * FROM organizations ORDER BY slug")
        .all()
        .await?
        .results::<Organization>()
}

/// Writes the columns `changes` names and `updated_at`, in one statement; the organization as
/// stored afterwards, `None` when it does not exist.
pub async fn update_org(
    db: &Db,
    slug: &str,
    changes: &Assignments,
    now: i64,
) -> Result<Option<Organization>> {
    let mut changes = changes.clone();
    changes.set("updated_at", SqlValue::Int(now));
    db.prepare(format!(
        "UPDATE organizations SET {} WHERE slug = ?1 RETURNING *",
        changes.set_clause(2)
    ))
    .bind(&[vec![slug.into()], changes.values()].concat())?
    .first::<Organization>(None)
    .await
}

/// Deletes the organization; its clients, users, signing keys and grants go with it through the
/// schema's ON DELETE CASCADE (D1 enforces foreign keys). Whether it existed.
pub async fn delete_org(db: &Db, slug: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM organizations WHERE slug = ?1 RETURNING slug")
        .bind(&[slug.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}

/// The KV key prefixes an organization owns: SSO sessions and pending authorization codes. The
/// trailing `:` keeps `acme` from matching `acme-labs`.
pub fn kv_prefixes(slug: &str) -> [String; 1] {
    [format!("session:{slug}:")]
}

/// What deleting by prefix needs from KV, as a trait so the cursor-following loop is tested
/// natively against an in-memory store.
pub(crate) trait KeyPages {
    /// One page of key names under `prefix`, and the cursor of the next page if there is one.
    async fn page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>)>;
    async fn delete(&self, key: &str) -> Result<()>;
}

impl KeyPages for Kv {
    async fn page(
        &self,
        prefix: &str,
        cursor: Option<String>,
    ) -> Result<(Vec<String>, Option<String>)> {
        self.list_page(prefix, cursor).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Kv::delete(self, key).await
    }
}

/// Deletes every key under the organization's prefixes. All pages are listed before anything is
/// deleted: KV cursors are opaque, and deleting under a cursor that counts positions would skip
/// keys. Following cursors (KV returns at most 1000 keys per call) rather than listing again from
/// the start matters too: lists are eventually consistent, so a just-deleted key can still be
/// listed and a restart could loop. Returns how many keys were deleted.
pub(crate) async fn delete_org_keys(store: &impl KeyPages, slug: &str) -> Result<usize> {
    let mut doomed = Vec::new();
    for prefix in kv_prefixes(slug) {
        let mut cursor = None;
        loop {
            let (keys, next) = store.page(&prefix, cursor).await?;
            doomed.extend(keys);
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    for key in &doomed {
        store.delete(key).await?;
    }
    Ok(doomed.len())
}

/// Deletes the organization's SSO sessions from KV. (Its pending authorization codes are sealed
/// values held by nobody but the client; they die with the organization's clients and users.)
pub async fn delete_org_kv(kv: &Kv, slug: &str) -> Result<()> {
    delete_org_keys(kv, slug).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeSet;

    #[test]
    fn kv_prefixes_end_with_a_separator() {
        assert_eq!(kv_prefixes("acme"), ["session:acme:".to_string()]);
        assert!(!"session:acme-labs:x".starts_with(&kv_prefixes("acme")[0]));
    }

    /// KV in memory, listing two keys per page with a positional cursor (the index of the next key),
    /// the cursor kind that deleting while listing would break.
    struct FakeKv(RefCell<BTreeSet<String>>);

    impl KeyPages for FakeKv {
        async fn page(
            &self,
            prefix: &str,
            cursor: Option<String>,
        ) -> Result<(Vec<String>, Option<String>)> {
            let matching: Vec<String> = self
                .0
                .borrow()
                .iter()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            let from: usize = cursor.map_or(0, |c| c.parse().unwrap());
            let page: Vec<String> = matching.iter().skip(from).take(2).cloned().collect();
            let next = (from + 2 < matching.len()).then(|| (from + 2).to_string());
            Ok((page, next))
        }

        async fn delete(&self, key: &str) -> Result<()> {
            self.0.borrow_mut().remove(key);
            Ok(())
        }
    }

    fn run<T>(fut: impl Future<Output = T>) -> T {
        let mut fut = std::pin::pin!(fut);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("the fake store never waits"),
        }
    }

    #[test]
    fn deletes_every_page_of_sessions_and_nothing_else() {
        let keys: BTreeSet<String> = (0..8).map(|i| format!("session:acme:{i}")).collect();
        let mut keys = keys;
        let others = [
            "session:acme-labs:1",
            "code:acme-labs:1",
            "session:other:1",
            "acme:1",
        ];
        keys.extend(others.iter().map(|k| k.to_string()));
        let kv = FakeKv(RefCell::new(keys));
        assert_eq!(run(delete_org_keys(&kv, "acme")).unwrap(), 8);
        let left: Vec<String> = kv.0.borrow().iter().cloned().collect();
        let mut expected: Vec<String> = others.iter().map(|k| k.to_string()).collect();
        expected.sort();
        assert_eq!(left, expected);
    }
}
