//! Users (D1 table `users`). Contract used by the OIDC endpoints; the admin API owns writes.

use serde::{Deserialize, Serialize};
use worker::Result;

use crate::edge::store::assign::{Assignments, SqlValue};
use crate::edge::store::attributes::{ValueWrite, user_attributes_column, value_statements};
use crate::edge::store::database::{Db, Stmt};
use crate::protocol::attributes::UserAttribute;
use crate::protocol::standard_claims::{StandardClaims, TEXT_CLAIMS};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    /// Opaque, random, never reused: the `sub` claim.
    pub id: String,
    pub org: String,
    pub username: String,
    pub email: String,
    pub name: Option<String>,
    pub picture: Option<String>,
    #[serde(deserialize_with = "int_bool")]
    pub email_verified: bool,
    #[serde(deserialize_with = "int_bool")]
    pub disabled: bool,
    /// PHC-style string (see edge/password.rs). Never serialized into a response.
    #[serde(skip_serializing)]
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The names of the user's groups, read in the same query as the user (`groups::
    /// user_groups_column`); empty where a query does not ask for them.
    #[serde(
        default,
        rename = "group_names",
        deserialize_with = "crate::edge::store::d1::json_list"
    )]
    pub groups: Vec<String>,
    /// The account's login throttle counter (`throttles` key `user:<id>`), read in the same
    /// query; `None` when it has none or a query does not ask.
    #[serde(default, skip_serializing, deserialize_with = "lock_object")]
    pub login_lock: Option<crate::protocol::throttle::Counter>,
    /// The user has a passkey (`user_columns`); false where a query does not ask.
    #[serde(default, skip_serializing, deserialize_with = "int_bool")]
    pub has_passkey: bool,
    /// The TOTP secret, sealed (edge/store/mfa.rs); never serialized into a response.
    #[serde(default, skip_serializing)]
    pub totp_secret_sealed: Option<String>,
    #[serde(default)]
    pub totp_enrolled_at: Option<i64>,
    /// Which enrolment the TOTP secret is (random; store/mfa.rs `consume_step`).
    #[serde(default, skip_serializing)]
    pub totp_secret_id: Option<String>,
    /// The key of the recovery-code hashes, sealed (oidc/factor_secrets.rs); None for
    /// enrolments made before keyed hashes.
    #[serde(default, skip_serializing)]
    pub recovery_key_sealed: Option<String>,
    /// Unused recovery codes (a subquery of user reads).
    #[serde(default)]
    pub recovery_codes_left: i64,
    /// The user's custom attribute values with the scope releasing each (migration 0007a), read
    /// in the same query as the user (`attributes::user_attributes_column`); empty where a query
    /// does not ask for them.
    #[serde(
        default,
        rename = "attribute_values",
        deserialize_with = "crate::edge::store::d1::json_list"
    )]
    pub attributes: Vec<UserAttribute>,
    /// Every SSO session started before this time (unix ms) has ended: "sign out everywhere"
    /// (migration 0008a; protocol/account.rs `session_live`). Read with `users.*`.
    #[serde(default, skip_serializing)]
    pub sessions_not_before_ms: Option<i64>,
    /// The other OpenID Connect Core §5.1 claims: columns named as the claims (migration 0006c).
    #[serde(flatten)]
    pub claims: StandardClaims,
}

/// The `login_lock` column: a JSON object (D1 returns it as text) or null.
fn lock_object<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<crate::protocol::throttle::Counter>, D::Error> {
    #[derive(Deserialize)]
    struct Lock {
        failures: i64,
        locked_until: i64,
        updated_at: i64,
    }
    let text = Option::<String>::deserialize(d)?;
    Ok(text
        .and_then(|t| serde_json::from_str::<Lock>(&t).ok())
        .map(|l| crate::protocol::throttle::Counter {
            failures: l.failures,
            locked_until: l.locked_until,
            updated_at: l.updated_at,
        }))
}

