//! Small helpers over the D1 binding: argument conversion and constraint-error detection.

use wasm_bindgen::JsValue;

/// A nullable text argument.
pub fn opt_text(value: Option<&str>) -> JsValue {
    value.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

/// Integers travel to D1 as JavaScript numbers (exact up to 2^53, plenty for Unix seconds).
pub fn int(value: i64) -> JsValue {
    JsValue::from_f64(value as f64)
}

/// A nullable integer argument.
pub fn opt_int(value: Option<i64>) -> JsValue {
    value.map(int).unwrap_or(JsValue::NULL)
}

pub fn boolean(value: bool) -> JsValue {
    JsValue::from_f64(if value { 1.0 } else { 0.0 })
}

/// Whether a D1 error is a UNIQUE or PRIMARY KEY violation (a duplicate → 409, not 500).
pub fn is_unique_violation(err: &worker::Error) -> bool {
    let text = err.to_string();
    text.contains("UNIQUE constraint failed") || text.contains("PRIMARY KEY")
}

/// SQLite has no boolean: D1 returns 0/1 (or null). For `#[serde(deserialize_with)]`.
pub fn int_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    use serde::Deserialize;
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::Number(n) => n.as_f64().unwrap_or(0.0) != 0.0,
        _ => false,
    })
}

/// Whether a D1 error is a FOREIGN KEY violation (the row it points at is gone).
pub fn is_foreign_key_violation(err: &worker::Error) -> bool {
    err.to_string().contains("FOREIGN KEY constraint failed")
}

/// A list column computed by `json_group_array` (D1 returns it as JSON text), or absent. For
/// `#[serde(default, deserialize_with)]`.
pub fn json_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::Deserialize;
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::String(text) => serde_json::from_str(&text).map_err(D::Error::custom),
        other => serde_json::from_value(other).map_err(D::Error::custom),
    }
}

/// A column holding JSON text (an object or a list), or NULL for the type's default. For
/// `#[serde(default, deserialize_with)]`.
pub fn json_text<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    use serde::Deserialize;
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(T::default()),
        serde_json::Value::String(text) => serde_json::from_str(&text).map_err(D::Error::custom),
        other => serde_json::from_value(other).map_err(D::Error::custom),
    }
}

/// Whether a D1 error is a NOT NULL violation: in Clavex, a sub-select that found no row (a group
/// named in a write was deleted meanwhile), which aborts the whole batch.
pub fn is_not_null_violation(err: &worker::Error) -> bool {
    err.to_string().contains("NOT NULL constraint failed")
}

/// The first row of a batched read's result (the batch's counterpart of `Stmt::first`).
pub fn first_row<T: serde::de::DeserializeOwned>(
    result: &worker::D1Result,
) -> worker::Result<Option<T>> {
    Ok(result.results::<T>()?.into_iter().next())
}
