//! Signed model releases: how a new ONNX model reaches the bays.
//!
//! The model owner signs, offline, the release statement
//! `baylens.model-release/1\n<name>\n<sha256 of the file>\n<size in bytes>\n` with an ed25519
//! key. The server stores and distributes the file with its [`ModelRelease`]; each agent holds
//! only the public key and installs a model only if the file's sha256 and size match the
//! release and the signature verifies under that key. A server (or anyone between) that swaps
//! the file or forges a release therefore cannot make a bay run a model.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Contract version of a release.
pub const MODEL_RELEASE_CONTRACT: &str = "baylens.model-release/1";

/// A model release as distributed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelRelease {
    /// Always [`MODEL_RELEASE_CONTRACT`].
    pub contract: String,
    /// Model name, e.g. `xray-concealment`.
    pub name: String,
    /// sha256 of the ONNX file, lower-case hex.
    pub sha256: String,
    /// Size of the file, bytes.
    pub size: u64,
    /// ed25519 signature of [`statement`], hex (128 characters).
    pub signature: String,
}

/// Why a release or its file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    /// The public key is not 32 bytes of hex, or not a curve point.
    #[error("the model-signing public key is invalid: {0}")]
    BadKey(String),
    /// The release's fields are malformed.
    #[error("malformed release: {0}")]
    Malformed(String),
    /// The file is not the one the release describes.
    #[error("the file does not match the release: {0}")]
    Tampered(String),
    /// The signature does not verify under the configured key.
    #[error(
        "the release signature does not verify under this bay's key (wrong key or forged release)"
    )]
    BadSignature,
}

/// The statement a release's signature covers.
pub fn statement(name: &str, sha256: &str, size: u64) -> Vec<u8> {
    format!("{MODEL_RELEASE_CONTRACT}\n{name}\n{sha256}\n{size}\n").into_bytes()
}

/// A new signing key: (secret key hex, public key hex). Keep the secret offline.
pub fn new_key(secret: [u8; 32]) -> (String, String) {
    let key = SigningKey::from_bytes(&secret);
    (
        hex::encode(key.to_bytes()),
        hex::encode(key.verifying_key().to_bytes()),
    )
}

fn key_bytes<const N: usize>(hex_key: &str, what: &str) -> Result<[u8; N], ReleaseError> {
    let bytes =
        hex::decode(hex_key.trim()).map_err(|e| ReleaseError::BadKey(format!("{what}: {e}")))?;
    bytes
        .try_into()
        .map_err(|_| ReleaseError::BadKey(format!("{what} must be {N} bytes in hex")))
}

/// Signs `file` as model `name` with the secret key (hex).
pub fn sign(name: &str, file: &[u8], secret_hex: &str) -> Result<ModelRelease, ReleaseError> {
    let key = SigningKey::from_bytes(&key_bytes::<32>(secret_hex, "secret key")?);
    let sha256 = hex::encode(Sha256::digest(file));
    let size = file.len() as u64;
    let signature = key.sign(&statement(name, &sha256, size));
    Ok(ModelRelease {
        contract: MODEL_RELEASE_CONTRACT.to_owned(),
        name: name.to_owned(),
        sha256,
        size,
        signature: hex::encode(signature.to_bytes()),
    })
}

impl ModelRelease {
    /// Checks the release's signature under `public_hex` (32-byte ed25519 key in hex).
    pub fn verify_signature(&self, public_hex: &str) -> Result<(), ReleaseError> {
        if self.contract != MODEL_RELEASE_CONTRACT {
            return Err(ReleaseError::Malformed(format!(
                "contract {:?}, expected {MODEL_RELEASE_CONTRACT:?}",
                self.contract
            )));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReleaseError::Malformed(
                "sha256 must be 64 hex characters".into(),
            ));
        }
        let key = VerifyingKey::from_bytes(&key_bytes::<32>(public_hex, "public key")?)
            .map_err(|e| ReleaseError::BadKey(e.to_string()))?;
        let sig = Signature::from_bytes(
            &key_bytes::<64>(&self.signature, "signature")
                .map_err(|e| ReleaseError::Malformed(e.to_string()))?,
        );
        key.verify_strict(&statement(&self.name, &self.sha256, self.size), &sig)
            .map_err(|_| ReleaseError::BadSignature)
    }

    /// Checks that `file` is the file this release describes, and the signature.
    pub fn verify(&self, file: &[u8], public_hex: &str) -> Result<(), ReleaseError> {
        self.verify_signature(public_hex)?;
        if file.len() as u64 != self.size {
            return Err(ReleaseError::Tampered(format!(
                "{} bytes, the release says {}",
                file.len(),
                self.size
            )));
        }
        let found = hex::encode(Sha256::digest(file));
        if found != self.sha256 {
            return Err(ReleaseError::Tampered(format!(
                "sha256 {found}, the release says {}",
                self.sha256
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_release_verifies_and_any_change_is_refused() {
        let (secret, public) = new_key([7; 32]);
        let file = b"onnx bytes".to_vec();
        let release = sign("xray-concealment", &file, &secret).unwrap();
        release.verify(&file, &public).unwrap();

        let mut tampered = file.clone();
        tampered[0] ^= 1;
        assert!(matches!(
            release.verify(&tampered, &public),
            Err(ReleaseError::Tampered(_))
        ));

        let (_, other) = new_key([8; 32]);
        assert_eq!(
            release.verify(&file, &other),
            Err(ReleaseError::BadSignature)
        );

        let mut renamed = release.clone();
        renamed.name = "other-model".into();
        assert_eq!(
            renamed.verify(&file, &public),
            Err(ReleaseError::BadSignature)
        );

        // A release rewritten for a swapped file fails on the signature.
        let mut forged = release.clone();
        forged.sha256 = hex::encode(Sha256::digest(&tampered));
        assert_eq!(
            forged.verify(&tampered, &public),
            Err(ReleaseError::BadSignature)
        );
        assert!(matches!(
            release.verify(&file, "zz"),
            Err(ReleaseError::BadKey(_))
        ));
    }
}
