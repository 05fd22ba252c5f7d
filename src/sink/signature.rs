//! The detached signature of a snapshot's `manifest.json`, in minisign's format
//! (`manifest.json.minisig` beside it), so that `minisign -Vm manifest.json -p KEY.pub` checks it
//! as well as `pcrecon verify --public-key KEY.pub`. The manifest lists every file's SHA-256, so
//! a valid signature vouches for every byte of the snapshot.
//!
//! In: a minisign secret key file (encrypted ones with their password from
//! [`PASSWORD_ENV`]; never asked for on a terminal: a night job has none), or a public key file.
//! Out: the signature file, or the verdict on one. No key material reaches an error or a log.

use std::path::{Path, PathBuf};

use base64::Engine;

/// The signature's name inside a snapshot.
pub const SIGNATURE_FILE: &str = "manifest.json.minisig";
/// The environment variable holding an encrypted secret key's password.
pub const PASSWORD_ENV: &str = "PCRECON_SIGNING_KEY_PASSWORD";

/// Why a key could not be loaded or a signature not made or checked.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SignatureError {
    /// The key or signature file.
    pub path: PathBuf,
    /// What is wrong, without any key material.
    pub reason: String,
}

impl SignatureError {
    fn at(path: &Path, reason: impl std::fmt::Display) -> SignatureError {
        SignatureError { path: path.to_path_buf(), reason: reason.to_string() }
    }
}

/// A secret key that signs manifests, and its public half (each signature is checked with it
/// before it is written).
#[derive(Clone)]
pub struct SigningKey {
    secret: minisign::SecretKey,
    public: minisign::PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", key_id(self.public.keynum()))
    }
}

/// A key id as minisign prints it: the eight id bytes as a little-endian number, in hex.
fn key_id(keynum: &[u8]) -> String {
    let mut id = [0u8; 8];
    id.copy_from_slice(&keynum[..8.min(keynum.len())]);
    format!("{:016X}", u64::from_le_bytes(id))
}

impl SigningKey {
    /// Reads a minisign secret key file. An encrypted key is opened with the password in
    /// [`PASSWORD_ENV`]; without it, it is refused.
    pub fn load(path: &Path) -> Result<SigningKey, SignatureError> {
        let text = std::fs::read_to_string(path).map_err(|e| SignatureError::at(path, e))?;
        let not_a_key = || SignatureError::at(path, "not a minisign secret key");
        let encoded = text.lines().nth(1).ok_or_else(not_a_key)?.trim();
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| not_a_key())?;
        // The key's second field names its key derivation: zero for a key stored unencrypted
        // (`minisign -G -W`, whose keys carry no checksum to check).
        let secret = if bytes.get(2..4) == Some(&[0, 0][..]) {
            minisign::SecretKey::from_bytes(&bytes).map_err(|_| not_a_key())?
        } else {
            let password = std::env::var(PASSWORD_ENV).map_err(|_| {
                SignatureError::at(
                    path,
                    format!("an encrypted key: its password is read from {PASSWORD_ENV}, which is not set"),
                )
            })?;
            let boxed = minisign::SecretKeyBox::from_string(&text).map_err(|e| SignatureError::at(path, e))?;
            boxed.into_secret_key(Some(password)).map_err(|e| SignatureError::at(path, e))?
        };
        let public = minisign::PublicKey::from_secret_key(&secret).map_err(|e| SignatureError::at(path, e))?;
        Ok(SigningKey { secret, public })
    }

    /// The key id, as `minisign` shows it.
    pub fn id(&self) -> String {
        key_id(self.public.keynum())
    }

    /// Signs the manifest at `manifest`, writing [`SIGNATURE_FILE`] beside it.
    pub fn sign(&self, manifest: &Path) -> Result<(), SignatureError> {
        let data = std::fs::File::open(manifest).map_err(|e| SignatureError::at(manifest, e))?;
        let trusted = format!("pcrecon {} manifest.json", env!("CARGO_PKG_VERSION"));
        let untrusted = format!("signature of a pcrecon snapshot's manifest by key {}", self.id());
        let signature = minisign::sign(Some(&self.public), &self.secret, data, Some(&trusted), Some(&untrusted))
            .map_err(|e| SignatureError::at(manifest, e))?;
        let path = signature_of(manifest);
        std::fs::write(&path, signature.into_string()).map_err(|e| SignatureError::at(&path, e))
    }
}

/// Where the signature of the manifest at `manifest` is.
pub fn signature_of(manifest: &Path) -> PathBuf {
    manifest.with_file_name(SIGNATURE_FILE)
}

/// A public key that checks signatures.
#[derive(Clone)]
pub struct PublicKey(minisign::PublicKey);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", key_id(self.0.keynum()))
    }
}

impl PublicKey {
    /// Reads a minisign public key file (`minisign -G` writes one; so does the key's owner).
    pub fn load(path: &Path) -> Result<PublicKey, SignatureError> {
        minisign::PublicKey::from_file(path).map(PublicKey).map_err(|e| SignatureError::at(path, e))
    }

    /// The key id, as `minisign` shows it.
    pub fn id(&self) -> String {
        key_id(self.0.keynum())
    }

    /// Checks the signature beside the manifest at `manifest`.
    pub fn check(&self, manifest: &Path) -> Result<(), SignatureError> {
        let path = signature_of(manifest);
        let signature = minisign::SignatureBox::from_file(&path).map_err(|e| SignatureError::at(&path, e))?;
        let data = std::fs::File::open(manifest).map_err(|e| SignatureError::at(manifest, e))?;
        minisign::verify(&self.0, &signature, data, true, false, false).map_err(|e| SignatureError::at(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let (secret, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        std::fs::write(&secret, pair.sk.to_box(None).unwrap().into_string()).unwrap();
        std::fs::write(&public, pair.pk.to_box().unwrap().into_string()).unwrap();
        (secret, public)
    }

    #[test]
    fn a_signed_manifest_checks_with_its_key_and_not_with_another_nor_once_edited() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) = key_pair(dir.path(), "ours");
        let (_, other) = key_pair(dir.path(), "theirs");
        let manifest = dir.path().join("manifest.json");
        std::fs::write(&manifest, "{\"rows\": 1}\n").unwrap();
        let key = SigningKey::load(&secret).unwrap();
        key.sign(&manifest).unwrap();
        let ours = PublicKey::load(&public).unwrap();
        assert_eq!(ours.id(), key.id());
        ours.check(&manifest).unwrap();
        let theirs = PublicKey::load(&other).unwrap();
        assert!(theirs.check(&manifest).is_err(), "another key");
        std::fs::write(&manifest, "{\"rows\": 2}\n").unwrap();
        assert!(ours.check(&manifest).is_err(), "an edited manifest");
    }

    #[test]
    fn an_encrypted_key_without_its_password_is_refused_without_a_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enc.key");
        let pair = minisign::KeyPair::generate_encrypted_keypair(Some("pw".into())).unwrap();
        std::fs::write(&path, pair.sk.to_box(None).unwrap().into_string()).unwrap();
        // The variable is not set in tests: the key is refused, naming the variable.
        let err = SigningKey::load(&path).unwrap_err().to_string();
        assert!(err.contains(PASSWORD_ENV), "{err}");
        assert!(format!("{:?}", SigningKey::load(&dir.path().join("none")).unwrap_err()).contains("none"));
    }
}