/// What the admin API shows besides `users.*` (table alias `users`): the groups, the custom
/// attributes, the login lock and the unused recovery codes.
fn admin_extra_columns() -> String {
    format!(
        "{}, {}, (SELECT json_object('failures', t.failures, 'locked_until', t.locked_until_ms, 'updated_at', t.updated_at_ms) \
         FROM throttles t WHERE t.scope = users.org AND t.key = 'user:' || users.id) AS login_lock, \
         (SELECT COUNT(*) FROM recovery_codes rc WHERE rc.user_id = users.id AND rc.used_at IS NULL) AS recovery_codes_left",
        crate::edge::store::groups::user_groups_column("users"),
        user_attributes_column("users")
    )
}

/// Every column of the user row `users`, with the user's groups and custom attributes (what
/// sign-in and the ID token need).
pub(crate) fn user_columns() -> String {
    format!(
        "users.*, {}, {}, {HAS_PASSKEY}",
        crate::edge::store::groups::user_groups_column("users"),
        user_attributes_column("users")
    )
}

/// Whether the user has a passkey (index `passkeys_user`): the sign-in gate asks for it as the
/// second factor where one is required.
const HAS_PASSKEY: &str =
    "EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = users.id) AS has_passkey";

/// `user_columns` and what the admin API shows besides.
fn admin_user_columns() -> String {
    format!("users.*, {}", admin_extra_columns())
}

/// SQLite has no boolean: D1 returns 0/1.
fn int_bool<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(match v {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        _ => false,
    })
}

pub async fn get_user(db: &Db, org: &str, id: &str) -> Result<Option<User>> {
    get_user_statement(db, org, id)?.first::<User>(None).await
}

/// The read `get_user` makes, to batch with others (oidc/prime.rs); its rows are `User`s.
pub fn get_user_statement(db: &Db, org: &str, id: &str) -> Result<Stmt> {
    db.prepare(format!(
        "SELECT {} FROM users WHERE org = ?1 AND id = ?2",
        user_columns()
    ))
    .bind(&[org.into(), id.into()])
}

/// `get_user` as the admin API shows it (with the login lock and recovery codes left).
pub async fn get_user_for_admin(db: &Db, org: &str, id: &str) -> Result<Option<User>> {
    db.prepare(format!(
        "SELECT {} FROM users WHERE org = ?1 AND id = ?2",
        admin_user_columns()
    ))
    .bind(&[org.into(), id.into()])?
    .first::<User>(None)
    .await
}

/// The user a login form names: by username or by email, both case-insensitive.
pub async fn find_user_by_login(db: &Db, org: &str, login: &str) -> Result<Option<User>> {
    find_user_by_login_statement(db, org, login)?
        .first::<User>(None)
        .await
}

/// The read `find_user_by_login` makes, to batch with others (oidc/prime.rs); its rows are
/// `User`s.
pub fn find_user_by_login_statement(db: &Db, org: &str, login: &str) -> Result<Stmt> {
    db.prepare(format!(
        "SELECT {} FROM users WHERE org = ?1 AND (username = ?2 COLLATE NOCASE OR email = ?2 COLLATE NOCASE) LIMIT 1",
        user_columns()
    ))
    .bind(&[org.into(), login.into()])
}

// ---- Writes (admin API) ----

/// ?3–?8 of the INSERT: the profile columns, in table order.
fn profile_columns(u: &User) -> Vec<wasm_bindgen::JsValue> {
    use crate::edge::store::d1::{boolean, opt_text};
    vec![
        u.username.as_str().into(),
        u.email.as_str().into(),
        opt_text(u.name.as_deref()),
        opt_text(u.picture.as_deref()),
        boolean(u.email_verified),
        boolean(u.disabled),
    ]
}

/// The standard-claim columns of the INSERT, in this order: `TEXT_CLAIMS`, then
/// `phone_number_verified` and `address`.
fn claim_column_names() -> String {
    let mut names: Vec<&str> = TEXT_CLAIMS.to_vec();
    names.extend(["phone_number_verified", "address"]);
    names.join(", ")
}

fn claim_columns(c: &StandardClaims) -> Vec<wasm_bindgen::JsValue> {
    use crate::edge::store::d1::{boolean, opt_text};
    let mut values: Vec<wasm_bindgen::JsValue> =
        TEXT_CLAIMS.iter().map(|n| opt_text(c.text(n))).collect();
    values.push(boolean(c.phone_number_verified));
    values.push(opt_text(
        c.address.as_ref().map(|a| a.to_column()).as_deref(),
    ));
    values
}

