//! Reading a JSON request body field by field, so that every mistake names its field: the body
//! must be an object, unknown members are refused (a misspelt `redirect_uri` must not be silently
//! dropped), and a member of the wrong JSON type is a 400 `invalid_field`, never a 500.
//! Pure: unit-tested natively.

use serde_json::{Map, Value};

use crate::admin::error::ApiError;

/// A member of a PATCH body: absent (leave as is), `null` (clear), or a new value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patch<T> {
    Absent,
    Null,
    Set(T),
}

pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// Accepts only a JSON object whose members are all in `allowed`.
    pub fn new(body: Value, allowed: &[&str]) -> Result<Fields, ApiError> {
        let Value::Object(map) = body else {
            return Err(ApiError::invalid_request("the body must be a JSON object"));
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(ApiError::invalid_field(
                unknown,
                format!("unknown field {unknown}; allowed: {}", allowed.join(", ")),
            ));
        }
        Ok(Fields { map })
    }

    /// The names of the members present, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.map.keys().cloned().collect();
        names.sort();
        names
    }

    /// Whether the body has this member at all (even `null`).
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// A member's raw JSON value; `null` counts as absent.
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// A string member; `null` counts as absent.
    pub fn string(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::invalid_field(
                name,
                format!("{name} must be a string"),
            )),
        }
    }

    pub fn required_string(&self, name: &str) -> Result<String, ApiError> {
        self.string(name)?
            .ok_or_else(|| ApiError::invalid_field(name, format!("{name} is required")))
    }

    pub fn string_patch(&self, name: &str) -> Result<Patch<String>, ApiError> {
        match self.map.get(name) {
            None => Ok(Patch::Absent),
            Some(Value::Null) => Ok(Patch::Null),
            Some(Value::String(s)) => Ok(Patch::Set(s.clone())),
            Some(_) => Err(ApiError::invalid_field(
                name,
                format!("{name} must be a string or null"),
            )),
        }
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::invalid_field(
                name,
                format!("{name} must be true or false"),
            )),
        }
    }

    /// An integer within `range`; `null` counts as absent.
    pub fn int_in(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ApiError> {
        let bad = || {
            ApiError::invalid_field(
                name,
                format!(
                    "{name} must be an integer from {} to {}",
                    range.start(),
                    range.end()
                ),
            )
        };
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) if range.contains(&v) => Ok(Some(v)),
                _ => Err(bad()),
            },
            Some(_) => Err(bad()),
        }
    }

    /// An array of strings; `null` counts as absent.
    pub fn string_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::invalid_field(
                        name,
                        format!("{name} must be an array of strings"),
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid_field(
                name,
                format!("{name} must be an array of strings"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_objects_are_bodies() {
        let err = Fields::new(json!([1, 2]), &["a"]).err().unwrap();
        assert_eq!((err.status, err.error), (400, "invalid_request"));
        assert!(Fields::new(json!("text"), &["a"]).is_err());
    }

    #[test]
    fn unknown_members_are_named() {
        let err = Fields::new(json!({"a": 1, "redirect_uri": "x"}), &["a"])
            .err()
            .unwrap();
        assert_eq!(err.error, "invalid_field");
        assert_eq!(err.field.as_deref(), Some("redirect_uri"));
    }

    #[test]
    fn wrong_types_are_invalid_fields_not_panics() {
        let f = Fields::new(
            json!({"s": 5, "b": "yes", "l": "one", "m": ["a", 2], "p": 1}),
            &["s", "b", "l", "m", "p"],
        )
        .unwrap();
        for (name, err) in [
            ("s", f.string("s").err()),
            ("b", f.bool("b").err()),
            ("l", f.string_list("l").err()),
            ("m", f.string_list("m").err()),
            ("p", f.string_patch("p").err()),
        ] {
            let err = err.unwrap_or_else(|| panic!("{name} accepted"));
            assert_eq!(err.field.as_deref(), Some(name));
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn null_absent_and_values() {
        let f = Fields::new(
            json!({"s": "x", "n": null, "l": ["a"], "b": true}),
            &["s", "n", "l", "b", "z"],
        )
        .unwrap();
        assert_eq!(f.string("s").unwrap().as_deref(), Some("x"));
        assert_eq!(f.string("n").unwrap(), None);
        assert_eq!(f.string("z").unwrap(), None);
        assert_eq!(f.string_patch("n").unwrap(), Patch::Null);
        assert_eq!(f.string_patch("z").unwrap(), Patch::Absent);
        assert_eq!(f.string_patch("s").unwrap(), Patch::Set("x".into()));
        assert_eq!(f.string_list("l").unwrap(), Some(vec!["a".to_string()]));
        assert_eq!(f.bool("b").unwrap(), Some(true));
        assert!(f.has("n") && !f.has("z"));
        let err = f.required_string("z").err().unwrap();
        assert_eq!(err.field.as_deref(), Some("z"));
    }
}
