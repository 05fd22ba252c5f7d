//! API records → record batches: an item's members looked up by name in any case ([`item`]),
//! exact decoding of wire values ([`decode`]), a page's items into one batch of a dataset's
//! columns ([`items`]), and the reporting-currency columns added to it ([`fx`]).
//!
//! In: item JSON as the API sent it. Out: record batches, or an error naming why a value does not
//! fit its column. It does not fetch, and it does not write files.

pub mod decode;
pub mod fx;
pub mod item;
pub mod items;
