//! The API's endpoints (spec §8.1-§8.14) as axum routes over the [`Store`](super::store::Store),
//! and the router of every endpoint, Graph's (`graph`) and Entra ID's (`token_routes`)
//! included. Each endpoint keeps its documented paging style: offset for the invoice list and
//! legacy providers, seek with `MS-ContinuationToken` for `onetime` line items and customers,
//! unpaged for the rest.

// Helpers return the ready error response as their `Err`, once per request; boxing it would
// only add an allocation.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use super::App;
use super::request::RequestCtx;
use super::respond::{Next, canonical, collection, invalid_request, join, json, not_found};
use super::store::LineFile;
use super::tokens::{Position, Refused};

impl RequestCtx {
    fn is(&self, name: &str, value: &str) -> bool {
        self.get(name).is_some_and(|v| v.eq_ignore_ascii_case(value))
    }

    fn self_uri(&self) -> String {
        if self.raw_query.is_empty() { self.path.clone() } else { format!("{}?{}", self.path, self.raw_query) }
    }

    /// The query without its seek and offset parameters.
    fn base_query(&self, drop: &[&str]) -> String {
        self.raw_query
            .split('&')
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let name = p.split('=').next().unwrap_or("").to_ascii_lowercase();
                !drop.contains(&name.as_str())
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    fn seek_next_uri(&self) -> String {
        let base = self.base_query(&["seekoperation"]);
        // The documentation's own example: `...&size=2?seekOperation=Next`.
        let joiner = if self.malformed_next { "?" } else { "&" };
        if base.is_empty() {
            format!("{}?seekOperation=Next", self.path)
        } else {
            format!("{}?{base}{joiner}seekOperation=Next", self.path)
        }
    }

    fn offset_next_uri(&self, size: usize, offset: usize) -> String {
        let base = self.base_query(&["offset", "size"]);
        let offset = if self.malformed_next { String::new() } else { offset.to_string() };
        let sep = if base.is_empty() { "" } else { "&" };
        format!("{}?{base}{sep}size={size}&offset={offset}", self.path)
    }
}

/// The router of every endpoint.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/invoices", get(invoice_list))
        .route("/v1/invoices/summaries", get(summaries))
        .route("/v1/invoices/summary", get(summary))
        .route("/v1/invoices/estimates/links", get(estimate_links))
        .route("/v1/invoices/{id}", get(invoice))
        .route("/v1/invoices/{id}/documents/statement", get(statement))
        .route("/v1/invoices/{id}/receipts/{receipt}/documents/statement", get(receipt))
        .route("/v1/invoices/{id}/lineitems", get(line_items))
        .route("/v1/invoices/{id}/lineitems/{provider}/{kind}", get(line_items_path))
        .route("/v1/customers", get(customers))
        .route("/v1/customers/{id}", get(customer))
        .route("/v1/customers/{id}/orders", get(orders))
        .route("/v1/customers/{id}/orders/{order}", get(order))
        .route("/v1/customers/{id}/subscriptions", get(subscriptions))
        .route("/v1/customers/{id}/subscriptions/{sub}", get(subscription))
        .route("/v1/customers/{id}/entitlements", get(entitlements))
        .route("/_emulator/{file}", get(world_file))
        .route("/_emulator/clock/advance", post(super::control::advance_clock))
        .route("/{version}/reports/partners/billing/{kind}/{state}/export", post(super::graph::export))
        .route("/{version}/reports/partners/billing/operations/{id}", get(super::graph::operation))
        .route("/{version}/reports/partners/billing/manifests/{id}", get(super::graph::manifest))
        .route("/blob/{*path}", get(super::graph::blob))
        .route("/{tenant}/oauth2/v2.0/token", post(super::token_routes::token_v2))
        .route("/{tenant}/oauth2/token", post(super::token_routes::token_v1))
        .route("/{tenant}/oauth2/v2.0/devicecode", post(super::device_code::device_code))
        .route("/partner/v1.0/sales/{call}/{value}", get(super::fxrates::fxrates))
        .route("/devicelogin", get(super::device_code::page).post(super::device_code::sign_in))
        .fallback(|| async { not_found("the resource") })
        .with_state(app)
}

type Ctx = Extension<RequestCtx>;

