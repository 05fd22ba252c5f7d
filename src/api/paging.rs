//! One pager for every paging style of the API (spec §5): offset, seek (continuation token),
//! unpaged collections and single resources. It turns a [`Sequence`] into [`Event`]s on a bounded
//! channel: pages as they arrive, and on a rejected or expired continuation token a
//! [`Event::Restart`] that tells the consumer to drop what it had of this sequence before the
//! sequence is fetched again from its first page, so no row is ever emitted twice.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc::Sender;
use tracing::Instrument;
use url::Url;

use crate::tabular::Dataset;

use super::auth::TokenKind;
use super::error::{ApiError, Context};
use super::http::{Call, Client};
use crate::model::page::{Event, Page, Paging};

/// One sequence of pages to fetch: an endpoint for one scope.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// Dataset the items belong to.
    pub dataset: Dataset,
    /// Invoice id, `CCY/period`, customer id, or `all`.
    pub scope: String,
    /// Absolute URL of the first page.
    pub first: String,
    /// Paging style.
    pub paging: Paging,
    /// Token kind the endpoint needs.
    pub token: TokenKind,
    /// The JSON body of a v2 export request (`POST first`); `None` for v1 sequences.
    pub export: Option<String>,
}

impl Sequence {
    /// Which API serves the sequence (`v1`, or `v2` for the Graph export).
    pub fn api(&self) -> &'static str {
        if self.export.is_some() { "v2" } else { "v1" }
    }
}

/// Why a sequence failed.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    /// The request failed.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A 200 answer that is not a page (not JSON, or no `items` array), even after retries.
    #[error("{context}: the page from {url} (MS-RequestId {request_id}) is not a valid page: {detail}")]
    Malformed {
        /// Where.
        context: Context,
        /// URL.
        url: String,
        /// Request id.
        request_id: String,
        /// Parser message.
        detail: String,
    },
    /// A page whose link onward cannot be followed: to another host, or back to a page the
    /// sequence already fetched (which would never end).
    #[error("{context}: the page from {url} (MS-RequestId {request_id}) {detail}")]
    BadLink {
        /// Where.
        context: Context,
        /// URL of the page that holds the link.
        url: String,
        /// Request id.
        request_id: String,
        /// What is wrong with the link.
        detail: String,
    },
    /// The v2 export did not give its data (spec §12).
    #[error("{context}: the v2 export {detail}")]
    Export {
        /// Where.
        context: Context,
        /// What happened.
        detail: String,
        /// The operation failed with code 5000 ("no data available"): v2 does not serve this.
        no_data: bool,
    },
    /// The consumer went away.
    #[error("the consumer of the extracted pages stopped")]
    Closed,
    /// The page cache could not be written.
    #[error("cannot write the page cache of {0}")]
    Cache(String),
    /// A task of the extraction panicked or was cancelled: a defect of pcrecon, not of the data.
    #[error("an extraction task failed: {0}")]
    Task(String),
}

/// A collection page. `items` is required: a page without it is not an empty page.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    items: Vec<&'a RawValue>,
    #[serde(default)]
    links: Option<Links>,
    #[serde(rename = "continuationToken", default)]
    continuation_token: Option<String>,
}

#[derive(Deserialize)]
struct Links {
    #[serde(default)]
    next: Option<Link>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    uri: String,
    #[serde(default)]
    headers: Vec<HeaderPair>,
}

#[derive(Deserialize)]
struct HeaderPair {
    key: String,
    value: String,
}

/// Where the next page is.
struct NextPage {
    url: String,
    headers: Vec<(String, String)>,
}

/// What a page body holds: item spans, the next link, and the top-level continuation token.
struct Parsed {
    items: Vec<Range<usize>>,
    next: Option<Link>,
    token: Option<String>,
}

impl Parsed {
    fn whole(start: usize, end: usize) -> Parsed {
        Parsed { items: vec![Range { start, end }], next: None, token: None }
    }
}