/// The INSERT of a user: ?1 id, ?2 org, ?3–?8 `profile_columns`, ?9 password hash, ?10–?11
/// times, then `claim_columns` (edge/store/sql_tests.rs runs it against the migrations).
pub(crate) fn insert_sql() -> String {
    let claims = claim_column_names();
    let placeholders: Vec<String> = (12..12 + claims.split(", ").count())
        .map(|i| format!("?{i}"))
        .collect();
    format!(
        "INSERT INTO users (id, org, username, email, name, picture, email_verified, disabled, \
         password_hash, created_at, updated_at, {claims}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, {})",
        placeholders.join(", ")
    )
}

/// The INSERT of `u` as a statement, for a batch with other writes (a user created on a first
/// upstream sign-in is inserted with its link, oidc/federation.rs).
pub fn insert_user_statement(db: &Db, u: &User) -> Result<crate::edge::store::database::Stmt> {
    use crate::edge::store::d1::{int, opt_text};
    db.prepare(insert_sql()).bind(
        &[
            vec![u.id.as_str().into(), u.org.as_str().into()],
            profile_columns(u),
            vec![
                opt_text(u.password_hash.as_deref()),
                int(u.created_at),
                int(u.updated_at),
            ],
            claim_columns(&u.claims),
        ]
        .concat(),
    )
}

/// Inserts a user. Fails with a UNIQUE error when the username or email (case-insensitively) is
/// taken in the org.
pub async fn insert_user(db: &Db, u: &User) -> Result<()> {
    use crate::edge::store::d1::{int, opt_text};
    db.prepare(insert_sql())
        .bind(
            &[
                vec![u.id.as_str().into(), u.org.as_str().into()],
                profile_columns(u),
                vec![
                    opt_text(u.password_hash.as_deref()),
                    int(u.created_at),
                    int(u.updated_at),
                ],
                claim_columns(&u.claims),
            ]
            .concat(),
        )?
        .run()
        .await?;
    Ok(())
}

/// Inserts a user and their custom attribute values in one batch (one transaction): all of it or
/// nothing. Fails like `insert_user`.
pub async fn insert_user_with_values(db: &Db, u: &User, values: &[ValueWrite]) -> Result<()> {
    if values.is_empty() {
        return insert_user(db, u).await;
    }
    use crate::edge::store::d1::{int, opt_text};
    let insert = db.prepare(insert_sql()).bind(
        &[
            vec![u.id.as_str().into(), u.org.as_str().into()],
            profile_columns(u),
            vec![
                opt_text(u.password_hash.as_deref()),
                int(u.created_at),
                int(u.updated_at),
            ],
            claim_columns(&u.claims),
        ]
        .concat(),
    )?;
    let mut statements = vec![insert];
    statements.extend(value_statements(db, &u.org, &u.id, values)?);
    db.batch(statements).await?;
    Ok(())
}

impl User {
    /// A user just created (by the admin API or an upstream sign-in): enabled, no password, no
    /// second factor, no groups, nothing but its identity. The callers fill in the rest.
    pub fn new(id: String, org: &str, username: String, email: String, now: i64) -> User {
        User {
            id,
            org: org.to_string(),
            username,
            email,
            name: None,
            picture: None,
            email_verified: false,
            disabled: false,
            password_hash: None,
            created_at: now,
            updated_at: now,
            groups: Vec::new(),
            login_lock: None,
            has_passkey: false,
            totp_secret_sealed: None,
            totp_enrolled_at: None,
            totp_secret_id: None,
            recovery_key_sealed: None,
            recovery_codes_left: 0,
            attributes: Vec::new(),
            sessions_not_before_ms: None,
            claims: StandardClaims::default(),
        }
    }
}

/// Optional exact, case-insensitive filters for listing users.
#[derive(Debug, Default)]
pub struct UserFilter {
    pub username: Option<String>,
    pub email: Option<String>,
    /// Members of this group only.
    pub group: Option<String>,
}

