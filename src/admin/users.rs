//! /organizations/{org}/users: create, list (paginated, filtered), read, update, delete users, and
//! set their password. No response ever contains a password or its hash.

use serde::Serialize;
use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::fields::{Fields, Patch};
use crate::admin::standard_claims::{self, ClaimChanges};
use crate::admin::{
    Failure, Outcome, attributes, body, created, no_content, organizations, validate,
};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::password::hash_password;
use crate::edge::store::assign::{Assignments, SqlValue};
use crate::edge::store::throttles;
use crate::edge::store::{self, users::User, users::UserFilter};
use crate::protocol::logout_token::Ended;
use crate::protocol::standard_claims::StandardClaims;
use crate::protocol::throttle::Counter;

/// The members a create body may have, and a PATCH (the password has its own endpoint): the
/// account, then the other OpenID Connect Core §5.1 claims (admin/standard_claims.rs), then the
/// organization's custom attributes (admin/attributes.rs).
pub const CREATE_FIELDS: &[&str] = &[
    "username",
    "email",
    "name",
    "password",
    "picture",
    "email_verified",
    "disabled",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "attributes",
    "send_email",
];
pub const UPDATE_FIELDS: &[&str] = &[
    "username",
    "email",
    "name",
    "picture",
    "email_verified",
    "disabled",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "profile",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "phone_number",
    "phone_number_verified",
    "address",
    "attributes",
];

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

#[derive(Serialize)]
pub struct UserView {
    /// The `sub` claim.
    pub id: String,
    pub org: String,
    /// The `preferred_username` claim.
    pub username: String,
    pub email: String,
    pub name: Option<String>,
    pub picture: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    /// Whether a password is set (a user without one cannot log in).
    pub has_password: bool,
    /// The names of the user's groups.
    pub groups: Vec<String>,
    /// Login throttling of this account: failures counted and, while sign-in waits, until
    /// when; `null` when there are none.
    pub login_lock: Option<LockView>,
    /// Whether a TOTP second factor is set up (never the secret), since when, and how many
    /// unused recovery codes remain.
    pub totp_enrolled: bool,
    pub totp_enrolled_at: Option<i64>,
    pub recovery_codes_left: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// given_name … address: every member, `null` when unset.
    #[serde(flatten)]
    pub claims: StandardClaims,
    /// The custom attributes the user has a value for: `{name: value}`.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
pub struct LockView {
    pub failures: i64,
    /// Unix seconds; `null` when not waiting now.
    pub locked_until: Option<i64>,
}

/// `now` in Unix seconds; the counter's times are milliseconds.
fn lock_view(counter: Option<Counter>, now: i64) -> Option<LockView> {
    counter.map(|c| LockView {
        failures: c.failures,
        locked_until: (c.locked_until > now * 1000).then_some((c.locked_until + 999) / 1000),
    })
}

/// The user as the API shows it; `now` decides whether a lock is still running.
pub fn view(mut u: User, now: i64) -> UserView {
    u.groups.sort_by_key(|g| g.to_ascii_lowercase());
    UserView {
        login_lock: lock_view(u.login_lock, now),
        totp_enrolled: u.totp_secret_sealed.is_some(),
        totp_enrolled_at: u.totp_enrolled_at,
        recovery_codes_left: u.recovery_codes_left,
        groups: u.groups,
        has_password: u.password_hash.is_some(),
        id: u.id,
        org: u.org,
        username: u.username,
        email: u.email,
        name: u.name,
        picture: u.picture,
        email_verified: u.email_verified,
        disabled: u.disabled,
        created_at: u.created_at,
        updated_at: u.updated_at,
        claims: u.claims,
        attributes: crate::admin::attributes::view(&u.attributes),
    }
}

/// The profile members a body sets, validated: absent keeps, `null` clears `name`, `picture`
/// and the §5.1 claims. Pure.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProfileChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    /// `Some(None)`: cleared.
    pub name: Option<Option<String>>,
    pub picture: Option<Option<String>>,
    pub email_verified: Option<bool>,
    pub disabled: Option<bool>,
    pub claims: ClaimChanges,
}

