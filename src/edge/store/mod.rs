//! D1 and KV storage adapters.
