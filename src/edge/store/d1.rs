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

pub fn boolean(value: bool) -> JsValue {
    JsValue::from_f64(if value { 1.0 } else { 0.0 })
}

/// Whether a D1 error is a UNIQUE or PRIMARY KEY violation (a duplicate → 409, not 500).
pub fn is_unique_violation(err: &worker::Error) -> bool {
    let text = err.to_string();
    text.contains("UNIQUE constraint failed") || text.contains("PRIMARY KEY")
}