pub fn profile_changes(fields: &Fields) -> Result<ProfileChanges, ApiError> {
    let username = fields
        .string("username")?
        .map(|u| validate::username("username", &u))
        .transpose()?;
    let email = fields
        .string("email")?
        .map(|e| validate::email("email", &e))
        .transpose()?;
    let name = match fields.string_patch("name")? {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Set(name) => Some(Some(validate::display_name("name", &name)?)),
    };
    let picture = match fields.string_patch("picture")? {
        Patch::Absent => None,
        Patch::Null => Some(None),
        // Relying parties fetch the avatar with a plain unauthenticated GET.
        Patch::Set(url) => Some(Some(validate::https_url("picture", &url)?)),
    };
    Ok(ProfileChanges {
        username,
        email,
        name,
        picture,
        email_verified: fields.bool("email_verified")?,
        disabled: fields.bool("disabled")?,
        claims: standard_claims::changes(fields)?,
    })
}

impl ProfileChanges {
    pub fn apply(self, u: &mut User) {
        if let Some(v) = self.username {
            u.username = v;
        }
        if let Some(v) = self.email {
            u.email = v;
        }
        if let Some(v) = self.name {
            u.name = v;
        }
        if let Some(v) = self.picture {
            u.picture = v;
        }
        if let Some(v) = self.email_verified {
            u.email_verified = v;
        }
        if let Some(v) = self.disabled {
            u.disabled = v;
        }
        self.claims.apply(&mut u.claims);
    }

    /// The columns a PATCH writes: only the members sent, so a concurrent change of another
    /// member (a rename racing `disabled`) is never reverted.
    pub fn assignments(&self) -> Assignments {
        let mut a = Assignments::default();
        if let Some(v) = &self.username {
            a.set("username", SqlValue::Text(v.clone()));
        }
        if let Some(v) = &self.email {
            a.set("email", SqlValue::Text(v.clone()));
        }
        if let Some(v) = &self.name {
            a.set("name", SqlValue::opt_text(v.clone()));
        }
        if let Some(v) = &self.picture {
            a.set("picture", SqlValue::opt_text(v.clone()));
        }
        if let Some(v) = self.email_verified {
            a.set("email_verified", SqlValue::Bool(v));
        }
        if let Some(v) = self.disabled {
            a.set("disabled", SqlValue::Bool(v));
        }
        self.claims.assign(&mut a);
        a
    }
}

/// A new user from a create body (without its password, which is hashed separately). Pure.
pub fn new_user(fields: &Fields, org: &str, id: String, now: i64) -> Result<User, ApiError> {
    let mut user = User::new(
        id,
        org,
        validate::username("username", &fields.required_string("username")?)?,
        validate::email("email", &fields.required_string("email")?)?,
        now,
    );
    profile_changes(fields)?.apply(&mut user);
    Ok(user)
}

/// `usr_` + 128 random bits: opaque (RFC-wise `sub` must never be reassigned, OIDC Core §2), so
/// it carries nothing that could change and is never derived from the username.
pub fn new_id() -> String {
    format!(
        "usr_{}",
        crate::crypto::b64url(&crate::crypto::random_bytes::<16>())
    )
}

/// Which unique index a D1 error names: the member to report in the 409.
fn duplicate(err: &worker::Error) -> Option<ApiError> {
    if !store::d1::is_unique_violation(err) {
        return None;
    }
    let text = err.to_string();
    Some(if text.contains("email") {
        ApiError::conflict("email", "a user with this email already exists")
    } else {
        ApiError::conflict("username", "a user with this username already exists")
    })
}

