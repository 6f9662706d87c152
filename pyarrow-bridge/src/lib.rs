//! Floe's Python module (issue 5). Only the crate exists so far.