fn page_size(app: &App, requested: Option<&str>) -> Result<usize, Response> {
    match requested {
        None => Ok(app.settings.page_size),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(0) => Ok(app.settings.page_size),
            Ok(n) => Ok(n.min(app.settings.page_size)),
            Err(_) => Err(invalid_request()),
        },
    }
}

fn io_error(e: std::io::Error) -> Response {
    canonical(StatusCode::INTERNAL_SERVER_ERROR, "500", &format!("the world could not be read: {e}"))
}

fn refused(r: Refused) -> Response {
    let description = match r {
        Refused::Expired => "The continuation token has expired. Start again from the first page.",
        Refused::WrongQuery => "The continuation token does not belong to this request.",
        Refused::Invalid => "The continuation token is invalid.",
    };
    canonical(StatusCode::BAD_REQUEST, "3000", description)
}

/// Where a seek-paged request starts: `first` for a first page, else the position its
/// `MS-ContinuationToken` names, provided the token belongs to this query and is still alive.
fn seek_position(app: &App, ctx: &RequestCtx, scope: &str, first: Position) -> Result<Position, Response> {
    if !ctx.is("seekoperation", "next") {
        return Ok(first);
    }
    let Some(token) = ctx.continuation.as_deref() else {
        return Err(canonical(
            StatusCode::BAD_REQUEST,
            "3000",
            "seekOperation=Next needs the MS-ContinuationToken header",
        ));
    };
    if ctx.expire_continuation {
        return Err(refused(Refused::Expired));
    }
    app.signer.check_continuation(token, scope, app.settings.continuation_ttl_secs).map_err(refused)
}

/// Serves one page of a seek-paged sequence.
fn seek_page(app: &App, ctx: &RequestCtx, scope: &str, file: Option<&LineFile>, size: usize) -> Response {
    let position = match seek_position(app, ctx, scope, Position { offset: 0, size }) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let total = file.map_or(0, LineFile::len);
    let end = (position.offset + position.size).min(total);
    let items = match file.map(|f| f.items(position.offset, end)) {
        Some(Ok(items)) => items,
        Some(Err(e)) => return io_error(e),
        None => Vec::new(),
    };
    let count = end.saturating_sub(position.offset);
    let next = (end < total).then(|| Next {
        uri: ctx.seek_next_uri(),
        token: Some(app.signer.continuation(scope, Position { offset: end, size: position.size })),
    });
    json(StatusCode::OK, collection(&items, count, Some(&ctx.self_uri()), next.as_ref()))
}

/// Serves one page of an offset-paged sequence of records.
fn offset_page(ctx: &RequestCtx, items: &[u8], count: usize, size: usize, next_offset: Option<usize>) -> Response {
    let next = next_offset.map(|offset| Next { uri: ctx.offset_next_uri(size, offset), token: None });
    json(StatusCode::OK, collection(items, count, Some(&ctx.self_uri()), next.as_ref()))
}

fn offset_of(ctx: &RequestCtx) -> Result<usize, Response> {
    match ctx.get("offset").filter(|v| !v.is_empty()) {
        None => Ok(0),
        Some(v) => v.trim().parse().map_err(|_| invalid_request()),
    }
}

async fn invoice_list(State(app): State<Arc<App>>, Extension(ctx): Ctx) -> Response {
    let size = match page_size(&app, ctx.get("size")) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let offset = match offset_of(&ctx) {
        Ok(o) => o,
        Err(r) => return r,
    };
    // Size and offset page legacy invoices only; new-commerce ones all come on the first page.
    let legacy: Vec<&str> = app.store.invoices.iter().filter(|i| i.legacy).map(|i| i.list.as_str()).collect();
    let mut page: Vec<&str> = Vec::new();
    if offset == 0 {
        page.extend(app.store.invoices.iter().filter(|i| !i.legacy).map(|i| i.list.as_str()));
    }
    let end = (offset + size).min(legacy.len());
    page.extend(legacy.get(offset.min(end)..end).unwrap_or_default());
    let next = (end < legacy.len()).then_some(end);
    offset_page(&ctx, &join(page.iter().copied()), page.len(), size, next)
}

async fn summaries(State(app): State<Arc<App>>, Extension(ctx): Ctx) -> Response {
    let items = join(app.store.summaries.iter().map(String::as_str));
    json(StatusCode::OK, collection(&items, app.store.summaries.len(), Some(&ctx.self_uri()), None))
}

