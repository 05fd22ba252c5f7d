//! The world as the server holds it: small resources in memory, and for every line-item file an
//! index of line offsets, so that any page is one positioned read of contiguous bytes.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::value::RawValue;

use super::ServeError;

/// A JSON-lines file with the byte offset of every line.
pub struct LineFile {
    file: File,
    /// Start of each line, then the end of the last one.
    bounds: Vec<u64>,
}

impl LineFile {
    /// Indexes a file; `None` when it does not exist.
    pub fn open(path: &Path) -> Result<Option<LineFile>, ServeError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ServeError::world(path, e)),
        };
        // Scanned in chunks, so indexing a multi-gigabyte file costs no more than one chunk.
        let mut bounds = vec![0u64];
        let mut chunk = vec![0u8; 8 << 20];
        let mut position = 0u64;
        loop {
            let n = file.read_at(&mut chunk, position).map_err(|e| ServeError::world(path, e))?;
            if n == 0 {
                break;
            }
            bounds.extend(memchr::memchr_iter(b'\n', &chunk[..n]).map(|i| position + i as u64 + 1));
            position += n as u64;
        }
        if bounds.last().copied() != Some(position) {
            bounds.push(position);
        }
        Ok(Some(LineFile { file, bounds }))
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.bounds.len() - 1
    }

    /// Whether the file has no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `from..to` as they are in the file (JSON lines).
    pub fn raw_lines(&self, from: usize, to: usize) -> std::io::Result<Vec<u8>> {
        let to = to.min(self.len());
        if from >= to {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; usize::try_from(self.bounds[to] - self.bounds[from]).unwrap_or(0)];
        self.file.read_exact_at(&mut buf, self.bounds[from])?;
        Ok(buf)
    }

    /// SHA-256 of the whole file, read in chunks.
    pub fn digest(&self) -> std::io::Result<Vec<u8>> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut chunk = vec![0u8; 8 << 20];
        let mut position = 0u64;
        loop {
            let n = self.file.read_at(&mut chunk, position)?;
            if n == 0 {
                return Ok(hasher.finalize().to_vec());
            }
            hasher.update(&chunk[..n]);
            position += n as u64;
        }
    }

    /// Records `from..to` as the inside of a JSON array (`a,b,c`).
    pub fn items(&self, from: usize, to: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = self.raw_lines(from, to)?;
        while buf.last() == Some(&b'\n') {
            buf.pop();
        }
        for b in buf.iter_mut() {
            if *b == b'\n' {
                *b = b',';
            }
        }
        Ok(buf)
    }
}

/// One customer, with both of its shapes.
pub struct CustomerEntry {
    /// Tenant id, lower case.
    pub id: String,
    /// `GET /v1/customers/{id}`.
    pub full: String,
    /// The reduced shape of the customers list.
    pub list: String,
    /// Company name (for the `starts_with` filter).
    pub company_name: String,
    /// Domain (for the `starts_with` filter).
    pub domain: String,
    /// Orders: (id, billing cycle, JSON).
    pub orders: Vec<(String, String, String)>,
    /// Subscriptions: (id, order id, partner id, JSON).
    pub subscriptions: Vec<(String, String, String, String)>,
    /// Entitlements: (entitlement type, JSON with expiryDate, JSON without).
    pub entitlements: Vec<(String, String, String)>,
}

/// One invoice, with both of its shapes.
pub struct InvoiceEntry {
    /// Invoice id as issued.
    pub id: String,
    /// Whether it is a legacy (`D`) invoice.
    pub legacy: bool,
    /// Billing currency.
    pub currency: String,
    /// `GET /v1/invoices/{id}`.
    pub full: String,
    /// The shape of the invoice list (without the billing period dates).
    pub list: String,
}

