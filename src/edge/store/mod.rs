//! Storage adapters. D1 (strongly consistent, one primary): organizations, clients, users,
//! signing keys, grants and tokens. KV (eventually consistent, no compare-and-swap): codes and
//! SSO sessions, never relied on for single use.

pub mod clients;
pub mod d1;
pub mod grants;
pub mod keys;
pub mod kv;
pub mod orgs;
pub mod users;
