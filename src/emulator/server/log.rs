//! The request log: one JSON line per request, so a client's politeness can be checked (time,
//! method, path and query, status, whether a token was presented, in-flight count at arrival, and
//! the fault injected with the Retry-After it announced). No header value but the request and
//! correlation ids is ever written: not `Authorization`, not continuation tokens.

use std::fs::File;
use std::io::{LineWriter, Write};
use std::path::Path;
use std::sync::Mutex;

use axum::http::HeaderMap;
use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::Fault;

/// One request, as logged.
#[derive(Debug, Serialize)]
pub struct LogLine {
    time: String,
    method: String,
    path: String,
    /// Status sent (`null` when the connection was dropped).
    pub status: Option<u16>,
    token: bool,
    in_flight: usize,
    /// Fault injected.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "fault_name")]
    pub fault: Option<Fault>,
    /// `Retry-After` announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// Whether the per-minute rate limit refused the request.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rate_limited: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    /// Time to produce the response.
    pub elapsed_ms: u128,
}

fn fault_name<S: serde::Serializer>(fault: &Option<Fault>, s: S) -> Result<S::Ok, S::Error> {
    match fault {
        Some(f) => s.serialize_str(f.name()),
        None => s.serialize_none(),
    }
}

impl LogLine {
    /// A line for a request that just arrived.
    pub fn new(method: &str, path: &str, token: bool, in_flight: usize, headers: &HeaderMap) -> LogLine {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        LogLine {
            time: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            method: method.to_owned(),
            path: path.to_owned(),
            status: None,
            token,
            in_flight,
            fault: None,
            retry_after: None,
            rate_limited: false,
            request_id: header("ms-requestid"),
            correlation_id: header("ms-correlationid"),
            elapsed_ms: 0,
        }
    }
}

/// The log file.
pub struct RequestLog(Mutex<LineWriter<File>>);

impl RequestLog {
    /// Creates (truncates) the log file.
    pub fn create(path: &Path) -> std::io::Result<RequestLog> {
        Ok(RequestLog(Mutex::new(LineWriter::new(File::create(path)?))))
    }

    /// Appends one line.
    pub fn write(&self, line: &LogLine) {
        if let Ok(mut text) = serde_json::to_string(line) {
            text.push('\n');
            let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let _ = out.write_all(text.as_bytes());
        }
    }
}
