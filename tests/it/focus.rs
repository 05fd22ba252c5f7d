//! The `focus` dataset checked against the FOCUS 1.2 specification (FOCUS_Spec tag v1.2,
//! `specification/columns/*.md` and `attributes/*.md`), end to end: a world with credit notes,
//! adjustment notes and void notes, run by pcrecon, its `focus` Parquet and CSV read back.
//!
//! Checked, on every row (the MUST of each column unless said):
//! - Columns: the 21 Mandatory ones present; every column a FOCUS 1.2 Column ID or prefixed `x_`
//!   (ColumnHandling; the rest of the name Pascal-case alphanumeric, a SHOULD); FOCUS columns
//!   before all custom ones. Types: Decimal as Arrow decimal, Date/Time as UTC timestamps in
//!   whole seconds, String and JSON as UTF-8.
//! - Nulls: no null in a column that allows none (BillingAccountType, SubAccountType, PricingCurrency
//!   and PricingCurrencyEffectiveCost by their text); no empty, blank or placeholder string
//!   (NullHandling, StringHandling); every "null iff" and "null when" pairing of the column files
//!   (PricingUnit, ConsumedUnit, RegionName, SubAccountName and Type, BillingAccountType, SkuMeter,
//!   SkuPriceDetails, ResourceName and Type, CapacityReservationStatus, CommitmentDiscount*); the
//!   Tax/Usage/Purchase rules of the unit prices, PricingQuantity, PricingCategory, SkuId and
//!   SkuPriceId; ConsumedQuantity only on Usage; InvoiceId on invoiced charges only.
//! - Values: the allowed values of ChargeCategory, ChargeClass, ChargeFrequency, PricingCategory,
//!   ServiceCategory, ServiceSubcategory (with its one parent), the commitment and capacity
//!   statuses; ChargeFrequency not "Usage-Based" on a Purchase; one ServiceCategory per ServiceName,
//!   one SkuId per SkuPriceId; Tags and SkuPriceDetails JSON objects of scalars (KeyValueFormat);
//!   currencies as three capital letters (CurrencyFormat).
//! - Money, exactly: unit prices non-negative; unit price × PricingQuantity = ListCost and
//!   ContractedCost off corrections; ListCost and ContractedCost = BilledCost where the unit price
//!   is null off Tax; EffectiveCost = BilledCost on Credit and on Usage no commitment covers (0 on
//!   a commitment purchase); Σ BilledCost per InvoiceId = the invoice's total; Σ per
//!   BillingCurrency = the manifest's control totals of the source lines; the `reconciliation`
//!   dataset's `focus_invoice` and `focus_currency` rows.
//! - Periods: BillingPeriodStart < BillingPeriodEnd (the invoice's period, end exclusive),
//!   ChargePeriodStart ≤ ChargePeriodEnd; ChargeClass "Correction" exactly on the rows of a note,
//!   each amending an invoice issued earlier for the same billing period.
//! - The CSV twin: the same rows and values, Date/Time as `YYYY-MM-DDTHH:MM:SSZ` (DateTimeFormat),
//!   numbers in NumericFormat, null as an empty field.
//! - With another provider's FOCUS 1.2 data (focus-data-toolkit's Azure sample), DuckDB unions the
//!   57 columns without a cast, each column's type family the same on both sides.
//!
//! Not checkable from the data: what must stay consistent over time or across accounts (SkuId,
//! SkuPriceId, SkuMeter, CommitmentDiscountUnit, StringHandling's immutable values); whether a
//! name is a provider's display name, a unit is the price list's, a charge is related to a
//! resource, region or availability zone, or a purchase covers future charges; how Tax's
//! ListCost, ContractedCost and EffectiveCost derive from the charges taxed; the Metadata (schema
//! reference, FocusVersion, DataGenerator) and UnitFormat, which are outside the dataset or SHOULD.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::helpers::{Emulator, dec, digest_tree, generate, latest, pcrecon, run, samples, test_python, write_config};

/// The 57 Column IDs of FOCUS 1.2 (`specification/columns/columns.mdpp`), alphabetical.
const FOCUS_COLUMNS: [&str; 57] = [
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingAccountType",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "CapacityReservationId",
    "CapacityReservationStatus",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountQuantity",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "CommitmentDiscountUnit",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingCurrency",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SkuId",
    "SkuMeter",
    "SkuPriceDetails",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "SubAccountType",
    "Tags",
];

/// The columns whose Feature level is Mandatory.
const MANDATORY: [&str; 21] = [
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
];

/// The columns of data type Decimal.
const DECIMAL_COLUMNS: [&str; 12] = [
    "BilledCost",
    "CommitmentDiscountQuantity",
    "ConsumedQuantity",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "ListUnitPrice",
    "PricingCurrencyContractedUnitPrice",
    "PricingCurrencyEffectiveCost",
    "PricingCurrencyListUnitPrice",
    "PricingQuantity",
];

/// The columns of data type Date/Time.
const DATETIME_COLUMNS: [&str; 4] = ["BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart"];

/// The columns that "MUST NOT be null" (BillingAccountType and SubAccountType follow their Id).
const NOT_NULL: [&str; 20] = [
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingCurrency",
    "PricingCurrencyEffectiveCost",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
];

/// The columns that "MUST be null when ChargeCategory is "Tax"" and "MUST NOT be null when
/// ChargeCategory is "Usage" or "Purchase" and ChargeClass is not "Correction"".
const PRICED_COLUMNS: [&str; 8] = [
    "ListUnitPrice",
    "ContractedUnitPrice",
    "PricingQuantity",
    "PricingCategory",
    "SkuId",
    "SkuPriceId",
    "PricingCurrencyListUnitPrice",
    "PricingCurrencyContractedUnitPrice",
];

/// The unit prices, each "a non-negative decimal value".
const UNIT_PRICES: [&str; 4] =
    ["ListUnitPrice", "ContractedUnitPrice", "PricingCurrencyListUnitPrice", "PricingCurrencyContractedUnitPrice"];

const CHARGE_CATEGORIES: [&str; 5] = ["Usage", "Purchase", "Tax", "Credit", "Adjustment"];
const CHARGE_CLASSES: [&str; 1] = ["Correction"];
const CHARGE_FREQUENCIES: [&str; 3] = ["One-Time", "Recurring", "Usage-Based"];
const PRICING_CATEGORIES: [&str; 4] = ["Standard", "Dynamic", "Committed", "Other"];
const COMMITMENT_DISCOUNT_CATEGORIES: [&str; 2] = ["Spend", "Usage"];
const STATUSES: [&str; 2] = ["Used", "Unused"];

