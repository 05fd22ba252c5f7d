//! Partner Center's foreign exchange rates, as the pricing API on `api.partner.microsoft.com`
//! serves them, under this server's `/partner` root:
//! `GET /partner/v1.0/sales/fxrates(Month='YYYYMM')/$value`.
//!
//! Microsoft documents it as App+User only, with a token for the pricing API's own resource
//! (`https://api.partner.microsoft.com`): a Partner Center token is answered `401
//! Unauthorized: Invalid Authorization header`. The answer is the month's CSV file
//! (`"CurrencyCode","USDPerUnit","Month"`, `application/octet-stream`), the one the world
//! generator wrote under `fxrates/`. A month the world has no file for (not published yet) is a
//! 404 in the pricing API's error shape, `{"error":{"code","message"}}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::App;
use super::respond::json;
use super::tokens::Bearer;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, serde_json::json!({ "error": { "code": code, "message": message } }).to_string())
}

/// The month of `fxrates(Month='YYYYMM')` (the parameter's name in any case), if well formed.
fn month_of(call: &str) -> Option<String> {
    let inner = call.strip_prefix("fxrates(")?.strip_suffix(')')?;
    let (name, value) = inner.split_once('=')?;
    let month = value.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    let valid = name.trim().eq_ignore_ascii_case("month")
        && month.len() == 6
        && month.bytes().all(|b| b.is_ascii_digit())
        && (1..=12).contains(&month[4..].parse::<u32>().unwrap_or(0));
    valid.then(|| month.to_owned())
}

/// `GET /partner/v1.0/sales/{call}/{value}`.
pub(super) async fn fxrates(
    State(app): State<Arc<App>>,
    Path((call, value)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| app.signer.check_access(t.trim()));
    match token {
        Some(Ok(Bearer::Pricing { .. })) => {}
        _ => return error(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized: Invalid Authorization header"),
    }
    let Some(month) = month_of(&call).filter(|_| value == "$value") else {
        return error(StatusCode::BAD_REQUEST, "BadRequest", "Month must be in YYYYMM format.");
    };
    match std::fs::read(app.store.dir.join("fxrates").join(format!("{month}.csv"))) {
        Ok(bytes) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        Err(_) => error(StatusCode::NOT_FOUND, "NotFound", &format!("No exchange rates are published for {month}.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_month_parameter_is_read_as_documented() {
        assert_eq!(month_of("fxrates(Month='202501')").as_deref(), Some("202501"));
        assert_eq!(month_of("fxrates(month='202512')").as_deref(), Some("202512"));
        for bad in
            ["fxrates(Month=202501)", "fxrates(Month='2025-01')", "fxrates(Month='202513')", "rates(Month='202501')"]
        {
            assert_eq!(month_of(bad), None, "{bad}");
        }
    }
}