/// Item spans of a collection body, and its next link.
fn parse_collection(body: &Bytes) -> Result<Parsed, String> {
    let envelope: Envelope<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let base = body.as_ptr() as usize;
    let items = envelope
        .items
        .iter()
        .map(|raw| {
            let start = raw.get().as_ptr() as usize - base;
            start..start + raw.get().len()
        })
        .collect();
    Ok(Parsed { items, next: envelope.links.and_then(|l| l.next), token: envelope.continuation_token })
}

fn single_item(body: &Bytes) -> Result<Parsed, String> {
    let _: &RawValue = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    let end = body.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    Ok(Parsed::whole(start, end))
}

/// The item spans of a page body, found as the pager finds them: the whole body of a document,
/// the one resource of a single-resource call, the `items` of a collection.
pub fn item_spans(paging: Paging, body: &Bytes) -> Result<Vec<Range<usize>>, String> {
    match paging {
        Paging::Document => Ok(std::iter::once(0..body.len()).collect()),
        Paging::Single => single_item(body).map(|p| p.items),
        Paging::Unpaged | Paging::Offset | Paging::Seek => parse_collection(body).map(|p| p.items),
        Paging::Lines => Ok(line_spans(body)),
    }
}

/// The non-blank lines of a body, without their line ends.
pub fn line_spans(body: &[u8]) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', body).chain(std::iter::once(body.len())) {
        let mut line = start..end;
        while line.end > line.start && body[line.end - 1].is_ascii_whitespace() {
            line.end -= 1;
        }
        while line.start < line.end && body[line.start].is_ascii_whitespace() {
            line.start += 1;
        }
        if !line.is_empty() {
            spans.push(line);
        }
        start = end + 1;
    }
    spans
}

/// `url` with one query parameter set (case-insensitively replaced).
fn with_param(url: &str, name: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.split('=').next().unwrap_or("").eq_ignore_ascii_case(name))
        .map(str::to_owned)
        .collect();
    pairs.push(format!("{name}={value}"));
    format!("{path}?{}", pairs.join("&"))
}

fn query_value(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.into_owned())
}

/// A link that cannot be followed as it is: a second `?`, or an empty `offset=`.
fn is_malformed(uri: &str) -> bool {
    uri.matches('?').count() > 1 || uri.split(['?', '&']).any(|p| p.eq_ignore_ascii_case("offset="))
}

fn next_page(
    client: &Client,
    seq: &Sequence,
    link: Link,
    top_token: Option<String>,
    offset_seen: usize,
) -> Result<Option<NextPage>, String> {
    let (url, mut headers) = match seq.paging {
        Paging::Seek | Paging::Offset => {
            let headers: Vec<(String, String)> = link.headers.into_iter().map(|h| (h.key, h.value)).collect();
            let url = if !link.uri.is_empty() && !is_malformed(&link.uri) {
                client.resolve(&link.uri)
            } else if seq.paging == Paging::Seek {
                with_param(&seq.first, "seekOperation", "Next")
            } else {
                with_param(&seq.first, "offset", &offset_seen.to_string())
            };
            (url, headers)
        }
        Paging::Single | Paging::Unpaged | Paging::Document | Paging::Lines => return Ok(None),
    };
    if seq.paging == Paging::Seek && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("MS-ContinuationToken")) {
        match top_token.filter(|t| !t.is_empty()) {
            Some(token) => headers.push(("MS-ContinuationToken".into(), token)),
            None => return Ok(None),
        }
    }
    // The bearer token goes with every request: a link elsewhere would hand it to that host.
    if !client.is_api_origin(&url) {
        let origin =
            Url::parse(&url).map_or_else(|_| "an unreadable URL".to_owned(), |u| u.origin().ascii_serialization());
        return Err(format!("links to another host ({origin}); pcrecon follows links on the API's host only"));
    }
    Ok(Some(NextPage { url, headers }))
}

/// A fixed-size digest of where a request goes (URL and headers, so a continuation token
/// counts): the pager keeps one per page to recognise a link back to a page already fetched.
fn request_key(url: &str, headers: &[(String, String)]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    url.hash(&mut hasher);
    let mut sorted: Vec<(String, &str)> = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_str())).collect();
    sorted.sort();
    sorted.hash(&mut hasher);
    hasher.finish()
}