/// Each ServiceCategory with its ServiceSubcategory values; every category also has
/// "Other (<category>)".
const SERVICE_CATEGORIES: [(&str, &[&str]); 19] = [
    (
        "AI and Machine Learning",
        &["AI Platforms", "Bots", "Generative AI", "Machine Learning", "Natural Language Processing"],
    ),
    (
        "Analytics",
        &["Analytics Platforms", "Business Intelligence", "Data Processing", "Search", "Streaming Analytics"],
    ),
    ("Business Applications", &["Productivity and Collaboration"]),
    ("Compute", &["Containers", "End User Computing", "Quantum Compute", "Serverless Compute", "Virtual Machines"]),
    (
        "Databases",
        &[
            "Caching",
            "Data Warehouses",
            "Ledger Databases",
            "NoSQL Databases",
            "Relational Databases",
            "Time Series Databases",
        ],
    ),
    (
        "Developer Tools",
        &[
            "Developer Platforms",
            "Continuous Integration and Deployment",
            "Development Environments",
            "Source Code Management",
            "Quality Assurance",
        ],
    ),
    ("Multicloud", &["Multicloud Integration"]),
    ("Identity", &["Identity and Access Management"]),
    ("Integration", &["API Management", "Messaging", "Workflow Orchestration"]),
    ("Internet of Things", &["IoT Analytics", "IoT Platforms"]),
    (
        "Management and Governance",
        &[
            "Architecture",
            "Compliance",
            "Cost Management",
            "Data Governance",
            "Disaster Recovery",
            "Endpoint Management",
            "Observability",
            "Support",
        ],
    ),
    ("Media", &["Content Creation", "Gaming", "Media Streaming", "Mixed Reality"]),
    ("Migration", &["Data Migration", "Resource Migration"]),
    ("Mobile", &[]),
    (
        "Networking",
        &[
            "Application Networking",
            "Content Delivery",
            "Network Connectivity",
            "Network Infrastructure",
            "Network Routing",
            "Network Security",
        ],
    ),
    ("Security", &["Secret Management", "Security Posture Management", "Threat Detection and Response"]),
    ("Storage", &["Backup Storage", "Block Storage", "File Storage", "Object Storage", "Storage Platforms"]),
    ("Web", &["Application Platforms"]),
    ("Other", &[]),
];

/// The FOCUS-defined SkuPriceDetails properties; any other key must start with `x_`.
const SKU_PRICE_PROPERTIES: [&str; 13] = [
    "CoreCount",
    "DiskMaxIops",
    "DiskSpace",
    "DiskType",
    "GpuCount",
    "InstanceType",
    "InstanceSeries",
    "MemorySize",
    "NetworkMaxIops",
    "NetworkMaxThroughput",
    "OperatingSystem",
    "Redundancy",
    "StorageClass",
];

/// Strings that stand for "no value" (NullHandling: use null, not "Not Applicable").
const PLACEHOLDERS: [&str; 5] = ["null", "none", "n/a", "not applicable", "undefined"];

/// The source datasets of `focus` (pcrecon's contract) and their amount columns: the charge's
/// cost, its tax, its total.
const SOURCES: [(&str, &str, &str, &str); 4] = [
    ("billed_recon_line_items", "subtotal", "tax_total", "total_for_customer"),
    ("unbilled_recon_line_items", "subtotal", "tax_total", "total_for_customer"),
    ("legacy_office_line_items", "subtotal", "tax", "total_for_customer"),
    ("legacy_azure_line_items", "pretax_charges", "tax_amount", "post_tax_total"),
];

/// The one source dataset of charges no invoice was issued for yet.
const UNBILLED: &str = "unbilled_recon_line_items";

/// The display name the test's config gives the billing account.
const BILLING_ACCOUNT_NAME: &str = "Contoso Cloud Solutions";

const NANOS: i128 = 1_000_000_000;
const DAY: i128 = 86_400 * NANOS;

/// One decimal cell: its unscaled value and scale, as Parquet keeps it.
#[derive(Clone, Copy, Debug)]
struct Num {
    raw: i128,
    scale: u32,
}

impl Num {
    /// The exact value (trailing zeros dropped where the unscaled value needs more than 96 bits).
    fn dec(self) -> Decimal {
        let (mut raw, mut scale) = (self.raw, self.scale);
        while scale > 0 && raw % 10 == 0 && Decimal::try_from_i128_with_scale(raw, scale).is_err() {
            raw /= 10;
            scale -= 1;
        }
        Decimal::try_from_i128_with_scale(raw, scale).unwrap_or_else(|e| panic!("{self:?} is not a decimal: {e}"))
    }

    /// The unscaled value at a scale at least this one's.
    fn at(self, scale: u32) -> i128 {
        assert!(scale >= self.scale, "{self:?} at scale {scale}");
        self.raw.checked_mul(10i128.pow(scale - self.scale)).unwrap_or_else(|| panic!("{self:?} at scale {scale}"))
    }

    /// Whether both hold the same number (exact integer arithmetic on the unscaled values).
    fn same(self, other: Num) -> bool {
        let scale = self.scale.max(other.scale);
        self.at(scale) == other.at(scale)
    }

    /// The exact product.
    fn times(self, other: Num) -> Num {
        let raw = self.raw.checked_mul(other.raw).unwrap_or_else(|| panic!("{self:?} × {other:?} overflows"));
        Num { raw, scale: self.scale + other.scale }
    }
}

/// One column of every file of a dataset, in file order.
enum Col {
    Str(Vec<Option<String>>),
    Num(Vec<Option<Num>>),
    /// Instants in nanoseconds since the epoch.
    Time(Vec<Option<i128>>),
    Bool(Vec<Option<bool>>),
    Int(Vec<Option<i64>>),
    /// Any other type: whether each cell is null.
    Other(Vec<bool>),
}

impl Col {
    fn empty(data_type: &DataType) -> Col {
        match data_type {
            DataType::Utf8 => Col::Str(Vec::new()),
            DataType::Decimal128(..) => Col::Num(Vec::new()),
            DataType::Timestamp(..) => Col::Time(Vec::new()),
            DataType::Boolean => Col::Bool(Vec::new()),
            DataType::Int64 => Col::Int(Vec::new()),
            _ => Col::Other(Vec::new()),
        }
    }

    fn append(&mut self, array: &ArrayRef) {
        match self {
            Col::Str(cells) => cells.extend(array.as_string::<i32>().iter().map(|s| s.map(str::to_owned))),
            Col::Num(cells) => {
                let scale = match array.data_type() {
                    DataType::Decimal128(_, scale) => u32::try_from(*scale).unwrap(),
                    other => panic!("not a decimal: {other}"),
                };
                cells
                    .extend(array.as_primitive::<Decimal128Type>().iter().map(|raw| raw.map(|raw| Num { raw, scale })));
            }
            Col::Time(cells) => cells.extend(nanos(array)),
            Col::Bool(cells) => cells.extend(array.as_boolean().iter()),
            Col::Int(cells) => cells.extend(array.as_primitive::<Int64Type>().iter()),
            Col::Other(cells) => cells.extend((0..array.len()).map(|i| array.is_null(i))),
        }
    }
}

