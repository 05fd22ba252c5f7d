//! The shape of a table: column types, where each column's value comes from, the decoded
//! [`Cell`], and a dataset's [`DatasetSchema`] (columns, keys, partitioning, control totals).
//!
//! In: nothing. Out: the types every stage reads a table by. It lists no dataset (that is
//! `catalog`) and converts no value (that is `normalize`, and `text` for a cell's text).

use serde::Serialize;

use super::Dataset;

/// Types a column can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// Text (JSON-in-string fields stay text).
    Utf8,
    /// A decimal with a fixed number of fractional digits: Decimal128(38, scale).
    Decimal {
        /// Fractional digits.
        scale: u32,
        /// What happens to a value with more fractional digits.
        excess: Excess,
    },
    /// A whole number.
    Int64,
    /// A boolean.
    Bool,
    /// An instant, UTC, nanoseconds: the API's seven fractional digits survive; the range is
    /// 1677-2262, so far-future sentinels belong in [`ColType::Date`] columns.
    Timestamp,
    /// An instant, UTC, microseconds: for far-future ends (`9999-12-31T23:59:59Z`); a value
    /// with sub-microsecond digits is an error.
    TimestampMicros,
    /// A calendar day (the value must be midnight UTC); holds `9999-12-31`.
    Date,
    /// Any JSON value kept as its compact text (arrays such as `productQualifiers`).
    Json,
}

/// What a decimal column does with a value that has more fractional digits than it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excess {
    /// Refuses it: an error naming the record and field. Amounts and rates are never rounded.
    Refuse,
    /// Rounds it half-even to the column's digits and keeps the value as served in the row's
    /// `exact_values`: quantities and unit prices, whose prorated values carry up to 28
    /// fractional digits that no arithmetic-friendly scale holds (see `schemas/README.md`).
    RoundKeepingServed,
}

impl ColType {
    /// A decimal that refuses values with more than `scale` fractional digits.
    pub const fn decimal(scale: u32) -> ColType {
        ColType::Decimal { scale, excess: Excess::Refuse }
    }

    /// A measure (quantity, unit price): more than `scale` fractional digits are rounded
    /// half-even and the served value kept beside the row.
    pub const fn measure(scale: u32) -> ColType {
        ColType::Decimal { scale, excess: Excess::RoundKeepingServed }
    }

    /// The fractional digits a decimal column keeps (none for other types).
    pub fn scale(self) -> u32 {
        match self {
            ColType::Decimal { scale, .. } => scale,
            _ => 0,
        }
    }
}

/// One decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// No value.
    Null,
    /// Text.
    Str(String),
    /// Exact decimal as Decimal128: the unscaled value at its column's scale.
    Dec(i128),
    /// Whole number.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Nanoseconds (or, in a [`ColType::TimestampMicros`] column, microseconds) since
    /// 1970-01-01T00:00:00Z.
    Timestamp(i64),
    /// Days since 1970-01-01.
    Date(i32),
}

impl Cell {
    /// The value this cell holds, borrowed.
    pub fn value(&self) -> Value<'_> {
        match self {
            Cell::Null => Value::Null,
            Cell::Str(s) => Value::Str(std::borrow::Cow::Borrowed(s)),
            Cell::Dec(v) => Value::Dec(*v),
            Cell::Int(v) => Value::Int(*v),
            Cell::Bool(v) => Value::Bool(*v),
            Cell::Timestamp(v) => Value::Timestamp(*v),
            Cell::Date(v) => Value::Date(*v),
        }
    }
}

/// One decoded value as a stage reads or appends it: text borrowed from the page or from an
/// Arrow array (owned only when it had to be unescaped or built), everything else by value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// No value.
    Null,
    /// Text.
    Str(std::borrow::Cow<'a, str>),
    /// Exact decimal as Decimal128: the unscaled value at its column's scale.
    Dec(i128),
    /// Whole number.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Nanoseconds (microseconds in a [`ColType::TimestampMicros`] column) since the epoch.
    Timestamp(i64),
    /// Days since 1970-01-01.
    Date(i32),
}