pub async fn create(req: &mut Request, ctx: &Ctx, org: &str) -> Outcome {
    let fields = body::read(req, ctx, CREATE_FIELDS).await?;
    let mut user = new_user(&fields, org, new_id(), ctx.now)?;
    let password = fields
        .string("password")?
        .map(|p| validate::password("password", &p))
        .transpose()?;
    // Checked before anything is stored: a request that cannot be done entirely changes nothing.
    // E-mailed by default where e-mail is configured, and only the invitation of a user without
    // a password (a user created with one gets no link).
    let send_email = crate::admin::links::wants_email(ctx, &fields)? && password.is_none();
    if fields.bool("send_email")? == Some(true) && password.is_some() {
        return Err(ApiError::invalid_field(
            "send_email",
            "send_email e-mails the setup link of a user created without a password",
        )
        .into());
    }
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let values = attributes::read_value_writes(&db, org, &fields).await?;
    if let Some(password) = password {
        user.password_hash = Some(hash_password(&password).await?);
    }
    if let Err(e) = store::users::insert_user_with_values(&db, &user, &values).await {
        return Err(duplicate(&e)
            .map(Failure::from)
            .unwrap_or(Failure::Internal(e)));
    }
    // The values as stored: the definitions were read just before the batch.
    user.attributes = stored_values(&db, org, &user.id, &values).await?;
    let location = format!("/api/v1/organizations/{org}/users/{}", user.id);
    // A user without a password gets an invitation: a one-time link to choose one (issue 16
    // item 3), in this response only. A disabled user gets none (it could not be used).
    let link = if user.password_hash.is_none() && !user.disabled {
        Some(
            crate::admin::links::issue(
                ctx,
                org,
                &user,
                crate::protocol::links::Purpose::Setup,
                crate::protocol::links::Resets::PASSWORD,
                crate::protocol::links::DEFAULT_VALID_SECONDS,
                send_email,
            )
            .await?,
        )
    } else {
        None
    };
    let mut body = serde_json::to_value(view(user, ctx.now))
        .map_err(|e| Failure::Internal(worker::Error::RustError(format!("user view: {e}"))))?;
    if let (Some(link), Some(map)) = (link, body.as_object_mut()) {
        map.insert("setup_link".into(), link.link.into());
        map.insert("setup_link_expires_at".into(), link.expires_at.into());
        if let Some(sent) = link.emailed {
            map.insert("setup_link_emailed".into(), sent.into());
        }
    }
    created(&location, &body)
}

/// Query parameters of the list: `limit` (1–200, default 50), `cursor` (the `next_cursor` of the
/// previous page), `username`, `email` and `group` (exact, case-insensitive). Pure.
pub fn list_query(url: &url::Url) -> Result<(UserFilter, Option<String>, u32), ApiError> {
    let mut filter = UserFilter::default();
    let mut cursor = None;
    let mut limit = DEFAULT_PAGE;
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::invalid_field("limit", format!("limit must be 1-{MAX_PAGE}"))
                    })?;
            }
            "cursor" => cursor = Some(value.into_owned()),
            "username" => filter.username = Some(value.into_owned()),
            "email" => filter.email = Some(value.into_owned()),
            "group" => filter.group = Some(value.into_owned()),
            _ => {}
        }
    }
    Ok((filter, cursor, limit))
}

/// A new user's values for the create response: read back only when the body set some.
async fn stored_values(
    db: &crate::edge::store::database::Db,
    org: &str,
    id: &str,
    values: &[crate::edge::store::attributes::ValueWrite],
) -> Result<Vec<crate::protocol::attributes::UserAttribute>, Failure> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    Ok(store::users::get_user_for_admin(db, org, id)
        .await?
        .map(|u| u.attributes)
        .unwrap_or_default())
}

pub async fn list(req: &Request, ctx: &Ctx, org: &str) -> Outcome {
    list_filtered(req, ctx, org, None, "users").await
}