/// A timestamp column in nanoseconds since the epoch, whatever its unit.
fn nanos(array: &ArrayRef) -> Vec<Option<i128>> {
    let (values, per): (Vec<Option<i64>>, i128) = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            (array.as_primitive::<TimestampSecondType>().iter().collect(), NANOS)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            (array.as_primitive::<TimestampMillisecondType>().iter().collect(), 1_000_000)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            (array.as_primitive::<TimestampMicrosecondType>().iter().collect(), 1_000)
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            (array.as_primitive::<TimestampNanosecondType>().iter().collect(), 1)
        }
        other => panic!("not a timestamp: {other}"),
    };
    values.into_iter().map(|v| v.map(|v| i128::from(v) * per)).collect()
}

/// Every Parquet file of a dataset folder, read whole.
struct Table {
    /// Column names and types, in file order.
    fields: Vec<(String, DataType)>,
    cols: BTreeMap<String, Col>,
    rows: usize,
    /// Each file (relative to the folder) with its first row and its number of rows.
    files: Vec<(String, usize, usize)>,
}

impl Table {
    /// Every Parquet file under `dir`, in path order; all must have the same columns.
    fn load(dir: &Path) -> Table {
        assert!(dir.is_dir(), "no dataset folder {}", dir.display());
        let mut table = Table { fields: Vec::new(), cols: BTreeMap::new(), rows: 0, files: Vec::new() };
        for rel in digest_tree(dir).into_keys().filter(|p| p.ends_with(".parquet")) {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(dir.join(&rel)).unwrap()).unwrap();
            let fields: Vec<(String, DataType)> =
                reader.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
            if table.files.is_empty() {
                let names: BTreeSet<&String> = fields.iter().map(|(name, _)| name).collect();
                assert_eq!(names.len(), fields.len(), "{rel}: a column name twice");
                table.cols = fields.iter().map(|(name, data_type)| (name.clone(), Col::empty(data_type))).collect();
                table.fields = fields;
            } else {
                assert_eq!(fields, table.fields, "{rel}: other columns than {}", table.files[0].0);
            }
            let start = table.rows;
            for batch in reader.build().unwrap() {
                let batch = batch.unwrap();
                for (at, (name, _)) in table.fields.iter().enumerate() {
                    table.cols.get_mut(name).unwrap().append(batch.column(at));
                }
                table.rows += batch.num_rows();
            }
            table.files.push((rel, start, table.rows - start));
        }
        table
    }

    fn names(&self) -> Vec<&str> {
        self.fields.iter().map(|(name, _)| name.as_str()).collect()
    }

    fn col(&self, name: &str) -> &Col {
        self.cols.get(name).unwrap_or_else(|| panic!("no column {name}"))
    }

    fn str(&self, name: &str, i: usize) -> Option<&str> {
        match self.col(name) {
            Col::Str(cells) => cells[i].as_deref(),
            _ => panic!("{name} is not a string column"),
        }
    }

    fn num(&self, name: &str, i: usize) -> Option<Num> {
        match self.col(name) {
            Col::Num(cells) => cells[i],
            _ => panic!("{name} is not a decimal column"),
        }
    }

    fn dec(&self, name: &str, i: usize) -> Option<Decimal> {
        self.num(name, i).map(Num::dec)
    }

    fn time(&self, name: &str, i: usize) -> Option<i128> {
        match self.col(name) {
            Col::Time(cells) => cells[i],
            _ => panic!("{name} is not a timestamp column"),
        }
    }

    fn flag(&self, name: &str, i: usize) -> Option<bool> {
        match self.col(name) {
            Col::Bool(cells) => cells[i],
            _ => panic!("{name} is not a boolean column"),
        }
    }

    fn int(&self, name: &str, i: usize) -> Option<i64> {
        match self.col(name) {
            Col::Int(cells) => cells[i],
            _ => panic!("{name} is not an Int64 column"),
        }
    }

    fn is_null(&self, name: &str, i: usize) -> bool {
        match self.col(name) {
            Col::Str(cells) => cells[i].is_none(),
            Col::Num(cells) => cells[i].is_none(),
            Col::Time(cells) => cells[i].is_none(),
            Col::Bool(cells) => cells[i].is_none(),
            Col::Int(cells) => cells[i].is_none(),
            Col::Other(cells) => cells[i],
        }
    }
}

/// Rules broken: how often, and the first instance.
#[derive(Default)]
struct Findings(BTreeMap<String, (usize, String)>);

impl Findings {
    fn fail(&mut self, rule: impl Into<String>, instance: impl FnOnce() -> String) {
        self.0.entry(rule.into()).or_insert_with(|| (0, instance())).0 += 1;
    }

    fn check(&mut self, ok: bool, rule: impl Into<String>, instance: impl FnOnce() -> String) {
        if !ok {
            self.fail(rule, instance);
        }
    }

    fn assert_none(self, what: &str) {
        let broken: Vec<String> =
            self.0.iter().map(|(rule, (times, first))| format!("{rule}: {times} times, first {first}")).collect();
        assert!(broken.is_empty(), "{what} breaks {} rules:\n{}", broken.len(), broken.join("\n"));
    }
}

/// `a` implies `b`.
fn implies(a: bool, b: bool) -> bool {
    !a || b
}

/// A focus row, for messages.
fn label(t: &Table, i: usize) -> String {
    let s = |c: &str| t.str(c, i).unwrap_or("-");
    format!("row {i} ({} {} {} invoice {})", s("x_SourceDataset"), s("x_RowKey"), s("ChargeCategory"), s("InvoiceId"))
}

/// An instant as FOCUS writes it, `YYYY-MM-DDTHH:MM:SSZ`.
fn instant(ns: i128) -> String {
    let secs = i64::try_from(ns.div_euclid(NANOS)).unwrap();
    let sub = u32::try_from(ns.rem_euclid(NANOS)).unwrap();
    let at = chrono::DateTime::from_timestamp(secs, sub).unwrap_or_else(|| panic!("{ns} ns is out of range"));
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The start of an instant's day (UTC).
fn day_of(ns: i128) -> i128 {
    ns.div_euclid(DAY) * DAY
}

/// The parent ServiceCategory of a ServiceSubcategory value, if it is one.
fn parent_category(subcategory: &str) -> Option<&'static str> {
    SERVICE_CATEGORIES
        .iter()
        .find(|(parent, subs)| {
            subs.contains(&subcategory)
                || subcategory.strip_prefix("Other (").and_then(|rest| rest.strip_suffix(')')) == Some(*parent)
        })
        .map(|(parent, _)| *parent)
}

/// CurrencyFormat for a national currency: an ISO 4217 alphabetic code.
fn currency_code(text: &str) -> bool {
    text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase())
}

/// KeyValueFormat: a JSON object whose values are scalars.
fn key_value(text: &str) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => {
            let nested = map.iter().find(|(_, v)| v.is_object() || v.is_array()).map(|(key, _)| key.clone());
            match nested {
                Some(key) => Err(format!("the value of {key} is an object or an array")),
                None => Ok(map),
            }
        }
        Ok(other) => Err(format!("not a JSON object: {other}")),
        Err(e) => Err(e.to_string()),
    }
}

