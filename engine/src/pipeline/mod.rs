//! The parallel pipelines: encode-and-store on write, fetch-and-decode on read (design/pipeline.md).

pub(crate) mod codes;
pub(crate) mod handover;
pub(crate) mod read;
pub(crate) mod write;
