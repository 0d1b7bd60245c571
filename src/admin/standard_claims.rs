//! The OpenID Connect Core §5.1 claims of a user in an admin body (create or PATCH): read,
//! checked member by member (a 400 names the member), and turned into the columns to write.
//! Absent keeps a claim, `null` clears it. Pure: unit-tested natively.

use serde_json::Value;

use crate::admin::error::ApiError;
use crate::admin::fields::{Fields, Patch};
use crate::admin::validate;
use crate::edge::store::assign::{Assignments, SqlValue};
use crate::protocol::claim_formats::{self, MAX_GENDER, MAX_MULTILINE, MAX_TEXT};
use crate::protocol::standard_claims::{ADDRESS_MEMBERS, Address, StandardClaims, TEXT_CLAIMS};

/// The body members this module reads: the string claims, `phone_number_verified`, `address`.
pub const FIELDS: &[&str] = &[
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
];

/// A rule as the admin validators have it: the field to name, the value; the value to store.
type Rule = fn(&str, &str) -> Result<String, ApiError>;

/// The rule of each string claim.
fn rule(claim: &str) -> Rule {
    match claim {
        "given_name" | "family_name" | "middle_name" | "nickname" => validate::display_name,
        "profile" | "website" => validate::http_url,
        "gender" => gender,
        "birthdate" => birthdate,
        "zoneinfo" => zoneinfo,
        "locale" => locale,
        "phone_number" => phone_number,
        _ => unreachable!("{claim} is not a string claim"),
    }
}

fn named(field: &str, r: Result<(), String>, value: &str) -> Result<String, ApiError> {
    r.map(|()| value.to_string())
        .map_err(|message| ApiError::invalid_field(field, message))
}

pub fn birthdate(field: &str, value: &str) -> Result<String, ApiError> {
    named(field, claim_formats::birthdate(value), value)
}

pub fn zoneinfo(field: &str, value: &str) -> Result<String, ApiError> {
    named(field, claim_formats::zoneinfo(value), value)
}

pub fn locale(field: &str, value: &str) -> Result<String, ApiError> {
    named(field, claim_formats::locale(value), value)
}

pub fn phone_number(field: &str, value: &str) -> Result<String, ApiError> {
    named(field, claim_formats::phone_number(value), value)
}

/// §5.1: "female", "male", or another value when neither applies: short free text.
pub fn gender(field: &str, value: &str) -> Result<String, ApiError> {
    claim_formats::text(value, MAX_GENDER, false)
        .map_err(|message| ApiError::invalid_field(field, format!("{field} {message}")))
}

/// §5.1.1: a JSON object whose members are among `ADDRESS_MEMBERS`, each a string (a `null`
/// member is left out); at least one. `formatted` and `street_address` may span lines.
pub fn address(field: &str, value: &Value) -> Result<Address, ApiError> {
    let bad = |message: String| ApiError::invalid_field(field, message);
    let Value::Object(members) = value else {
        return Err(bad(format!(
            "{field} must be an object with any of {}, or null",
            ADDRESS_MEMBERS.join(", ")
        )));
    };
    let mut out = Address::default();
    for (name, member) in members {
        let Some(slot) = out.member_mut(name) else {
            return Err(bad(format!(
                "unknown {field} member {name}; allowed: {}",
                ADDRESS_MEMBERS.join(", ")
            )));
        };
        let text = match member {
            Value::Null => continue,
            Value::String(s) => s,
            _ => return Err(bad(format!("{field}.{name} must be a string"))),
        };
        let multiline = matches!(name.as_str(), "formatted" | "street_address");
        let max = if multiline { MAX_MULTILINE } else { MAX_TEXT };
        let stored = claim_formats::text(text, max, multiline)
            .map_err(|message| bad(format!("{field}.{name} {message}")))?;
        *slot = Some(stored);
    }
    if out.is_empty() {
        return Err(bad(format!(
            "{field} needs at least one member; send null to remove the address"
        )));
    }
    Ok(out)
}

/// The claims a body sets: `Some(None)` clears a claim.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClaimChanges {
    text: Vec<(&'static str, Option<String>)>,
    phone_number_verified: Option<bool>,
    address: Option<Option<Address>>,
}

/// Reads and checks every claim member of `fields`; the first bad one is the error, and
/// nothing is written (the caller writes only after this succeeds).
pub fn changes(fields: &Fields) -> Result<ClaimChanges, ApiError> {
    let mut out = ClaimChanges::default();
    for &claim in TEXT_CLAIMS {
        match fields.string_patch(claim)? {
            Patch::Absent => {}
            Patch::Null => out.text.push((claim, None)),
            Patch::Set(value) => out.text.push((claim, Some(rule(claim)(claim, &value)?))),
        }
    }
    out.phone_number_verified = fields.bool("phone_number_verified")?;
    if fields.has("address") {
        out.address = Some(
            fields
                .value("address")
                .map(|v| address("address", v))
                .transpose()?,
        );
    }
    Ok(out)
}

impl ClaimChanges {
    pub fn apply(&self, claims: &mut StandardClaims) {
        for (claim, value) in &self.text {
            if let Some(slot) = claims.text_mut(claim) {
                *slot = value.clone();
            }
        }
        if let Some(v) = self.phone_number_verified {
            claims.phone_number_verified = v;
        }
        if let Some(v) = &self.address {
            claims.address = v.clone();
        }
    }

