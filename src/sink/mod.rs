//! Output, and only output: Parquet and CSV writers following the dataset schemas, part files,
//! where each file goes (`layout`), the manifest's types, the one atomic publish (`staging`), the output folder's lock and
//! retention, hard links to the previous snapshot's unchanged files (`share`), and a reader of published files.
//!
//! In: typed rows per dataset and scope. Out: files and published folders. It does not fetch,
//! decode, convert, match or tie out anything, and imports only the table vocabulary (`tabular`) and the page types (`model`).
pub mod delta;
pub mod fetch;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod part;
pub mod read;
pub mod retention;
pub mod share;
pub mod signature;
pub mod staging;
pub mod store;
pub mod totals;
pub mod writer;
