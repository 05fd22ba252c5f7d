//! The HTTP client every call starts from ([`client_builder`]), and how a failed HTTP exchange is
//! told: the kind of transport failure and its causes, never the
//! URL (which may carry a signature) nor a header, and redacted ([`crate::redact`]) in case a
//! cause quotes one. Used by the request gate and the token calls.

/// A builder of HTTP clients with what every pcrecon client has: rustls with ring (reqwest is
/// built without a default TLS provider), pcrecon's user agent, a connect timeout.
pub fn client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("pcrecon/", env!("CARGO_PKG_VERSION")))
}

/// A transport error described without its URL (which reqwest would include), redacted and
/// capped like a body.
pub fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "body incomplete"
    } else if e.is_request() {
        "connection dropped"
    } else {
        "transport error"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    crate::redact::excerpt(&text, &[])
}
