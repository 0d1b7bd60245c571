//! (filled in by the following modules)
