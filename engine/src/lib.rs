//! Floe engine: the version store, the commit protocol and the read/write pipeline (issue 4).
//!
//! Only the crate exists so far.
