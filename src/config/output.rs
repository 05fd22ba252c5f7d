//! The `[output]` section: where snapshots go (a folder, or an object-store prefix with a local
//! folder for the page cache and the staged snapshots), the formats written (Parquet always, CSV
//! unless left out), the CSV flavour (byte-order mark, delimiter, decimal separator, gzip), what happens to records that
//! cannot be decoded and to members no column reads, how many snapshots stay, how long a
//! killed run may resume, and the key that signs each manifest.
//!
//! In: the section as parsed, and where relative paths start. Out: [`OutputSettings`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::ConfigError;
use crate::sink::retention::Retention;
use crate::sink::store::{Location, StoreUrl};
use crate::sink::writer::{CsvCompression, CsvFormat};

/// The field delimiters a CSV file may have.
pub const CSV_DELIMITERS: [char; 4] = [',', ';', '\t', '|'];
/// The decimal separators a CSV file may have.
pub const CSV_DECIMAL_SEPARATORS: [char; 2] = ['.', ','];

/// The output folder, by default (relative to the config file).
pub const DEFAULT_OUTPUT_DIR: &str = "out";
/// Published snapshots kept, by default.
pub const DEFAULT_KEEP_SNAPSHOTS: usize = 10;
/// Published snapshots always kept, whatever the setting: the newest and the one before it,
/// which `pcrecon diff` compares.
pub const MIN_KEEP_SNAPSHOTS: usize = 2;
/// Where object-store destinations keep their local work (one folder per destination: page
/// cache, lock, staged snapshots), by default (relative to the config file).
pub const DEFAULT_CACHE_DIR: &str = "pcrecon-cache";
/// How long an object-store lock holds before another run may take it over, by default.
pub const DEFAULT_LOCK_EXPIRY_HOURS: u64 = 6;
/// How long after its start a killed run resumes, by default.
pub const DEFAULT_RESUME_WITHIN_HOURS: u64 = 12;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutput {
    dir: Option<String>,
    cache_dir: Option<PathBuf>,
    lock_expiry_hours: Option<u64>,
    delta: Option<bool>,
    formats: Option<Vec<Format>>,
    csv_compression: Option<CsvCompression>,
    csv_bom: Option<bool>,
    csv_delimiter: Option<String>,
    csv_decimal_separator: Option<String>,
    rejects: Option<bool>,
    keep_unknown_fields: Option<bool>,
    keep_snapshots: Option<usize>,
    keep_days: Option<u32>,
    resume_within_hours: Option<u64>,
    signing_key_file: Option<PathBuf>,
}

/// A file format of the snapshot's datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    /// Parquet: the dataset of record, which `verify`, `diff` and the Delta tables read.
    Parquet,
    /// CSV, beside it under `csv/`.
    Csv,
}

/// What the `[output]` section decides.
#[derive(Debug, Clone)]
pub(super) struct OutputSettings {
    pub(super) dir: PathBuf,
    pub(super) store: Option<StoreUrl>,
    pub(super) cache_dir: PathBuf,
    pub(super) lock_expiry: Duration,
    pub(super) delta: bool,
    pub(super) csv: Option<CsvFormat>,
    pub(super) rejects: bool,
    pub(super) keep_unknown_fields: bool,
    pub(super) retention: Retention,
    pub(super) resume_within: Duration,
    pub(super) signing_key_file: Option<PathBuf>,
}

impl RawOutput {
    /// The section with its defaults; `resolve` makes a relative folder absolute.
    pub(super) fn settings(self, resolve: impl Fn(&Path) -> PathBuf) -> Result<OutputSettings, ConfigError> {
        let one_of = |name: &str, value: Option<&str>, default: char, allowed: &[char]| match value {
            None => Ok(default),
            Some(text) => {
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if allowed.contains(&c) => Ok(c),
                    _ => Err(ConfigError::Invalid(format!("output.{name}: {text:?} is not one of {allowed:?}"))),
                }
            }
        };
        let delimiter = one_of("csv_delimiter", self.csv_delimiter.as_deref(), ',', &CSV_DELIMITERS)?;
        let decimal_separator =
            one_of("csv_decimal_separator", self.csv_decimal_separator.as_deref(), '.', &CSV_DECIMAL_SEPARATORS)?;
        if delimiter == decimal_separator {
            return Err(ConfigError::Invalid(format!(
                "output.csv_delimiter and output.csv_decimal_separator are both {delimiter:?}: a decimal would split in two"
            )));
        }
        let formats = self.formats.unwrap_or_else(|| vec![Format::Parquet, Format::Csv]);
        if !formats.contains(&Format::Parquet) {
            return Err(ConfigError::Invalid(
                "output.formats must include \"parquet\": the manifest's control totals, verify, diff and the Delta tables read the Parquet files; CSV is the optional copy".into(),
            ));
        }
        let csv = formats.contains(&Format::Csv).then_some(CsvFormat {
            bom: self.csv_bom.unwrap_or(false),
            delimiter,
            decimal_separator,
            compression: self.csv_compression.unwrap_or_default(),
        });
        let location = Location::parse(self.dir.as_deref().unwrap_or(DEFAULT_OUTPUT_DIR))
            .map_err(|e| ConfigError::Invalid(format!("output.dir: {e}")))?;
        let cache_dir = resolve(self.cache_dir.as_deref().unwrap_or(Path::new(DEFAULT_CACHE_DIR)));
        let (dir, store) = match location {
            Location::Local(_) if self.cache_dir.is_some() => {
                return Err(ConfigError::Invalid(
                    "output.cache_dir applies to an object-store output.dir; a local output folder keeps its cache in <dir>/.cache".into(),
                ));
            }
            Location::Local(dir) => (resolve(&dir), None),
            Location::Store(url) => (cache_dir.join(url.folder_name()), Some(url)),
        };
        let hours = self.lock_expiry_hours.unwrap_or(DEFAULT_LOCK_EXPIRY_HOURS);
        if !(1..=24 * 7).contains(&hours) {
            return Err(ConfigError::Invalid(format!(
                "output.lock_expiry_hours: {hours} is not between 1 and 168 (a week)"
            )));
        }
        Ok(OutputSettings {
            dir,
            store,
            cache_dir,
            lock_expiry: Duration::from_secs(hours * 3600),
            delta: self.delta.unwrap_or(false),
            csv,
            rejects: self.rejects.unwrap_or(false),
            keep_unknown_fields: self.keep_unknown_fields.unwrap_or(false),
            retention: Retention {
                keep_snapshots: self.keep_snapshots.unwrap_or(DEFAULT_KEEP_SNAPSHOTS).max(MIN_KEEP_SNAPSHOTS),
                keep_days: self.keep_days,
            },
            resume_within: Duration::from_secs(self.resume_within_hours.unwrap_or(DEFAULT_RESUME_WITHIN_HOURS) * 3600),
            signing_key_file: self.signing_key_file.as_deref().map(&resolve),
        })
    }
}