/// One page of users under `key`; `group` (a group's members) overrides the query's filter.
pub async fn list_filtered(
    req: &Request,
    ctx: &Ctx,
    org: &str,
    group: Option<String>,
    key: &str,
) -> Outcome {
    let (mut filter, cursor, limit) = list_query(&req.url()?)?;
    if group.is_some() {
        filter.group = group;
    }
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    // One more than asked tells whether another page exists without a COUNT.
    let mut users =
        store::users::list_users(&db, org, &filter, cursor.as_deref(), limit + 1).await?;
    let next_cursor = if users.len() > limit as usize {
        users.truncate(limit as usize);
        users.last().map(|u| u.id.clone())
    } else {
        None
    };
    let views: Vec<UserView> = users.into_iter().map(|u| view(u, ctx.now)).collect();
    Ok(http::json(
        200,
        &serde_json::json!({ key: views, "next_cursor": next_cursor }),
    )?)
}

async fn require(ctx: &Ctx, org: &str, id: &str) -> Result<User, Failure> {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    store::users::get_user_for_admin(&db, org, id)
        .await?
        .ok_or_else(|| ApiError::not_found("user").into())
}

pub async fn get(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    Ok(http::json(
        200,
        &view(require(ctx, org, id).await?, ctx.now),
    )?)
}

/// DELETE …/mfa → 204: remove the user's second factor and recovery codes (a lost device); the
/// user enrols again at the next sign-in that needs one.
pub async fn reset_mfa(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    require(ctx, org, id).await?;
    if !store::mfa::reset(&ctx.primary()?, org, id, false).await? {
        return Err(ApiError::not_found("user").into());
    }
    no_content()
}

/// POST …/logout → 204: sign the user out everywhere, as the account page's button does — every
/// SSO session ends (at other locations once their replica has the write), every grant is
/// revoked, and relying parties with a grant are told (back-channel logout by `sub`).
pub async fn logout(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    require(ctx, org, id).await?;
    // Before the grants are revoked: the relying parties told are those holding a live one.
    crate::oidc::backchannel::announce(ctx, org, id, Ended::User).await;
    let not_before = crate::edge::context::now_millis();
    if !store::account::sign_out_everywhere(&ctx.primary()?, org, id, not_before, ctx.now).await? {
        return Err(ApiError::not_found("user").into());
    }
    crate::edge::audit::note(
        ctx,
        crate::protocol::audit::Kind::LogoutEverywhere,
        org,
        Some(id),
        None,
        crate::edge::audit::detail([("by", serde_json::json!("admin"))]),
    );
    no_content()
}

/// GET …/passkeys → 200 `{"passkeys": [...]}`: id, name, AAGUID, flags, transports, created and
/// last used. Never the public key or the credential id (store/passkeys.rs skips them).
pub async fn passkeys(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    require(ctx, org, id).await?;
    let list = store::passkeys::list(&ctx.primary()?, org, id).await?;
    Ok(http::json(200, &serde_json::json!({ "passkeys": list }))?)
}

/// DELETE …/passkeys/{passkey_id} → 204: the passkey can no longer sign in (the sign-in reads
/// it at the primary). Idempotent, as removing a link is: 204 also when the user has no such
/// passkey (any more); 404 for an unknown user.
pub async fn delete_passkey(ctx: &Ctx, org: &str, id: &str, passkey_id: &str) -> Outcome {
    require(ctx, org, id).await?;
    if !store::passkeys::delete(&ctx.primary()?, org, id, passkey_id).await? {
        return no_content();
    }
    crate::edge::audit::note(
        ctx,
        crate::protocol::audit::Kind::PasskeyRemoved,
        org,
        Some(id),
        None,
        crate::edge::audit::detail([
            ("passkey", serde_json::json!(passkey_id)),
            ("by", serde_json::json!("admin")),
        ]),
    );
    no_content()
}

