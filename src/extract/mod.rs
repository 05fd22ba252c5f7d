//! The extraction stage: decides which sequences of pages a run needs (its scope) and fetches
//! them all, concurrently under the client's in-flight bound, into one bounded channel of
//! [`Event`]s.
//!
//! In: a [`Client`] and [`ExtractSettings`]. Out: pages of raw JSON tagged with dataset, scope,
//! attempt, page number and request id; restarts; completions. It does not decode items, and
//! nothing downstream knows which API served a page, so another source (the v2 export) can feed
//! the same channel.

pub mod dump;
pub mod raw;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::api::auth::TokenKind;
use crate::api::http::Client;
use crate::api::paging::{self, Event, Paging, PagingError, Sequence};
use crate::config::ExtractSettings;

/// Pages buffered between the extraction and its consumer.
pub const CHANNEL_PAGES: usize = 16;

/// What an extraction did.
#[derive(Debug, Default, Clone)]
pub struct ExtractReport {
    /// Sequences fetched.
    pub sequences: u64,
    /// Requests sent.
    pub requests: u64,
    /// Retries after transient failures and throttling.
    pub retries: u64,
    /// 429 answers honoured.
    pub throttled: u64,
    /// 401 answers that led to a new token.
    pub unauthorized: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceHead {
    id: String,
    #[serde(default)]
    invoice_date: Option<String>,
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
    let (local_tx, mut local_rx) = mpsc::channel(CHANNEL_PAGES);
    let fetch = async {
        let result = paging::run(client, &seq, &local_tx).await;
        drop(local_tx);
        result
    };
    let gather = async {
        let mut items = Vec::new();
        while let Some(event) = local_rx.recv().await {
            match &event {
                Event::Page(page) => items.extend(page.items.iter().map(|r| page.body.slice(r.clone()))),
                Event::Restart { .. } => items.clear(),
                Event::Done { .. } => {}
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

/// The sequences of one invoice: the invoice itself, its statement, and its line items.
fn invoice_sequences(client: &Client, settings: &ExtractSettings, inv: &InvoiceHead, out: &mut Vec<Sequence>) {
    let id = &inv.id;
    let seq =
        |dataset, first: String, paging| Sequence { dataset, scope: id.clone(), first, paging, token: TokenKind::User };
    if settings.wants("invoices") {
        out.push(seq("invoices", url(client, &format!("/invoices/{id}")), Paging::Single));
    }
    if settings.wants("documents") {
        out.push(seq("documents", url(client, &format!("/invoices/{id}/documents/statement")), Paging::Document));
    }
    let app = |dataset, path: String, paging| Sequence {
        dataset,
        scope: id.clone(),
        first: url(client, &path),
        paging,
        token: TokenKind::App,
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
                ("office", "billinglineitems") => "legacy_office_line_items",
                ("azure", "billinglineitems") => "legacy_azure_line_items",
                ("azure", "usagelineitems") => "legacy_azure_usage_line_items",
                _ => continue,
            };
            if settings.wants(dataset) {
                let path = format!(
                    "/invoices/{id}/lineitems?provider={provider}&invoicelineitemtype={kind}&size=2000&offset=0"
                );
                out.push(app(dataset, path, Paging::Offset));
            }
        }
    } else {
        if settings.wants("billed_recon_line_items") {
            let path =
                format!("/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=billinglineitems&size=2000");
            out.push(app("billed_recon_line_items", path, Paging::Seek));
        }
        if settings.wants("billed_consumption_line_items") {
            let ccy = &inv.currency_code;
            let path = format!(
                "/invoices/{id}/lineitems?provider=onetime&invoicelineitemtype=usagelineitems&currencycode={ccy}&period=previous&size=2000"
            );
            out.push(app("billed_consumption_line_items", path, Paging::Seek));
        }
    }
}

/// Runs the whole extraction into `tx`.
pub async fn extract(
    client: Arc<Client>,
    settings: &ExtractSettings,
    tx: mpsc::Sender<Event>,
) -> Result<ExtractReport, PagingError> {
    let mut sequences = Vec::new();
    let emit = |dataset: &str| settings.wants(dataset).then_some(&tx);
    let all = |dataset, path: &str, paging, token| Sequence {
        dataset,
        scope: "all".into(),
        first: url(&client, path),
        paging,
        token,
    };

    // Discovery: the invoice list. Its pages are kept as `invoice_list` (what the list showed);
    // the `invoices` dataset itself comes whole from each invoice's by-id call.
    let list_seq = all("invoice_list", "/invoices?size=200&offset=0", Paging::Offset, TokenKind::App);
    let list = collect(&client, list_seq, Some(&tx)).await?;
    let mut invoices: BTreeMap<String, InvoiceHead> = BTreeMap::new();
    for (index, item) in list.iter().enumerate() {
        let head: InvoiceHead = serde_json::from_slice(item).map_err(|e| PagingError::Malformed {
            context: crate::api::http::Context { dataset: "invoice_list", scope: "all".into(), page: 0 },
            url: "/v1/invoices".into(),
            request_id: String::new(),
            detail: format!("invoice list item {index}: {e}"),
        })?;
        for amendment in head.amendments.iter() {
            let copy = InvoiceHead {
                id: amendment.id.clone(),
                invoice_date: amendment.invoice_date.clone(),
                currency_code: amendment.currency_code.clone(),
                invoice_details: Vec::new(),
                amendments: Vec::new(),
            };
            invoices.entry(copy.id.clone()).or_insert(copy);
        }
        invoices.insert(head.id.clone(), head);
    }
    // Explicitly named invoices are fetched even when the list does not show them, so an unknown
    // id fails loudly instead of silently extracting nothing.
    for id in &settings.invoice_ids {
        if !invoices.keys().any(|k| k.eq_ignore_ascii_case(id)) {
            let head = InvoiceHead {
                id: id.clone(),
                invoice_date: None,
                currency_code: String::new(),
                invoice_details: Vec::new(),
                amendments: Vec::new(),
            };
            invoices.insert(id.clone(), head);
        }
    }
    for inv in invoices.values().filter(|inv| wants_invoice(settings, inv)) {
        invoice_sequences(&client, settings, inv, &mut sequences);
    }

    let summaries = collect(
        &client,
        all("invoice_summaries", "/invoices/summaries", Paging::Unpaged, TokenKind::User),
        emit("invoice_summaries"),
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
    for currency in currencies.iter().filter(|c| !c.is_empty()) {
        for period in &settings.unbilled_periods {
            for (dataset, kind) in [
                ("unbilled_recon_line_items", "billinglineitems"),
                ("unbilled_consumption_line_items", "usagelineitems"),
            ] {
                if settings.wants(dataset) {
                    let path = format!(
                        "/invoices/unbilled/lineitems?provider=onetime&invoicelineitemtype={kind}&currencycode={currency}&period={period}&size=2000"
                    );
                    sequences.push(Sequence {
                        dataset,
                        scope: format!("{currency}/{period}"),
                        first: url(&client, &path),
                        paging: Paging::Seek,
                        token: TokenKind::App,
                    });
                }
            }
        }
    }

    let per_customer = ["orders", "subscriptions", "entitlements"].iter().any(|d| settings.wants(d));
    if settings.wants("customers") || per_customer {
        let customers =
            collect(&client, all("customers", "/customers?size=500", Paging::Seek, TokenKind::App), emit("customers"))
                .await?;
        for item in &customers {
            let Ok(c) = serde_json::from_slice::<CustomerHead>(item) else { continue };
            let id = c.id;
            for (dataset, path, token) in [
                ("orders", format!("/customers/{id}/orders"), TokenKind::App),
                ("subscriptions", format!("/customers/{id}/subscriptions"), TokenKind::App),
                ("entitlements", format!("/customers/{id}/entitlements?showExpiry=true"), TokenKind::User),
            ] {
                if settings.wants(dataset) {
                    sequences.push(Sequence {
                        dataset,
                        scope: id.clone(),
                        first: url(&client, &path),
                        paging: Paging::Unpaged,
                        token,
                    });
                }
            }
        }
    }

    let mut report = ExtractReport { sequences: sequences.len() as u64, ..ExtractReport::default() };
    tracing::info!(
        event = "extract_planned",
        sequences = sequences.len(),
        invoices = invoices.len(),
        currencies = currencies.len()
    );
    // Invoices and master data first: downstream knows every invoice's dates and every order,
    // subscription and entitlement before the first line item arrives.
    let (first, rest): (Vec<Sequence>, Vec<Sequence>) = sequences
        .into_iter()
        .partition(|s| matches!(s.dataset, "invoices" | "orders" | "subscriptions" | "entitlements"));
    for batch in [first, rest] {
        run_batch(&client, batch, &tx).await?;
    }
    report.requests = client.stats.requests.load(Ordering::Relaxed);
    report.retries = client.stats.retries.load(Ordering::Relaxed);
    report.throttled = client.stats.throttled.load(Ordering::Relaxed);
    report.unauthorized = client.stats.unauthorized.load(Ordering::Relaxed);
    Ok(report)
}

/// Fetches sequences concurrently to their end. Each holds at most one page, so memory stays
/// bounded by the number of running sequences, not by the size of the data.
async fn run_batch(
    client: &Arc<Client>,
    sequences: Vec<Sequence>,
    tx: &mpsc::Sender<Event>,
) -> Result<(), PagingError> {
    let running = Arc::new(Semaphore::new(client_parallelism(client)));
    let mut tasks = JoinSet::new();
    for seq in sequences {
        let client = client.clone();
        let tx = tx.clone();
        let running = running.clone();
        tasks.spawn(async move {
            let _slot = running.acquire_owned().await.map_err(|_| PagingError::Closed)?;
            paging::run(&client, &seq, &tx).await?;
            Ok::<_, PagingError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tasks.abort_all();
                return Err(e);
            }
            Err(join) => {
                tasks.abort_all();
                return Err(PagingError::Malformed {
                    context: crate::api::http::Context { dataset: "extract", scope: "all".into(), page: 0 },
                    url: String::new(),
                    request_id: String::new(),
                    detail: format!("an extraction task failed: {join}"),
                });
            }
        }
    }
    Ok(())
}

/// Sequences that run at once: as many as requests may be in flight, so that a sequence holding
/// a live continuation token is never starved long enough for the token to expire.
fn client_parallelism(client: &Client) -> usize {
    client.max_in_flight()
}