/// A custom column name: `x_` and a Pascal-case alphanumeric name.
fn custom(name: &str) -> bool {
    name.strip_prefix("x_").is_some_and(|rest| {
        rest.starts_with(|c: char| c.is_ascii_uppercase()) && rest.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// A CSV number in NumericFormat (an optional `-`, digits, optionally `.` and digits: no `+`, no
/// separators, no units) and its value; `None` when the text is not one.
fn numeric(text: &str) -> Option<Num> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (digits, ""),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let raw: i128 = format!("{int}{frac}").parse().ok()?;
    let raw = if text.starts_with('-') { -raw } else { raw };
    Some(Num { raw, scale: u32::try_from(frac.len()).ok()? })
}

/// DateTimeFormat: `YYYY-MM-DDTHH:MM:SSZ`.
fn focus_datetime(text: &str) -> bool {
    text.len() == 20
        && text.bytes().enumerate().all(|(at, b)| match at {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// Generates the world, serves it and runs pcrecon on it: the folder and the snapshot.
fn run_on(world_args: Option<&[&str]>, extra_config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let world = match world_args {
        Some(args) => {
            let world = dir.path().join("world");
            generate(&world, args);
            world
        }
        None => samples(),
    };
    let emulator = Emulator::start(&["--world", world.to_str().unwrap()]);
    let config = write_config(&emulator, dir.path(), extra_config);
    let finished = run(&config, &[], &[]);
    assert_eq!(finished.code, 0, "{}", finished.stderr);
    let snapshot = latest(&dir.path().join("out"));
    (dir, snapshot)
}

#[test]
fn a_world_with_credit_documents_publishes_focus_1_2_that_conforms_and_ties_out_to_every_invoice() {
    assert!(FOCUS_COLUMNS.windows(2).all(|w| w[0] < w[1]), "the Column IDs, alphabetical and distinct");
    assert!(MANDATORY.iter().chain(&DECIMAL_COLUMNS).chain(&DATETIME_COLUMNS).all(|c| FOCUS_COLUMNS.contains(c)));
    let world = [
        "--seed",
        "21",
        "--customers",
        "10",
        "--months",
        "3",
        "--usage-rows-per-month",
        "600",
        "--documents",
        "credit_note=0.3,adjustment_note=0.3,void_note=0.3",
        "--anomalies",
        "none",
    ];
    let config = format!("[focus]\nbilling_account_name = {BILLING_ACCOUNT_NAME:?}\n");
    let (_dir, snapshot) = run_on(Some(&world[..]), &config);
    let focus = Table::load(&snapshot.join("focus"));
    assert!(focus.rows > 0, "no focus rows");

    check_columns(&focus);
    let seen = check_rows(&focus);
    // Every kind of charge is there, so that no rule above held for want of rows.
    for what in [
        "Usage",
        "Purchase",
        "Tax",
        "Credit",
        "Adjustment",
        "Correction",
        "ListUnitPrice × PricingQuantity",
        "ContractedUnitPrice × PricingQuantity",
        "ListCost without ListUnitPrice",
        "ContractedCost without ContractedUnitPrice",
    ] {
        assert!(seen.get(what).is_some_and(|n| *n > 0), "no {what} rows: {seen:?}");
    }
    for i in 0..focus.rows {
        assert_eq!(focus.str("BillingAccountName", i), Some(BILLING_ACCOUNT_NAME), "{}", label(&focus, i));
    }

    check_sources_and_money(&snapshot, &focus);
    check_layout(&snapshot, &focus);
    check_csv_twin(&snapshot, &focus);
    let verified = pcrecon(&["verify", snapshot.to_str().unwrap()], &[]);
    assert_eq!(verified.code, 0, "{}", verified.stdout);
}

/// ColumnHandling and the columns' data types.
fn check_columns(t: &Table) {
    let names = t.names();
    let missing: Vec<&str> = MANDATORY.iter().copied().filter(|c| !names.contains(c)).collect();
    assert!(missing.is_empty(), "Mandatory columns missing: {missing:?}");
    let foreign: Vec<&str> = names.iter().copied().filter(|n| !FOCUS_COLUMNS.contains(n) && !custom(n)).collect();
    assert!(foreign.is_empty(), "neither FOCUS 1.2 Column IDs nor x_ custom columns: {foreign:?}");
    let first_custom = names.iter().position(|n| !FOCUS_COLUMNS.contains(n)).unwrap_or(names.len());
    assert!(names[first_custom..].iter().all(|n| custom(n)), "custom columns among the FOCUS columns: {names:?}");
    // pcrecon publishes every FOCUS 1.2 column, alphabetically, and says where each row came from.
    assert_eq!(&names[..first_custom], &FOCUS_COLUMNS[..], "the FOCUS columns");
    for column in ["x_SourceDataset", "x_RowKey"] {
        assert!(names.contains(&column), "no {column}: {names:?}");
    }

    let mut wrong = Vec::new();
    for (name, data_type) in &t.fields {
        let name = name.as_str();
        let ok = if DECIMAL_COLUMNS.contains(&name) {
            matches!(data_type, DataType::Decimal128(..))
        } else if DATETIME_COLUMNS.contains(&name) {
            matches!(data_type, DataType::Timestamp(_, Some(tz)) if matches!(&**tz, "UTC" | "+00:00"))
        } else {
            !FOCUS_COLUMNS.contains(&name) || *data_type == DataType::Utf8
        };
        if !ok {
            wrong.push(format!("{name}: {data_type}"));
        }
    }
    assert!(wrong.is_empty(), "columns of the wrong type: {wrong:?}");
    let schema_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas").join("focus.json");
    let schema: Value = serde_json::from_slice(&std::fs::read(&schema_file).unwrap()).unwrap();
    let documented: Vec<&str> =
        schema["columns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(documented, names, "{}", schema_file.display());
}

/// The rules each row must keep on its own, and the ones across rows; what they saw.
fn check_rows(t: &Table) -> BTreeMap<String, usize> {
    let mut f = Findings::default();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let strings: Vec<&str> =
        t.fields.iter().filter(|(_, data_type)| *data_type == DataType::Utf8).map(|(name, _)| name.as_str()).collect();
    let service_categories: Vec<&str> = SERVICE_CATEGORIES.iter().map(|(c, _)| *c).collect();
    let mut categories_of_service: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut skus_of_price: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Per CommitmentDiscountId: Σ EffectiveCost of Usage, Σ BilledCost of Purchase, Σ EffectiveCost
    // of Used and of Unused Usage.
    let mut commitments: BTreeMap<String, [Decimal; 4]> = BTreeMap::new();
    for i in 0..t.rows {
        let at = || label(t, i);
        let s = |c: &str| t.str(c, i);
        let null = |c: &str| t.is_null(c, i);
        let num = |c: &str| t.num(c, i);
        let time = |c: &str| t.time(c, i);
        let category = s("ChargeCategory").unwrap_or_default();
        let (tax, usage, purchase) = (category == "Tax", category == "Usage", category == "Purchase");
        let correction = s("ChargeClass") == Some("Correction");
        let commitment = !null("CommitmentDiscountId");
        *seen.entry(category.to_owned()).or_default() += 1;
        if correction {
            *seen.entry("Correction".to_owned()).or_default() += 1;
        }

        for c in NOT_NULL {
            f.check(!null(c), format!("{c} MUST NOT be null"), at);
        }
        for c in strings.iter().copied() {
            if let Some(v) = s(c) {
                f.check(!v.trim().is_empty(), format!("{c}: no empty or blank strings (NullHandling)"), at);
                let placeholder = FOCUS_COLUMNS.contains(&c) && PLACEHOLDERS.iter().any(|p| v.eq_ignore_ascii_case(p));
                f.check(!placeholder, format!("{c}: no placeholder for null (NullHandling)"), at);
            }
        }

        // Allowed values.
        for (c, values) in [
            ("ChargeCategory", &CHARGE_CATEGORIES[..]),
            ("ChargeClass", &CHARGE_CLASSES[..]),
            ("ChargeFrequency", &CHARGE_FREQUENCIES[..]),
            ("PricingCategory", &PRICING_CATEGORIES[..]),
            ("ServiceCategory", &service_categories[..]),
            ("CommitmentDiscountCategory", &COMMITMENT_DISCOUNT_CATEGORIES[..]),
            ("CommitmentDiscountStatus", &STATUSES[..]),
            ("CapacityReservationStatus", &STATUSES[..]),
        ] {
            f.check(s(c).is_none_or(|v| values.contains(&v)), format!("{c}: one of the allowed values"), at);
        }
        if let Some(subcategory) = s("ServiceSubcategory") {
            match parent_category(subcategory) {
                None => f.fail("ServiceSubcategory: an allowed value", at),
                Some(parent) => f.check(s("ServiceCategory") == Some(parent), "ServiceSubcategory: its one parent", at),
            }
        }
        let usage_based = s("ChargeFrequency") == Some("Usage-Based");
        f.check(implies(purchase, !usage_based), "ChargeFrequency MUST NOT be Usage-Based on a Purchase", at);

        // What Tax, Usage and Purchase rows must and must not have.
        for c in PRICED_COLUMNS {
            f.check(implies(tax, null(c)), format!("{c} MUST be null when ChargeCategory is Tax"), at);
            let required = (usage || purchase) && !correction;
            f.check(
                implies(required, !null(c)),
                format!("{c} MUST NOT be null on Usage or Purchase off corrections"),
                at,
            );
        }
        f.check(null("PricingUnit") == null("PricingQuantity"), "PricingUnit null iff PricingQuantity null", at);
        let unused = s("CommitmentDiscountStatus") == Some("Unused");
        if !usage || unused {
            f.check(null("ConsumedQuantity"), "ConsumedQuantity MUST be null unless used Usage", at);
        } else if !correction {
            f.check(!null("ConsumedQuantity"), "ConsumedQuantity MUST NOT be null on Usage off corrections", at);
        }
        f.check(null("ConsumedUnit") == null("ConsumedQuantity"), "ConsumedUnit null iff ConsumedQuantity null", at);

        // The columns whose nullability follows another's.
        for (column, partner) in [
            ("RegionName", "RegionId"),
            ("SubAccountName", "SubAccountId"),
            ("SubAccountType", "SubAccountId"),
            ("BillingAccountType", "BillingAccountId"),
            ("ResourceType", "ResourceId"),
            ("CommitmentDiscountCategory", "CommitmentDiscountId"),
            ("CommitmentDiscountType", "CommitmentDiscountId"),
            ("CommitmentDiscountUnit", "CommitmentDiscountQuantity"),
        ] {
            f.check(null(column) == null(partner), format!("{column} null iff {partner} null"), at);
        }
        for (column, partner) in [
            ("SkuMeter", "SkuId"),
            ("SkuPriceDetails", "SkuPriceId"),
            ("ResourceName", "ResourceId"),
            ("CapacityReservationStatus", "CapacityReservationId"),
            ("CommitmentDiscountName", "CommitmentDiscountId"),
            ("CommitmentDiscountQuantity", "CommitmentDiscountId"),
            ("CommitmentDiscountStatus", "CommitmentDiscountId"),
        ] {
            f.check(implies(null(partner), null(column)), format!("{column} MUST be null when {partner} is null"), at);
        }
        let status_needed = commitment && usage;
        f.check(implies(status_needed, !null("CommitmentDiscountStatus")), "CommitmentDiscountStatus on Usage", at);
        let quantified = commitment && (usage || purchase);
        f.check(implies(!quantified, null("CommitmentDiscountQuantity")), "CommitmentDiscountQuantity: null", at);
        let quantity_needed = quantified && !correction;
        f.check(implies(quantity_needed, !null("CommitmentDiscountQuantity")), "CommitmentDiscountQuantity", at);
        let reserved_usage = !null("CapacityReservationId") && usage;
        f.check(implies(reserved_usage, !null("CapacityReservationStatus")), "CapacityReservationStatus on Usage", at);
        let committed = s("PricingCategory") == Some("Committed");
        f.check(implies(committed, commitment), "PricingCategory Committed names its CommitmentDiscountId", at);
        f.check(implies(!null("SkuPriceId"), !null("SkuId")), "SkuPriceId MUST have one parent SkuId", at);
        if let (Some(name), Some(service_category)) = (s("ServiceName"), s("ServiceCategory")) {
            categories_of_service.entry(name.to_owned()).or_default().insert(service_category.to_owned());
        }
        if let (Some(price), Some(sku)) = (s("SkuPriceId"), s("SkuId")) {
            skus_of_price.entry(price.to_owned()).or_default().insert(sku.to_owned());
        }

        // Money.
        for c in UNIT_PRICES {
            f.check(num(c).is_none_or(|p| p.raw >= 0), format!("{c} MUST be non-negative"), at);
        }
        let billed = t.dec("BilledCost", i);
        let quantity = num("PricingQuantity");
        for (price, cost) in [("ListUnitPrice", "ListCost"), ("ContractedUnitPrice", "ContractedCost")] {
            match (num(price), quantity, num(cost)) {
                (Some(p), Some(q), Some(c)) if !correction => {
                    f.check(p.times(q).same(c), format!("{price} × PricingQuantity MUST match {cost}"), at);
                    *seen.entry(format!("{price} × PricingQuantity")).or_default() += 1;
                }
                (None, _, Some(c)) if !tax => {
                    f.check(Some(c.dec()) == billed, format!("{cost} matches BilledCost where {price} is null"), at);
                    *seen.entry(format!("{cost} without {price}")).or_default() += 1;
                }
                _ => {}
            }
        }
        let effective = t.dec("EffectiveCost", i);
        if category == "Credit" {
            f.check(effective == billed, "EffectiveCost MUST match BilledCost on Credit", at);
        }
        f.check(
            implies(usage && !commitment, effective == billed),
            "EffectiveCost = BilledCost on uncommitted Usage",
            at,
        );
        let commitment_purchase = purchase && commitment;
        f.check(implies(commitment_purchase, effective == Some(Decimal::ZERO)), "EffectiveCost 0 on a commitment", at);
        if let Some(id) = s("CommitmentDiscountId") {
            let sums = commitments.entry(id.to_owned()).or_default();
            let (effective, billed) = (effective.unwrap_or_default(), billed.unwrap_or_default());
            if usage {
                sums[0] += effective;
                sums[if unused { 3 } else { 2 }] += effective;
            } else if purchase {
                sums[1] += billed;
            }
        }
        for c in ["BillingCurrency", "PricingCurrency"] {
            f.check(s(c).is_none_or(currency_code), format!("{c}: a three-letter currency code"), at);
        }

        // Periods.
        for c in DATETIME_COLUMNS {
            f.check(time(c).is_none_or(|ns| ns % NANOS == 0), format!("{c}: whole seconds"), at);
        }
        if let (Some(start), Some(end)) = (time("BillingPeriodStart"), time("BillingPeriodEnd")) {
            f.check(start < end, "BillingPeriodStart before the exclusive BillingPeriodEnd", at);
        }
        if let (Some(start), Some(end)) = (time("ChargePeriodStart"), time("ChargePeriodEnd")) {
            f.check(start <= end, "ChargePeriodStart not after ChargePeriodEnd", at);
        }

        // An issued invoice's charges name it; charges no invoice was issued for do not.
        match s("x_SourceDataset") {
            Some(UNBILLED) => f.check(null("InvoiceId"), "InvoiceId MUST be null on unbilled charges", at),
            Some("billed_recon_line_items" | "legacy_office_line_items" | "legacy_azure_line_items") => {
                f.check(!null("InvoiceId"), "InvoiceId MUST NOT be null on invoiced charges", at)
            }
            other => f.fail(format!("x_SourceDataset {other:?} is not a source of focus"), at),
        }

        for c in ["Tags", "SkuPriceDetails"] {
            if let Some(text) = s(c) {
                match key_value(text) {
                    Err(e) => f.fail(format!("{c}: KeyValueFormat ({e})"), at),
                    Ok(map) if c == "SkuPriceDetails" => {
                        let keys_ok =
                            map.keys().all(|k| SKU_PRICE_PROPERTIES.contains(&k.as_str()) || k.starts_with("x_"));
                        f.check(keys_ok, "SkuPriceDetails: FOCUS-defined or x_ keys", at);
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    for (name, service_categories) in &categories_of_service {
        let one = service_categories.len() == 1;
        f.check(one, "ServiceName MUST have one and only one ServiceCategory", || {
            format!("{name}: {service_categories:?}")
        });
    }
    for (price, skus) in &skus_of_price {
        f.check(skus.len() == 1, "SkuPriceId MUST have one and only one parent SkuId", || format!("{price}: {skus:?}"));
    }
    for (id, [usage, purchased, used, unused]) in &commitments {
        let balanced = usage == purchased && *usage == *used + *unused;
        f.check(balanced, "a commitment's Usage EffectiveCost = its Purchase BilledCost = Used + Unused", || {
            id.clone()
        });
    }
    f.assert_none("the focus dataset");
    seen
}

/// A distinct line of a source dataset.
struct Line {
    currency: String,
    invoice_id: Option<String>,
    cost: Decimal,
    tax: Decimal,
    total: Decimal,
}

/// Every distinct line (`is_duplicate` false) of the source datasets, by dataset and row key.
fn source_lines(snapshot: &Path) -> BTreeMap<(String, String), Line> {
    let mut out = BTreeMap::new();
    for (dataset, cost, tax, total) in SOURCES {
        let t = Table::load(&snapshot.join(dataset));
        for i in (0..t.rows).filter(|&i| t.flag("is_duplicate", i) == Some(false)) {
            let key = t.str("row_key", i).unwrap().to_owned();
            let amount = |c: &str| t.dec(c, i).unwrap_or_default();
            let line = Line {
                currency: t.str("billing_currency", i).unwrap().to_uppercase(),
                invoice_id: t.str("invoice_id", i).map(str::to_owned),
                cost: amount(cost),
                tax: amount(tax),
                total: amount(total),
            };
            assert!(out.insert((dataset.to_owned(), key.clone()), line).is_none(), "{dataset}: two lines keyed {key}");
        }
    }
    out
}

/// A document of the `invoices` dataset.
struct Document {
    kind: String,
    total: Decimal,
    currency: String,
    period_start: i128,
    period_end: i128,
    amends_of: Option<String>,
    issued: i128,
}

fn documents(snapshot: &Path) -> BTreeMap<String, Document> {
    let t = Table::load(&snapshot.join("invoices"));
    let mut out = BTreeMap::new();
    for i in 0..t.rows {
        let id = t.str("id", i).unwrap().to_owned();
        let document = Document {
            kind: t.str("document_type", i).unwrap().to_owned(),
            total: t.dec("total_charges", i).unwrap(),
            currency: t.str("billing_currency", i).unwrap().to_uppercase(),
            period_start: t.time("billing_period_start_date", i).unwrap(),
            period_end: t.time("billing_period_end_date", i).unwrap(),
            amends_of: t.str("amends_of", i).map(str::to_owned),
            issued: t.time("invoice_date", i).unwrap(),
        };
        assert!(out.insert(id.clone(), document).is_none(), "invoices: {id} twice");
    }
    out
}

/// Whether a document type is a note amending an invoice (or the invoice itself).
fn is_note(kind: &str) -> bool {
    match kind.to_ascii_lowercase().replace(' ', "_").as_str() {
        "invoice" => false,
        "credit_note" | "adjustment_note" | "void_note" => true,
        other => panic!("unknown document type {other:?}"),
    }
}

/// The source lines behind the rows, the documents they bill and the totals they add up to.
fn check_sources_and_money(snapshot: &Path, t: &Table) {
    let lines = source_lines(snapshot);
    let docs = documents(snapshot);
    let mut f = Findings::default();
    let mut charges: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut charges_by_key: BTreeMap<String, usize> = BTreeMap::new();
    let mut taxes: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut billed_per_line: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    let mut per_invoice: BTreeMap<String, (Decimal, i64)> = BTreeMap::new();
    let mut per_currency: BTreeMap<String, (Decimal, Decimal)> = BTreeMap::new();
    let mut corrected: BTreeMap<String, BTreeSet<i128>> = BTreeMap::new();
    for i in 0..t.rows {
        let at = || label(t, i);
        let s = |c: &str| t.str(c, i);
        let key = (s("x_SourceDataset").unwrap_or_default().to_owned(), s("x_RowKey").unwrap_or_default().to_owned());
        let tax = s("ChargeCategory") == Some("Tax");
        let billed = t.dec("BilledCost", i).unwrap_or_default();
        let currency = s("BillingCurrency").unwrap_or_default().to_owned();
        let sums = per_currency.entry(currency.clone()).or_default();
        sums.0 += billed;
        sums.1 += t.dec("EffectiveCost", i).unwrap_or_default();
        let Some(line) = lines.get(&key) else {
            f.fail("x_SourceDataset and x_RowKey name a distinct source line", at);
            continue;
        };
        let counts = if tax { &mut taxes } else { &mut charges };
        *counts.entry(key.clone()).or_default() += 1;
        if !tax {
            *charges_by_key.entry(key.1.clone()).or_default() += 1;
        }
        *billed_per_line.entry(key.clone()).or_default() += billed;
        f.check(currency == line.currency, "BillingCurrency is the source line's billing currency", at);
        let expected = if tax { line.tax } else { line.cost };
        f.check(billed == expected, "BilledCost is the line's charge (its Tax row: its tax)", at);
        f.check(implies(tax, !line.tax.is_zero()), "a Tax row only for a line with tax", at);

        let invoice = s("InvoiceId");
        if key.0 == UNBILLED {
            f.check(s("ChargeClass").is_none(), "ChargeClass null on unbilled charges", at);
            continue;
        }
        f.check(invoice == line.invoice_id.as_deref(), "InvoiceId is the source line's invoice", at);
        let Some(id) = invoice else { continue };
        let sums = per_invoice.entry(id.to_owned()).or_default();
        sums.0 += billed;
        sums.1 += 1;
        let Some(doc) = docs.get(id) else {
            f.fail("InvoiceId names a document of the invoices dataset", at);
            continue;
        };
        f.check(currency == doc.currency, "BillingCurrency MUST match the currency of the invoice", at);
        let note = is_note(&doc.kind);
        f.check((s("ChargeClass") == Some("Correction")) == note, "ChargeClass Correction exactly on notes' rows", at);
        let (start, end) = (t.time("BillingPeriodStart", i), t.time("BillingPeriodEnd", i));
        f.check(start == Some(day_of(doc.period_start)), "BillingPeriodStart is the invoice's period start", at);
        f.check(
            end == Some(day_of(doc.period_end) + DAY),
            "BillingPeriodEnd is the day after the invoice's period",
            at,
        );
        if note {
            corrected.entry(id.to_owned()).or_default().extend(start);
        }
    }
    f.assert_none("the focus rows against their sources");

    // One charge row per distinct source line, at most one Tax row, and together its total.
    let source_keys: BTreeSet<&(String, String)> = lines.keys().collect();
    let charge_keys: BTreeSet<&(String, String)> = charges.keys().collect();
    let missing: Vec<_> = source_keys.difference(&charge_keys).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} source lines without a focus row, e.g. {missing:?}",
        source_keys.len() - charge_keys.len()
    );
    let twice: Vec<_> = charges.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(twice.is_empty(), "source lines with several charge rows: {twice:?}");
    let non_tax = charges.values().sum::<usize>();
    assert_eq!(non_tax, lines.len(), "non-Tax rows against distinct source lines");
    let keys_twice: Vec<_> = charges_by_key.iter().filter(|(_, n)| **n != 1).take(5).collect();
    assert!(keys_twice.is_empty(), "row keys on several non-Tax rows: {keys_twice:?}");
    let taxed = lines.values().filter(|line| !line.tax.is_zero()).count();
    assert!(taxes.values().all(|n| *n == 1), "a line with two Tax rows");
    assert_eq!(taxes.len(), taxed, "one Tax row per line with tax");
    for (key, line) in &lines {
        assert_eq!(billed_per_line.get(key), Some(&line.total), "Σ BilledCost of {key:?} against its total");
    }

    // Σ BilledCost per InvoiceId is the invoice's total, for every document, and every document
    // has rows; each document tied out on its own.
    let recon = Table::load(&snapshot.join("reconciliation"));
    let recon_row = |kind: &str, id: &str| {
        let mut found =
            (0..recon.rows).filter(|&r| recon.str("kind", r) == Some(kind) && recon.str("invoice_id", r) == Some(id));
        let row = found.next().unwrap_or_else(|| panic!("reconciliation has no {kind} row for {id}"));
        assert!(found.next().is_none(), "reconciliation has two {kind} rows for {id}");
        row
    };
    let invoiced: BTreeSet<&String> = per_invoice.keys().collect();
    let published: BTreeSet<&String> = docs.keys().collect();
    assert_eq!(invoiced, published, "the InvoiceIds of focus against the invoices dataset");
    let mut notes = 0;
    for (id, (sum, rows)) in &per_invoice {
        let doc = &docs[id];
        let own = recon_row(doc.kind.as_str(), id.as_str());
        let status = recon.str("status", own);
        assert!(matches!(status, Some("ok" | "void")), "{id} {}: tie-out {status:?}", doc.kind);
        assert_eq!(*sum, doc.total, "Σ BilledCost of InvoiceId {id} against the invoice's total_charges");
        let row = recon_row("focus_invoice", id.as_str());
        // A voided invoice is void in both checks; every other one ties out.
        assert_eq!(recon.str("status", row), status, "focus_invoice {id}: the status of the document's own check");
        assert_eq!(recon.dec("stated_total", row), Some(doc.total), "focus_invoice {id}: stated_total");
        assert_eq!(recon.dec("lines_total", row), Some(*sum), "focus_invoice {id}: lines_total");
        assert!(recon.dec("difference", row).is_none_or(|d| d.is_zero()), "focus_invoice {id}: difference");
        assert_eq!(recon.int("lines", row), Some(*rows), "focus_invoice {id}: lines");
        if is_note(&doc.kind) {
            // A correction to a previously invoiced billing period: the invoice it amends was
            // issued earlier, for the same period.
            let amended = doc.amends_of.as_deref().unwrap_or_else(|| panic!("{id}: a note amending nothing"));
            let invoice = docs.get(amended).unwrap_or_else(|| panic!("{id} amends {amended}, not published"));
            assert!(!is_note(&invoice.kind) && invoice.issued < doc.issued, "{id} amends {amended}");
            let periods = &corrected[id];
            assert_eq!(periods, &BTreeSet::from([day_of(invoice.period_start)]), "{id}: the period it corrects");
            notes += 1;
        }
    }
    assert!(notes > 0, "no notes");
    let focus_invoices = (0..recon.rows).filter(|&r| recon.str("kind", r) == Some("focus_invoice")).count();
    assert_eq!(focus_invoices, per_invoice.len(), "one focus_invoice row per InvoiceId");

    // Σ BilledCost per BillingCurrency is the manifest's control totals of the source lines.
    let manifest: Value = serde_json::from_slice(&std::fs::read(snapshot.join("manifest.json")).unwrap()).unwrap();
    let datasets = &manifest["datasets"];
    let mut expected: BTreeMap<String, Decimal> = BTreeMap::new();
    for (dataset, _, _, total) in SOURCES {
        let by_currency = datasets[dataset]["control_totals"].as_object();
        let by_currency = by_currency.unwrap_or_else(|| panic!("the manifest has no {dataset} control totals"));
        for (currency, totals) in by_currency {
            let value = &totals[total];
            assert!(!value.is_null(), "the manifest has no {dataset} {total} in {currency}");
            *expected.entry(currency.to_uppercase()).or_default() += dec(value);
        }
    }
    let sums: BTreeMap<String, Decimal> = per_currency.iter().map(|(c, (billed, _))| (c.clone(), *billed)).collect();
    assert_eq!(sums, expected, "Σ BilledCost per BillingCurrency against the source control totals");
    let focus = &datasets["focus"];
    assert_eq!(focus["rows"].as_u64(), Some(t.rows as u64), "the manifest's focus rows");
    let currencies: BTreeSet<&String> = focus["control_totals"].as_object().unwrap().keys().collect();
    assert_eq!(currencies, per_currency.keys().collect::<BTreeSet<_>>(), "the manifest's focus currencies");
    let currency_rows = (0..recon.rows).filter(|&r| recon.str("kind", r) == Some("focus_currency")).count();
    assert_eq!(currency_rows, per_currency.len(), "one focus_currency row per currency");
    for (currency, (billed, effective)) in &per_currency {
        let totals = &focus["control_totals"][currency];
        for (column, sum) in [("BilledCost", billed), ("EffectiveCost", effective)] {
            assert!(!totals[column].is_null(), "the manifest has no focus {column} in {currency}");
            assert_eq!(dec(&totals[column]), *sum, "the manifest's focus {column} in {currency}");
        }
        let row = recon_row("focus_currency", format!("focus {currency}").as_str());
        assert_eq!(recon.str("status", row), Some("ok"), "focus_currency {currency}");
        assert_eq!(recon.dec("stated_total", row), Some(expected[currency]), "focus_currency {currency}: stated_total");
        assert_eq!(recon.dec("lines_total", row), Some(*billed), "focus_currency {currency}: lines_total");
        assert!(recon.dec("difference", row).is_none_or(|d| d.is_zero()), "focus_currency {currency}: difference");
    }
}

/// `focus/period=YYYY-MM/part-<source dataset>-<scope>.parquet`, the month of BillingPeriodStart.
fn check_layout(snapshot: &Path, t: &Table) {
    assert!(snapshot.join("focus").is_dir());
    let mut f = Findings::default();
    for (rel, start, len) in &t.files {
        let (folder, file) = rel.split_once('/').unwrap_or_else(|| panic!("focus/{rel}: not in a period= folder"));
        for i in *start..start + len {
            let at = || format!("{rel}: {}", label(t, i));
            let month = t.time("BillingPeriodStart", i).map(|ns| instant(ns)[..7].to_owned());
            let in_month = month.is_some_and(|m| folder.strip_prefix("period=") == Some(m.as_str()));
            f.check(in_month, "period= is BillingPeriodStart's month", at);
            let prefix = format!("part-{}-", t.str("x_SourceDataset", i).unwrap_or_default());
            f.check(file.starts_with(&prefix) && file.ends_with(".parquet"), "part-<source dataset>-<scope>", at);
        }
    }
    f.assert_none("the focus files");
}

/// The CSV twin holds the Parquet rows, in FOCUS's text formats.
fn check_csv_twin(snapshot: &Path, t: &Table) {
    let root = snapshot.join("csv").join("focus");
    assert!(root.is_dir(), "no {}", root.display());
    let twins: BTreeSet<String> =
        t.files.iter().map(|(rel, _, _)| format!("{}.csv", rel.strip_suffix(".parquet").unwrap())).collect();
    let found: BTreeSet<String> = digest_tree(&root).into_keys().collect();
    assert_eq!(found, twins, "the CSV files of focus");
    let names = t.names();
    let mut f = Findings::default();
    let mut rows = 0;
    for (rel, start, len) in &t.files {
        let twin = format!("{}.csv", rel.strip_suffix(".parquet").unwrap());
        let mut reader = csv::Reader::from_path(root.join(&twin)).unwrap();
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        assert_eq!(header, names, "{twin}: its header");
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), *len, "{twin}: its rows");
        rows += records.len();
        for (j, record) in records.iter().enumerate() {
            let i = start + j;
            f.check(record.len() == names.len(), "every field of a row", || format!("{twin} line {}", j + 2));
            for ((name, data_type), text) in t.fields.iter().zip(record.iter()) {
                let at = || format!("{twin} line {}: {name} {text:?}", j + 2);
                match data_type {
                    DataType::Timestamp(..) => match t.time(name, i) {
                        None => f.check(text.is_empty(), "a null Date/Time is an empty field", at),
                        Some(ns) => {
                            f.check(focus_datetime(text), "Date/Time as YYYY-MM-DDTHH:MM:SSZ (DateTimeFormat)", at);
                            f.check(text == instant(ns), "Date/Time as in the Parquet file", at);
                        }
                    },
                    DataType::Decimal128(..) => match (t.num(name, i), numeric(text)) {
                        (None, _) => f.check(text.is_empty(), "a null number is an empty field", at),
                        (Some(value), Some(written)) => {
                            f.check(value.same(written), "the number of the Parquet file", at)
                        }
                        (Some(_), None) => f.fail("a number in NumericFormat", at),
                    },
                    DataType::Utf8 => match t.str(name, i) {
                        None => f.check(text.is_empty(), "a null string is an empty field", at),
                        // Free text starting like a formula is kept behind a quote.
                        Some(value) => {
                            f.check(text == value || text.strip_prefix('\'') == Some(value), "the string", at)
                        }
                    },
                    _ => f.check(text.is_empty() == t.is_null(name, i), "null exactly as an empty field", at),
                }
            }
        }
    }
    assert_eq!(rows, t.rows, "CSV rows against Parquet rows");
    f.assert_none("the focus CSV files");
}

#[test]
fn duckdb_unions_focus_with_another_providers_focus_1_2_without_a_cast() {
    let python = test_python();
    let (dir, snapshot) = run_on(None, "");
    let ours = Table::load(&snapshot.join("focus"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("it").join("focus_union.py");
    let check = Command::new(python)
        .arg(script)
        .arg(snapshot.as_os_str())
        .arg(dir.path().join("azure"))
        .arg(FOCUS_COLUMNS.join(","))
        .arg(DECIMAL_COLUMNS.join(","))
        .arg(DATETIME_COLUMNS.join(","))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let summary: Value = serde_json::from_slice(&check.stdout)
        .unwrap_or_else(|e| panic!("not a JSON summary ({e}): {}", String::from_utf8_lossy(&check.stdout)));
    let count = |key: &str| summary[key].as_u64().unwrap_or_else(|| panic!("no {key}: {summary}"));
    assert_eq!(count("ours"), ours.rows as u64, "{summary}");
    assert_eq!(count("theirs"), 200, "{summary}");
    assert_eq!(count("union"), count("ours") + count("theirs"), "{summary}");
    assert_eq!(summary["incompatible"], Value::Array(Vec::new()), "{summary}");
    let types = summary["types"].as_object().unwrap();
    let typed: BTreeSet<&str> = types.keys().map(String::as_str).collect();
    assert_eq!(typed, FOCUS_COLUMNS.into_iter().collect::<BTreeSet<_>>(), "{summary}");
    // The columns the other data leaves all null are typed VARCHAR by DuckDB's CSV sniffer.
    for column in summary["all_null_in_theirs"].as_array().unwrap() {
        let column = column.as_str().unwrap();
        assert_eq!(types[column][1], "VARCHAR", "{column}: {summary}");
    }
    let providers: BTreeSet<&str> =
        summary["providers"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
    assert!(providers.contains("Microsoft") && providers.len() >= 2, "both providers in the union: {summary}");
}