/// DELETE …/lock → 204: forget the account's failures, so the user can sign in at once.
pub async fn unlock(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    require(ctx, org, id).await?;
    throttles::clear(
        &ctx.primary()?,
        org,
        &crate::protocol::throttle::user_key(id),
    )
    .await?;
    no_content()
}

/// PATCH: username, email, name, picture, email_verified, disabled and the §5.1 claims. The password has its own
/// endpoint so that a profile edit can never touch it by accident. Only the members sent are
/// written, in one statement whose RETURNING is the answer.
pub async fn update(req: &mut Request, ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let fields = body::read(req, ctx, UPDATE_FIELDS).await?;
    let changes = profile_changes(&fields)?;
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let values = attributes::read_value_writes(&db, org, &fields).await?;
    let assignments = changes.assignments();
    let updated =
        match store::users::update_user_with_values(&db, org, id, &assignments, &values, ctx.now)
            .await
        {
            Ok(u) => u.ok_or_else(|| ApiError::not_found("user"))?,
            Err(e) => {
                return Err(duplicate(&e)
                    .map(Failure::from)
                    .unwrap_or(Failure::Internal(e)));
            }
        };
    if changes.disabled == Some(true) {
        // A disabled user is signed out of every relying party that asked to be told.
        crate::oidc::backchannel::announce(ctx, org, id, Ended::User).await;
    }
    Ok(http::json(200, &view(updated, ctx.now))?)
}

pub async fn delete(ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    // Before the delete, which takes the user's grants with it: the relying parties they were
    // issued to are told (the tokens go out after the response).
    crate::oidc::backchannel::announce(ctx, org, id, Ended::User).await;
    if !store::users::delete_user(&db, org, id).await? {
        return Err(ApiError::not_found("user").into());
    }
    no_content()
}

