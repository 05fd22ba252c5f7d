//! The manifest of a finished v2 export as Graph writes it (and as the older beta spelt it): its
//! id and eTag, the root folder of its files with their shared-access signature, and the files
//! themselves with whatever counts they state.
//!
//! In: the manifest's JSON. Out: [`Manifest`] and its [`BlobEntry`]s. It checks nothing, neither
//! `blobCount` against the list (the poll does) nor the files (their download does), and its
//! `Debug` never shows the signature.

use serde::Deserialize;

/// One file of a manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlobEntry {
    pub(super) name: String,
    #[serde(default)]
    pub(super) item_count: Option<u64>,
    #[serde(default)]
    pub(super) size_in_bytes: Option<u64>,
}

/// The manifest of a finished export (also the older beta names). Its `Debug` leaves the
/// shared-access signature out.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Manifest {
    pub(super) id: String,
    #[serde(rename = "eTag", alias = "etag", default)]
    pub(super) etag: String,
    #[serde(alias = "rootFolder")]
    pub(super) root_directory: String,
    #[serde(alias = "rootFolderSAS", default)]
    pub(super) sas_token: String,
    #[serde(default)]
    pub(super) blob_count: Option<usize>,
    #[serde(default)]
    pub(super) blobs: Vec<BlobEntry>,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("id", &self.id)
            .field("etag", &self.etag)
            .field("root_directory", &self.root_directory)
            .field("sas_token", &"[redacted]")
            .field("blob_count", &self.blob_count)
            .field("blobs", &self.blobs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_never_shows_its_signature() {
        let m: Manifest =
            serde_json::from_str(r#"{"id":"m","rootDirectory":"https://x/y","sasToken":"sv=1&sig=SECRET","blobs":[]}"#)
                .unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("SECRET") && shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn manifests_are_read_in_both_spellings() {
        let ga: Manifest = serde_json::from_str(r#"{"id":"m1","schemaVersion":"1","dataFormat":"compressedJSON","eTag":"e1","rootDirectory":"https://x/y","sasToken":"sv=1&sig=2","partitionType":"Default","blobCount":1,"blobs":[{"name":"part-1.json.gz","partitionValue":"default"}]}"#).unwrap();
        assert_eq!((ga.etag.as_str(), ga.blobs.len(), ga.sas_token.as_str()), ("e1", 1, "sv=1&sig=2"));
        let beta: Manifest = serde_json::from_str(r#"{"id":"m2","version":"1","eTag":"e2","rootFolder":"https://x/z","rootFolderSAS":"?sig=3","blobCount":0,"blobs":[]}"#).unwrap();
        assert_eq!((beta.root_directory.as_str(), beta.sas_token.as_str()), ("https://x/z", "?sig=3"));
    }
}
