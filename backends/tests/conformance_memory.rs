//! The conformance suite on the memory backend.

use std::sync::Arc;

use floe_backends::{MemoryStorage, Storage};

floe_backends::conformance_tests!(|| -> Arc<dyn Storage> { Arc::new(MemoryStorage::new()) });
