//! /organizations and /organizations/{org}: create (with the first signing key), list, read,
//! update name and login-page branding, delete (with everything the organization owns).

use serde::Serialize;
use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::fields::{Fields, Patch};
use crate::admin::{Failure, Outcome, body, created, keys, no_content, validate};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::assign::{Assignments, SqlValue};
use crate::edge::store::database::Db;
use crate::edge::store::{self, orgs::Organization};

#[derive(Serialize)]
pub struct OrgView {
    pub slug: String,
    pub name: String,
    /// `{PUBLIC_BASE_URL}/{slug}`: what relying parties configure as the issuer.
    pub issuer: String,
    pub logo_url: Option<String>,
    pub primary_color: Option<String>,
    /// Login throttling: failures before the wait starts, per account and per client IP; the
    /// longest wait; and after how long without a failure the count starts again (seconds).
    pub throttle_account_failures: i64,
    pub throttle_ip_failures: i64,
    pub throttle_max_wait_seconds: i64,
    pub throttle_reset_seconds: i64,
    /// How long audit events are kept.
    pub audit_retention_days: i64,
    /// Second factors: off, optional or required.
    pub mfa: String,
    /// Whether the login page offers the password form; where false, only the organization's
    /// upstream connections sign people in.
    pub password_signin: bool,
    /// Whether users may register passkeys and sign in with them (default true).
    pub passkeys: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

fn view(ctx: &Ctx, org: Organization) -> OrgView {
    OrgView {
        issuer: ctx.config.issuer(&org.slug),
        slug: org.slug,
        name: org.name,
        logo_url: org.logo_url,
        primary_color: org.primary_color,
        throttle_account_failures: org.throttle_account_failures,
        throttle_ip_failures: org.throttle_ip_failures,
        throttle_max_wait_seconds: org.throttle_max_wait_seconds,
        throttle_reset_seconds: org.throttle_reset_seconds,
        audit_retention_days: org.audit_retention_days,
        mfa: org.mfa,
        password_signin: org.password_signin,
        passkeys: org.passkeys,
        created_at: org.created_at,
        updated_at: org.updated_at,
    }
}

/// The settings a body sets, validated: absent keeps, `null` clears a branding member. Pure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OrgChanges {
    pub name: Option<String>,
    /// `Some(None)`: cleared.
    pub logo_url: Option<Option<String>>,
    pub primary_color: Option<Option<String>>,
    /// (column, value) for the login throttling and retention policies sent.
    pub policies: Vec<(&'static str, i64)>,
    pub mfa: Option<String>,
    pub password_signin: Option<bool>,
    pub passkeys: Option<bool>,
}

pub fn changes(fields: &Fields) -> Result<OrgChanges, ApiError> {
    let name = fields
        .string("name")?
        .map(|n| validate::display_name("name", &n))
        .transpose()?;
    let logo_url = match fields.string_patch("logo_url")? {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Set(url) => Some(Some(validate::https_url("logo_url", &url)?)),
    };
    let primary_color = match fields.string_patch("primary_color")? {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Set(c) => Some(Some(validate::color("primary_color", &c)?)),
    };
    let mut policies = Vec::new();
    for (name, range) in [
        ("throttle_account_failures", 1..=100),
        ("throttle_ip_failures", 1..=10_000),
        ("throttle_max_wait_seconds", 1..=86_400),
        (
            "throttle_reset_seconds",
            60..=crate::protocol::retention::MAX_THROTTLE_RESET_SECONDS,
        ),
        ("audit_retention_days", 1..=3_650),
    ] {
        if let Some(v) = fields.int_in(name, range)? {
            policies.push((name, v));
        }
    }
    let mfa = fields
        .string("mfa")?
        .map(|mfa| {
            crate::protocol::mfa::Policy::parse(&mfa)
                .map(|p| p.as_str().to_string())
                .ok_or_else(|| {
                    ApiError::invalid_field("mfa", "mfa must be off, optional or required")
                })
        })
        .transpose()?;
    let password_signin = fields.bool("password_signin")?;
    let passkeys = fields.bool("passkeys")?;
    Ok(OrgChanges {
        name,
        logo_url,
        primary_color,
        policies,
        mfa,
        password_signin,
        passkeys,
    })
}

impl OrgChanges {
    pub fn apply(self, org: &mut Organization) {
        if let Some(v) = self.name {
            org.name = v;
        }
        if let Some(v) = self.logo_url {
            org.logo_url = v;
        }
        if let Some(v) = self.primary_color {
            org.primary_color = v;
        }
        for (column, v) in self.policies {
            match column {
                "throttle_account_failures" => org.throttle_account_failures = v,
                "throttle_ip_failures" => org.throttle_ip_failures = v,
                "throttle_max_wait_seconds" => org.throttle_max_wait_seconds = v,
                "throttle_reset_seconds" => org.throttle_reset_seconds = v,
                _ => org.audit_retention_days = v,
            }
        }
        if let Some(v) = self.mfa {
            org.mfa = v;
        }
        if let Some(v) = self.password_signin {
            org.password_signin = v;
        }
        if let Some(v) = self.passkeys {
            org.passkeys = v;
        }
    }

