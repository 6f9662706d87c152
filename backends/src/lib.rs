//! Floe storage backends.
//!
//! The `Storage` trait, its memory, LMDB and S3 implementations and the conformance suite live here
//! (issue 3). Only the crate exists so far, so that the workspace shows the layering:
//! `formats` <- `backends` <- `engine` <- `pyarrow-bridge`.
