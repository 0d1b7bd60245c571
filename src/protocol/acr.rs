//! Which authentication context a sign-in is held to, and which `acr` it reports (OpenID Connect
//! Core §2, §3.1.2.1, §5.5.1.1). Two sources, with different force:
//!
//! - `acr_values` is a preference list: "Space-separated string that specifies the acr values
//!   that the Authorization Server is being requested to use for processing this Authentication
//!   Request, with the values appearing in order of preference" (§3.1.2.1). The first value, in
//!   order, that the sign-in already satisfies is used. A value that needs the second factor the
//!   sign-in lacks is asked for when no earlier value is satisfied — so `urn:clavex:acr:mfa` first
//!   does ask for the factor — except that a user with no second factor set up is not made to
//!   enrol for a preference when a later value needs none (`mfa pwd` means "a second factor if the
//!   user has one, else the password"). A lone MFA value, or MFA values only, still asks for the
//!   factor (enrolment for a user without one), as before. Unknown values are skipped. The same
//!   holds for the `claims` parameter's non-essential `acr` values when `acr_values` is absent.
//! - The `claims` parameter's `{"id_token": {"acr": {"essential": true, "values": [...]}}}` is a
//!   demand: one of the (known) values must be met, so the second factor is required when none of
//!   them is satisfied without it. "If this is an Essential Claim and the requirement cannot be
//!   met, then the Authorization Server MUST treat that outcome as a failed authentication
//!   attempt" (§5.5.1.1): a demand naming no value Clavex knows is refused.
//!
//! A user who set up a second factor is asked for it whatever is asked here, and the
//! organization's and the client's requirements apply on top (protocol/mfa.rs, protocol/gate.rs).
//! Pure: the gate calls `choose` with the request and the sign-in's factors.

use serde_json::Value;

use crate::protocol::mfa::{
    ACR_MFA, ACR_PASSWORD, ACR_PHR, MFA_ACRS, PASSKEY, PASSKEY_UV, PWD, UPSTREAM, has_second_factor,
};

/// What the acr values ask of this sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// The chosen value needs a second factor the sign-in does not have yet.
    pub second_factor: bool,
    /// The chosen value, when it is one Clavex issues (`mfa::ACR_VALUES_SUPPORTED`): the ID
    /// token's `acr`. `None`: no value was chosen, and `acr` follows the factors (`mfa::acr`).
    pub acr: Option<&'static str>,
}

/// An essential `acr` claim none of whose values Clavex knows (Core §5.5.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmet;

/// What a value needs of a sign-in; `None` for a value Clavex does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Password,
    SecondFactor,
    /// `phr`: a user-verified passkey. Only a passkey sign-in meets it, so it is never "asked
    /// for" like the second factor (a TOTP code would not meet it): unmet, it is left out.
    PhishingResistant,
}

fn needs(value: &str) -> Option<Needs> {
    if value == ACR_PASSWORD {
        Some(Needs::Password)
    } else if MFA_ACRS.contains(&value) {
        Some(Needs::SecondFactor)
    } else if value == ACR_PHR {
        Some(Needs::PhishingResistant)
    } else {
        None
    }
}

fn satisfied(needs: Needs, factors: u8) -> bool {
    match needs {
        // The one-factor level: a password, or a sign-in at an upstream identity provider
        // (protocol/upstream.rs) — `acr` is the level reached, `amr` says how (`pwd`, `fed`).
        Needs::Password => factors & (PWD | UPSTREAM | PASSKEY) != 0,
        Needs::SecondFactor => has_second_factor(factors),
        Needs::PhishingResistant => factors & PASSKEY_UV != 0,
    }
}

/// The value as Clavex issues it in `acr`, when it is one of ours.
fn issued(value: &str) -> Option<&'static str> {
    [ACR_PASSWORD, ACR_MFA, ACR_PHR]
        .into_iter()
        .find(|v| *v == value)
}

/// The `acr` member of the `claims` parameter's `id_token` object: its values (`values`, or a
/// single `value`) and whether it is essential.
fn claims_acr(claims: Option<&str>) -> Option<(bool, Vec<String>)> {
    let parsed: Value = serde_json::from_str(claims?).ok()?;
    let acr = parsed.get("id_token")?.get("acr")?;
    let essential = acr.get("essential").and_then(Value::as_bool) == Some(true);
    let values = match (acr.get("values"), acr.get("value")) {
        (Some(Value::Array(list)), _) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        (_, Some(Value::String(one))) => vec![one.clone()],
        _ => Vec::new(),
    };
    Some((essential, values))
}

