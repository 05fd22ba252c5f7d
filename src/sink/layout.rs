//! Where each file of a snapshot goes, relative to the snapshot's folder: one answer for the
//! writers that create the files and for `--dry-run`, which lists them without writing.
//!
//! ```text
//! <dataset>/period=YYYY-MM/part-<scope>.parquet   line items: one file per sequence
//! <dataset>/[period=YYYY-MM/]part-00000.parquet   master data and computed datasets
//! csv/<same path>.csv                            (.csv.gz when gzipped; none when CSV is left out)
//! documents/<invoice-id>.pdf
//! fxrates/<YYYYMM>.csv                            Partner Center's rates of a month, as served
//! statements/<customer>/<YYYY-MM>.csv             a customer's statement of a billing period
//! ```
//!
//! In: a dataset's schema, a scope, a billing month. Out: relative paths. It creates nothing.

use crate::model::page::scope_name;
use crate::sink::writer::CsvCompression;
use crate::tabular::{Dataset, DatasetSchema, Partition};

/// Where a sequence's line-item files are written while it streams in: its billing month is
/// known only at the end, when they move into their partition.
pub const STREAMING: &str = "_parts";

/// The partition folder of a billing month (`period=2025-01`); `*` when a dry run cannot know it.
pub fn partition(month: &str) -> String {
    format!("period={month}")
}

/// A part file's name without its extension: `part-<scope>` for line items (one file per
/// sequence), `part-00000` for the one file of a dataset or of one of its partitions.
pub fn part_name(schema: &DatasetSchema, scope: &str) -> String {
    match schema.partition {
        Partition::Invoice | Partition::ScopeMonth(_) => format!("part-{}", scope_name(scope)),
        Partition::None | Partition::RowMonth(_) => "part-00000".into(),
    }
}

/// The dataset a part is made of, when its name says (`part-<dataset>-<scope>`: the parts of
/// a computed dataset written one per source sequence, like `focus`'s); `path` may have folders.
pub fn part_source(path: &str) -> Option<Dataset> {
    let name = path.rsplit('/').next()?.strip_prefix("part-")?;
    Dataset::ALL.into_iter().find(|d| name.strip_prefix(d.name()).is_some_and(|rest| rest.starts_with('-')))
}

/// The folders of a dataset's Parquet and CSV parts, relative to the snapshot: `folder` is a
/// partition, [`STREAMING`], or empty.
pub fn part_dirs(dataset: Dataset, folder: &str) -> [String; 2] {
    let dir = if folder.is_empty() { dataset.name().to_owned() } else { format!("{dataset}/{folder}") };
    [dir.clone(), format!("csv/{dir}")]
}

/// The Parquet file of a part and its CSV twin when CSV is written (compressed or not), relative
/// to the snapshot (see [`part_dirs`]).
pub fn part_files(dataset: Dataset, folder: &str, part: &str, csv: Option<CsvCompression>) -> (String, Option<String>) {
    let [parquet, csv_dir] = part_dirs(dataset, folder);
    (format!("{parquet}/{part}.parquet"), csv.map(|c| format!("{csv_dir}/{part}.{}", c.extension())))
}

/// A file kept as served, relative to the snapshot: an invoice's statement
/// (`documents/<invoice>.pdf`), a month's exchange rates (`fxrates/<YYYYMM>.csv`).
pub fn kept_file(dataset: Dataset, scope: &str) -> String {
    format!("{dataset}/{}.{}", scope_name(scope), dataset.file_extension().unwrap_or("bin"))
}

/// A customer's statement of a billing period, relative to the snapshot:
/// `statements/<customer_key>/<YYYY-MM>.csv`.
pub fn statement_file(customer_key: &str, period: &str) -> String {
    format!("{}/{}/{}.csv", Dataset::Statements, scope_name(customer_key), scope_name(period))
}

/// The dataset of a file kept as served or written whole (statements), from its path relative
/// to the snapshot.
pub fn kept_dataset(path: &str) -> Option<Dataset> {
    let first = path.split('/').next()?;
    Dataset::from_name(first).filter(|d| d.file_extension().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_documents_have_their_documented_places() {
        let recon = Dataset::BilledRecon.schema().unwrap();
        let part = part_name(recon, "G000123");
        assert_eq!(part, "part-G000123");
        let (parquet, csv) = part_files(Dataset::BilledRecon, &partition("2025-01"), &part, Some(CsvCompression::None));
        assert_eq!(parquet, "billed_recon_line_items/period=2025-01/part-G000123.parquet");
        assert_eq!(csv.as_deref(), Some("csv/billed_recon_line_items/period=2025-01/part-G000123.csv"));
        let (_, gzipped) = part_files(Dataset::BilledRecon, &partition("2025-01"), &part, Some(CsvCompression::Gzip));
        assert_eq!(gzipped.as_deref(), Some("csv/billed_recon_line_items/period=2025-01/part-G000123.csv.gz"));
        assert_eq!(part_files(Dataset::BilledRecon, "", &part, None).1, None, "CSV left out");
        let unbilled = Dataset::UnbilledUsage.schema().unwrap();
        assert_eq!(part_name(unbilled, "EUR/current"), "part-EUR-current");
        let customers = Dataset::Customers.schema().unwrap();
        assert_eq!(
            part_files(Dataset::Customers, "", &part_name(customers, "all"), Some(CsvCompression::None)),
            ("customers/part-00000.parquet".to_owned(), Some("csv/customers/part-00000.csv".to_owned()))
        );
        assert_eq!(kept_file(Dataset::Documents, "G000123"), "documents/G000123.pdf");
        assert_eq!(kept_file(Dataset::FxRates, "202501"), "fxrates/202501.csv");
        assert_eq!(kept_dataset("fxrates/202501.csv"), Some(Dataset::FxRates));
        assert_eq!(kept_dataset("invoices/part-00000.parquet"), None);
        assert_eq!(statement_file("346ff5c4", "2025-01"), "statements/346ff5c4/2025-01.csv");
        assert_eq!(kept_dataset(&statement_file("a/b", "2025-01")), Some(Dataset::Statements));
        let focus = Dataset::Focus.schema().unwrap();
        let part = part_name(focus, "billed_recon_line_items/G000123");
        assert_eq!(part_source(&format!("period=2025-01/{part}.parquet")), Some(Dataset::BilledRecon));
        assert_eq!(
            part_source(&part_name(focus, "unbilled_recon_line_items/EUR/current")),
            Some(Dataset::UnbilledRecon)
        );
        assert_eq!(part_source("period=2025-01/part-G000123.parquet"), None);
    }
}