/// How often a malformed 200 page is fetched again.
const MAX_REFETCH: u32 = 3;
/// How often a seek sequence is restarted after its continuation token was refused. A restart
/// costs only refetching; the bound stops a sequence whose tokens can never outlive a page.
const MAX_RESTARTS: u32 = 20;

/// Fetches a sequence to its last page, sending events; returns the number of items.
pub async fn run(client: &Client, seq: &Sequence, tx: &Sender<Event>) -> Result<u64, PagingError> {
    let accept = match (seq.paging, seq.dataset) {
        (Paging::Document, Dataset::FxRates) => "text/csv, application/octet-stream",
        (Paging::Document, _) => "application/pdf",
        _ => "application/json",
    };
    let mut attempt = 1u32;
    'attempts: loop {
        let mut url = seq.first.clone();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut number = 1u32;
        let mut items_total = 0u64;
        let mut offset = query_value(&seq.first, "offset").and_then(|o| o.parse().ok()).unwrap_or(0usize);
        let mut followed = std::collections::HashSet::from([request_key(&url, &headers)]);
        loop {
            let context = Context { dataset: seq.dataset, scope: seq.scope.clone(), page: number };
            let mut refetch = 0;
            let (response, items, next) = loop {
                let call = Call { headers: &headers, accept, ..Call::get(&url, seq.token, &context) };
                let response = match client.get(&call).instrument(tracing::info_span!("page", number)).await {
                    Ok(r) => r,
                    // A continuation token refused or expired mid-sequence: start again from page 1.
                    Err(e)
                        if seq.paging == Paging::Seek
                            && number > 1
                            && e.status() == Some(400)
                            && attempt <= MAX_RESTARTS =>
                    {
                        attempt += 1;
                        tracing::info!(event = "sequence_restart", attempt, reason = %e);
                        let restart = Event::Restart {
                            dataset: seq.dataset,
                            scope: seq.scope.clone(),
                            attempt,
                            reason: e.to_string(),
                        };
                        tx.send(restart).await.map_err(|_| PagingError::Closed)?;
                        continue 'attempts;
                    }
                    // A month whose rates are not published yet has none: the rows that need
                    // them are listed as missing rates, not this request.
                    Err(e) if seq.dataset == Dataset::FxRates && e.status() == Some(404) => {
                        tracing::warn!(event = "fxrates_not_published", month = %seq.scope, "no exchange rates for this month (HTTP 404)");
                        let done = Event::Done {
                            dataset: seq.dataset,
                            scope: seq.scope.clone(),
                            attempt,
                            pages: 0,
                            items: 0,
                            export: None,
                        };
                        tx.send(done).await.map_err(|_| PagingError::Closed)?;
                        return Ok(0);
                    }
                    Err(e) => return Err(e.into()),
                };
                let parsed = match seq.paging {
                    Paging::Document => Ok(Parsed::whole(0, response.body.len())),
                    Paging::Single => single_item(&response.body),
                    Paging::Lines => Ok(Parsed { items: line_spans(&response.body), next: None, token: None }),
                    _ => parse_collection(&response.body),
                };
                match parsed {
                    Ok(Parsed { items, next, token }) => break (response, items, next.map(|n| (n, token))),
                    // A parser's message may quote the page (a token in it, say).
                    Err(detail) if refetch < MAX_REFETCH => {
                        let detail = crate::redact::excerpt(&detail, &[]);
                        refetch += 1;
                        tracing::debug!(event = "page_refetch", page = number, %detail);
                    }
                    Err(detail) => {
                        let (url, detail) =
                            (crate::redact::redact(&url).into_owned(), crate::redact::excerpt(&detail, &[]));
                        return Err(PagingError::Malformed { context, url, request_id: response.request_id, detail });
                    }
                }
            };
            items_total += items.len() as u64;
            offset += items.len();
            let page = Page {
                dataset: seq.dataset,
                scope: seq.scope.clone(),
                attempt,
                number,
                request_id: response.request_id,
                url: url.strip_prefix(client.base()).unwrap_or(&url).to_owned(),
                fetched_at: response.fetched_at,
                body: response.body,
                items,
                paging: seq.paging,
            };
            let empty = page.items.is_empty();
            let (page_url, page_request_id) = (page.url.clone(), page.request_id.clone());
            tx.send(Event::Page(page)).await.map_err(|_| PagingError::Closed)?;
            let bad_link = |detail: String| PagingError::BadLink {
                context: Context { dataset: seq.dataset, scope: seq.scope.clone(), page: number },
                url: crate::redact::redact(&page_url).into_owned(),
                request_id: page_request_id.clone(),
                detail,
            };
            let following = match next {
                Some((link, token)) => next_page(client, seq, link, token, offset).map_err(bad_link)?,
                None => None,
            };
            match following {
                // An empty page that still points onward (with a fresh token, say) could go on
                // forever: it is the end.
                Some(n) if !empty => {
                    if !followed.insert(request_key(&n.url, &n.headers)) {
                        return Err(bad_link(
                            "links to a page this sequence already fetched (same URL and continuation token): \
                             following it would never end"
                                .into(),
                        ));
                    }
                    url = n.url;
                    headers = n.headers;
                    number += 1;
                }
                _ => {
                    let done = Event::Done {
                        dataset: seq.dataset,
                        scope: seq.scope.clone(),
                        attempt,
                        pages: number,
                        items: items_total,
                        export: None,
                    };
                    tx.send(done).await.map_err(|_| PagingError::Closed)?;
                    return Ok(items_total);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_spans_point_at_the_items_text() {
        let body = Bytes::from_static(br#"{"totalCount":2,"items":[{"a":1.10},{"b":"x"}],"links":{"next":{"uri":"/x?y=1","headers":[{"key":"MS-ContinuationToken","value":"t+/="}]}}}"#);
        let Parsed { items, next, .. } = parse_collection(&body).unwrap();
        let texts: Vec<&[u8]> = items.iter().map(|r| &body[r.clone()]).collect();
        assert_eq!(texts, [&br#"{"a":1.10}"#[..], &br#"{"b":"x"}"#[..]]);
        let next = next.unwrap();
        assert_eq!(next.uri, "/x?y=1");
        assert_eq!(next.headers[0].value, "t+/=");
    }

    #[test]
    fn malformed_links_are_recognised() {
        assert!(is_malformed("/invoices/G1/lineitems?provider=onetime&size=2?seekOperation=Next"));
        assert!(is_malformed("/invoices/D1/lineitems?provider=office&size=1&offset="));
        assert!(!is_malformed("/invoices/D1/lineitems?provider=office&size=1&offset=1"));
    }

    #[test]
    fn parameters_are_replaced_case_insensitively() {
        assert_eq!(
            with_param("http://h/v1/x?a=1&SeekOperation=Next", "seekOperation", "Next"),
            "http://h/v1/x?a=1&seekOperation=Next"
        );
        assert_eq!(with_param("http://h/v1/x", "offset", "4"), "http://h/v1/x?offset=4");
        assert_eq!(query_value("http://h/v1/x?Offset=7&b=2", "offset").as_deref(), Some("7"));
    }

    #[test]
    fn json_lines_are_split_on_line_ends_and_blank_lines_skipped() {
        let body = b"{\"a\":1}\r\n\n  {\"b\":2}\n{\"c\":3}";
        let texts: Vec<&[u8]> = line_spans(body).into_iter().map(|r| &body[r]).collect();
        assert_eq!(texts, [&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"]);
        assert!(line_spans(b"\n \n").is_empty());
    }

    #[test]
    fn single_resources_are_one_item() {
        let body = Bytes::from_static(b" {\"id\":\"G1\"}\n");
        assert_eq!(single_item(&body).unwrap().items, [Range { start: 1, end: 12 }]);
        assert!(single_item(&Bytes::from_static(b"{\"id\":")).is_err());
    }
}
