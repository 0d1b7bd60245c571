//! (admin API work in progress)
