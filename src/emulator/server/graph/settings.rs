//! How the emulated v2 export behaves ([`ExportSettings`]), and the documented variants of its
//! answers it chooses between: what a manifest says of each file ([`ManifestCounts`]), where a
//! successful operation puts its manifest ([`ManifestLocation`]) and the `status` it reports
//! ([`SuccessStatus`]).
//!
//! In: the option values of `pcrecon emulator serve` (each variant parses from its option's
//! spelling). Out: settings the export's routes read. It holds no state and answers no request.

/// What a manifest says about each of its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestCounts {
    /// As the GA resource: `name` and `partitionValue` only (spec §17.6).
    #[default]
    Ga,
    /// Also `itemCount` and `sizeInBytes`, as Microsoft's sample model has them.
    WithCounts,
}

impl std::str::FromStr for ManifestCounts {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ga" => Ok(ManifestCounts::Ga),
            "with-counts" => Ok(ManifestCounts::WithCounts),
            other => Err(format!("{other:?} is not a manifest style (ga, with-counts)")),
        }
    }
}

/// Where a successful operation puts its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManifestLocation {
    /// A link to it (`resourceLocation@odata.navigationLink`), as the documentation's example.
    #[default]
    Linked,
    /// The manifest object itself under `resourceLocation`, as Graph has been seen to answer.
    Embedded,
}

impl std::str::FromStr for ManifestLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linked" => Ok(ManifestLocation::Linked),
            "embedded" => Ok(ManifestLocation::Embedded),
            other => Err(format!("{other:?} is not a manifest location (linked, embedded)")),
        }
    }
}

/// The `status` of a successful operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuccessStatus {
    /// `succeeded`, as the documentation's example.
    #[default]
    Succeeded,
    /// `completed`, as the resource's enumeration lists it.
    Completed,
}

impl SuccessStatus {
    /// The status as the operation spells it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            SuccessStatus::Succeeded => "succeeded",
            SuccessStatus::Completed => "completed",
        }
    }
}

impl std::str::FromStr for SuccessStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(SuccessStatus::Succeeded),
            "completed" => Ok(SuccessStatus::Completed),
            other => Err(format!("{other:?} is not an operation status (succeeded, completed)")),
        }
    }
}

/// How the emulated export behaves.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    /// Polls an operation answers "not ready" before it succeeds.
    pub polls: u32,
    /// `Retry-After` (seconds) on operations that are not ready.
    pub retry_after_secs: u64,
    /// Lines per file.
    pub blob_lines: usize,
    /// Lifetime of a manifest's shared-access signature.
    pub sas_ttl_secs: u64,
    /// New-commerce invoices whose export has no data yet (code 5000, "try again later").
    pub unavailable: Vec<String>,
    /// What the manifest says about each file.
    pub manifest_counts: ManifestCounts,
    /// Where a successful operation puts its manifest.
    pub manifest_location: ManifestLocation,
    /// The `status` of a successful operation.
    pub success_status: SuccessStatus,
}

impl Default for ExportSettings {
    fn default() -> Self {
        ExportSettings {
            polls: 2,
            retry_after_secs: 1,
            blob_lines: 5000,
            sas_ttl_secs: 12 * 3600,
            unavailable: Vec::new(),
            manifest_counts: ManifestCounts::Ga,
            manifest_location: ManifestLocation::Linked,
            success_status: SuccessStatus::Succeeded,
        }
    }
}