async fn summary(State(app): State<Arc<App>>) -> Response {
    match app.store.summaries.first() {
        Some(s) => json(StatusCode::OK, s.clone()),
        None => not_found("an invoice summary"),
    }
}

async fn estimate_links(State(app): State<Arc<App>>, Extension(ctx): Ctx) -> Response {
    let Some(currency) = ctx.get("currencycode").map(str::to_uppercase) else { return invalid_request() };
    if !app.store.currencies.contains(&currency) {
        return json(StatusCode::OK, collection(b"", 0, None, None));
    }
    let mut items = Vec::new();
    for (kind, title, provider, item_type) in [
        ("daily_rated_usage", "Daily rated usage unbilled", "Marketplace", "UsageLineItems"),
        ("non_consumption", "Unbilled reconciliation line items", "all", "billinglineitems"),
    ] {
        for period in ["Current", "Previous"] {
            let uri = format!(
                "/invoices/unbilled/lineitems?provider={provider}&invoicelineitemtype={item_type}&currencycode={currency}&period={}&size=2000",
                period.to_lowercase()
            );
            items.push(format!(
                "{{\"type\":\"{kind}\",\"title\":\"{title}\",\"description\":\"{title} for the {} billing period\",\"period\":\"{period}\",\"link\":{{\"uri\":\"{uri}\",\"method\":\"GET\",\"headers\":[]}}}}",
                period.to_lowercase()
            ));
        }
    }
    json(StatusCode::OK, collection(&join(items.iter().map(String::as_str)), items.len(), None, None))
}

async fn invoice(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.store.invoice(&id) {
        Some(inv) => json(StatusCode::OK, inv.full.clone()),
        None => not_found(&format!("invoice {id}")),
    }
}

