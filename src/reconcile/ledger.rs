//! What each sequence's distinct lines add up to, as the tie-out needs it: the invoice-total
//! column per currency, the metered charges and daily rated usage, and which sequences the v2
//! export could not serve yet.
//!
//! In: distinct line-item rows, one at a time ([`Observer::observe`]). Out: the [`Ledger`] the
//! checks are computed from. It judges nothing.

use std::collections::{BTreeMap, HashMap};

use super::TO_USAGE_SCALE;
use crate::tabular::{Dataset, DatasetSchema, Row, Value};

/// What one sequence's distinct lines add up to.
#[derive(Debug, Default, Clone)]
pub struct Sums {
    /// Currency and Σ of the invoice-total column (Decimal128 scale 10).
    pub(super) total: Option<(String, i128)>,
    /// Lines counted in `total`.
    pub(super) counted: u64,
    /// Σ at scale 22 of what the usage tie-out compares: daily rated usage
    /// `billing_pre_tax_total`, or the `subtotal` of metered recon lines (credits aside).
    pub(super) metered: i128,
    /// Metered recon lines in `metered`, and the largest exchange rate among them, unscaled
    /// at scale 20 (so that 0.01 × rate is at the usage scale, 22).
    pub(super) metered_lines: u64,
    pub(super) max_rate: i128,
    /// Distinct lines observed.
    pub(super) distinct: u64,
}

/// What a run's sequences add up to, and which the v2 export could not serve yet.
#[derive(Debug, Default)]
pub struct Ledger {
    /// By dataset and scope, the scope upper-cased: invoice ids are compared without case.
    sums: HashMap<(Dataset, String), Sums>,
    /// By dataset name and scope: checks of sequences not ready are listed in that order.
    pub(super) not_ready: BTreeMap<(&'static str, String), String>,
}

impl Ledger {
    /// The sums of one sequence, to observe its lines into.
    pub fn sums_mut(&mut self, dataset: Dataset, scope: &str) -> &mut Sums {
        self.sums.entry((dataset, scope.to_uppercase())).or_default()
    }

    /// Forgets what a sequence showed: it starts again.
    pub fn restart(&mut self, dataset: Dataset, scope: &str) {
        self.sums.remove(&(dataset, scope.to_uppercase()));
    }

    /// Records that the v2 export could not serve a sequence yet, and what it said.
    pub fn not_ready(&mut self, dataset: Dataset, scope: &str, detail: &str) {
        self.not_ready.insert((dataset.name(), scope.to_owned()), detail.to_owned());
    }

    /// The sequences not ready, as `dataset/scope` → what the export said.
    pub fn not_ready_list(&self) -> BTreeMap<String, String> {
        self.not_ready.iter().map(|((d, s), detail)| (format!("{d}/{s}"), detail.clone())).collect()
    }

    pub(super) fn sums_of(&self, dataset: Dataset, scope: &str) -> Option<&Sums> {
        self.sums.get(&(dataset, scope.to_uppercase()))
    }

    pub(super) fn not_ready_of(&self, dataset: Dataset, scope: &str) -> Option<&str> {
        self.not_ready
            .iter()
            .find(|((d, s), _)| *d == dataset.name() && s.eq_ignore_ascii_case(scope))
            .map(|(_, r)| r.as_str())
    }

    /// Σ of a document's distinct lines by Partner Center's rule, and their number.
    pub(super) fn lines_of(&self, id: &str) -> (i128, u64) {
        Dataset::ALL
            .into_iter()
            .filter(|d| d.invoice_total_column().is_some())
            .filter_map(|dataset| self.sums_of(dataset, id))
            .fold((0, 0), |(sum, count), s| (sum + s.total.as_ref().map_or(0, |t| t.1), count + s.counted))
    }
}

/// Which columns of a line feed the usage tie-out.
#[derive(Debug, Clone, Copy)]
enum Metered {
    /// Daily rated usage: the billing total.
    Usage(usize),
    /// Recon lines: subtotal, meter description (set on metered lines), charge type, rate, and
    /// the factor from the rate's scale to 20.
    Recon { subtotal: usize, meter: usize, charge: usize, rate: usize, to_scale_20: i128 },
    /// Neither.
    None,
}

/// Reads the amounts the tie-out needs from the rows of one dataset, its columns found once.
#[derive(Debug, Clone, Copy)]
pub struct Observer {
    total: Option<(usize, usize)>,
    metered: Metered,
}

impl Observer {
    /// The observer of a dataset's rows.
    pub fn of(schema: &DatasetSchema) -> Observer {
        let total = schema
            .name
            .invoice_total_column()
            .and_then(|c| schema.column(c))
            .zip(schema.currency_column.and_then(|c| schema.column(c)));
        let metered = match schema.name {
            Dataset::BilledUsage => schema.column("billing_pre_tax_total").map_or(Metered::None, Metered::Usage),
            Dataset::BilledRecon => match (
                schema.column("subtotal"),
                schema.column("meter_description"),
                schema.column("charge_type"),
                schema.column("pc_to_bc_exchange_rate"),
            ) {
                (Some(subtotal), Some(meter), Some(charge), Some(rate)) => Metered::Recon {
                    subtotal,
                    meter,
                    charge,
                    rate,
                    to_scale_20: 10i128.pow(20u32.saturating_sub(schema.columns[rate].ty.scale())),
                },
                _ => Metered::None,
            },
            _ => Metered::None,
        };
        Observer { total, metered }
    }

    /// Adds one distinct line to its sequence's sums.
    pub fn observe(&self, sums: &mut Sums, row: &(impl Row + ?Sized)) {
        sums.distinct += 1;
        match self.metered {
            Metered::Usage(at) => {
                if let Value::Dec(v) = row.value(at) {
                    sums.metered += v;
                }
            }
            Metered::Recon { subtotal, meter, charge, rate, to_scale_20 } => {
                let metered_line = !row.value(meter).is_null()
                    && !matches!(row.value(charge), Value::Str(c) if c.eq_ignore_ascii_case("customerCredit"));
                if let (true, Value::Dec(v)) = (metered_line, row.value(subtotal)) {
                    sums.metered += v * TO_USAGE_SCALE;
                    sums.metered_lines += 1;
                    if let Value::Dec(r) = row.value(rate) {
                        sums.max_rate = sums.max_rate.max(r * to_scale_20);
                    }
                }
            }
            Metered::None => {}
        }
        if let Some((t, c)) = self.total
            && let (Value::Dec(v), Value::Str(currency)) = (row.value(t), row.value(c))
        {
            let entry = sums.total.get_or_insert_with(|| (currency.to_uppercase(), 0));
            entry.1 += v;
            sums.counted += 1;
        }
    }
}
