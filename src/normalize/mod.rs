//! API records → output rows: an item's members looked up by name in any case ([`item`]), exact
//! decoding of wire values into typed cells ([`decode`]).
//!
//! In: item JSON as the API sent it. Out: typed cells, or an error naming why a value does not
//! fit its column. It does not fetch, and it does not write files.

pub mod decode;
pub mod fx;
pub mod item;
pub mod rows;