/// One page of users ordered by id, starting after the id `after` (keyset pagination: stable
/// while users are added or removed, unlike offsets). Returns at most `limit` users.
pub async fn list_users(
    db: &Db,
    org: &str,
    filter: &UserFilter,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<User>> {
    use crate::edge::store::d1::{int, opt_text};
    db.prepare(format!(
        "SELECT {} FROM users WHERE org = ?1 \
         AND (?2 IS NULL OR username = ?2 COLLATE NOCASE) \
         AND (?3 IS NULL OR email = ?3 COLLATE NOCASE) \
         AND (?4 IS NULL OR id > ?4) \
         AND (?6 IS NULL OR EXISTS (SELECT 1 FROM group_members gm JOIN groups gr ON gr.id = gm.group_id \
                                    WHERE gm.user_id = users.id AND gr.name = ?6 COLLATE NOCASE)) \
         ORDER BY id LIMIT ?5",
        admin_user_columns()
    ))
    .bind(&[
        org.into(),
        opt_text(filter.username.as_deref()),
        opt_text(filter.email.as_deref()),
        opt_text(after),
        int(limit as i64),
        opt_text(filter.group.as_deref()),
    ])?
    .all()
    .await?
    .results::<User>()
}

/// Writes the profile columns `changes` names (never the password) and `updated_at`, in one
/// statement; the user as stored afterwards, `None` when the user is gone.
pub async fn update_user(
    db: &Db,
    org: &str,
    id: &str,
    changes: &Assignments,
    now: i64,
) -> Result<Option<User>> {
    let mut changes = changes.clone();
    changes.set("updated_at", SqlValue::Int(now));
    db.prepare(format!(
        "UPDATE users SET {} WHERE org = ?1 AND id = ?2 RETURNING *, {}",
        changes.set_clause(3),
        // RETURNING takes no `users.*`; the bare `*` is the same columns.
        admin_extra_columns()
    ))
    .bind(&[vec![org.into(), id.into()], changes.values()].concat())?
    .first::<User>(None)
    .await
}

/// `update_user` together with custom attribute values, in one batch (one transaction): the
/// profile UPDATE, the value writes, then the user as stored afterwards (`None`: no such user).
pub async fn update_user_with_values(
    db: &Db,
    org: &str,
    id: &str,
    changes: &Assignments,
    values: &[ValueWrite],
    now: i64,
) -> Result<Option<User>> {
    if values.is_empty() {
        return update_user(db, org, id, changes, now).await;
    }
    let mut changes = changes.clone();
    changes.set("updated_at", SqlValue::Int(now));
    let update = db
        .prepare(format!(
            "UPDATE users SET {} WHERE org = ?1 AND id = ?2",
            changes.set_clause(3)
        ))
        .bind(&[vec![org.into(), id.into()], changes.values()].concat())?;
    let read = db
        .prepare(format!(
            "SELECT {} FROM users WHERE org = ?1 AND id = ?2",
            admin_user_columns()
        ))
        .bind(&[org.into(), id.into()])?;
    let mut statements = vec![update];
    statements.extend(value_statements(db, org, id, values)?);
    statements.push(read);
    let results = db.batch(statements).await?;
    match results.last() {
        Some(r) => Ok(r.results::<User>()?.into_iter().next()),
        None => Ok(None),
    }
}

/// Stores a new password hash. Whether the user exists.
pub async fn set_password_hash(
    db: &Db,
    org: &str,
    id: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool> {
    // The upstream links confirmed with the old password go with it (migration 0012f).
    let results = db
        .batch(vec![
            db.prepare("UPDATE users SET password_hash = ?3, updated_at = ?4 WHERE org = ?1 AND id = ?2 RETURNING id")
                .bind(&[
                    org.into(),
                    id.into(),
                    password_hash.into(),
                    crate::edge::store::d1::int(now),
                ])?,
            db.prepare(crate::edge::store::connections::DROP_PASSWORD_CONFIRMED_LINKS)
                .bind(&[org.into(), id.into()])?,
        ])
        .await?;
    Ok(match results.first() {
        Some(r) => !r.results::<serde_json::Value>()?.is_empty(),
        None => false,
    })
}

/// Deletes a user (their grants and tokens cascade). Whether they existed.
pub async fn delete_user(db: &Db, org: &str, id: &str) -> Result<bool> {
    Ok(db
        .prepare("DELETE FROM users WHERE org = ?1 AND id = ?2 RETURNING id")
        .bind(&[org.into(), id.into()])?
        .first::<serde_json::Value>(None)
        .await?
        .is_some())
}