async fn statement(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let Some(inv) = app.store.invoice(&id) else { return not_found(&format!("invoice {id}")) };
    match tokio::fs::read(app.store.statement_path(&inv.id)).await {
        Ok(bytes) => {
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=Invoice_{}.pdf", inv.id)) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => io_error(e),
    }
}

async fn receipt(State(app): State<Arc<App>>, Path((id, receipt)): Path<(String, String)>) -> Response {
    // The world issues no tax receipts (its invoices list `taxReceipts: []`).
    match app.store.invoice(&id) {
        Some(_) => not_found(&format!("tax receipt {receipt}")),
        None => not_found(&format!("invoice {id}")),
    }
}

async fn line_items(State(app): State<Arc<App>>, Extension(ctx): Ctx, Path(id): Path<String>) -> Response {
    let provider = ctx.get("provider").unwrap_or("").to_ascii_lowercase();
    let kind = ctx.get("invoicelineitemtype").unwrap_or("").to_ascii_lowercase();
    serve_line_items(&app, &ctx, &id, &provider, &kind)
}

async fn line_items_path(
    State(app): State<Arc<App>>,
    Extension(ctx): Ctx,
    Path((id, provider, kind)): Path<(String, String, String)>,
) -> Response {
    serve_line_items(&app, &ctx, &id, &provider.to_ascii_lowercase(), &kind.to_ascii_lowercase())
}

fn serve_line_items(app: &App, ctx: &RequestCtx, id: &str, provider: &str, kind: &str) -> Response {
    // Requests use the compact spellings; `one_time` is refused exactly as the service does.
    let stem = match kind {
        "billinglineitems" => "billinglineitems",
        "usagelineitems" => "usagelineitems",
        _ => return invalid_request(),
    };
    let size = match page_size(app, ctx.get("size")) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if app.settings.v1_retired && matches!(provider, "onetime" | "all" | "marketplace") {
        // What Microsoft retired (its v1 deprecation notes): every unbilled new-commerce line
        // item; billed reconciliation from the February 2024 period on; billed daily rated
        // usage from the September 2022 period on.
        let retired_from = if stem == "billinglineitems" { "2024-02" } else { "2022-09" };
        let retired = id.eq_ignore_ascii_case("unbilled")
            || app
                .store
                .invoice(id)
                .is_some_and(|inv| !inv.legacy && billing_month(&inv.full).as_str() >= retired_from);
        if retired {
            return canonical(
                StatusCode::GONE,
                "410",
                "This API no longer serves new commerce line items of this billing period: use the billing reconciliation export on Microsoft Graph.",
            );
        }
    }
    if id.eq_ignore_ascii_case("unbilled") {
        if !matches!(provider, "onetime" | "all" | "marketplace") {
            return invalid_request();
        }
        let Some(currency) = ctx.get("currencycode").map(str::to_uppercase) else { return invalid_request() };
        let period = match ctx.get("period").map(str::to_ascii_lowercase).as_deref() {
            Some("current") => "current",
            Some("previous") => "previous",
            _ => return invalid_request(),
        };
        let scope = format!("unbilled|{currency}|{period}|{stem}|{size}");
        return seek_page(app, ctx, &scope, app.store.unbilled_lines(&currency, period, stem), size);
    }
    let Some(invoice) = app.store.invoice(id) else { return not_found(&format!("invoice {id}")) };
    match provider {
        "onetime" | "all" | "marketplace" => {
            if stem == "usagelineitems" && ctx.get("currencycode").is_none() {
                return invalid_request();
            }
            let currency_matches = ctx.get("currencycode").is_none_or(|c| c.eq_ignore_ascii_case(&invoice.currency));
            let file = if invoice.legacy || !currency_matches {
                None
            } else {
                app.store.invoice_lines(&invoice.id, &format!("onetime-{stem}"))
            };
            let scope = format!("invoice|{}|{stem}|{size}", invoice.id);
            seek_page(app, ctx, &scope, file, size)
        }
        "office" | "azure" => {
            let offset = match offset_of(ctx) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let file =
                if invoice.legacy { app.store.invoice_lines(&invoice.id, &format!("{provider}-{stem}")) } else { None };
            let total = file.map_or(0, LineFile::len);
            let end = (offset + size).min(total);
            let items = match file.map(|f| f.items(offset, end)) {
                Some(Ok(items)) => items,
                Some(Err(e)) => return io_error(e),
                None => Vec::new(),
            };
            offset_page(ctx, &items, end.saturating_sub(offset), size, (end < total).then_some(end))
        }
        _ => invalid_request(),
    }
}

#[derive(serde::Deserialize)]
struct CustomerFilter {
    #[serde(rename = "Field", alias = "field")]
    field: String,
    #[serde(rename = "Value", alias = "value")]
    value: String,
    #[serde(rename = "Operator", alias = "operator")]
    operator: String,
}

async fn customers(State(app): State<Arc<App>>, Extension(ctx): Ctx) -> Response {
    let filter = match ctx.get("filter") {
        None => None,
        Some(text) => match serde_json::from_str::<CustomerFilter>(text) {
            Ok(f) if f.operator.eq_ignore_ascii_case("starts_with") => Some(f),
            _ => return invalid_request(),
        },
    };
    let size = match ctx.get("size").map(|s| s.trim().parse::<usize>()) {
        None | Some(Ok(0)) => usize::MAX,
        Some(Ok(n)) => n.min(app.settings.page_size),
        Some(Err(_)) => return invalid_request(),
    };
    let selected: Vec<&str> = app
        .store
        .customers
        .iter()
        .filter(|c| match &filter {
            None => true,
            Some(f) => {
                let field = if f.field.eq_ignore_ascii_case("domain") { &c.domain } else { &c.company_name };
                field.to_lowercase().starts_with(&f.value.to_lowercase())
            }
        })
        .map(|c| c.list.as_str())
        .collect();
    // The SDK's follow-up request carries only seekOperation=Next: the token remembers the size.
    let scope = format!("customers|{}", ctx.get("filter").unwrap_or(""));
    let first = Position { offset: 0, size: size.min(selected.len().max(1)) };
    let position = match seek_position(&app, &ctx, &scope, first) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let end = position.offset.saturating_add(position.size).min(selected.len());
    let page = selected.get(position.offset.min(end)..end).unwrap_or_default();
    let next = (end < selected.len()).then(|| Next {
        uri: ctx.seek_next_uri(),
        token: Some(app.signer.continuation(&scope, Position { offset: end, size: position.size })),
    });
    json(StatusCode::OK, collection(&join(page.iter().copied()), page.len(), Some(&ctx.self_uri()), next.as_ref()))
}

async fn customer(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.store.customer(&id) {
        Some(c) => json(StatusCode::OK, c.full.clone()),
        None => canonical(StatusCode::NOT_FOUND, "60003", &format!("Tenant {id} was not found")),
    }
}

fn unknown_customer(id: &str) -> Response {
    canonical(StatusCode::NOT_FOUND, "60003", &format!("Tenant {id} was not found"))
}

async fn orders(State(app): State<Arc<App>>, Extension(ctx): Ctx, Path(id): Path<String>) -> Response {
    let Some(c) = app.store.customer(&id) else { return unknown_customer(&id) };
    let billing = ctx.get("billingtype").map(|b| b.to_ascii_lowercase().replace('_', ""));
    let items: Vec<&str> = c
        .orders
        .iter()
        .filter(|(_, cycle, _)| billing.as_ref().is_none_or(|b| cycle.replace('_', "") == *b))
        .map(|(_, _, j)| j.as_str())
        .collect();
    json(StatusCode::OK, collection(&join(items.iter().copied()), items.len(), Some(&ctx.self_uri()), None))
}

async fn order(State(app): State<Arc<App>>, Path((id, order)): Path<(String, String)>) -> Response {
    let Some(c) = app.store.customer(&id) else { return unknown_customer(&id) };
    match c.orders.iter().find(|(oid, _, _)| oid == &order) {
        Some((_, _, j)) => json(StatusCode::OK, j.clone()),
        None => not_found(&format!("order {order}")),
    }
}

async fn subscriptions(State(app): State<Arc<App>>, Extension(ctx): Ctx, Path(id): Path<String>) -> Response {
    let Some(c) = app.store.customer(&id) else { return unknown_customer(&id) };
    let order = ctx.get("order_id");
    let mpn = ctx.get("mpn_id");
    let items: Vec<&str> = c
        .subscriptions
        .iter()
        .filter(|(_, o, _, _)| order.is_none_or(|x| x == o))
        .filter(|(_, _, p, _)| mpn.is_none_or(|x| x == p))
        .map(|(_, _, _, j)| j.as_str())
        .collect();
    json(StatusCode::OK, collection(&join(items.iter().copied()), items.len(), Some(&ctx.self_uri()), None))
}

async fn subscription(State(app): State<Arc<App>>, Path((id, sub)): Path<(String, String)>) -> Response {
    let Some(c) = app.store.customer(&id) else { return unknown_customer(&id) };
    match c.subscriptions.iter().find(|(sid, _, _, _)| sid.eq_ignore_ascii_case(&sub)) {
        Some((_, _, _, j)) => json(StatusCode::OK, j.clone()),
        None => canonical(StatusCode::NOT_FOUND, "20003", &format!("Subscription {sub} was not found")),
    }
}

async fn entitlements(State(app): State<Arc<App>>, Extension(ctx): Ctx, Path(id): Path<String>) -> Response {
    let Some(c) = app.store.customer(&id) else { return unknown_customer(&id) };
    let wanted = ctx.get("entitlementtype").map(|t| match t.to_ascii_lowercase().as_str() {
        "virtualmachinereservedinstance" => "reservedinstance".to_owned(),
        other => other.to_owned(),
    });
    let show_expiry = ctx.is("showexpiry", "true");
    let items: Vec<&str> = c
        .entitlements
        .iter()
        .filter(|(t, _, _)| wanted.as_ref().is_none_or(|w| t.eq_ignore_ascii_case(w)))
        .map(|(_, with, without)| if show_expiry { with.as_str() } else { without.as_str() })
        .collect();
    json(StatusCode::OK, collection(&join(items.iter().copied()), items.len(), None, None))
}

/// `truth.json` and `world.json` of the world being served (not part of the API: no token needed),
/// so a client of a generated world can find its ground truth.
async fn world_file(State(app): State<Arc<App>>, Path(file): Path<String>) -> Response {
    if !matches!(file.as_str(), "truth.json" | "world.json") {
        return not_found(&file);
    }
    match tokio::fs::read(app.store.dir.join(&file)).await {
        Ok(bytes) => json(StatusCode::OK, bytes),
        Err(e) => io_error(e),
    }
}

/// `YYYY-MM` of an invoice's billing period, from its by-id record (empty when it has none).
fn billing_month(full: &str) -> String {
    let record: serde_json::Value = serde_json::from_str(full).unwrap_or_default();
    record.get("billingPeriodStartDate").and_then(|v| v.as_str()).and_then(|d| d.get(..7)).unwrap_or("").to_owned()
}