/// What `acr_values` and the `claims` parameter ask of a sign-in that has `factors`, for a user
/// who has (`enrolled`) or has not set up a second factor.
pub fn choose(
    acr_values: Option<&str>,
    claims: Option<&str>,
    factors: u8,
    enrolled: bool,
) -> Result<Choice, Unmet> {
    let claimed = claims_acr(claims);
    if let Some((true, values)) = &claimed {
        return demand(values, factors);
    }
    let preference: Vec<String> = match (acr_values, claimed) {
        (Some(list), _) => list
            .split(' ')
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect(),
        (None, Some((false, values))) => values,
        _ => Vec::new(),
    };
    Ok(prefer(&preference, factors, enrolled))
}

/// An essential claim: the first value (in its order) already met, else the first that the
/// second factor would meet.
fn demand(values: &[String], factors: u8) -> Result<Choice, Unmet> {
    let known: Vec<(&str, Needs)> = values
        .iter()
        .filter_map(|v| needs(v).map(|n| (v.as_str(), n)))
        .filter(|(_, n)| *n != Needs::PhishingResistant || satisfied(*n, factors))
        .collect();
    if let Some((value, _)) = known.iter().find(|(_, n)| satisfied(*n, factors)) {
        return Ok(Choice {
            second_factor: false,
            acr: issued(value),
        });
    }
    match known.first() {
        Some((value, _)) => Ok(Choice {
            second_factor: true,
            acr: issued(value),
        }),
        None => Err(Unmet),
    }
}

/// A preference list: the first known value already met is used; an unmet one (it needs the
/// second factor) is asked for if no earlier value was met — unless the user has no second factor
/// and a later value is met without one.
fn prefer(values: &[String], factors: u8, enrolled: bool) -> Choice {
    let known: Vec<(&str, Needs)> = values
        .iter()
        .filter_map(|v| needs(v).map(|n| (v.as_str(), n)))
        .filter(|(_, n)| *n != Needs::PhishingResistant || satisfied(*n, factors))
        .collect();
    for (i, (value, need)) in known.iter().enumerate() {
        if satisfied(*need, factors) {
            return Choice {
                second_factor: false,
                acr: issued(value),
            };
        }
        let later_met = known[i + 1..].iter().any(|(_, n)| satisfied(*n, factors));
        if enrolled || !later_met {
            return Choice {
                second_factor: true,
                acr: issued(value),
            };
        }
    }
    Choice {
        second_factor: false,
        acr: None,
    }
}

/// The chosen `acr` as it travels in a sealed code: one byte (0 when none was chosen).
pub fn to_byte(acr: Option<&str>) -> u8 {
    match acr {
        Some(ACR_PASSWORD) => 1,
        Some(ACR_MFA) => 2,
        Some(ACR_PHR) => 3,
        _ => 0,
    }
}

pub fn from_byte(byte: u8) -> Option<&'static str> {
    match byte {
        1 => Some(ACR_PASSWORD),
        2 => Some(ACR_MFA),
        3 => Some(ACR_PHR),
        _ => None,
    }
}