    /// The columns to write: only the members sent (see users.rs `assignments`).
    pub fn assign(&self, a: &mut Assignments) {
        for (claim, value) in &self.text {
            a.set(claim, SqlValue::opt_text(value.clone()));
        }
        if let Some(v) = self.phone_number_verified {
            a.set("phone_number_verified", SqlValue::Bool(v));
        }
        if let Some(v) = &self.address {
            a.set(
                "address",
                SqlValue::opt_text(v.as_ref().map(Address::to_column)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(body: Value) -> Result<ClaimChanges, ApiError> {
        changes(&Fields::new(body, FIELDS).unwrap())
    }

    fn field_of(body: Value) -> String {
        read(body.clone())
            .expect_err(&body.to_string())
            .field
            .unwrap()
    }

    #[test]
    fn the_fields_are_the_text_claims_and_two_more() {
        assert_eq!(FIELDS.len(), TEXT_CLAIMS.len() + 2);
        for claim in TEXT_CLAIMS {
            assert!(FIELDS.contains(claim));
        }
    }

    #[test]
    fn valid_claims_are_stored_and_written_as_sent() {
        let body = json!({
            "given_name": " Jane ", "family_name": "Doe", "middle_name": "Q", "nickname": "JD",
            "profile": "https://acme.eu/jane", "website": "http://jane.example/",
            "gender": "female", "birthdate": "0000-02-29", "zoneinfo": "Europe/Paris",
            "locale": "fr-FR", "phone_number": "+33123456789", "phone_number_verified": true,
            "address": {"street_address": "1 rue de Rivoli\nBât. A", "locality": "Paris",
                        "postal_code": "75001", "country": "FR", "region": null}
        });
        let c = read(body).unwrap();
        let mut claims = StandardClaims::default();
        c.apply(&mut claims);
        assert_eq!(claims.given_name.as_deref(), Some("Jane"));
        assert_eq!(claims.zoneinfo.as_deref(), Some("Europe/Paris"));
        assert!(claims.phone_number_verified);
        let address = claims.address.clone().unwrap();
        assert_eq!(address.region, None);
        assert_eq!(
            address.street_address.as_deref(),
            Some("1 rue de Rivoli\nBât. A")
        );
        let mut a = Assignments::default();
        c.assign(&mut a);
        assert_eq!(a.columns().len(), FIELDS.len());
        assert_eq!(
            a.get("address"),
            Some(&SqlValue::Text(
                "{\"street_address\":\"1 rue de Rivoli\\nBât. A\",\"locality\":\"Paris\",\"postal_code\":\"75001\",\"country\":\"FR\"}".into()
            ))
        );
    }

    #[test]
    fn null_clears_and_absent_keeps() {
        let c = read(json!({"locale": null, "address": null})).unwrap();
        let mut a = Assignments::default();
        c.assign(&mut a);
        assert_eq!(a.columns(), ["locale", "address"]);
        assert_eq!(a.get("locale"), Some(&SqlValue::Null));
        assert_eq!(a.get("address"), Some(&SqlValue::Null));
        let mut claims = StandardClaims {
            locale: Some("en".into()),
            nickname: Some("kept".into()),
            address: Some(Address {
                country: Some("FR".into()),
                ..Address::default()
            }),
            ..StandardClaims::default()
        };
        c.apply(&mut claims);
        assert_eq!(
            (claims.locale, claims.address, claims.nickname.as_deref()),
            (None, None, Some("kept"))
        );
        let mut none = Assignments::default();
        read(json!({})).unwrap().assign(&mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn each_bad_value_names_its_member() {
        for (body, field) in [
            (json!({"given_name": ""}), "given_name"),
            (json!({"family_name": "x".repeat(201)}), "family_name"),
            (json!({"middle_name": 5}), "middle_name"),
            (json!({"nickname": "a\u{7}b"}), "nickname"),
            (json!({"profile": "ftp://acme.eu/jane"}), "profile"),
            (json!({"profile": "acme.eu/jane"}), "profile"),
            (json!({"website": "javascript:alert(1)"}), "website"),
            (json!({"gender": "x".repeat(65)}), "gender"),
            (json!({"birthdate": "1990-02-30"}), "birthdate"),
            (json!({"zoneinfo": "Mars/Olympus_Mons"}), "zoneinfo"),
            (json!({"locale": "en_US"}), "locale"),
            (json!({"phone_number": "+1 425 555 1212"}), "phone_number"),
            (
                json!({"phone_number_verified": "yes"}),
                "phone_number_verified",
            ),
            (json!({"address": "1 Main St"}), "address"),
            (json!({"address": {}}), "address"),
            (json!({"address": {"region": null}}), "address"),
            (json!({"address": {"street": "1 Main St"}}), "address"),
            (json!({"address": {"country": 33}}), "address"),
            (json!({"address": {"locality": "a\nb"}}), "address"),
            (
                json!({"address": {"formatted": "x".repeat(501)}}),
                "address",
            ),
            (json!({"given_name": "ok", "locale": "no_NO"}), "locale"),
        ] {
            assert_eq!(field_of(body.clone()), field, "{body}");
        }
    }

    #[test]
    fn field_rules_name_the_field_they_are_given() {
        for (rule, bad) in [
            (birthdate as Rule, "1990-13-01"),
            (zoneinfo, "Nowhere"),
            (locale, "e"),
            (phone_number, "555"),
            (gender, " "),
        ] {
            assert_eq!(
                rule("member", bad).unwrap_err().field.as_deref(),
                Some("member")
            );
        }
        assert_eq!(gender("gender", " diverse ").unwrap(), "diverse");
    }
}
