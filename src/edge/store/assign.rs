//! Column assignments for an UPDATE that writes only what a request changes (issue 15, finding
//! 10). An update that reads a row and writes every column back silently reverts whatever another
//! request changed in between — a `PATCH {"require_mfa": true}` racing a rename could lose the
//! second factor. `UPDATE … SET` only the members sent cannot: each column holds the last value
//! written to it.
//!
//! Column names come from the code, never from a request (they are `&'static str`), so the SET
//! clause is safe to format; the values travel as bindings.

/// A value to bind, decided without any Worker type (validation stays testable natively).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Bool(bool),
    Null,
    /// Written only where the column is NULL (`column = COALESCE(column, ?)`): a secret for a
    /// client that has none, never replacing one another request set.
    IfNull(String),
}

impl SqlValue {
    pub fn opt_text(value: Option<String>) -> SqlValue {
        value.map_or(SqlValue::Null, SqlValue::Text)
    }

    /// A list of strings as the JSON text the column holds.
    pub fn json_list(values: &[String]) -> SqlValue {
        SqlValue::Text(serde_json::to_string(values).expect("a list of strings serializes"))
    }

    pub fn to_js(&self) -> wasm_bindgen::JsValue {
        use crate::edge::store::d1;
        match self {
            SqlValue::Text(t) | SqlValue::IfNull(t) => wasm_bindgen::JsValue::from_str(t),
            SqlValue::Int(i) => d1::int(*i),
            SqlValue::Bool(b) => d1::boolean(*b),
            SqlValue::Null => wasm_bindgen::JsValue::NULL,
        }
    }
}

/// The columns one UPDATE sets, in the order they were given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assignments {
    pairs: Vec<(&'static str, SqlValue)>,
}

impl Assignments {
    /// Set `column` (a later value for the same column replaces the earlier one).
    pub fn set(&mut self, column: &'static str, value: SqlValue) {
        match self.pairs.iter_mut().find(|(c, _)| *c == column) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((column, value)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn columns(&self) -> Vec<&'static str> {
        self.pairs.iter().map(|(c, _)| *c).collect()
    }

    pub fn get(&self, column: &str) -> Option<&SqlValue> {
        self.pairs
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| v)
    }

    /// `a = ?3, b = ?4`: the parameters numbered from `first`, in order. Pure.
    pub fn set_clause(&self, first: usize) -> String {
        self.pairs
            .iter()
            .enumerate()
            .map(|(i, (column, value))| match value {
                SqlValue::IfNull(_) => format!("{column} = COALESCE({column}, ?{})", first + i),
                _ => format!("{column} = ?{}", first + i),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The values, in the order of `set_clause`.
    pub fn values(&self) -> Vec<wasm_bindgen::JsValue> {
        self.pairs.iter().map(|(_, v)| v.to_js()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_columns_given_are_set_numbered_in_order() {
        let mut a = Assignments::default();
        assert!(a.is_empty());
        a.set("disabled", SqlValue::Bool(true));
        a.set("name", SqlValue::Null);
        a.set("disabled", SqlValue::Bool(false));
        assert_eq!(a.set_clause(3), "disabled = ?3, name = ?4");
        a.set("secret_hash", SqlValue::IfNull("h".into()));
        assert_eq!(
            a.set_clause(1),
            "disabled = ?1, name = ?2, secret_hash = COALESCE(secret_hash, ?3)"
        );
        assert_eq!(a.columns(), ["disabled", "name", "secret_hash"]);
        assert_eq!(a.get("disabled"), Some(&SqlValue::Bool(false)));
        assert_eq!(a.get("email"), None);
    }

    #[test]
    fn lists_are_stored_as_json_text() {
        assert_eq!(
            SqlValue::json_list(&["a".into(), "b\"".into()]),
            SqlValue::Text(r#"["a","b\""]"#.into())
        );
        assert_eq!(SqlValue::opt_text(None), SqlValue::Null);
    }
}
