//! The emulator's own controls, beside Microsoft's API under `/_emulator/`: moving a fixed
//! clock on (`--fixed-clock`), so that a test sees a token or a continuation expire without
//! waiting for it.
//!
//! In: `POST /_emulator/clock/advance?secs=N`. Out: the server's time after the move, or 404
//! when the server reads the system's clock (which nobody moves).

use std::sync::Arc;
use std::time::Duration;

use super::App;
use super::respond::{canonical, json, not_found};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

/// Moves the fixed clock on by `secs` seconds.
pub(super) async fn advance_clock(State(app): State<Arc<App>>, RawQuery(query): RawQuery) -> Response {
    if !app.settings.clock.is_fixed() {
        return not_found("a fixed clock (start the server with --fixed-clock)");
    }
    let secs = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "secs")
        .and_then(|(_, v)| v.parse::<u64>().ok());
    let Some(secs) = secs else {
        return canonical(StatusCode::BAD_REQUEST, "400", "secs must be a whole number of seconds");
    };
    app.settings.clock.advance(Duration::from_secs(secs));
    json(StatusCode::OK, serde_json::json!({ "now": app.settings.clock.now().to_rfc3339() }).to_string())
}
