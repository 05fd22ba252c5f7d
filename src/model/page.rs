//! What travels from extraction to the stages: a page of items exactly as received, and the
//! events of a sequence (pages, restarts, completion, "not ready"), with the lineage of the v2
//! exports and the file stem of a scope.
//!
//! In: nothing (types). Out: the spine every producer (the pager, the v2 exporter, the page
//! cache, the raw archive) and every consumer (the snapshot, the dump, the archive, the progress)
//! share. It fetches and decodes nothing.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;

use crate::tabular::Dataset;

/// How an endpoint pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// A single resource (`GET …/{id}`): the whole body is one item.
    Single,
    /// A collection in one response.
    Unpaged,
    /// `size` + `offset`, next page in `links.next.uri`.
    Offset,
    /// `seekOperation=Next` + `MS-ContinuationToken`.
    Seek,
    /// Bytes that are not JSON (a PDF statement).
    Document,
    /// JSON lines from the files of a v2 export (spec §12): one item per non-empty line.
    Lines,
}

impl Paging {
    /// A stable name (`single`, `unpaged`, `offset`, `seek`, `document`).
    pub fn name(self) -> &'static str {
        match self {
            Paging::Single => "single",
            Paging::Unpaged => "unpaged",
            Paging::Offset => "offset",
            Paging::Seek => "seek",
            Paging::Document => "document",
            Paging::Lines => "lines",
        }
    }

    /// The paging style of a [`Paging::name`].
    pub fn from_name(name: &str) -> Option<Paging> {
        [Paging::Single, Paging::Unpaged, Paging::Offset, Paging::Seek, Paging::Document, Paging::Lines]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// Where the rows of a sequence served by the v2 export came from (spec §12.3).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct ExportLineage {
    /// The export operation.
    pub operation_id: String,
    /// Its manifest.
    pub manifest_id: String,
    /// The data version.
    pub etag: String,
    /// `full` or `basic`.
    pub attribute_set: String,
    /// The files read, in order.
    pub blobs: Vec<String>,
}

/// One page as received.
#[derive(Debug, Clone)]
pub struct Page {
    /// Dataset.
    pub dataset: Dataset,
    /// Scope.
    pub scope: String,
    /// Attempt of the sequence this page belongs to, from 1.
    pub attempt: u32,
    /// Page number within the attempt, from 1.
    pub number: u32,
    /// `MS-RequestId` of the request.
    pub request_id: String,
    /// URL fetched.
    pub url: String,
    /// When it arrived.
    pub fetched_at: chrono::DateTime<chrono::Utc>,
    /// The body exactly as received.
    pub body: Bytes,
    /// Byte ranges of the items within `body`.
    pub items: Vec<Range<usize>>,
    /// How the body holds its items.
    pub paging: Paging,
}

impl Page {
    /// The items' JSON text.
    pub fn item_texts(&self) -> impl Iterator<Item = &[u8]> {
        self.items.iter().map(|r| &self.body[r.clone()])
    }
}

/// What a sequence tells its consumer.
#[derive(Debug, Clone)]
pub enum Event {
    /// A page of items.
    Page(Page),
    /// Drop every page of this sequence received so far: it starts again from its first page.
    Restart {
        /// Dataset.
        dataset: Dataset,
        /// Scope.
        scope: String,
        /// The attempt that starts now.
        attempt: u32,
        /// Why.
        reason: String,
    },
    /// The sequence is complete.
    Done {
        /// Dataset.
        dataset: Dataset,
        /// Scope.
        scope: String,
        /// Attempt that completed.
        attempt: u32,
        /// Pages of that attempt.
        pages: u32,
        /// Items of that attempt.
        items: u64,
        /// The v2 export that served it.
        export: Option<Box<ExportLineage>>,
    },
    /// The sequence has no data yet, and no other API serves it: the v2 export kept answering
    /// "no data available" (code 5000) until its deadline, for a period v1 no longer serves. It
    /// ends the sequence without pages; the run reports it and publishes the rest.
    NotReady {
        /// Dataset.
        dataset: Dataset,
        /// Scope.
        scope: String,
        /// What the export said, and for how long.
        detail: String,
    },
}

/// A folder-safe name for a scope (`EUR/current` → `EUR-current`). A name of dots only (or
/// none) would name the folder itself or its parent: its dots become `-` too.
pub fn scope_name(scope: &str) -> String {
    let name: String = scope
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '-' })
        .collect();
    if name.chars().all(|c| c == '.') { "-".repeat(name.len().max(1)) } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_become_safe_names() {
        assert_eq!(scope_name("EUR/current"), "EUR-current");
        assert_eq!(scope_name("G000123"), "G000123");
        assert_eq!(scope_name("../etc"), "..-etc");
        assert_eq!(scope_name(".."), "--", "never the parent folder");
        assert_eq!(scope_name("."), "-");
        assert_eq!(scope_name(""), "-");
    }
}