impl Value<'_> {
    /// The owned cell of this value.
    pub fn into_cell(self) -> Cell {
        match self {
            Value::Null => Cell::Null,
            Value::Str(s) => Cell::Str(s.into_owned()),
            Value::Dec(v) => Cell::Dec(v),
            Value::Int(v) => Cell::Int(v),
            Value::Bool(v) => Cell::Bool(v),
            Value::Timestamp(v) => Cell::Timestamp(v),
            Value::Date(v) => Cell::Date(v),
        }
    }

    /// Whether there is no value.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// A row as the stages read it: a buffered row of cells, or one row of a record batch.
pub trait Row {
    /// The value of the column at `index`.
    fn value(&self, index: usize) -> Value<'_>;
}

impl Row for [Cell] {
    fn value(&self, index: usize) -> Value<'_> {
        self.get(index).map_or(Value::Null, Cell::value)
    }
}

impl Row for Vec<Cell> {
    fn value(&self, index: usize) -> Value<'_> {
        self.as_slice().value(index)
    }
}

// The digit budget (schemas/README.md, "Decimal scales"): every decimal is Decimal128(38, s),
// and DuckDB gives a product the sum of its factors' scales and a SUM its column's scale. So a
// column that is summed keeps at most 22 fractional digits (16 integer digits are left for a
// year of charges in any currency), and a quantity and a unit price together keep at most 22,
// so that their product is itself summable.

/// Fractional digits of amounts in a billing currency (subtotals, totals, taxes).
pub const AMOUNT: ColType = ColType::decimal(10);
/// Fractional digits of unit prices: 12, rounded beyond (prorated prices carry up to 28).
pub const PRICE: ColType = ColType::measure(12);
/// Fractional digits of quantities on line items: 10, rounded beyond (prorated quantities
/// carry up to 28).
pub const QUANTITY: ColType = ColType::measure(10);
/// Fractional digits of seat and licence counts (orders, subscriptions, entitlements): whole
/// numbers in practice, refused beyond 10 digits.
pub const UNITS: ColType = ColType::decimal(10);
/// Fractional digits of exchange rates (Partner Center's have 4 to 6).
pub const RATE: ColType = ColType::decimal(12);
/// Fractional digits of daily-rated-usage totals (unrounded products of quantity, price, rate).
pub const USAGE_TOTAL: ColType = ColType::decimal(22);
/// Fractional digits of credit rates (0.15, 1).
pub const FRACTION: ColType = ColType::decimal(10);