    /// The columns a PATCH writes: only the members sent, so concurrent changes of different
    /// settings (a rename racing `mfa: required`) never undo each other.
    pub fn assignments(&self) -> Assignments {
        let mut a = Assignments::default();
        if let Some(v) = &self.name {
            a.set("name", SqlValue::Text(v.clone()));
        }
        if let Some(v) = &self.logo_url {
            a.set("logo_url", SqlValue::opt_text(v.clone()));
        }
        if let Some(v) = &self.primary_color {
            a.set("primary_color", SqlValue::opt_text(v.clone()));
        }
        for (column, v) in &self.policies {
            a.set(column, SqlValue::Int(*v));
        }
        if let Some(v) = &self.mfa {
            a.set("mfa", SqlValue::Text(v.clone()));
        }
        if let Some(v) = self.password_signin {
            a.set("password_signin", SqlValue::Int(i64::from(v)));
        }
        if let Some(v) = self.passkeys {
            a.set("passkeys", SqlValue::Int(i64::from(v)));
        }
        a
    }
}

/// The members a create or update body may carry besides `slug`.
pub const SETTINGS: &[&str] = &[
    "name",
    "logo_url",
    "primary_color",
    "throttle_account_failures",
    "throttle_ip_failures",
    "throttle_max_wait_seconds",
    "throttle_reset_seconds",
    "audit_retention_days",
    "mfa",
    "password_signin",
    "passkeys",
];

/// The organization named in the path, or 404. Every nested resource starts here.
pub async fn require(db: &Db, slug: &str) -> Result<Organization, Failure> {
    store::orgs::get_org(db, slug)
        .await?
        .ok_or_else(|| ApiError::not_found("organization").into())
}

/// The organization a create body describes. Pure.
pub fn new_org(fields: &Fields, now: i64) -> Result<Organization, ApiError> {
    let slug = validate::slug("slug", &fields.required_string("slug")?)?;
    let name = validate::display_name("name", &fields.required_string("name")?)?;
    let policy = crate::protocol::throttle::Policy::default();
    let mut org = Organization {
        slug,
        name,
        logo_url: None,
        primary_color: None,
        created_at: now,
        updated_at: now,
        throttle_account_failures: policy.account_failures,
        throttle_ip_failures: policy.ip_failures,
        throttle_max_wait_seconds: policy.max_wait,
        throttle_reset_seconds: policy.reset_after,
        audit_retention_days: crate::protocol::audit::DEFAULT_RETENTION_DAYS,
        mfa: "off".to_string(),
        password_signin: true,
        passkeys: true,
        attribute_names: Vec::new(),
        connection_buttons: Vec::new(),
    };
    // `name` was read above; the rest as an update would set it.
    OrgChanges {
        name: None,
        ..changes(fields)?
    }
    .apply(&mut org);
    Ok(org)
}

pub async fn create(req: &mut Request, ctx: &Ctx) -> Outcome {
    let allowed: Vec<&str> = [&["slug"][..], SETTINGS].concat();
    let fields = body::read(req, ctx, &allowed).await?;
    let org = new_org(&fields, ctx.now)?;
    let db = ctx.primary()?;
    // Checked before generating a key (~80 ms) for a slug that is taken; the batch's PRIMARY KEY
    // still decides a race between two creates.
    if store::orgs::get_org(&db, &org.slug).await?.is_some() {
        return Err(slug_taken(&org.slug).into());
    }
    let key = keys::new_signing_key(ctx, &org.slug).await?;
    match store::orgs::create_org_with_key(&db, &org, &key).await {
        Ok(()) => {}
        Err(e) if store::d1::is_unique_violation(&e) => return Err(slug_taken(&org.slug).into()),
        Err(e) => return Err(e.into()),
    }
    let location = format!("/api/v1/organizations/{}", org.slug);
    created(&location, &view(ctx, org))
}

fn slug_taken(slug: &str) -> ApiError {
    ApiError::conflict("slug", format!("organization {slug} already exists"))
}

pub async fn list(ctx: &Ctx) -> Outcome {
    let orgs = store::orgs::list_orgs(&ctx.primary()?).await?;
    let views: Vec<OrgView> = orgs.into_iter().map(|o| view(ctx, o)).collect();
    Ok(http::json(
        200,
        &serde_json::json!({ "organizations": views }),
    )?)
}

pub async fn get(ctx: &Ctx, slug: &str) -> Outcome {
    let org = require(&ctx.primary()?, slug).await?;
    Ok(http::json(200, &view(ctx, org))?)
}

/// PATCH: `name`, `logo_url`, `primary_color` and the policies; `null` clears a branding member.
/// The slug is the issuer's path and cannot change (tokens and relying parties depend on it).
/// Only the members sent are written, in one statement whose RETURNING is the answer.
pub async fn update(req: &mut Request, ctx: &Ctx, slug: &str) -> Outcome {
    let fields = body::read(req, ctx, SETTINGS).await?;
    let changes = changes(&fields)?;
    let db = ctx.primary()?;
    let org = store::orgs::update_org(&db, slug, &changes.assignments(), ctx.now)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    // This isolate's login pages show the new name and branding at once (others within 30 s).
    crate::oidc::request::forget_organization(slug);
    Ok(http::json(200, &view(ctx, org))?)
}

/// Deletes the organization, its clients, users, keys and grants (D1 cascades), and its SSO
/// sessions and pending authorization codes in KV. KV goes first: if it fails the organization
/// still exists and the DELETE can simply be retried.
pub async fn delete(ctx: &Ctx, slug: &str) -> Outcome {
    let db = ctx.primary()?;
    require(&db, slug).await?;
    store::orgs::delete_org_kv(&ctx.kv()?, slug).await?;
    if !store::orgs::delete_org(&db, slug).await? {
        return Err(ApiError::not_found("organization").into());
    }
    // A cached signing key of the deleted organization must not sign for one recreated under
    // the same slug.
    crate::oidc::signer::forget(slug);
    crate::oidc::request::forget_organization(slug);
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: serde_json::Value) -> Fields {
        Fields::new(v, &["slug", "name", "logo_url", "primary_color"]).unwrap()
    }

