//! What the connection layer learnt about a request before routing it: its path as links spell
//! it, its query, its continuation token and the fault drawn for it. Every endpoint (Partner
//! Center's and Graph's) reads it; it does not route or answer anything. Also the fields of a
//! form-encoded body, as the token and sign-in endpoints read them.

/// The fields of a form-encoded body, in order.
pub fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// What the connection layer learnt about a request before routing it.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    /// Path without the `/v1` prefix, as links spell it.
    pub path: String,
    /// The query string as received.
    pub raw_query: String,
    /// Decoded query pairs, names lower-cased.
    pub query: Vec<(String, String)>,
    /// `MS-ContinuationToken` header.
    pub continuation: Option<String>,
    /// Serve this page with a malformed `links.next.uri`.
    pub malformed_next: bool,
    /// Refuse this request's continuation token as expired.
    pub expire_continuation: bool,
    /// The fault drawn for this request, for the endpoints that play it out themselves.
    pub fault: Option<super::Fault>,
}

impl RequestCtx {
    /// A query value by case-insensitive name.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}
