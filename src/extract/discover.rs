//! Discovery: the invoice list, the summaries and the customers are read (their pages also
//! go downstream when their datasets are wanted), and every other sequence of the run is
//! planned from them — each invoice's own sequences, the unbilled ones per currency and period,
//! the customer-scoped ones — each routed to the API that serves it (v1, or the v2 export with
//! v1 as fallback under `auto` where v1 still serves the period).
//!
//! In: a [`Client`] and [`ExtractSettings`]. Out: the [`Plan`]. It fetches no line item.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use serde::Deserialize;
use sha2::Digest;
use tokio::sync::mpsc;
use tracing::Instrument;

use super::cache::Reuse;
use super::{CHANNEL_PAGES, Plan, Planned};
use crate::api::auth::TokenKind;
use crate::api::http::Client;
use crate::api::paging::{self, PagingError, Sequence};
use crate::config::ExtractSettings;
use crate::model::page::{Event, Paging};
use crate::tabular::Dataset;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceHead {
    id: String,
    #[serde(default)]
    invoice_date: Option<String>,
    #[serde(default)]
    billing_period_start_date: Option<String>,
    #[serde(default)]
    currency_code: String,
    #[serde(default)]
    invoice_details: Vec<InvoiceDetail>,
    #[serde(default)]
    amendments: Vec<InvoiceHead>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceDetail {
    #[serde(default)]
    invoice_line_item_type: String,
    #[serde(default)]
    billing_provider: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryHead {
    #[serde(default)]
    currency_code: String,
}

#[derive(Deserialize)]
struct CustomerHead {
    id: String,
}

/// Fetches a sequence and returns its items, forwarding its events to `tx` when given.
async fn collect(
    client: &Client,
    seq: Sequence,
    tx: Option<&mpsc::Sender<Event>>,
) -> Result<Vec<bytes::Bytes>, PagingError> {
    let (local_tx, local_rx) = mpsc::channel(CHANNEL_PAGES);
    let span = tracing::info_span!("sequence", dataset = %seq.dataset, scope = %seq.scope);
    let fetch = async {
        let result = paging::run(client, &seq, &local_tx).instrument(span).await;
        drop(local_tx);
        result
    };
    // Owning the receiver, the gatherer drops it when it stops early, which stops the fetch.
    let gather = async move {
        let mut local_rx = local_rx;
        let mut items = Vec::new();
        while let Some(event) = local_rx.recv().await {
            match &event {
                Event::Page(page) => items.extend(page.items.iter().map(|r| page.body.slice(r.clone()))),
                Event::Restart { .. } => items.clear(),
                Event::Done { .. } | Event::NotReady { .. } => {}
            }
            if let Some(tx) = tx {
                tx.send(event).await.map_err(|_| PagingError::Closed)?;
            }
        }
        Ok::<_, PagingError>(items)
    };
    let (fetched, items) = tokio::join!(fetch, gather);
    fetched?;
    items
}

fn date_part(text: &str) -> Option<chrono::NaiveDate> {
    text.get(..10)?.parse().ok()
}

/// Builds the URL of an endpoint under the API root.
fn url(client: &Client, path_and_query: &str) -> String {
    format!("{}/v1{path_and_query}", client.base())
}

fn wants_invoice(settings: &ExtractSettings, inv: &InvoiceHead) -> bool {
    if !settings.invoice_ids.is_empty() {
        return settings.invoice_ids.iter().any(|id| id.eq_ignore_ascii_case(&inv.id));
    }
    let date = inv.invoice_date.as_deref().and_then(date_part);
    match (date, settings.invoices_from, settings.invoices_to) {
        (Some(d), Some(from), _) if d < from => false,
        (Some(d), _, Some(to)) if d > to => false,
        _ => true,
    }
}

/// The billing month of an invoice: its period's start, or else the month before it was issued
/// (new-commerce invoices are issued in the month after their period).
fn billing_month(inv: &InvoiceHead) -> Option<String> {
    if let Some(start) = inv.billing_period_start_date.as_deref().and_then(|d| d.get(..7)) {
        return Some(start.to_owned());
    }
    let issued = inv.invoice_date.as_deref().and_then(date_part)?;
    let previous = chrono::Datelike::with_day(&issued, 1)?.pred_opt()?;
    Some(previous.format("%Y-%m").to_string())
}

/// The months (`YYYYMM`) whose Partner Center exchange rates a run may need: each month
/// (`YYYY-MM`: billing and invoice months in scope, the unbilled months) with the one before and
/// the one after it, where a row's rate date may fall. A month not published yet is answered
/// 404 and gives no rates; only rows that need it miss them.
fn rate_months(months: &[String]) -> Vec<String> {
    let index = |m: &str| {
        let (y, mo) = m.split_once('-')?;
        let (y, mo) = (y.parse::<i32>().ok()?, mo.parse::<i32>().ok()?);
        (1..=12).contains(&mo).then_some(y * 12 + mo - 1)
    };
    let wanted: BTreeSet<i32> = months.iter().filter_map(|m| index(m)).flat_map(|i| [i - 1, i, i + 1]).collect();
    wanted.into_iter().map(|i| format!("{:04}{:02}", i.div_euclid(12), i.rem_euclid(12) + 1)).collect()
}

/// The v2 export request standing for a v1 line-item sequence (spec §12.1), if v2 serves its dataset.
fn export_sequence(settings: &ExtractSettings, v1: &Sequence, body: serde_json::Value) -> Option<Sequence> {
    let (kind, billed) = crate::model::v2::ExportKind::of_dataset(v1.dataset)?;
    let root = settings.v2.graph_url.as_str().trim_end_matches('/');
    let state = if billed { "billed" } else { "unbilled" };
    let mut body = body;
    body["attributeSet"] = settings.v2.attribute_set.into();
    Some(Sequence {
        dataset: v1.dataset,
        scope: v1.scope.clone(),
        first: format!("{root}/reports/partners/billing/{}/{state}/export", kind.segment()),
        paging: Paging::Lines,
        token: TokenKind::Graph,
        export: Some(body.to_string()),
    })
}

/// Whether Partner Center's v1 still serves a new-commerce line-item dataset for a billing
/// period (`YYYY-MM`; unbilled data has none). Microsoft retired, on 21 April 2025, v1 billed
/// reconciliation from the February 2024 period on and v1 billed daily rated usage from the
/// September 2022 period on, and all of v1 unbilled daily rated usage; v1 unbilled
/// reconciliation on 15 March 2026 (spec §11, §17.9).
fn v1_serves(dataset: Dataset, period: Option<&str>) -> bool {
    let before = |month: &str| period.is_some_and(|p| p < month);
    match dataset {
        Dataset::BilledRecon => before(crate::config::RECON_V2_FROM),
        Dataset::BilledUsage => before(crate::config::USAGE_V2_FROM),
        _ => false,
    }
}

/// A line-item sequence through the API that serves it: the v2 export when `settings` route the
/// dataset there (with the v1 sequence as fallback under `auto`, where v1 still serves the
/// period), else `v1` itself.
fn routed(
    settings: &ExtractSettings,
    v1: Sequence,
    period: Option<&str>,
    body: serde_json::Value,
) -> (Sequence, Option<Sequence>) {
    let v2 = settings.uses_v2(v1.dataset, period).then(|| export_sequence(settings, &v1, body)).flatten();
    let Some(v2) = v2 else { return (v1, None) };
    let auto = settings.api_version.get(&v1.dataset) == Some(&crate::config::ApiVersion::Auto);
    let fallback = auto && v1_serves(v1.dataset, period);
    (v2, fallback.then_some(v1))
}

/// The sequences of one invoice: the invoice itself, its statement, and its line items, each
/// with its v1 fallback where it goes through the v2 export.
fn invoice_sequences(
    client: &Client,
    settings: &ExtractSettings,
    inv: &InvoiceHead,
    out: &mut Vec<(Sequence, Option<Sequence>)>,
) {
    let id = &inv.id;
    let seq = |dataset, first: String, paging| Sequence {
        dataset,
        scope: id.clone(),
        first,
        paging,
        token: TokenKind::User,
        export: None,
    };
    if settings.wants(Dataset::Invoices) {
        out.push((seq(Dataset::Invoices, url(client, &format!("/invoices/{id}")), Paging::Single), None));
    }
    if settings.wants(Dataset::Documents) {
        out.push((
            seq(Dataset::Documents, url(client, &format!("/invoices/{id}/documents/statement")), Paging::Document),
            None,
        ));
    }
    let app = |dataset, path: String, paging| Sequence {
        dataset,
        scope: id.clone(),
        first: url(client, &path),
        paging,
        token: TokenKind::App,
        export: None,
    };
    if id.starts_with('D') {
        let mut pairs: BTreeSet<(String, String)> = inv
            .invoice_details
            .iter()
            .map(|d| {
                (
                    d.billing_provider.to_ascii_lowercase(),
                    d.invoice_line_item_type.to_ascii_lowercase().replace('_', ""),
                )
            })
            .collect();
        if pairs.is_empty() {
            pairs.insert(("office".into(), "billinglineitems".into()));
        }
        for (provider, kind) in pairs {
            let dataset = match (provider.as_str(), kind.as_str()) {
                ("office", "billinglineitems") => Dataset::LegacyOffice,
                ("azure", "billinglineitems") => Dataset::LegacyAzure,
                ("azure", "usagelineitems") => Dataset::LegacyAzureUsage,
                _ => continue,
            };
            if settings.wants(dataset) {
                let path = format!(
                    "/invoices/{id}/lineitems?provider={provider}&invoicelineitemtype={kind}&size=2000&offset=0"
                );
                out.push((app(dataset, path, Paging::Offset), None));
            }
        }
    } else {
        let period = billing_month(inv);
        let body = serde_json::json!({ "invoiceId": id });
        if settings.wants(Dataset::BilledRecon) {
            let path =
                format!("/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=2000");
            let v1 = app(Dataset::BilledRecon, path, Paging::Seek);
            out.push(routed(settings, v1, period.as_deref(), body.clone()));
        }
        if settings.wants(Dataset::BilledUsage) {
            let ccy = &inv.currency_code;
            let path = format!(
                "/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode={ccy}&period=previous&size=2000"
            );
            let v1 = app(Dataset::BilledUsage, path, Paging::Seek);
            out.push(routed(settings, v1, period.as_deref(), body));
        }
    }
}

/// Discovery: reads the invoice list, the summaries and the customers (sending their pages to
/// `tx` when given) and plans every other sequence of the run.
pub async fn discover(
    client: &Client,
    settings: &ExtractSettings,
    tx: Option<&mpsc::Sender<Event>>,
) -> Result<Plan, PagingError> {
    let requests_before = client.stats.requests.load(Ordering::Relaxed);
    let mut sequences: Vec<Planned> = Vec::new();
    let emit = |dataset: Dataset| if settings.wants(dataset) { tx } else { None };
    let all = |dataset, path: &str, paging, token| Sequence {
        dataset,
        scope: "all".into(),
        first: url(client, path),
        paging,
        token,
        export: None,
    };

    // Discovery: the invoice list. Its pages are kept as `invoice_list` (what the list showed);
    // the `invoices` dataset itself comes whole from each invoice's by-id call. An invoice's
    // entry in the list is its fingerprint: while it is unchanged, so is the invoice.
    let list_seq = all(Dataset::InvoiceList, "/invoices?size=200&offset=0", Paging::Offset, TokenKind::App);
    let list = collect(client, list_seq, tx).await?;
    let mut invoices: BTreeMap<String, (InvoiceHead, Option<String>)> = BTreeMap::new();
    for (index, item) in list.iter().enumerate() {
        let head: InvoiceHead = serde_json::from_slice(item).map_err(|e| PagingError::Malformed {
            context: crate::api::error::Context { dataset: Dataset::InvoiceList, scope: "all".into(), page: 0 },
            url: "/v1/invoices".into(),
            request_id: String::new(),
            detail: format!("invoice list item {index}: {e}"),
        })?;
        let fingerprint = crate::model::hex(&sha2::Sha256::digest(item));
        for amendment in head.amendments.iter() {
            let copy = InvoiceHead {
                id: amendment.id.clone(),
                invoice_date: amendment.invoice_date.clone(),
                billing_period_start_date: amendment.billing_period_start_date.clone(),
                currency_code: amendment.currency_code.clone(),
                invoice_details: Vec::new(),
                amendments: Vec::new(),
            };
            invoices.entry(copy.id.clone()).or_insert((copy, Some(fingerprint.clone())));
        }
        invoices.insert(head.id.clone(), (head, Some(fingerprint)));
    }
    // Explicitly named invoices are fetched even when the list does not show them, so an unknown
    // id fails loudly instead of silently extracting nothing.
    for id in &settings.invoice_ids {
        if !invoices.keys().any(|k| k.eq_ignore_ascii_case(id)) {
            let head = InvoiceHead {
                id: id.clone(),
                invoice_date: None,
                billing_period_start_date: None,
                currency_code: String::new(),
                invoice_details: Vec::new(),
                amendments: Vec::new(),
            };
            invoices.insert(id.clone(), (head, None));
        }
    }
    let mut in_scope = 0;
    for (inv, fingerprint) in invoices.values().filter(|(inv, _)| wants_invoice(settings, inv)) {
        in_scope += 1;
        let mut of_invoice = Vec::new();
        invoice_sequences(client, settings, inv, &mut of_invoice);
        let reuse = match fingerprint {
            Some(f) => Reuse::Invoice { fingerprint: f.clone() },
            None => Reuse::Attempt,
        };
        let month = inv.billing_period_start_date.as_deref().and_then(|d| d.get(..7)).map(str::to_owned);
        sequences.extend(of_invoice.into_iter().map(|(seq, fallback)| Planned {
            seq,
            reuse: reuse.clone(),
            month: month.clone(),
            fallback,
        }));
    }

    // Partner Center's exchange rates, before anything with an amount is converted (the
    // summaries, next): every month the invoices in scope and the unbilled periods may need
    // (the current and the previous month, by the run's clock).
    if let Some(root) = &settings.partner_center_rates {
        let today = client.clock().now().date_naive();
        let previous = chrono::Datelike::with_day(&today, 1).and_then(|d| d.pred_opt()).unwrap_or(today);
        let unbilled = [today, previous].map(|d| d.format("%Y-%m").to_string());
        let months: Vec<String> = invoices
            .values()
            .filter(|(inv, _)| wants_invoice(settings, inv))
            .flat_map(|(inv, _)| {
                [billing_month(inv), inv.invoice_date.as_deref().and_then(|d| d.get(..7)).map(str::to_owned)]
            })
            .flatten()
            .chain(unbilled)
            .collect();
        for month in rate_months(&months) {
            let first = format!("{}/v1.0/sales/fxrates(Month='{month}')/$value", root.as_str().trim_end_matches('/'));
            let seq = Sequence {
                dataset: Dataset::FxRates,
                scope: month,
                first,
                paging: Paging::Document,
                token: TokenKind::Pricing,
                export: None,
            };
            collect(client, seq, tx).await?;
        }
    }

    let summaries = collect(
        client,
        all(Dataset::InvoiceSummaries, "/invoices/summaries", Paging::Unpaged, TokenKind::User),
        emit(Dataset::InvoiceSummaries),
    )
    .await?;
    let mut currencies: BTreeSet<String> = settings.currencies.iter().cloned().collect();
    if currencies.is_empty() {
        for item in &summaries {
            if let Ok(s) = serde_json::from_slice::<SummaryHead>(item) {
                currencies.insert(s.currency_code.to_uppercase());
            }
        }
    }
    let attempt_only = |(seq, fallback)| Planned { seq, reuse: Reuse::Attempt, month: None, fallback };
    for currency in currencies.iter().filter(|c| !c.is_empty()) {
        for period in &settings.unbilled_periods {
            for (dataset, kind) in
                [(Dataset::UnbilledRecon, "billinglineitems"), (Dataset::UnbilledUsage, "usagelineitems")]
            {
                if settings.wants(dataset) {
                    let path = format!(
                        "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype={kind}&currencycode={currency}&period={period}&size=2000"
                    );
                    let v1 = Sequence {
                        dataset,
                        scope: format!("{currency}/{period}"),
                        first: url(client, &path),
                        paging: Paging::Seek,
                        token: TokenKind::App,
                        export: None,
                    };
                    // v1 says `previous` for what v2 calls `last` (spec §12.1).
                    let billing_period = if *period == "previous" { "last" } else { "current" };
                    let body = serde_json::json!({ "currencyCode": currency, "billingPeriod": billing_period });
                    sequences.push(attempt_only(routed(settings, v1, None, body)));
                }
            }
        }
    }

    let per_customer = [Dataset::Orders, Dataset::Subscriptions, Dataset::Entitlements];
    if settings.wants(Dataset::Customers) || per_customer.into_iter().any(|d| settings.wants(d)) {
        let customers = collect(
            client,
            all(Dataset::Customers, "/customers?size=500", Paging::Seek, TokenKind::App),
            emit(Dataset::Customers),
        )
        .await?;
        for item in &customers {
            let Ok(c) = serde_json::from_slice::<CustomerHead>(item) else { continue };
            let id = c.id;
            for (dataset, path, token) in [
                (Dataset::Orders, format!("/customers/{id}/orders"), TokenKind::App),
                (Dataset::Subscriptions, format!("/customers/{id}/subscriptions"), TokenKind::App),
                (Dataset::Entitlements, format!("/customers/{id}/entitlements?showExpiry=true"), TokenKind::User),
            ] {
                if settings.wants(dataset) {
                    sequences.push(attempt_only((
                        Sequence {
                            dataset,
                            scope: id.clone(),
                            first: url(client, &path),
                            paging: Paging::Unpaged,
                            token,
                            export: None,
                        },
                        None,
                    )));
                }
            }
        }
    }
    // Invoices and master data first: downstream knows every invoice's dates and every order,
    // subscription and entitlement before the first line item arrives.
    sequences.sort_by_key(|p| !Dataset::DIMENSIONS.contains(&p.seq.dataset));
    Ok(Plan {
        sequences,
        invoices: in_scope,
        currencies: currencies.len(),
        discovery_requests: client.stats.requests.load(Ordering::Relaxed) - requests_before,
    })
}

#[cfg(test)]
mod rate_month_tests {
    use super::rate_months;

    #[test]
    fn each_month_brings_its_neighbours_and_the_years_turn() {
        let months = ["2024-12".to_owned(), "2025-01".to_owned(), "2026-06".to_owned(), "junk".to_owned()];
        assert_eq!(rate_months(&months), ["202411", "202412", "202501", "202502", "202605", "202606", "202607"]);
    }
}
