//! The standard claims of OpenID Connect Core §5.1 a user may have besides the ones Clavex had
//! from the start (`name`, `picture`, `email`, …): as stored (one column each on `users`, the
//! address as one JSON object) and as released (§5.4). Pure.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The string claims, by their claim name (which is also their column name), in §5.1's order.
pub const TEXT_CLAIMS: &[&str] = &[
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
];

/// §5.1.1: the members an address may have, all strings.
pub const ADDRESS_MEMBERS: &[&str] = &[
    "formatted",
    "street_address",
    "locality",
    "region",
    "postal_code",
    "country",
];

/// §5.1.1 Address Claim. Only the members that have a value are stored and released.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

impl Address {
    pub fn member_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "formatted" => &mut self.formatted,
            "street_address" => &mut self.street_address,
            "locality" => &mut self.locality,
            "region" => &mut self.region,
            "postal_code" => &mut self.postal_code,
            "country" => &mut self.country,
            _ => return None,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == Address::default()
    }

    /// The JSON text stored in the `address` column.
    pub fn to_column(&self) -> String {
        serde_json::to_string(self).expect("an address serializes")
    }
}

/// A user's §5.1 claims beyond the original profile. Read from the user row (flattened into
/// it: the columns carry the claim names), shown by the admin API with every member (`null`
/// when unset) and released by scope with only the members that have a value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StandardClaims {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub middle_name: Option<String>,
    pub nickname: Option<String>,
    pub profile: Option<String>,
    pub website: Option<String>,
    pub gender: Option<String>,
    pub birthdate: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
    pub phone_number: Option<String>,
    #[serde(deserialize_with = "int_bool")]
    pub phone_number_verified: bool,
    /// Stored as JSON text; an unreadable column reads as no address rather than failing the
    /// user's every sign-in.
    #[serde(deserialize_with = "address_column")]
    pub address: Option<Address>,
}

impl StandardClaims {
    /// The string claim `name` (one of `TEXT_CLAIMS`).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.text_ref(name).and_then(|v| v.as_deref())
    }

    fn text_ref(&self, name: &str) -> Option<&Option<String>> {
        Some(match name {
            "given_name" => &self.given_name,
            "family_name" => &self.family_name,
            "middle_name" => &self.middle_name,
            "nickname" => &self.nickname,
            "profile" => &self.profile,
            "website" => &self.website,
            "gender" => &self.gender,
            "birthdate" => &self.birthdate,
            "zoneinfo" => &self.zoneinfo,
            "locale" => &self.locale,
            "phone_number" => &self.phone_number,
            _ => return None,
        })
    }

    pub fn text_mut(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "given_name" => &mut self.given_name,
            "family_name" => &mut self.family_name,
            "middle_name" => &mut self.middle_name,
            "nickname" => &mut self.nickname,
            "profile" => &mut self.profile,
            "website" => &mut self.website,
            "gender" => &mut self.gender,
            "birthdate" => &mut self.birthdate,
            "zoneinfo" => &mut self.zoneinfo,
            "locale" => &mut self.locale,
            "phone_number" => &mut self.phone_number,
            _ => return None,
        })
    }

    /// The claim `name` as released, or `None` when it has no value (§5.4 releases only claims
    /// that have one). `phone_number_verified` goes with a phone number only: without one it
    /// would describe nothing.
    pub fn claim(&self, name: &str) -> Option<Value> {
        match name {
            "phone_number_verified" => self
                .phone_number
                .as_ref()
                .map(|_| json!(self.phone_number_verified)),
            "address" => self
                .address
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| json!(a)),
            _ => self.text(name).filter(|v| !v.is_empty()).map(|v| json!(v)),
        }
    }
}

/// SQLite has no boolean: D1 returns 0/1 (a JSON boolean is accepted too).
fn int_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        _ => false,
    })
}

/// The `address` column: JSON text (D1 returns it as a string), or null.
fn address_column<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Address>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(text) => serde_json::from_str(&text).ok(),
        object @ Value::Object(_) => serde_json::from_value(object).ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_claim_has_a_slot_and_only_those() {
        let mut c = StandardClaims::default();
        for name in TEXT_CLAIMS {
            *c.text_mut(name).unwrap() = Some(format!("v-{name}"));
            assert_eq!(c.text(name), Some(format!("v-{name}").as_str()));
            assert_eq!(c.claim(name), Some(json!(format!("v-{name}"))));
        }
        assert!(c.text_mut("address").is_none() && c.text("email").is_none());
        let mut a = Address::default();
        for name in ADDRESS_MEMBERS {
            assert!(a.member_mut(name).is_some(), "{name}");
        }
        assert!(a.member_mut("street").is_none());
    }

    #[test]
    fn only_claims_with_a_value_are_released() {
        let none = StandardClaims::default();
        for name in TEXT_CLAIMS
            .iter()
            .chain(&["phone_number_verified", "address"])
        {
            assert_eq!(none.claim(name), None, "{name}");
        }
        let c = StandardClaims {
            phone_number: Some("+14255551212".into()),
            address: Some(Address {
                locality: Some("Springfield".into()),
                ..Address::default()
            }),
            ..StandardClaims::default()
        };
        assert_eq!(c.claim("phone_number_verified"), Some(json!(false)));
        assert_eq!(c.claim("address"), Some(json!({"locality": "Springfield"})));
        let empty_address = StandardClaims {
            address: Some(Address::default()),
            ..StandardClaims::default()
        };
        assert_eq!(empty_address.claim("address"), None);
    }

    #[test]
    fn read_from_a_row_as_d1_returns_it() {
        let row = json!({
            "given_name": "Jane", "phone_number": "+14255551212", "phone_number_verified": 1,
            "address": "{\"country\":\"FR\",\"postal_code\":\"75001\"}", "locale": null,
            "username": "jane"
        });
        let c: StandardClaims = serde_json::from_value(row).unwrap();
        assert_eq!(c.given_name.as_deref(), Some("Jane"));
        assert!(c.phone_number_verified);
        assert_eq!(c.locale, None);
        let a = c.address.unwrap();
        assert_eq!(
            (a.country.as_deref(), a.postal_code.as_deref()),
            (Some("FR"), Some("75001"))
        );
        assert_eq!(
            a.to_column(),
            "{\"postal_code\":\"75001\",\"country\":\"FR\"}"
        );
        let bare: StandardClaims = serde_json::from_value(json!({})).unwrap();
        assert_eq!(bare, StandardClaims::default());
        let broken: StandardClaims =
            serde_json::from_value(json!({"address": "not json", "phone_number_verified": 0}))
                .unwrap();
        assert_eq!(broken.address, None);
    }

    #[test]
    fn the_admin_view_shows_every_member() {
        let v = serde_json::to_value(StandardClaims::default()).unwrap();
        for name in TEXT_CLAIMS.iter().chain(&["address"]) {
            assert_eq!(v[name], Value::Null, "{name}");
        }
        assert_eq!(v["phone_number_verified"], false);
    }
}
