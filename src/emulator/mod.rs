//! The local Partner Center: a seeded world generator and an HTTP server that speaks the API's
//! paths, envelopes, paging styles, errors and faults over that world, and the v2 reconciliation
//! export on Microsoft Graph with the blob storage it hands files out from.
//!
//! In: its command line (`args`), generator arguments or a world folder. Out: a world folder
//! (`generate`) or a loopback HTTP server (`serve`). It depends on `model` (and on `clock` for
//! the time it reads) only, and knows nothing of the pipeline.

pub mod args;
pub mod server;
pub mod world;
