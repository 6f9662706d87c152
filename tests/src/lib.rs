//! Cross-crate integration and stress harnesses. The harnesses themselves live in this crate's `tests/`
//! folder; this library holds helpers they share.