/// A whole world, ready to serve.
pub struct Store {
    /// The world folder.
    pub dir: PathBuf,
    /// Partner tenant id.
    pub partner_tenant_id: String,
    /// Billing currencies (ISO codes).
    pub currencies: Vec<String>,
    /// Customers in list order.
    pub customers: Vec<CustomerEntry>,
    customer_index: HashMap<String, usize>,
    /// Invoices, newest first.
    pub invoices: Vec<InvoiceEntry>,
    invoice_index: HashMap<String, usize>,
    /// One summary per currency.
    pub summaries: Vec<String>,
    /// Line-item files by (invoice id upper-case or `UNBILLED/<CCY>/<period>`, file stem).
    lines: HashMap<(String, String), LineFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorldFile {
    partner: PartnerFile,
    currencies: Vec<String>,
}

#[derive(Deserialize)]
struct PartnerFile {
    tenant_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomerKeys<'a> {
    id: String,
    #[serde(borrow)]
    company_profile: &'a RawValue,
    relationship_to_partner: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileKeys {
    #[serde(default)]
    company_name: String,
    #[serde(default)]
    domain: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InvoiceKeys {
    id: String,
    currency_code: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderKeys {
    id: String,
    #[serde(default)]
    billing_cycle: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionKeys {
    id: String,
    #[serde(default)]
    order_id: String,
    #[serde(default)]
    partner_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntitlementKeys {
    #[serde(default)]
    entitlement_type: String,
}

fn read_lines(path: &Path) -> Result<Vec<String>, ServeError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(ServeError::world(path, e)),
    }
}

fn parse<'a, T: Deserialize<'a>>(path: &Path, index: usize, line: &'a str) -> Result<T, ServeError> {
    serde_json::from_str(line)
        .map_err(|e| ServeError::World { path: path.to_path_buf(), detail: format!("record {index}: {e}") })
}

/// Removes `"key":"value"` (a string member) from a JSON object's text.
pub fn without_string_member(json: &str, key: &str) -> String {
    let needle = format!(",\"{key}\":\"");
    let Some(start) = json.find(&needle) else { return json.to_owned() };
    let value_start = start + needle.len();
    match json[value_start..].find('"') {
        Some(end) => format!("{}{}", &json[..start], &json[value_start + end + 1..]),
        None => json.to_owned(),
    }
}

impl Store {
    /// Loads and indexes a world folder.
    pub fn load(dir: &Path) -> Result<Store, ServeError> {
        let world_path = dir.join("world.json");
        let text = std::fs::read_to_string(&world_path).map_err(|e| ServeError::world(&world_path, e))?;
        let world: WorldFile = parse(&world_path, 0, &text)?;

        let mut customers = Vec::new();
        let customers_path = dir.join("customers.jsonl");
        for (i, line) in read_lines(&customers_path)?.into_iter().enumerate() {
            let keys: CustomerKeys<'_> = parse(&customers_path, i, &line)?;
            let profile: ProfileKeys = parse(&customers_path, i, keys.company_profile.get())?;
            let list = format!(
                "{{\"id\":{},\"companyProfile\":{},\"relationshipToPartner\":{},\"attributes\":{{\"objectType\":\"Customer\"}}}}",
                serde_json::to_string(&keys.id).unwrap_or_default(),
                keys.company_profile.get(),
                serde_json::to_string(&keys.relationship_to_partner).unwrap_or_default()
            );
            let folder = dir.join("customers").join(&keys.id);
            let mut entry = CustomerEntry {
                id: keys.id.to_lowercase(),
                full: line.clone(),
                list,
                company_name: profile.company_name,
                domain: profile.domain,
                orders: Vec::new(),
                subscriptions: Vec::new(),
                entitlements: Vec::new(),
            };
            let path = folder.join("orders.jsonl");
            for (j, order) in read_lines(&path)?.into_iter().enumerate() {
                let k: OrderKeys = parse(&path, j, &order)?;
                entry.orders.push((k.id, k.billing_cycle, order));
            }
            let path = folder.join("subscriptions.jsonl");
            for (j, sub) in read_lines(&path)?.into_iter().enumerate() {
                let k: SubscriptionKeys = parse(&path, j, &sub)?;
                entry.subscriptions.push((k.id, k.order_id, k.partner_id, sub));
            }
            let path = folder.join("entitlements.jsonl");
            for (j, e) in read_lines(&path)?.into_iter().enumerate() {
                let k: EntitlementKeys = parse(&path, j, &e)?;
                let short = without_string_member(&e, "expiryDate");
                entry.entitlements.push((k.entitlement_type, e, short));
            }
            customers.push(entry);
        }
        let customer_index = customers.iter().enumerate().map(|(i, c)| (c.id.clone(), i)).collect();

        let mut invoices = Vec::new();
        let mut lines = HashMap::new();
        let invoices_path = dir.join("invoices.jsonl");
        for (i, line) in read_lines(&invoices_path)?.into_iter().enumerate() {
            let k: InvoiceKeys = parse(&invoices_path, i, &line)?;
            let list =
                without_string_member(&without_string_member(&line, "billingPeriodStartDate"), "billingPeriodEndDate");
            let folder = dir.join("invoices").join(&k.id);
            for stem in [
                "onetime-billinglineitems",
                "onetime-usagelineitems",
                "office-billinglineitems",
                "azure-billinglineitems",
                "azure-usagelineitems",
            ] {
                if let Some(file) = LineFile::open(&folder.join(format!("{stem}.jsonl")))? {
                    lines.insert((k.id.to_uppercase(), stem.to_owned()), file);
                }
            }
            invoices.push(InvoiceEntry {
                legacy: k.id.starts_with('D'),
                id: k.id,
                currency: k.currency_code,
                full: line,
                list,
            });
        }
        let invoice_index = invoices.iter().enumerate().map(|(i, inv)| (inv.id.to_uppercase(), i)).collect();
        for currency in &world.currencies {
            for period in ["current", "previous"] {
                let folder = dir.join("unbilled").join(currency).join(period);
                for stem in ["billinglineitems", "usagelineitems"] {
                    if let Some(file) = LineFile::open(&folder.join(format!("{stem}.jsonl")))? {
                        lines.insert((format!("UNBILLED/{currency}/{period}"), stem.to_owned()), file);
                    }
                }
            }
        }
        Ok(Store {
            dir: dir.to_path_buf(),
            partner_tenant_id: world.partner.tenant_id,
            currencies: world.currencies,
            customers,
            customer_index,
            invoices,
            invoice_index,
            summaries: read_lines(&dir.join("invoice_summaries.jsonl"))?,
            lines,
        })
    }

    /// A customer by tenant id (any case).
    pub fn customer(&self, id: &str) -> Option<&CustomerEntry> {
        self.customer_index.get(&id.to_lowercase()).map(|i| &self.customers[*i])
    }

    /// An invoice by id (any case; a `OneTime-`/`Recurring-` prefix is accepted).
    pub fn invoice(&self, id: &str) -> Option<&InvoiceEntry> {
        let bare = id.rsplit('-').next().unwrap_or(id);
        self.invoice_index.get(&bare.to_uppercase()).map(|i| &self.invoices[*i])
    }

    /// A billed line-item file of an invoice.
    pub fn invoice_lines(&self, invoice_id: &str, stem: &str) -> Option<&LineFile> {
        self.lines.get(&(invoice_id.to_uppercase(), stem.to_owned()))
    }

    /// An unbilled line-item file.
    pub fn unbilled_lines(&self, currency: &str, period: &str, stem: &str) -> Option<&LineFile> {
        self.lines.get(&(format!("UNBILLED/{}/{period}", currency.to_uppercase()), stem.to_owned()))
    }

    /// Path of an invoice's statement PDF.
    pub fn statement_path(&self, invoice_id: &str) -> PathBuf {
        self.dir.join("invoices").join(invoice_id).join("statement.pdf")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_members_are_removed_cleanly() {
        let json = r#"{"id":"G1","billingPeriodStartDate":"2025-01-01T00:00:00Z","x":1}"#;
        let out = without_string_member(json, "billingPeriodStartDate");
        assert_eq!(out, r#"{"id":"G1","x":1}"#);
        assert_eq!(without_string_member(json, "absent"), json);
    }

    #[test]
    fn pages_are_contiguous_records_joined_by_commas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n").unwrap();
        let f = LineFile::open(&path).unwrap().unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.items(0, 2).unwrap(), b"{\"a\":1},{\"a\":2}");
        assert_eq!(f.items(2, 10).unwrap(), b"{\"a\":3}");
        assert!(f.items(3, 5).unwrap().is_empty());
        assert!(LineFile::open(&dir.path().join("missing")).unwrap().is_none());
    }
}