/// A stored `acr` (the grants table) back as one Clavex issues, if it is one.
pub fn from_stored(value: Option<&str>) -> Option<&'static str> {
    value.and_then(issued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mfa::OTP;

    const PAPE: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";

    fn pref(values: &str, factors: u8, enrolled: bool) -> Choice {
        choose(Some(values), None, factors, enrolled).unwrap()
    }

    fn ask(acr: &'static str) -> Choice {
        Choice {
            second_factor: true,
            acr: Some(acr),
        }
    }

    fn used(acr: &'static str) -> Choice {
        Choice {
            second_factor: false,
            acr: Some(acr),
        }
    }

    const NOTHING: Choice = Choice {
        second_factor: false,
        acr: None,
    };

    #[test]
    fn password_first_never_asks_for_the_factor() {
        let v = "urn:clavex:acr:pwd urn:clavex:acr:mfa";
        assert_eq!(pref(v, PWD, false), used(ACR_PASSWORD));
        assert_eq!(pref(v, PWD, true), used(ACR_PASSWORD));
        // A sign-in that has the factor anyway (an enrolled user is always asked) meets pwd first.
        assert_eq!(pref(v, PWD | OTP, true), used(ACR_PASSWORD));
    }

    #[test]
    fn mfa_first_asks_for_the_factor_of_a_user_who_has_one() {
        let v = "urn:clavex:acr:mfa urn:clavex:acr:pwd";
        assert_eq!(pref(v, PWD, true), ask(ACR_MFA));
        assert_eq!(pref(v, PWD | OTP, true), used(ACR_MFA));
        // Without one, the later password value is met: a preference does not force enrolment.
        assert_eq!(pref(v, PWD, false), used(ACR_PASSWORD));
    }

    #[test]
    fn mfa_alone_is_asked_for_and_enrolled_if_need_be() {
        assert_eq!(pref("urn:clavex:acr:mfa", PWD, false), ask(ACR_MFA));
        assert_eq!(pref("urn:clavex:acr:mfa", PWD, true), ask(ACR_MFA));
        assert_eq!(pref("urn:clavex:acr:mfa", PWD | OTP, false), used(ACR_MFA));
        // PAPE's multi-factor URI needs the factor too, but is not a value Clavex issues.
        assert_eq!(
            pref(PAPE, PWD, false),
            Choice {
                second_factor: true,
                acr: None
            }
        );
    }

    #[test]
    fn unknown_values_are_skipped() {
        assert_eq!(
            pref("gold urn:clavex:acr:pwd", PWD, false),
            used(ACR_PASSWORD)
        );
        assert_eq!(pref("gold  silver", PWD, true), NOTHING);
        assert_eq!(pref("0 urn:clavex:acr:mfa", PWD, false), ask(ACR_MFA));
        assert_eq!(choose(None, None, PWD, true), Ok(NOTHING));
    }

    #[test]
    fn an_essential_acr_claim_is_a_demand() {
        let claims = |values: &str| {
            format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":{values}}}}}}}"#)
        };
        let mfa = claims(r#"["urn:clavex:acr:mfa"]"#);
        assert_eq!(choose(None, Some(&mfa), PWD, false), Ok(ask(ACR_MFA)));
        assert_eq!(
            choose(None, Some(&mfa), PWD | OTP, false),
            Ok(used(ACR_MFA))
        );
        // It overrides a preference that would have settled for less.
        assert_eq!(
            choose(Some("urn:clavex:acr:pwd"), Some(&mfa), PWD, false),
            Ok(ask(ACR_MFA))
        );
        // One of its values already met: nothing more, and acr is that value.
        let either = claims(r#"["urn:clavex:acr:mfa","urn:clavex:acr:pwd"]"#);
        assert_eq!(
            choose(None, Some(&either), PWD, false),
            Ok(used(ACR_PASSWORD))
        );
        assert_eq!(
            choose(None, Some(&either), PWD | OTP, true),
            Ok(used(ACR_MFA))
        );
        // `value` instead of `values`.
        let one = r#"{"id_token":{"acr":{"essential":true,"value":"urn:clavex:acr:mfa"}}}"#;
        assert_eq!(choose(None, Some(one), PWD, true), Ok(ask(ACR_MFA)));
        // Nothing Clavex knows: cannot be met.
        assert_eq!(
            choose(None, Some(&claims(r#"["gold"]"#)), PWD, true),
            Err(Unmet)
        );
        assert_eq!(choose(None, Some(&claims("[]")), PWD, true), Err(Unmet));
    }

    #[test]
    fn a_voluntary_acr_claim_is_a_preference_and_a_bare_one_asks_nothing() {
        let voluntary = r#"{"id_token":{"acr":{"values":["urn:clavex:acr:mfa"]}}}"#;
        assert_eq!(choose(None, Some(voluntary), PWD, false), Ok(ask(ACR_MFA)));
        // acr_values, when sent, is the preference list.
        assert_eq!(
            choose(Some("urn:clavex:acr:pwd"), Some(voluntary), PWD, false),
            Ok(used(ACR_PASSWORD))
        );
        for bare in [
            r#"{"id_token":{"acr":null}}"#,
            r#"{"userinfo":{"acr":{"essential":true,"values":["urn:clavex:acr:mfa"]}}}"#,
            r#"{"id_token":{"email":{"essential":true}}}"#,
        ] {
            assert_eq!(choose(None, Some(bare), PWD, false), Ok(NOTHING), "{bare}");
        }
    }

    #[test]
    fn the_chosen_acr_travels_as_one_byte() {
        for acr in [None, Some(ACR_PASSWORD), Some(ACR_MFA)] {
            assert_eq!(from_byte(to_byte(acr)), acr);
        }
        assert_eq!(to_byte(Some(PAPE)), 0);
        assert_eq!(from_stored(Some(ACR_MFA)), Some(ACR_MFA));
        assert_eq!(from_stored(Some("gold")), None);
    }

    #[test]
    fn an_upstream_sign_in_meets_the_one_factor_level_only() {
        use crate::protocol::mfa::UPSTREAM_MFA;
        assert_eq!(
            pref("urn:clavex:acr:pwd", UPSTREAM, false),
            used(ACR_PASSWORD)
        );
        assert!(
            choose(Some("urn:clavex:acr:mfa"), None, UPSTREAM, false)
                .unwrap()
                .second_factor
        );
        assert_eq!(
            pref("urn:clavex:acr:mfa", UPSTREAM | UPSTREAM_MFA, false),
            used(ACR_MFA)
        );
    }
}