    #[test]
    fn a_patch_writes_only_the_members_sent() {
        let f = Fields::new(json!({"mfa": "required"}), SETTINGS).unwrap();
        assert_eq!(changes(&f).unwrap().assignments().columns(), ["mfa"]);
        let f = Fields::new(
            json!({"name": "N", "logo_url": null, "throttle_ip_failures": 7}),
            SETTINGS,
        )
        .unwrap();
        let a = changes(&f).unwrap().assignments();
        assert_eq!(a.columns(), ["name", "logo_url", "throttle_ip_failures"]);
        assert_eq!(a.get("throttle_ip_failures"), Some(&SqlValue::Int(7)));
        let f = Fields::new(json!({"password_signin": false}), SETTINGS).unwrap();
        let a = changes(&f).unwrap().assignments();
        assert_eq!(a.columns(), ["password_signin"]);
        assert_eq!(a.get("password_signin"), Some(&SqlValue::Int(0)));
        for (body, field) in [
            (json!({"mfa": "sometimes"}), "mfa"),
            (
                json!({"throttle_account_failures": 0}),
                "throttle_account_failures",
            ),
            (
                json!({"audit_retention_days": 4000}),
                "audit_retention_days",
            ),
            (json!({"name": ""}), "name"),
            (json!({"password_signin": "no"}), "password_signin"),
        ] {
            let f = Fields::new(body.clone(), SETTINGS).unwrap();
            assert_eq!(
                changes(&f).unwrap_err().field.as_deref(),
                Some(field),
                "{body}"
            );
        }
    }

    #[test]
    fn create_body_rules() {
        let org = new_org(
            &fields(json!({"slug": "acme", "name": " Acme Corp ", "primary_color": "#AABBCC"})),
            7,
        )
        .unwrap();
        assert_eq!(
            (org.slug.as_str(), org.name.as_str()),
            ("acme", "Acme Corp")
        );
        assert_eq!(org.primary_color.as_deref(), Some("#aabbcc"));
        assert_eq!((org.created_at, org.updated_at), (7, 7));
        assert!(
            org.password_signin,
            "password sign-in is on unless turned off"
        );
        for (body, field) in [
            (json!({"name": "x"}), "slug"),
            (json!({"slug": "acme"}), "name"),
            (json!({"slug": "Acme", "name": "x"}), "slug"),
            (json!({"slug": "acme", "name": 5}), "name"),
            (
                json!({"slug": "acme", "name": "x", "logo_url": "http://a.example/l.png"}),
                "logo_url",
            ),
            (
                json!({"slug": "acme", "name": "x", "primary_color": "blue"}),
                "primary_color",
            ),
        ] {
            let err = new_org(&fields(body.clone()), 0).expect_err(&body.to_string());
            assert_eq!(err.field.as_deref(), Some(field), "{body}");
        }
    }
}
