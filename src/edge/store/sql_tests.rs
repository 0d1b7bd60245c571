//! The SQL of the second-factor and re-seal writes, run natively against SQLite with the real
//! migrations applied (D1 is SQLite): the guards that make each promise hold — a TOTP step
//! accepted once and only for the enrolment it was checked against, a recovery code used once,
//! a re-seal that never overwrites a concurrent reset, re-enrolment or re-seal. Also the user
//! INSERT and a PATCH's UPDATE with the standard claims (migration 0006c).

use std::path::Path;

use rusqlite::{Connection, params};

use crate::edge::reseal::{CONNECTIONS_PAGE, KEYS_PAGE, LEFT, RESEAL_CONNECTION, USERS_PAGE};
use crate::edge::store::keys::RESEAL_KEY;
use crate::edge::store::mfa::{
    CONSUME_STEP, ENROL, ENROL_CLEAR_CODES, ENROL_CODE, RESEAL_FACTORS, RESET, RESET_CODES,
    consume_recovery_sql,
};

/// A database with the migrations whose names sort before `until` (all when None) applied.
fn migrated(until: Option<&str>) -> Connection {
    let db = Connection::open_in_memory().unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if until.is_some_and(|u| name.as_str() >= u) {
            break;
        }
        db.execute_batch(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    db.execute(
        "INSERT INTO organizations (slug, name, created_at, updated_at) VALUES ('acme', 'Acme', 0, 0)",
        [],
    )
    .unwrap();
    db.execute(
        "INSERT INTO users (id, org, username, email, created_at, updated_at) VALUES ('usr_1', 'acme', 'jane', 'jane@acme.test', 0, 0)",
        [],
    )
    .unwrap();
    db
}

/// Enrol `usr_1` as store::mfa::enrol does (one transaction). Whether it was stored.
fn enrol(
    db: &mut Connection,
    sealed: &str,
    secret_id: &str,
    recovery_key: &str,
    codes: &[&str],
    step: i64,
) -> bool {
    let tx = db.transaction().unwrap();
    let stored = tx
        .execute(
            ENROL,
            params!["acme", "usr_1", sealed, 1000, step, secret_id, recovery_key],
        )
        .unwrap()
        == 1;
    tx.execute(ENROL_CLEAR_CODES, params!["usr_1", sealed])
        .unwrap();
    for code in codes {
        tx.execute(ENROL_CODE, params!["usr_1", code, sealed])
            .unwrap();
    }
    tx.commit().unwrap();
    stored
}

fn reset(db: &mut Connection) {
    let tx = db.transaction().unwrap();
    tx.execute(RESET, params!["acme", "usr_1", 0]).unwrap();
    tx.execute(RESET_CODES, params!["acme", "usr_1"]).unwrap();
    tx.commit().unwrap();
}

fn consume_step(db: &Connection, secret_id: &str, step: i64) -> bool {
    db.prepare(CONSUME_STEP)
        .unwrap()
        .query(params!["acme", "usr_1", step, secret_id])
        .unwrap()
        .next()
        .unwrap()
        .is_some()
}

fn consume_recovery(db: &Connection, hashes: &[&str]) -> bool {
    let mut values: Vec<&dyn rusqlite::ToSql> = vec![&"usr_1"];
    for h in hashes {
        values.push(h);
    }
    values.push(&2000);
    db.prepare(&consume_recovery_sql(hashes.len()))
        .unwrap()
        .query(values.as_slice())
        .unwrap()
        .next()
        .unwrap()
        .is_some()
}

fn factors(db: &Connection) -> (Option<String>, Option<String>, Option<String>) {
    db.query_row(
        "SELECT totp_secret_sealed, recovery_key_sealed, totp_secret_id FROM users WHERE id = 'usr_1'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

/// The same case end to end, against a replica that really lags: tests/mfa-replica.test.mjs
/// (device A's code checked against the replica's stale row, refused at the primary).
#[test]
fn a_totp_step_is_accepted_once_and_only_for_the_enrolment_it_was_checked_against() {
    let mut db = migrated(None);
    assert!(enrol(
        &mut db,
        "k1.old-device",
        "id-old",
        "k1.rk-old",
        &[],
        100
    ));
    assert!(
        !enrol(&mut db, "k1.other", "id-x", "k1.rk-x", &[], 100),
        "only once"
    );
    assert!(
        !consume_step(&db, "id-old", 100),
        "the confirming code's step is used"
    );
    assert!(consume_step(&db, "id-old", 101));
    assert!(!consume_step(&db, "id-old", 101), "a step is accepted once");
    // The admin resets the factor and the user enrols a new device. A replica still showing the
    // old row lets the old device's code be checked against the old secret; the primary refuses
    // it because the enrolment it was checked against is gone (finding 12).
    reset(&mut db);
    assert!(
        !consume_step(&db, "id-old", 102),
        "no factor at all after the reset"
    );
    assert!(enrol(
        &mut db,
        "k1.new-device",
        "id-new",
        "k1.rk-new",
        &[],
        102
    ));
    assert!(
        !consume_step(&db, "id-old", 103),
        "the old enrolment's code is refused"
    );
    assert!(
        consume_step(&db, "id-new", 103),
        "the new enrolment's code is accepted"
    );
}

#[test]
fn a_rotation_re_seal_keeps_the_enrolment_and_its_steps() {
    let mut db = migrated(None);
    assert!(enrol(&mut db, "old.secret", "id-1", "old.rk", &[], 100));
    let changed = db
        .execute(
            RESEAL_FACTORS,
            params![
                "acme",
                "usr_1",
                "old.secret",
                "old.rk",
                "new.secret",
                "new.rk"
            ],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(
        factors(&db),
        (
            Some("new.secret".into()),
            Some("new.rk".into()),
            Some("id-1".into())
        )
    );
    // A code checked against the row read before the re-seal is still this enrolment's.
    assert!(consume_step(&db, "id-1", 101));
}

#[test]
fn a_re_seal_never_overwrites_a_reset_a_re_enrolment_or_another_re_seal() {
    let mut db = migrated(None);
    assert!(enrol(&mut db, "old.secret", "id-1", "old.rk", &[], 100));
    let reseal = |db: &Connection, was: (&str, &str), new: (&str, &str)| {
        db.execute(
            RESEAL_FACTORS,
            params!["acme", "usr_1", was.0, was.1, new.0, new.1],
        )
        .unwrap()
    };
    // Two re-seals of the same row read: the second finds the value changed and writes nothing.
    assert_eq!(
        reseal(&db, ("old.secret", "old.rk"), ("new.secret-a", "new.rk-a")),
        1
    );
    assert_eq!(
        reseal(&db, ("old.secret", "old.rk"), ("new.secret-b", "new.rk-b")),
        0
    );
    assert_eq!(factors(&db).0.as_deref(), Some("new.secret-a"));
    // A reset between the read and the write: the factor stays removed.
    reset(&mut db);
    assert_eq!(reseal(&db, ("new.secret-a", "new.rk-a"), ("x", "y")), 0);
    assert_eq!(factors(&db), (None, None, None));
    // A re-enrolment between the read and the write: the new device stays.
    assert!(enrol(&mut db, "cur.device-2", "id-2", "cur.rk-2", &[], 200));
    assert_eq!(reseal(&db, ("new.secret-a", "new.rk-a"), ("x", "y")), 0);
    assert_eq!(factors(&db).0.as_deref(), Some("cur.device-2"));
}

#[test]
fn an_enrolment_from_before_keyed_hashes_is_re_sealed_with_its_null_recovery_key() {
    let db = migrated(None);
    db.execute(
        "UPDATE users SET totp_secret_sealed = 'legacy-box', totp_secret_id = 'id-0' WHERE id = 'usr_1'",
        [],
    )
    .unwrap();
    let changed = db
        .execute(
            RESEAL_FACTORS,
            params![
                "acme",
                "usr_1",
                "legacy-box",
                None::<String>,
                "cur.box",
                None::<String>
            ],
        )
        .unwrap();
    assert_eq!(changed, 1, "NULL matches NULL (IS, not =)");
    assert_eq!(factors(&db).0.as_deref(), Some("cur.box"));
}

#[test]
fn a_recovery_code_is_used_once_in_either_stored_form() {
    let mut db = migrated(None);
    assert!(enrol(
        &mut db,
        "k.s",
        "id-1",
        "k.rk",
        &["h1:aa", "h1:bb"],
        100
    ));
    assert!(consume_recovery(&db, &["h1:aa"]));
    assert!(!consume_recovery(&db, &["h1:aa"]), "used once");
    assert!(!consume_recovery(&db, &["h1:cc"]), "unknown");
    // A code of an enrolment from before keyed hashes, stored as its unsalted hash.
    db.execute(
        "INSERT INTO recovery_codes (user_id, code_hash) VALUES ('usr_1', 'legacyhex')",
        [],
    )
    .unwrap();
    assert!(consume_recovery(&db, &["legacyhex"]));
    assert!(!consume_recovery(&db, &["legacyhex"]));
    assert!(
        consume_recovery(&db, &["nothing", "h1:bb"]),
        "any candidate"
    );
    // A re-enrolment replaces every code.
    reset(&mut db);
    assert!(enrol(&mut db, "k.s2", "id-2", "k.rk2", &["h1:dd"], 200));
    let left: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM recovery_codes WHERE user_id = 'usr_1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 1);
}

#[test]
fn the_migration_gives_existing_enrolments_an_id_and_nothing_else_changes() {
    let db = migrated(Some("0005s"));
    db.execute(
        "UPDATE users SET totp_secret_sealed = 'legacy-box', totp_enrolled_at = 5, totp_last_step = 7 WHERE id = 'usr_1'",
        [],
    )
    .unwrap();
    db.execute(
        "INSERT INTO users (id, org, username, email, created_at, updated_at) VALUES ('usr_2', 'acme', 'joe', 'joe@acme.test', 0, 0)",
        [],
    )
    .unwrap();
    db.execute_batch(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/0005s_key_rotation.sql"),
        )
        .unwrap(),
    )
    .unwrap();
    let (sealed, recovery, id) = factors(&db);
    assert_eq!(sealed.as_deref(), Some("legacy-box"));
    assert_eq!(recovery, None);
    assert_eq!(id.as_ref().map(String::len), Some(24), "{id:?}");
    let other: Option<String> = db
        .query_row(
            "SELECT totp_secret_id FROM users WHERE id = 'usr_2'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(other, None, "no factor, no id");
    assert!(consume_step(&db, id.as_deref().unwrap(), 8));
}

#[test]
fn the_re_seal_pages_find_only_values_not_under_the_current_key_and_the_guard_holds() {
    let db = migrated(None);
    for (kid, sealed) in [
        ("k1", "old.aaa"),
        ("k2", "cur.bbb"),
        ("k3", "legacybox"),
        ("k4", "oth.ccc"),
    ] {
        db.execute(
            "INSERT INTO signing_keys (kid, org, alg, public_jwk, private_key_sealed, status, created_at) \
             VALUES (?1, 'acme', 'RS256', '{}', ?2, 'retired', 0)",
            params![kid, sealed],
        )
        .unwrap();
    }
    db.execute(
        "UPDATE users SET totp_secret_sealed = 'cur.s', recovery_key_sealed = 'old.r' WHERE id = 'usr_1'",
        [],
    )
    .unwrap();
    let page = |sql: &str, cursor: &str, size: i64| -> Vec<String> {
        let mut stmt = db.prepare(sql).unwrap();
        stmt.query_map(params![4, "cur.", cursor, size], |r| r.get::<_, String>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(page(KEYS_PAGE, "", 100), vec!["k1", "k3", "k4"]);
    assert_eq!(page(KEYS_PAGE, "", 2), vec!["k1", "k3"]);
    assert_eq!(
        page(KEYS_PAGE, "k3", 2),
        vec!["k4"],
        "the cursor skips what was seen"
    );
    assert_eq!(
        page(USERS_PAGE, "", 100),
        vec!["usr_1"],
        "either value counts"
    );
    let left = |db: &Connection| -> (i64, i64, i64) {
        db.query_row(LEFT, params![4, "cur."], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap()
    };
    let connections_left = |db: &Connection| -> i64 {
        db.query_row(LEFT, params![4, "cur."], |r| r.get(3))
            .unwrap()
    };
    for (id, sealed) in [("con_a", "old.x"), ("con_b", "cur.y")] {
        db.execute(
            "INSERT INTO connections (id, org, issuer, client_id, client_secret_sealed, scopes, label, \
             created_at, updated_at) VALUES (?1, 'acme', 'https://idp.test', 'c', ?2, 'openid', 'L', 0, 0)",
            params![id, sealed],
        )
        .unwrap();
    }
    assert_eq!(page(CONNECTIONS_PAGE, "", 100), vec!["con_a"]);
    assert_eq!(connections_left(&db), 1);
    assert_eq!(
        db.execute(RESEAL_CONNECTION, params!["con_a", "old.other", "cur.z"])
            .unwrap(),
        0,
        "guarded on the value read"
    );
    assert_eq!(
        db.execute(RESEAL_CONNECTION, params!["con_a", "old.x", "cur.z"])
            .unwrap(),
        1
    );
    assert_eq!(connections_left(&db), 0);
    assert_eq!(left(&db), (3, 0, 1));
    assert_eq!(
        db.execute(RESEAL_KEY, params!["k1", "old.aaa", "cur.new"])
            .unwrap(),
        1
    );
    assert_eq!(
        db.execute(RESEAL_KEY, params!["k1", "old.aaa", "cur.other"])
            .unwrap(),
        0,
        "guarded"
    );
    assert_eq!(left(&db), (2, 0, 1));
}

/// A bound value as rusqlite takes it (D1 gets the same through `SqlValue::to_js`).
fn native(value: &crate::edge::store::assign::SqlValue) -> rusqlite::types::Value {
    use crate::edge::store::assign::SqlValue;
    use rusqlite::types::Value;
    match value {
        SqlValue::Text(t) | SqlValue::IfNull(t) => Value::Text(t.clone()),
        SqlValue::Int(i) => Value::Integer(*i),
        SqlValue::Bool(b) => Value::Integer(*b as i64),
        SqlValue::Null => Value::Null,
    }
}

/// The standard claims (migration 0006c) through the admin API's INSERT and a PATCH's UPDATE:
/// every claim lands in its column, the UPDATE writes only the members sent (a `null` clears),
/// and the row reads back as the claims the release rules see.
#[test]
fn standard_claims_are_inserted_patched_and_read_back() {
    use crate::admin::fields::Fields;
    use crate::admin::users::{CREATE_FIELDS, UPDATE_FIELDS, new_user, profile_changes};
    use crate::protocol::standard_claims::StandardClaims;
    use rusqlite::types::Value;
    let db = migrated(None);
    let body = serde_json::json!({
        "username": "ana", "email": "ana@acme.test", "given_name": "Ana", "family_name": "Lima",
        "middle_name": "M", "nickname": "ani", "profile": "https://acme.test/ana",
        "website": "http://ana.example/", "gender": "female", "birthdate": "1990-07-14",
        "zoneinfo": "America/Sao_Paulo", "locale": "pt-BR", "phone_number": "+5511987654321",
        "phone_number_verified": true,
        "address": {"locality": "São Paulo", "country": "BR"}
    });
    let user = new_user(
        &Fields::new(body, CREATE_FIELDS).unwrap(),
        "acme",
        "usr_2".into(),
        7,
    )
    .unwrap();
    let mut values: Vec<Value> = vec![
        Value::Text(user.id.clone()),
        Value::Text(user.org.clone()),
        Value::Text(user.username.clone()),
        Value::Text(user.email.clone()),
        Value::Null,
        Value::Null,
        Value::Integer(0),
        Value::Integer(0),
        Value::Null,
        Value::Integer(7),
        Value::Integer(7),
    ];
    for name in crate::protocol::standard_claims::TEXT_CLAIMS {
        values.push(
            user.claims
                .text(name)
                .map_or(Value::Null, |v| Value::Text(v.into())),
        );
    }
    values.push(Value::Integer(1));
    values.push(Value::Text(
        user.claims.address.as_ref().unwrap().to_column(),
    ));
    let sql = crate::edge::store::users::insert_sql();
    db.execute(&sql, rusqlite::params_from_iter(values))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));

    let read = |db: &Connection| -> StandardClaims {
        let row: String = db
            .query_row(
                "SELECT json_object('given_name', given_name, 'family_name', family_name, \
                 'middle_name', middle_name, 'nickname', nickname, 'profile', profile, \
                 'website', website, 'gender', gender, 'birthdate', birthdate, \
                 'zoneinfo', zoneinfo, 'locale', locale, 'phone_number', phone_number, \
                 'phone_number_verified', phone_number_verified, 'address', address) \
                 FROM users WHERE id = 'usr_2'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&row).unwrap()
    };
    assert_eq!(read(&db), user.claims);

    let patch = Fields::new(
        serde_json::json!({"locale": null, "nickname": "nina", "address": {"country": "PT"}}),
        UPDATE_FIELDS,
    )
    .unwrap();
    let assignments = profile_changes(&patch).unwrap().assignments();
    let mut bound: Vec<Value> = vec![Value::Text("acme".into()), Value::Text("usr_2".into())];
    bound.extend(
        assignments
            .columns()
            .iter()
            .map(|c| native(assignments.get(c).unwrap())),
    );
    let update = format!(
        "UPDATE users SET {} WHERE org = ?1 AND id = ?2",
        assignments.set_clause(3)
    );
    assert_eq!(
        db.execute(&update, rusqlite::params_from_iter(bound))
            .unwrap(),
        1
    );
    let after = read(&db);
    assert_eq!(after.locale, None);
    assert_eq!(after.nickname.as_deref(), Some("nina"));
    assert_eq!(
        after.address.unwrap().to_column(),
        "{\"country\":\"PT\"}",
        "an address is replaced whole"
    );
    assert_eq!(after.given_name.as_deref(), Some("Ana"), "untouched");
    assert!(after.phone_number_verified);
}

/// Claim a code for `usr_1` at `chat` as store::grants::claim_code_and_issue does; the row's
/// (id, revoked_at) it returns.
fn claim(db: &Connection, id: &str, code_hash: &str, now: i64) -> (String, Option<i64>) {
    claim_with(db, id, code_hash, now, false)
}

/// `claim`, saying whether the sign-in had a second factor.
fn claim_with(
    db: &Connection,
    id: &str,
    code_hash: &str,
    now: i64,
    second_factor: bool,
) -> (String, Option<i64>) {
    claim_in_session(db, id, code_hash, now, second_factor, Some(now * 1000))
}

/// `claim_with`, naming when the code's session started (ms).
fn claim_in_session(
    db: &Connection,
    id: &str,
    code_hash: &str,
    now: i64,
    second_factor: bool,
    session_started_ms: Option<i64>,
) -> (String, Option<i64>) {
    db.query_row(
        &crate::edge::store::grants::claim_sql(),
        params![
            id,
            "acme",
            "chat",
            "usr_1",
            code_hash,
            "openid",
            Option::<String>::None,
            900,
            now,
            "pwd",
            "urn:clavex:acr:pwd",
            "sid-1",
            second_factor,
            session_started_ms
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

#[test]
fn a_code_is_claimed_once_with_its_acr_and_sid_and_logout_finds_the_grant() {
    let db = migrated(None);
    db.execute(
        "INSERT INTO clients (org, client_id, client_name, token_endpoint_auth_method, grant_types, redirect_uris, \
         post_logout_redirect_uris, scopes, created_at, updated_at, backchannel_logout_uri) \
         VALUES ('acme', 'chat', 'Chat', 'none', '[]', '[]', '[]', '[]', 0, 0, 'https://chat.example/bcl')",
        [],
    )
    .unwrap();
    assert_eq!(claim(&db, "grt_1", "h1", 1000), ("grt_1".into(), None));
    let (acr, sid): (String, String) = db
        .query_row("SELECT acr, sid FROM grants WHERE id = 'grt_1'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        (acr.as_str(), sid.as_str()),
        ("urn:clavex:acr:pwd", "sid-1")
    );
    let targets = |db: &Connection| -> Vec<(String, Option<String>)> {
        let mut stmt = db
            .prepare(crate::edge::store::grants::LOGOUT_TARGETS)
            .unwrap();
        stmt.query_map(params!["acme", "usr_1", 0], |r| Ok((r.get(0)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        targets(&db),
        [("chat".to_string(), Some("sid-1".to_string()))]
    );
    // The same code again: the first grant is returned and revoked — and logout no longer finds it.
    assert_eq!(
        claim(&db, "grt_2", "h1", 1001),
        ("grt_1".into(), Some(1001))
    );
    assert!(targets(&db).is_empty());
    // A disabled user's code: the grant is born revoked.
    db.execute("UPDATE users SET disabled = 1 WHERE id = 'usr_1'", [])
        .unwrap();
    assert_eq!(
        claim(&db, "grt_3", "h3", 1002),
        ("grt_3".into(), Some(1002))
    );
}

/// The public client `chat` of `acme`, that the claim tests redeem codes at.
fn insert_chat_client(db: &Connection) {
    db.execute(
        "INSERT INTO clients (org, client_id, client_name, token_endpoint_auth_method, grant_types, redirect_uris, \
         post_logout_redirect_uris, scopes, created_at, updated_at) \
         VALUES ('acme', 'chat', 'Chat', 'none', '[]', '[]', '[]', '[]', 0, 0)",
        [],
    )
    .unwrap();
}

/// A code minted under a session the user ended since (sign out everywhere at another location,
/// whose replica had not caught up where the code was minted) is burnt and issues nothing; one
/// minted under a session started at or after the sign-out redeems; one of an older format,
/// without the session's start, is not judged by it.
#[test]
fn a_code_of_a_session_ended_by_sign_out_everywhere_is_refused() {
    let db = migrated(None);
    insert_chat_client(&db);
    db.execute(
        crate::edge::store::account::END_SESSIONS,
        params!["acme", "usr_1", 5_000_500],
    )
    .unwrap();
    assert_eq!(
        claim_in_session(&db, "grt_1", "h1", 5001, false, Some(5_000_499)),
        ("grt_1".into(), Some(5001)),
        "started a millisecond before the sign-out: born revoked"
    );
    assert_eq!(
        claim_in_session(&db, "grt_2", "h2", 5001, false, Some(5_000_500)),
        ("grt_2".into(), None),
        "started in the sign-out's millisecond (the browser that signed out): live"
    );
    assert_eq!(
        claim_in_session(&db, "grt_3", "h3", 5001, false, None),
        ("grt_3".into(), None)
    );
    // Burnt: the same code cannot redeem later either.
    assert_eq!(
        claim_in_session(&db, "grt_4", "h1", 5002, false, Some(5_000_600)),
        ("grt_1".into(), Some(5001))
    );
}

/// A code minted under a policy read from a cache may meet a stricter one at redemption: the
/// claim burns a password-only code once the client or the organization requires a second
/// factor, and lets one with a second factor through.
#[test]
fn a_code_without_a_second_factor_is_refused_once_policy_requires_one() {
    let db = migrated(None);
    insert_chat_client(&db);
    assert_eq!(claim(&db, "grt_1", "h1", 1000), ("grt_1".into(), None));
    db.execute("UPDATE clients SET require_mfa = 1", [])
        .unwrap();
    assert_eq!(
        claim(&db, "grt_2", "h2", 1001),
        ("grt_2".into(), Some(1001)),
        "password only, client requires MFA: born revoked"
    );
    assert_eq!(
        claim_with(&db, "grt_3", "h3", 1002, true),
        ("grt_3".into(), None)
    );
    db.execute("UPDATE clients SET require_mfa = 0", [])
        .unwrap();
    db.execute("UPDATE organizations SET mfa = 'required'", [])
        .unwrap();
    assert_eq!(
        claim(&db, "grt_4", "h4", 1003),
        ("grt_4".into(), Some(1003)),
        "password only, organization requires MFA"
    );
    db.execute("UPDATE organizations SET mfa = 'optional'", [])
        .unwrap();
    assert_eq!(claim(&db, "grt_5", "h5", 1004), ("grt_5".into(), None));
}

/// The custom-attribute SQL (migration 0007a): a value is written only for a user of the
/// organization and a definition of the type it was checked against, replaced in place, read back
/// with its scope in the user column, and gone with its definition or its user.
#[test]
fn attribute_values_are_written_guarded_read_with_the_user_and_cascade() {
    use crate::edge::store::attributes::{DELETE_VALUE, UPSERT_VALUE, user_attributes_column};
    let db = migrated(None);
    db.execute_batch("PRAGMA foreign_keys = ON").unwrap();
    db.execute_batch(
        "INSERT INTO attributes (org, name, type, scope, created_at, updated_at) VALUES \
         ('acme', 'department', 'string', 'profile', 0, 0), ('acme', 'badges', 'string_array', 'email', 0, 0); \
         INSERT INTO organizations (slug, name, created_at, updated_at) VALUES ('other', 'Other', 0, 0); \
         INSERT INTO users (id, org, username, email, created_at, updated_at) VALUES ('usr_2', 'other', 'x', 'x@o.test', 0, 0);",
    )
    .unwrap();
    let upsert = |user: &str, name: &str, value: &str, kind: &str| {
        db.execute(UPSERT_VALUE, params![user, "acme", name, value, kind])
            .unwrap()
    };
    assert_eq!(upsert("usr_1", "department", "\"R&D\"", "string"), 1);
    assert_eq!(
        upsert("usr_1", "Department", "\"Ops\"", "string"),
        1,
        "replaced, any case"
    );
    assert_eq!(upsert("usr_1", "badges", "[\"lab\"]", "string_array"), 1);
    assert_eq!(
        upsert("usr_1", "badges", "1", "integer"),
        0,
        "a type it was not checked against"
    );
    assert_eq!(
        upsert("usr_2", "department", "\"X\"", "string"),
        0,
        "a user of another organization"
    );
    assert_eq!(
        upsert("usr_1", "nothing", "\"X\"", "string"),
        0,
        "no such attribute"
    );
    let read = |id: &str| -> serde_json::Value {
        let text: String = db
            .query_row(
                &format!(
                    "SELECT {} FROM users WHERE id = ?1",
                    user_attributes_column("users")
                ),
                params![id],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let mut values = read("usr_1").as_array().unwrap().clone();
    values.sort_by_key(|v| v["name"].as_str().unwrap().to_string());
    assert_eq!(
        serde_json::Value::Array(values),
        serde_json::json!([
            {"name": "badges", "scope": "email", "value": ["lab"]},
            {"name": "department", "scope": "profile", "value": "Ops"},
        ])
    );
    db.execute(DELETE_VALUE, params!["usr_1", "acme", "badges"])
        .unwrap();
    assert_eq!(read("usr_1").as_array().unwrap().len(), 1);
    db.execute(
        "DELETE FROM attributes WHERE org = 'acme' AND name = 'department'",
        [],
    )
    .unwrap();
    assert_eq!(read("usr_1"), serde_json::json!([]));
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM user_attributes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the definition took its values");
    assert_eq!(upsert("usr_1", "badges", "[]", "string_array"), 1);
    db.execute("DELETE FROM users WHERE id = 'usr_1'", [])
        .unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM user_attributes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "the user took theirs");
    // Deleting the organization takes its definitions, its users and their values.
    db.execute_batch(
        "INSERT INTO users (id, org, username, email, created_at, updated_at) VALUES ('usr_3', 'acme', 'k', 'k@acme.test', 0, 0);",
    )
    .unwrap();
    assert_eq!(upsert("usr_3", "badges", "[\"x\"]", "string_array"), 1);
    db.execute("DELETE FROM organizations WHERE slug = 'acme'", [])
        .unwrap();
    let left: i64 = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM user_attributes) + (SELECT COUNT(*) FROM attributes)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
}

/// The account page's writes (migration 0008a): the not-before time only moves forward, a
/// password change stores the hash with it, and every live grant of the user — only theirs — is
/// revoked, so logout finds none left to announce twice.
#[test]
fn signing_out_everywhere_moves_the_time_forward_and_revokes_only_the_users_grants() {
    use crate::edge::store::account::{CHANGE_PASSWORD, END_SESSIONS, REVOKE_GRANTS};
    let db = migrated(None);
    db.execute(
        "INSERT INTO users (id, org, username, email, created_at, updated_at) VALUES ('usr_2', 'acme', 'joe', 'joe@acme.test', 0, 0)",
        [],
    )
    .unwrap();
    insert_chat_client(&db);
    assert_eq!(claim(&db, "grt_1", "h1", 1000).1, None);
    db.execute(
        "INSERT INTO grants (id, org, client_id, user_id, code_hash, scope, auth_time, created_at, amr) \
         VALUES ('grt_j', 'acme', 'chat', 'usr_2', 'hj', 'openid', 900, 1000, 'pwd')",
        [],
    )
    .unwrap();
    let not_before = |db: &Connection| -> Option<i64> {
        db.query_row(
            "SELECT sessions_not_before_ms FROM users WHERE id = 'usr_1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(not_before(&db), None, "never signed out everywhere");
    assert_eq!(
        db.execute(END_SESSIONS, params!["acme", "usr_1", 5_000])
            .unwrap(),
        1
    );
    db.execute(END_SESSIONS, params!["acme", "usr_1", 4_000])
        .unwrap();
    assert_eq!(not_before(&db), Some(5_000), "never moved back");
    assert_eq!(
        db.execute(END_SESSIONS, params!["other", "usr_1", 9_000])
            .unwrap(),
        0,
        "only in the user's organization"
    );
    assert_eq!(
        db.execute(REVOKE_GRANTS, params!["acme", "usr_1", 1100])
            .unwrap(),
        1
    );
    let revoked = |id: &str| -> Option<i64> {
        db.query_row("SELECT revoked_at FROM grants WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert_eq!(revoked("grt_1"), Some(1100));
    assert_eq!(revoked("grt_j"), None, "another user's grant is untouched");
    assert_eq!(
        db.execute(REVOKE_GRANTS, params!["acme", "usr_1", 1200])
            .unwrap(),
        0,
        "a revoked grant keeps its time"
    );
    db.execute(
        CHANGE_PASSWORD,
        params!["acme", "usr_1", "$hash", 1300, 6_000],
    )
    .unwrap();
    let (hash, updated): (String, i64) = db
        .query_row(
            "SELECT password_hash, updated_at FROM users WHERE id = 'usr_1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((hash.as_str(), updated), ("$hash", 1300));
    assert_eq!(not_before(&db), Some(6_000));
}

/// New recovery codes from the account page: written only for the enrolment that was checked,
/// replacing every earlier code (used or not) under the new key; after a reset nothing is written.
#[test]
fn new_recovery_codes_replace_the_old_only_for_the_checked_enrolment() {
    use crate::edge::store::mfa::{RENEW_CLEAR_CODES, RENEW_CODE, RENEW_KEY};
    let mut db = migrated(None);
    assert!(enrol(
        &mut db,
        "sealed-1",
        "enrolment-1",
        "key-1",
        &["old-1", "old-2"],
        1
    ));
    let secret_id = "enrolment-1".to_string();
    let renew = |db: &Connection, id: &str, key: &str, codes: &[&str]| -> usize {
        let changed = db
            .execute(RENEW_KEY, params!["acme", "usr_1", key, id])
            .unwrap();
        db.execute(RENEW_CLEAR_CODES, params!["usr_1", key])
            .unwrap();
        for c in codes {
            db.execute(RENEW_CODE, params!["usr_1", c, key]).unwrap();
        }
        changed
    };
    let codes = |db: &Connection| -> Vec<String> {
        let mut stmt = db
            .prepare(
                "SELECT code_hash FROM recovery_codes WHERE user_id = 'usr_1' ORDER BY code_hash",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(renew(&db, "another-enrolment", "key-x", &["x-1"]), 0);
    assert_eq!(
        codes(&db),
        ["old-1", "old-2"],
        "another enrolment's renewal writes nothing"
    );
    assert_eq!(
        renew(&db, &secret_id, "key-2", &["new-1", "new-2", "new-3"]),
        1
    );
    assert_eq!(codes(&db), ["new-1", "new-2", "new-3"]);
    assert_eq!(factors(&db).1.as_deref(), Some("key-2"));
    reset(&mut db);
    assert_eq!(renew(&db, &secret_id, "key-3", &["z-1"]), 0);
    assert!(codes(&db).is_empty(), "after a reset nothing is written");
}

/// Upstream links (migration 0008f): one user per (connection, upstream sub), one link per user
/// and connection; deleting the connection or the user deletes the links.
#[test]
fn user_links_are_unique_both_ways_and_cascade() {
    let db = migrated(None);
    db.execute_batch(
        "INSERT INTO users (id, org, username, email, created_at, updated_at) VALUES ('usr_la', 'acme', 'link-ann', 'link-ann@acme.test', 0, 0);
         INSERT INTO users (id, org, username, email, created_at, updated_at) VALUES ('usr_lb', 'acme', 'link-bob', 'link-bob@acme.test', 0, 0);
         INSERT INTO connections (id, org, issuer, client_id, client_secret_sealed, scopes, label, created_at, updated_at)
           VALUES ('con_1', 'acme', 'https://idp.test', 'c', 'cur.s', 'openid', 'L', 0, 0);",
    )
    .unwrap();
    let link = |sub: &str, user: &str| {
        db.execute(
            "INSERT INTO user_links (connection_id, upstream_sub, user_id, org, created_at) VALUES ('con_1', ?1, ?2, 'acme', 0)",
            params![sub, user],
        )
    };
    link("up-1", "usr_la").unwrap();
    let twice = link("up-1", "usr_lb").unwrap_err().to_string();
    assert!(
        twice.contains("UNIQUE") && twice.contains("user_links"),
        "{twice}"
    );
    let second_account = link("up-2", "usr_la").unwrap_err().to_string();
    assert!(second_account.contains("user_links"), "{second_account}");
    link("up-2", "usr_lb").unwrap();
    db.execute("DELETE FROM users WHERE id = 'usr_lb'", [])
        .unwrap();
    let count = |db: &Connection| -> i64 {
        db.query_row("SELECT COUNT(*) FROM user_links", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count(&db), 1);
    db.execute("DELETE FROM connections WHERE id = 'con_1'", [])
        .unwrap();
    assert_eq!(count(&db), 0);
    // An organization's deletion takes its connections along.
    db.execute_batch(
        "INSERT INTO connections (id, org, issuer, client_id, client_secret_sealed, scopes, label, created_at, updated_at)
           VALUES ('con_2', 'acme', 'https://idp.test', 'c', 'cur.s', 'openid', 'L', 0, 0);
         DELETE FROM organizations WHERE slug = 'acme';",
    )
    .unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM connections", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_single_use_marker_is_claimed_once_and_cleaned_up_after_expiry() {
    use crate::edge::store::once::{CLAIM, key};
    let db = migrated(None);
    let claim = |k: &str, expires: i64| -> bool {
        db.prepare(CLAIM)
            .unwrap()
            .query_row(params![k, "acme", expires], |r| r.get::<_, String>(0))
            .is_ok()
    };
    let k = key("link", "id-1");
    assert!(!k.contains("id-1"), "only the id's hash is stored");
    assert!(claim(&k, 100), "the first use");
    assert!(!claim(&k, 100), "the second use finds the row");
    assert!(!claim(&k, 999), "also with another expiry");
    assert!(claim(&key("upstream", "id-1"), 100), "another purpose");
    db.execute("DELETE FROM used_once WHERE expires_at < ?1", params![101])
        .unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM used_once", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

/// Applies the migrations whose names sort at or after `from` to a database `migrated` until then.
fn migrate_from(db: &Connection, from: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if name.as_str() >= from {
            db.execute_batch(&std::fs::read_to_string(&file).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn a_connections_groups_are_kept_by_id_converted_renamed_and_never_deleted_under_it() {
    let from = "0011h_connection_groups.sql";
    let db = migrated(Some(from));
    db.execute_batch(
        "PRAGMA foreign_keys = ON;
         INSERT INTO groups (id, org, name, created_at, updated_at) VALUES
           ('grp_e', 'acme', 'Eng', 0, 0), ('grp_s', 'acme', 'staff', 0, 0), ('grp_x', 'acme', 'unused', 0, 0);
         INSERT INTO connections (id, org, issuer, client_id, client_secret_sealed, scopes, label, created_at, updated_at,
                                  default_groups, groups_claim, group_mapping)
           VALUES ('con_1', 'acme', 'https://idp.test', 'c', 'cur.s', 'openid', 'Okta', 0, 0,
                   '[\"staff\", \"gone\"]', 'groups', '{\"CN=Eng\": \"eng\", \"CN=Old\": \"gone\"}');",
    )
    .unwrap();
    migrate_from(&db, from);
    let read = |db: &Connection| -> (String, String) {
        db.query_row(
            &format!(
                "SELECT default_groups, group_mapping FROM (SELECT {} FROM connections WHERE id = 'con_1')",
                crate::edge::store::connections::COLUMNS
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    // Converted by id; the names of groups deleted before (skipped at sign-in already) dropped.
    assert_eq!(
        read(&db),
        (r#"["staff"]"#.into(), r#"{"CN=Eng":"Eng"}"#.into())
    );
    // A rename is followed.
    db.execute(
        "UPDATE groups SET name = 'engineering' WHERE id = 'grp_e'",
        [],
    )
    .unwrap();
    assert_eq!(read(&db).1, r#"{"CN=Eng":"engineering"}"#);
    // Deleting a group a connection names fails; another group goes.
    for id in ["grp_e", "grp_s"] {
        let err = db
            .execute("DELETE FROM groups WHERE id = ?1", params![id])
            .unwrap_err()
            .to_string();
        assert!(err.contains("FOREIGN KEY"), "{id}: {err}");
    }
    db.execute("DELETE FROM groups WHERE id = 'grp_x'", [])
        .unwrap();
    // A name that matches no group makes the write fail (NULL id), never a silent gap.
    let gone = db
        .execute(
            "INSERT INTO connection_default_groups (connection_id, group_id) \
             SELECT 'con_1', (SELECT id FROM groups WHERE org = 'acme' AND name = 'nope' COLLATE NOCASE) \
             WHERE EXISTS (SELECT 1 FROM connections WHERE id = 'con_1')",
            [],
        )
        .unwrap_err()
        .to_string();
    assert!(
        gone.contains("NOT NULL") && gone.contains("group_id"),
        "{gone}"
    );
    // Deleting the connection takes its rows; then the group can go.
    db.execute("DELETE FROM connections WHERE id = 'con_1'", [])
        .unwrap();
    db.execute("DELETE FROM groups WHERE id = 'grp_e'", [])
        .unwrap();
    // An organization's deletion takes connections and groups along in one statement.
    db.execute_batch(
        "INSERT INTO connections (id, org, issuer, client_id, client_secret_sealed, scopes, label, created_at, updated_at)
           VALUES ('con_2', 'acme', 'https://idp.test', 'c', 'cur.s', 'openid', 'L', 0, 0);
         INSERT INTO connection_default_groups (connection_id, group_id) VALUES ('con_2', 'grp_s');
         DELETE FROM organizations WHERE slug = 'acme';",
    )
    .unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM connection_default_groups", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(left, 0);
}

// ---- One-time links (migration 0011l, store/links.rs) ----

mod links {
    use super::migrated;
    use crate::edge::store::links::{
        Finish, INSERT, PEEK, SUPERSEDE, claim_sql, drop_password_links_sql, logout_targets_sql,
        read_user_sql, reset_codes_sql, reset_totp_sql, revoke_grants_sql, set_password_sql,
        unlock_sql,
    };
    use crate::edge::store::passkeys::INSERT_FOR_LINK;
    use rusqlite::{Connection, params};

    fn issue(
        db: &Connection,
        hash: &str,
        purpose: &str,
        pwd: bool,
        totp: bool,
        expires: i64,
    ) -> bool {
        db.execute(SUPERSEDE, params!["acme", "usr_1", purpose, 10])
            .unwrap();
        db.execute(
            INSERT,
            params![hash, "acme", "usr_1", purpose, pwd, totp, 10, expires],
        )
        .unwrap()
            == 1
    }

    /// The claim's batch as store::links::claim runs it; whether the claim won.
    fn claim(
        db: &mut Connection,
        hash: &str,
        org: &str,
        nonce: &str,
        now: i64,
        password: Option<&str>,
    ) -> bool {
        let finish = match password {
            Some(p) => Finish::Password(p),
            None => Finish::Nothing,
        };
        claim_with(db, hash, org, nonce, now, finish, None).unwrap()
    }

    /// The same with any finish, and for `Finish::Passkey` the passkey's insert (credential id
    /// `passkey`) as the batch's extra statement. `Err`: the transaction failed and was rolled
    /// back, as D1 rolls back a batch.
    fn claim_with(
        db: &mut Connection,
        hash: &str,
        org: &str,
        nonce: &str,
        now: i64,
        finish: Finish<'_>,
        passkey: Option<&str>,
    ) -> rusqlite::Result<bool> {
        let tx = db.transaction().unwrap();
        let won = {
            let mut stmt = tx.prepare(&claim_sql(finish)).unwrap();
            let mut rows = stmt.query(params![hash, org, now, nonce]).unwrap();
            rows.next().unwrap().is_some()
        };
        let new_hash = match finish {
            Finish::Password(p) => Some(Some(p)),
            Finish::Passkey => Some(None),
            Finish::Nothing => None,
        };
        if let Some(p) = new_hash {
            tx.execute(
                &set_password_sql(),
                params![hash, nonce, p, now, now * 1000],
            )
            .unwrap();
        }
        if let Some(credential) = passkey {
            tx.execute(
                INSERT_FOR_LINK,
                params![
                    hash,
                    nonce,
                    format!("pk_{nonce}"),
                    credential,
                    "key",
                    -7,
                    0,
                    true,
                    false,
                    false,
                    "[]",
                    "00000000-0000-0000-0000-000000000000",
                    "Passkey",
                    now
                ],
            )?;
        }
        tx.execute(&reset_totp_sql(), params![hash, nonce, now, now * 1000])
            .unwrap();
        tx.execute(&reset_codes_sql(), params![hash, nonce])
            .unwrap();
        tx.execute(&revoke_grants_sql(), params![hash, nonce, now])
            .unwrap();
        tx.execute(&unlock_sql(), params![hash, nonce]).unwrap();
        let read: Option<String> = tx
            .query_row(&read_user_sql(), params![hash, nonce], |r| r.get("id"))
            .ok();
        assert_eq!(
            read.is_some(),
            won,
            "the user is read back exactly when the claim won"
        );
        tx.commit().unwrap();
        Ok(won)
    }

    /// The claim's batch up to the revocation, as store::links::claim runs it: the relying
    /// parties to tell, read just before the grants are revoked in the same transaction.
    fn claim_and_targets(db: &mut Connection, hash: &str, nonce: &str, now: i64) -> Vec<String> {
        let tx = db.transaction().unwrap();
        {
            let mut stmt = tx.prepare(&claim_sql(Finish::Password("p"))).unwrap();
            let mut rows = stmt.query(params![hash, "acme", now, nonce]).unwrap();
            let _ = rows.next().unwrap();
        }
        let targets: Vec<String> = {
            let mut stmt = tx.prepare(&logout_targets_sql()).unwrap();
            stmt.query_map(params![hash, nonce, 0], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        tx.execute(&revoke_grants_sql(), params![hash, nonce, now])
            .unwrap();
        tx.commit().unwrap();
        targets
    }

    #[test]
    fn a_won_claim_names_the_relying_parties_whose_grants_it_revokes_and_a_lost_one_none() {
        let mut db = migrated(None);
        for (client, uri) in [("chat", Some("https://chat.example/bcl")), ("wiki", None)] {
            db.execute(
                "INSERT INTO clients (org, client_id, client_name, token_endpoint_auth_method, grant_types, \
                 redirect_uris, post_logout_redirect_uris, scopes, created_at, updated_at, backchannel_logout_uri) \
                 VALUES ('acme', ?1, ?1, 'none', '[]', '[]', '[]', '[]', 0, 0, ?2)",
                params![client, uri],
            )
            .unwrap();
            db.execute(
                "INSERT INTO grants (id, org, client_id, user_id, code_hash, scope, auth_time, created_at, amr) \
                 VALUES ('g_' || ?1, 'acme', ?1, 'usr_1', 'c_' || ?1, 'openid', 0, 10, '[]')",
                params![client],
            )
            .unwrap();
        }
        assert!(issue(&db, "h", "recovery", true, false, 1000));
        assert_eq!(claim_and_targets(&mut db, "h", "n1", 20), ["chat"]);
        let live: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(live, 0, "both grants revoked");
        // The same link again: the claim loses, nobody is named (and nothing was left anyway).
        db.execute("UPDATE grants SET revoked_at = NULL", [])
            .unwrap();
        assert!(claim_and_targets(&mut db, "h", "n2", 21).is_empty());
    }

    #[test]
    fn replacing_the_password_removes_only_the_upstream_links_it_confirmed() {
        let mut db = migrated(None);
        db.execute_batch(
            "INSERT INTO connections (id, org, issuer, client_id, client_secret_sealed, scopes, label, created_at, updated_at)
               VALUES ('con_a', 'acme', 'https://a.test', 'c', 'cur.s', 'openid', 'A', 0, 0),
                      ('con_b', 'acme', 'https://b.test', 'c', 'cur.s', 'openid', 'B', 0, 0);
             INSERT INTO user_links (connection_id, upstream_sub, user_id, org, created_at, confirmed_by_password)
               VALUES ('con_a', 'by-password', 'usr_1', 'acme', 0, 1), ('con_b', 'by-email', 'usr_1', 'acme', 0, 0);",
        )
        .unwrap();
        let left = |db: &Connection| -> Vec<String> {
            let mut stmt = db
                .prepare("SELECT upstream_sub FROM user_links ORDER BY upstream_sub")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        // A link that resets only the second factor leaves the password, and so the links.
        assert!(issue(&db, "t", "recovery", false, true, 1000));
        let tx = db.transaction().unwrap();
        {
            let mut stmt = tx.prepare(&claim_sql(Finish::Nothing)).unwrap();
            let mut rows = stmt.query(params!["t", "acme", 20, "n0"]).unwrap();
            assert!(
                rows.next().unwrap().is_some(),
                "the second-factor link is claimed"
            );
        }
        tx.execute(&drop_password_links_sql(), params!["t", "n0"])
            .unwrap();
        tx.commit().unwrap();
        assert_eq!(left(&db), ["by-email", "by-password"]);
        // A password reset (won claim): the link the old password confirmed goes.
        assert!(issue(&db, "p", "recovery", true, false, 1000));
        assert!(claim(&mut db, "p", "acme", "n1", 20, Some("new")));
        let tx = db.transaction().unwrap();
        tx.execute(&drop_password_links_sql(), params!["p", "n1"])
            .unwrap();
        tx.commit().unwrap();
        assert_eq!(left(&db), ["by-email"]);
        // The account page and the admin API use the plain statement.
        db.execute("UPDATE user_links SET confirmed_by_password = 1", [])
            .unwrap();
        db.execute(
            crate::edge::store::connections::DROP_PASSWORD_CONFIRMED_LINKS,
            params!["acme", "usr_1"],
        )
        .unwrap();
        assert!(left(&db).is_empty());
    }

    fn passkeys_of(db: &Connection) -> Vec<String> {
        let mut stmt = db
            .prepare(
                "SELECT credential_id FROM passkeys WHERE user_id = 'usr_1' ORDER BY credential_id",
            )
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn a_passkey_finishes_only_a_link_that_resets_the_password_and_replaces_the_password() {
        let mut db = migrated(None);
        db.execute(
            "UPDATE users SET password_hash = 'old' WHERE id = 'usr_1'",
            [],
        )
        .unwrap();
        // A link that resets only the second factor gives no way to sign in: no passkey.
        assert!(issue(&db, "totp", "recovery", false, true, 1000));
        assert!(
            !claim_with(
                &mut db,
                "totp",
                "acme",
                "n0",
                20,
                Finish::Passkey,
                Some("c0")
            )
            .unwrap()
        );
        assert!(passkeys_of(&db).is_empty());
        assert_eq!(password(&db).as_deref(), Some("old"));
        // A setup link: the winner's passkey is stored, the old password is gone.
        assert!(issue(&db, "h", "setup", true, false, 1000));
        assert!(claim_with(&mut db, "h", "acme", "n1", 20, Finish::Passkey, Some("c1")).unwrap());
        assert_eq!(passkeys_of(&db), ["c1"]);
        assert_eq!(password(&db), None);
        // Replayed (another nonce): the link is used, nothing more is stored.
        assert!(!claim_with(&mut db, "h", "acme", "n2", 20, Finish::Passkey, Some("c2")).unwrap());
        assert_eq!(passkeys_of(&db), ["c1"]);
    }

    #[test]
    fn a_passkey_registered_already_leaves_the_link_unused() {
        let mut db = migrated(None);
        assert!(issue(&db, "a", "setup", true, false, 1000));
        assert!(claim_with(&mut db, "a", "acme", "n1", 20, Finish::Passkey, Some("c1")).unwrap());
        assert!(issue(&db, "b", "recovery", true, false, 1000));
        assert!(
            claim_with(&mut db, "b", "acme", "n2", 20, Finish::Passkey, Some("c1")).is_err(),
            "the same credential id again fails the batch"
        );
        let used: Option<i64> = db
            .query_row(
                "SELECT used_at FROM setup_links WHERE token_hash = 'b'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(used, None, "the failed batch left the link unused");
        assert!(claim_with(&mut db, "b", "acme", "n3", 20, Finish::Passkey, Some("c3")).unwrap());
    }

    fn password(db: &Connection) -> Option<String> {
        db.query_row(
            "SELECT password_hash FROM users WHERE id = 'usr_1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn a_link_is_claimed_once_and_only_the_winner_sets_the_password() {
        let mut db = migrated(None);
        assert!(issue(&db, "h1", "setup", true, false, 1000));
        assert!(claim(&mut db, "h1", "acme", "n1", 20, Some("first")));
        assert_eq!(password(&db).as_deref(), Some("first"));
        // The same link again, in the same second, by another request: nothing changes.
        assert!(!claim(&mut db, "h1", "acme", "n2", 20, Some("second")));
        assert_eq!(password(&db).as_deref(), Some("first"));
        let (used_at, nonce): (i64, String) = db
            .query_row(
                "SELECT used_at, claim_nonce FROM setup_links WHERE token_hash = 'h1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(
            (used_at, nonce.as_str()),
            (20, "n1"),
            "the winner's claim stays"
        );
    }

    #[test]
    fn expired_superseded_foreign_and_disabled_links_are_refused() {
        let mut db = migrated(None);
        assert!(issue(&db, "old", "recovery", true, false, 1000));
        assert!(issue(&db, "new", "recovery", true, false, 1000));
        assert!(
            !claim(&mut db, "old", "acme", "n", 20, Some("p")),
            "superseded"
        );
        assert!(
            !claim(&mut db, "new", "other", "n", 20, Some("p")),
            "another organization"
        );
        assert!(
            !claim(&mut db, "new", "acme", "n", 1000, Some("p")),
            "expired at its expiry"
        );
        assert_eq!(password(&db), None);
        // Another purpose is not superseded.
        assert!(issue(&db, "setup", "setup", true, false, 1000));
        db.execute("UPDATE users SET disabled = 1 WHERE id = 'usr_1'", [])
            .unwrap();
        assert!(
            !claim(&mut db, "new", "acme", "n", 20, Some("p")),
            "disabled user"
        );
        assert!(
            !issue(&db, "late", "setup", true, false, 1000),
            "no link for a disabled user"
        );
        db.execute("UPDATE users SET disabled = 0 WHERE id = 'usr_1'", [])
            .unwrap();
        assert!(claim(&mut db, "new", "acme", "n", 20, Some("p")));
        assert!(
            claim(&mut db, "setup", "acme", "m", 20, Some("q")),
            "its own purpose"
        );
        assert_eq!(password(&db).as_deref(), Some("q"));
    }

    #[test]
    fn a_password_link_needs_a_password_and_a_second_factor_link_resets_totp() {
        let mut db = migrated(None);
        db.execute(
            "UPDATE users SET password_hash = 'kept', totp_secret_sealed = 's', totp_secret_id = 'i' WHERE id = 'usr_1'",
            [],
        )
        .unwrap();
        db.execute(
            "INSERT INTO recovery_codes (user_id, code_hash) VALUES ('usr_1', 'c')",
            [],
        )
        .unwrap();
        assert!(issue(&db, "pw", "recovery", true, false, 1000));
        assert!(
            !claim(&mut db, "pw", "acme", "n", 20, None),
            "no password given"
        );
        assert!(issue(&db, "mfa", "recovery", false, true, 1000));
        assert!(claim(&mut db, "mfa", "acme", "n", 20, None));
        let (secret, codes): (Option<String>, i64) = db
            .query_row(
                "SELECT totp_secret_sealed, (SELECT COUNT(*) FROM recovery_codes) FROM users WHERE id = 'usr_1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((secret, codes), (None, 0));
        assert_eq!(password(&db).as_deref(), Some("kept"), "the password stays");
        let peeked: (i64, i64) = db
            .query_row(PEEK, params!["mfa", "acme"], |r| {
                Ok((r.get("used")?, r.get("enrolled")?))
            })
            .unwrap();
        assert_eq!(peeked, (1, 0));
    }
}

/// One passkey finish as store/passkeys.rs runs it: the claim, then the guarded write, in one
/// transaction. (claimed, written)
fn passkey_finish(
    db: &mut Connection,
    hash: &str,
    claim: &str,
    write: &str,
    args: &[&dyn rusqlite::ToSql],
) -> (bool, bool) {
    let tx = db.transaction().unwrap();
    let claimed = tx
        .prepare(crate::edge::store::passkeys::CLAIM)
        .unwrap()
        .query_map(params![hash, "acme", claim, 100], |r| r.get::<_, String>(0))
        .unwrap()
        .count()
        == 1;
    let written = tx
        .prepare(write)
        .unwrap()
        .query_map(args, |r| r.get::<_, String>(0))
        .unwrap()
        .count()
        == 1;
    tx.commit().unwrap();
    (claimed, written)
}

#[test]
fn a_passkey_challenge_is_claimed_once_and_only_the_winner_writes() {
    use crate::edge::store::passkeys::{insert_sql, used_sql};
    let mut db = migrated(None);
    let insert = insert_sql();
    let new = |claim: &'static str,
               id: &'static str,
               cred: &'static str|
     -> Vec<Box<dyn rusqlite::ToSql>> {
        vec![
            Box::new(id),
            Box::new("acme"),
            Box::new("usr_1"),
            Box::new(cred),
            Box::new("key"),
            Box::new(-7),
            Box::new(0),
            Box::new(1),
            Box::new(0),
            Box::new(0),
            Box::new("[]"),
            Box::new("aaguid"),
            Box::new("Passkey"),
            Box::new(5),
            Box::new("h1"),
            Box::new(claim),
        ]
    };
    let run = |db: &mut Connection,
               hash: &str,
               claim: &str,
               sql: &str,
               args: Vec<Box<dyn rusqlite::ToSql>>| {
        let refs: Vec<&dyn rusqlite::ToSql> = args.iter().map(|b| b.as_ref()).collect();
        passkey_finish(db, hash, claim, sql, &refs)
    };
    assert_eq!(
        run(&mut db, "h1", "a", &insert, new("a", "pk_1", "cred1")),
        (true, true)
    );
    // The same challenge again (a replay, a concurrent finish): no claim, nothing written.
    assert_eq!(
        run(&mut db, "h1", "b", &insert, new("b", "pk_2", "cred2")),
        (false, false)
    );
    // A new challenge for a credential already registered: claimed, not stored twice.
    let mut dup = new("c", "pk_3", "cred1");
    dup[14] = Box::new("h2");
    assert_eq!(run(&mut db, "h2", "c", &insert, dup), (true, false));
    let count: i64 = db
        .query_row("SELECT COUNT(*) FROM passkeys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 1);
    // A sign-in: the counter is recorded under the claim, never lowered.
    let used = used_sql();
    let use_args =
        |count: i64, hash: &'static str, claim: &'static str| -> Vec<Box<dyn rusqlite::ToSql>> {
            vec![
                Box::new("acme"),
                Box::new("pk_1"),
                Box::new(count),
                Box::new(0),
                Box::new(9),
                Box::new(hash),
                Box::new(claim),
            ]
        };
    assert_eq!(
        run(&mut db, "h3", "d", &used, use_args(7, "h3", "d")),
        (true, true)
    );
    assert_eq!(
        run(&mut db, "h3", "e", &used, use_args(9, "h3", "e")),
        (false, false)
    );
    assert_eq!(
        run(&mut db, "h4", "f", &used, use_args(3, "h4", "f")),
        (true, true)
    );
    let stored: i64 = db
        .query_row(
            "SELECT sign_count FROM passkeys WHERE id = 'pk_1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        stored, 7,
        "a regressed counter does not lower the stored one"
    );
    // Deleting the user deletes their passkeys.
    db.execute("DELETE FROM users WHERE id = 'usr_1'", [])
        .unwrap();
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM passkeys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

/// A user's removal of a passkey in a passwordless organization keeps the last one: removing
/// two of two one after the other (as D1 serialises two sent at once) leaves one.
#[test]
fn the_last_passkey_of_a_user_stays_when_removal_is_guarded() {
    use crate::edge::store::passkeys::DELETE_BY_USER;
    let db = migrated(None);
    for id in ["pk_a", "pk_b"] {
        db.execute(
            "INSERT INTO passkeys (id, org, user_id, credential_id, public_key, alg, name, created_at) \
             VALUES (?1, 'acme', 'usr_1', ?1, 'key', -7, 'Passkey', 0)",
            params![id],
        )
        .unwrap();
    }
    let removed = |id: &str| {
        let mut stmt = db.prepare(DELETE_BY_USER).unwrap();
        let mut rows = stmt.query(params!["acme", "usr_1", id, 1]).unwrap();
        usize::from(rows.next().unwrap().is_some())
    };
    assert_eq!(removed("pk_a"), 1);
    assert_eq!(removed("pk_b"), 0, "the last passkey was removed");
    // Another user's passkey is never counted as this user's.
    assert_eq!(removed("pk_other"), 0);
    let left: Vec<String> = db
        .prepare("SELECT id FROM passkeys")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(left, ["pk_b"]);
}

/// Where a second factor is required, the user's own removals of TOTP and of their only passkey
/// each check for the other in their statement: run one after the other (as D1 runs two sent
/// at once), the first goes and the second is refused — whichever comes first.
#[test]
fn totp_and_the_last_passkey_cannot_both_be_removed_where_a_factor_is_required() {
    use crate::edge::store::passkeys::DELETE_BY_USER;
    for totp_first in [true, false] {
        let mut db = migrated(None);
        assert!(enrol(&mut db, "sealed", "sec_1", "rk", &["c1", "c2"], 100));
        db.execute(
            "INSERT INTO passkeys (id, org, user_id, credential_id, public_key, alg, name, created_at) \
             VALUES ('pk_a', 'acme', 'usr_1', 'pk_a', 'key', -7, 'Passkey', 0)",
            [],
        )
        .unwrap();
        let remove_totp = |db: &Connection| {
            let changed = db.execute(RESET, params!["acme", "usr_1", 1]).unwrap();
            db.execute(RESET_CODES, params!["acme", "usr_1"]).unwrap();
            changed == 1
        };
        let remove_passkey = |db: &Connection| {
            let mut stmt = db.prepare(DELETE_BY_USER).unwrap();
            let mut rows = stmt.query(params!["acme", "usr_1", "pk_a", 2]).unwrap();
            rows.next().unwrap().is_some()
        };
        let (first, second) = if totp_first {
            (remove_totp(&db), remove_passkey(&db))
        } else {
            (remove_passkey(&db), remove_totp(&db))
        };
        assert!(first && !second, "totp first: {totp_first}");
        let totp: Option<String> = db
            .query_row(
                "SELECT totp_secret_sealed FROM users WHERE id = 'usr_1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let passkeys: i64 = db
            .query_row("SELECT COUNT(*) FROM passkeys", [], |r| r.get(0))
            .unwrap();
        let codes: i64 = db
            .query_row("SELECT COUNT(*) FROM recovery_codes", [], |r| r.get(0))
            .unwrap();
        if totp_first {
            assert_eq!((totp, passkeys, codes), (None, 1, 0));
        } else {
            assert_eq!(
                (totp.as_deref(), passkeys, codes),
                (Some("sealed"), 0, 2),
                "the codes stay with the factor"
            );
        }
    }
}