/// Where a column's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An API field by path; later paths are aliases tried in order.
    Field(Vec<&'static str>),
    /// A fraction (`rateOfCredit`: 0.15), or else the same rate as a percentage (`creditPercentage`:
    /// 15, as the v2 export files write it) divided by 100, exactly.
    Percent {
        /// The fraction's field.
        field: &'static str,
        /// The percentage's field.
        percent: &'static str,
    },
    /// An API field, or when the item does not carry it (the v2 export files never do), what
    /// the request implies.
    Implied {
        /// The field.
        field: &'static str,
        /// What stands in for it.
        otherwise: Implied,
    },
    /// The scope of the request that returned the item (customer id for customer resources,
    /// invoice id for legacy lines, which do not carry it).
    Scope,
    /// A field of the parent resource (order line items take their order's id).
    Parent(&'static str),
    /// The row's stable key: SHA-256 of the key columns and the ordinal among exact duplicates.
    RowKey,
    /// Whether the API served this line before in the same sequence, byte for byte
    /// ([`Duplicate::Flag`]), and the `row_key` of that first copy ([`Duplicate::FirstCopy`]).
    Duplicate(Duplicate),
    /// A customer id column normalised as the matcher compares ids (`org:` stripped, trimmed,
    /// lower case): the key that joins every dataset naming a customer.
    CustomerKey(&'static str),
    /// Derived by currency normalisation.
    Fx(FxColumn),
    /// Decided by matching (see `matching`).
    Match(MatchColumn),
    /// The item's members that no column reads, as one JSON object (sorted by name), kept only
    /// with `[output] keep_unknown_fields = true`; counted and reported either way.
    Unread,
    /// The number as served of each measure column that rounded it (more fractional digits
    /// than the column keeps, [`Excess::RoundKeepingServed`]), as one JSON object of strings
    /// (`{"effective_unit_price": "0.1835431430074643112595"}`); null when every value fitted.
    ExactValues,
    /// A pricing-currency price in the billing currency: `price × rate`, truncated to the
    /// billing currency's minor units, as Partner Center's licence rule does (spec §9.4).
    BillingPrice {
        /// Price column (pricing currency).
        price: &'static str,
        /// `pc_to_bc_exchange_rate` column.
        rate: &'static str,
        /// Billing-currency column.
        currency: &'static str,
    },
}

/// What stands in for a field an item does not carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Implied {
    /// A constant: the value every item of the dataset has.
    Text(&'static str),
    /// Whether a decimal column (decoded before this one) is above zero.
    Positive(&'static str),
    /// The scope of the request (the invoice a legacy line was asked for).
    Scope,
}

/// A column of the reporting-currency conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FxColumn {
    /// The reporting currency.
    ReportingCurrency,
    /// Billing → reporting rate used.
    Rate,
    /// Day of that rate.
    RateDate,
    /// Where the rate came from (the rate table's file name, or `identity`).
    RateSource,
    /// The amount × rate, unrounded (half-even beyond the column's digits: only usage totals reach them).
    Unrounded(&'static str),
    /// The amount × rate, rounded to the reporting currency's minor units.
    Rounded(&'static str),
}

/// A column of the match of a line item to what was sold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchColumn {
    /// `matched`, `order_not_found`, `subscription_not_found`, `entitlement_not_found`,
    /// `entitlement_expired`, `customer_mismatch`, `not_applicable`.
    Status,
    /// The rule that decided the status.
    Rule,
    /// The matched order id.
    Order,
    /// The matched subscription id.
    Subscription,
    /// The matched or named entitlement key.
    Entitlement,
}

/// A column telling a line served twice from the first copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplicate {
    /// `true` on every copy after the first.
    Flag,
    /// The `row_key` of the first copy, on the later ones.
    FirstCopy,
}

/// Which amounts of a dataset are converted, and the dates its rate date rules read.
#[derive(Debug, Clone, Serialize)]
pub struct FxSpec {
    /// Amount columns in the billing currency.
    pub amounts: Vec<&'static str>,
    /// Column giving the `charge_end` rule's day.
    pub charge_end_column: &'static str,
    /// Column whose month gives the billing period when no invoice does.
    pub period_column: &'static str,
    /// Column giving the invoice date, in the invoices dataset itself.
    pub invoice_date_column: &'static str,
}

/// One column.
#[derive(Debug, Clone)]
pub struct Column {
    /// snake_case name.
    pub name: String,
    /// Where the value comes from.
    pub source: Source,
    /// Type.
    pub ty: ColType,
    /// Whether the value may be absent.
    pub nullable: bool,
}

impl Column {
    /// Whether the column holds free text: names, descriptions, tags, notes and JSON texts,
    /// which people or other systems wrote and a spreadsheet could take for a formula (so the
    /// CSV writer guards them). Identifiers, codes, amounts and dates never are.
    pub fn is_free_text(&self) -> bool {
        let name = self.name.as_str();
        match self.ty {
            ColType::Json => true,
            ColType::Utf8 => {
                name == "name"
                    || name.ends_with("_name")
                    || name.ends_with("_description")
                    || name.ends_with("details")
                    || name.starts_with("service_info")
                    || matches!(
                        name,
                        "detail"
                            | "tags"
                            | "additional_info"
                            | "project"
                            | "resource_group"
                            | "unknown_fields"
                            | "before"
                            | "after"
                            | "item"
                    )
            }
            _ => false,
        }
    }
}

impl Serialize for Column {
    /// `{name, type, precision?, scale?, nullable, free_text?, source}` as the schema files show
    /// it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("name", &self.name)?;
        map.serialize_entry("type", &arrow_type(self.ty))?;
        if let ColType::Decimal { scale, .. } = self.ty {
            map.serialize_entry("precision", &38)?;
            map.serialize_entry("scale", &scale)?;
        }
        map.serialize_entry("nullable", &self.nullable)?;
        if self.is_free_text() {
            map.serialize_entry("free_text", &true)?;
        }
        map.serialize_entry("source", &self.source)?;
        map.end()
    }
}

/// The Arrow type of a column type, as the schema files name it.
pub fn arrow_type(ty: ColType) -> String {
    match ty {
        ColType::Utf8 | ColType::Json => "Utf8".into(),
        ColType::Decimal { scale, .. } => format!("Decimal128(38, {scale})"),
        ColType::Int64 => "Int64".into(),
        ColType::Bool => "Boolean".into(),
        ColType::Timestamp => "Timestamp(Nanosecond, UTC)".into(),
        ColType::TimestampMicros => "Timestamp(Microsecond, UTC)".into(),
        ColType::Date => "Date32".into(),
    }
}

/// How a dataset's files are partitioned by billing period (`period=YYYY-MM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Partition {
    /// Not partitioned (master data).
    None,
    /// By the month of each row's own date column.
    RowMonth(&'static str),
    /// By the billing period of the invoice the scope names.
    Invoice,
    /// By the month of a date column of the scope's rows (unbilled periods).
    ScopeMonth(&'static str),
}

/// One output dataset.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetSchema {
    /// The dataset.
    pub name: Dataset,
    /// Version of the column list; bumped on any change.
    pub version: u32,
    /// One line.
    pub description: &'static str,
    /// What one row is.
    pub grain: &'static str,
    /// The API call(s) it comes from.
    pub api: &'static str,
    /// Natural key columns (the input of `row_key`).
    pub keys: Vec<&'static str>,
    /// Partitioning.
    pub partition: Partition,
    /// Column holding the currency control totals are grouped by.
    pub currency_column: Option<&'static str>,
    /// Decimal columns summed into control totals.
    pub totals: Vec<&'static str>,
    /// Rows are the elements of this array of each item (order line items).
    pub explode: Option<&'static str>,
    /// Reporting-currency conversion, where the dataset has amounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fx: Option<FxSpec>,
    /// What the schema files say the rows are built from: the fetched dataset when it is not the
    /// dataset itself (`orders` for order lines), `-` for computed tables, empty otherwise (not
    /// written); [`Dataset::source`] is what code reads.
    #[serde(rename = "from", skip_serializing_if = "str::is_empty")]
    pub built_from: &'static str,
    /// Columns in order.
    pub columns: Vec<Column>,
}

impl DatasetSchema {
    /// Index of a column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// snake_case of a camelCase wire name (`pcToBCExchangeRate` → `pc_to_bc_exchange_rate`).
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '.' {
            out.push('_');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_decimal_column_keeps_the_digit_budget_schemas_readme_states() {
        for schema in crate::tabular::registry() {
            for column in &schema.columns {
                assert!(
                    column.ty.scale() <= 22,
                    "{}.{} sums with fewer than 16 integer digits",
                    schema.name,
                    column.name
                );
            }
        }
        assert!(QUANTITY.scale() + PRICE.scale() <= 22, "quantity × price must itself be summable");
        assert!(AMOUNT.scale() + RATE.scale() <= 22, "amount × rate is exact at the reporting scale");
    }

    #[test]
    fn wire_names_become_snake_case() {
        assert_eq!(snake("pcToBCExchangeRate"), "pc_to_bc_exchange_rate");
        assert_eq!(snake("resourceURI"), "resource_uri");
        assert_eq!(snake("billingPreTaxTotal"), "billing_pre_tax_total");
        assert_eq!(snake("id"), "id");
        assert_eq!(snake("serviceInfo1"), "service_info1");
    }

    #[test]
    fn keys_totals_and_partitions_name_real_columns() {
        for s in super::super::catalog::registry() {
            let mut names = std::collections::BTreeSet::new();
            for c in &s.columns {
                assert!(names.insert(c.name.as_str()), "{}: duplicate column {}", s.name, c.name);
            }
            for k in s.keys.iter().chain(&s.totals).chain(s.currency_column.iter()) {
                assert!(s.column(k).is_some(), "{}: {k} is not a column", s.name);
            }
            if let Some(fx) = &s.fx {
                for c in fx.amounts.iter().chain([&fx.charge_end_column, &fx.period_column]) {
                    assert!(s.column(c).is_some(), "{}: fx column {c}", s.name);
                }
            }
            for t in &s.totals {
                assert!(matches!(s.columns[s.column(t).unwrap()].ty, ColType::Decimal { .. }), "{}: {t}", s.name);
            }
            if let Partition::RowMonth(c) | Partition::ScopeMonth(c) = s.partition {
                assert!(s.column(c).is_some(), "{}: partition column {c}", s.name);
            }
        }
    }
}