/// PUT …/password `{"password"}` → 204.
pub async fn set_password(req: &mut Request, ctx: &Ctx, org: &str, id: &str) -> Outcome {
    let fields = body::read(req, ctx, &["password"]).await?;
    let password = validate::password("password", &fields.required_string("password")?)?;
    require(ctx, org, id).await?;
    let hash = hash_password(&password).await?;
    if !store::users::set_password_hash(&ctx.primary()?, org, id, &hash, ctx.now).await? {
        return Err(ApiError::not_found("user").into());
    }
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CREATE: &[&str] = CREATE_FIELDS;

    fn fields(v: serde_json::Value) -> Fields {
        Fields::new(v, CREATE).unwrap()
    }

    #[test]
    fn new_users_and_their_rules() {
        let u = new_user(
            &fields(
                json!({"username": "Demo", "email": "demo@acme.test", "name": "Demo User",
                            "picture": "https://cdn.acme.test/d.png", "email_verified": true}),
            ),
            "acme",
            "usr_x".into(),
            5,
        )
        .unwrap();
        assert_eq!(
            (u.username.as_str(), u.email.as_str()),
            ("Demo", "demo@acme.test")
        );
        assert!(u.email_verified && !u.disabled && u.password_hash.is_none());
        for (body, field) in [
            (json!({"email": "a@b.test"}), "username"),
            (json!({"username": "a"}), "email"),
            (json!({"username": "a b", "email": "a@b.test"}), "username"),
            (json!({"username": "a", "email": "nope"}), "email"),
            (
                json!({"username": "a", "email": "a@b.test", "picture": "http://x.test/a.png"}),
                "picture",
            ),
            (
                json!({"username": "a", "email": "a@b.test", "email_verified": "yes"}),
                "email_verified",
            ),
            (
                json!({"username": "a", "email": "a@b.test", "name": ""}),
                "name",
            ),
        ] {
            let err = new_user(&fields(body.clone()), "acme", "id".into(), 0)
                .expect_err(&body.to_string());
            assert_eq!(err.field.as_deref(), Some(field), "{body}");
        }
    }

    #[test]
    fn a_patch_writes_only_the_members_sent() {
        let f = Fields::new(json!({"disabled": true}), UPDATE_FIELDS).unwrap();
        assert_eq!(
            profile_changes(&f).unwrap().assignments().columns(),
            ["disabled"]
        );
        let f = Fields::new(
            json!({"username": "New", "name": null, "email_verified": false}),
            UPDATE_FIELDS,
        )
        .unwrap();
        let a = profile_changes(&f).unwrap().assignments();
        assert_eq!(a.columns(), ["username", "name", "email_verified"]);
        assert_eq!(a.get("name"), Some(&SqlValue::Null));
        let empty = Fields::new(json!({}), UPDATE_FIELDS).unwrap();
        assert!(profile_changes(&empty).unwrap().assignments().is_empty());
        let bad = Fields::new(json!({"disabled": "yes"}), UPDATE_FIELDS).unwrap();
        assert_eq!(
            profile_changes(&bad).unwrap_err().field.as_deref(),
            Some("disabled")
        );
    }

    #[test]
    fn views_hide_the_hash() {
        let mut u = new_user(
            &fields(json!({"username": "a", "email": "a@b.test"})),
            "o",
            "i".into(),
            0,
        )
        .unwrap();
        u.password_hash = Some("$pbkdf2-sha256$secret".into());
        let v = serde_json::to_value(view(u, 0)).unwrap();
        assert_eq!(v["has_password"], true);
        assert!(!v.to_string().contains("pbkdf2"));
        assert!(v.get("password").is_none() && v.get("password_hash").is_none());
    }

    #[test]
    fn list_query_parameters() {
        let url = url::Url::parse(
            "https://x.test/u?limit=2&cursor=usr_a&username=Demo&email=d%40a.test&other=1",
        )
        .unwrap();
        let (filter, cursor, limit) = list_query(&url).unwrap();
        assert_eq!((limit, cursor.as_deref()), (2, Some("usr_a")));
        assert_eq!(filter.username.as_deref(), Some("Demo"));
        assert_eq!(filter.email.as_deref(), Some("d@a.test"));
        assert_eq!(
            list_query(&url::Url::parse("https://x.test/u").unwrap())
                .unwrap()
                .2,
            DEFAULT_PAGE
        );
        for bad in ["0", "201", "ten", "-1"] {
            let url = url::Url::parse(&format!("https://x.test/u?limit={bad}")).unwrap();
            assert_eq!(
                list_query(&url).unwrap_err().field.as_deref(),
                Some("limit")
            );
        }
    }

    #[test]
    fn create_and_patch_take_every_standard_claim() {
        for claim in standard_claims::FIELDS {
            assert!(
                CREATE_FIELDS.contains(claim) && UPDATE_FIELDS.contains(claim),
                "{claim}"
            );
        }
        let u = new_user(
            &fields(
                json!({"username": "a", "email": "a@b.test", "locale": "de-CH",
                           "address": {"country": "CH"}}),
            ),
            "o",
            "i".into(),
            0,
        )
        .unwrap();
        let v = serde_json::to_value(view(u, 0)).unwrap();
        assert_eq!(v["locale"], "de-CH");
        assert_eq!(v["address"], json!({"country": "CH"}));
        assert_eq!(v["given_name"], serde_json::Value::Null);
        assert_eq!(v["phone_number_verified"], false);
        // One bad claim refuses the whole body, naming the claim.
        let bad = Fields::new(
            json!({"name": "Fine", "birthdate": "1990-02-30"}),
            UPDATE_FIELDS,
        )
        .unwrap();
        assert_eq!(
            profile_changes(&bad).unwrap_err().field.as_deref(),
            Some("birthdate")
        );
    }

    #[test]
    fn user_ids_are_opaque_and_distinct() {
        let (a, b) = (new_id(), new_id());
        assert!(a.starts_with("usr_") && a.len() == 4 + 22);
        assert_ne!(a, b);
    }
}
