//! Signed model releases: how a new ONNX model reaches the bays.
//!
//! The model owner signs, offline, the release statement
//! `baylens.model-release/2\n<name>\n<sha256 of the file>\n<size in bytes>\n<serial>\n<expires_at or empty>\n`
//! with an ed25519 key. The server stores and distributes the file with its [`ModelRelease`];
//! each agent holds only the public key and installs a model only if the file's sha256 and size
//! match the release and the signature verifies under that key. A server (or anyone between)
//! that swaps the file or forges a release therefore cannot make a bay run a model.
//!
//! The signed **serial** grows with every release of a model, and each bay remembers the highest
//! it has installed: an old, genuinely signed release cannot be put back (a rollback attack). An
//! optional signed **expiry** bounds how long a release may be installed at all. Releases of
//! contract `/1` carried neither and are refused with a message that says to re-sign them.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Contract version of a release.
pub const MODEL_RELEASE_CONTRACT: &str = "baylens.model-release/2";

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
    /// Release number of this model, strictly increasing from 1; bays refuse any release whose
    /// serial is not above the highest they have installed. (Absent in `/1` releases.)
    #[serde(default)]
    pub serial: u64,
    /// Time after which the release may no longer be installed, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
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
    /// The release's signed expiry has passed.
    #[error("the release expired at {0}")]
    Expired(String),
}

/// The statement a release's signature covers.
pub fn statement(
    name: &str,
    sha256: &str,
    size: u64,
    serial: u64,
    expires_at: Option<&str>,
) -> Vec<u8> {
    let expires = expires_at.unwrap_or("");
    format!("{MODEL_RELEASE_CONTRACT}\n{name}\n{sha256}\n{size}\n{serial}\n{expires}\n")
        .into_bytes()
}

/// What a release promises beyond its file: its serial and, optionally, its expiry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Terms {
    /// Release number, at least 1 and above every earlier release of the model.
    pub serial: u64,
    /// Expiry, RFC 3339.
    pub expires_at: Option<String>,
}

fn parse_expiry(text: &str) -> Result<chrono::DateTime<chrono::Utc>, ReleaseError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| ReleaseError::Malformed(format!("expires_at {text:?} is not RFC 3339: {e}")))
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

/// Signs `file` as model `name` under `terms` with the secret key (hex).
pub fn sign(
    name: &str,
    file: &[u8],
    terms: &Terms,
    secret_hex: &str,
) -> Result<ModelRelease, ReleaseError> {
    if terms.serial == 0 {
        return Err(ReleaseError::Malformed("the serial starts at 1".into()));
    }
    if let Some(t) = &terms.expires_at {
        parse_expiry(t)?;
    }
    let key = SigningKey::from_bytes(&key_bytes::<32>(secret_hex, "secret key")?);
    let sha256 = hex::encode(Sha256::digest(file));
    let size = file.len() as u64;
    let expires_at = terms.expires_at.as_deref();
    let signature = key.sign(&statement(name, &sha256, size, terms.serial, expires_at));
    Ok(ModelRelease {
        contract: MODEL_RELEASE_CONTRACT.to_owned(),
        name: name.to_owned(),
        sha256,
        size,
        serial: terms.serial,
        expires_at: terms.expires_at.clone(),
        signature: hex::encode(signature.to_bytes()),
    })
}

impl ModelRelease {
    /// Checks the release's signature under `public_hex` (32-byte ed25519 key in hex).
    pub fn verify_signature(&self, public_hex: &str) -> Result<(), ReleaseError> {
        if self.contract == "baylens.model-release/1" {
            return Err(ReleaseError::Malformed(format!(
                "a {:?} release carries no serial, so a bay cannot tell it from an older one: \
                 re-sign it with `baylens-server model publish`",
                self.contract
            )));
        }
        if self.contract != MODEL_RELEASE_CONTRACT {
            return Err(ReleaseError::Malformed(format!(
                "contract {:?}, expected {MODEL_RELEASE_CONTRACT:?}",
                self.contract
            )));
        }
        if self.serial == 0 {
            return Err(ReleaseError::Malformed("the serial starts at 1".into()));
        }
        if let Some(t) = &self.expires_at {
            parse_expiry(t)?;
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
        let signed = statement(
            &self.name,
            &self.sha256,
            self.size,
            self.serial,
            self.expires_at.as_deref(),
        );
        key.verify_strict(&signed, &sig)
            .map_err(|_| ReleaseError::BadSignature)
    }

    /// Refuses a release whose expiry is before `now`.
    pub fn check_expiry(&self, now: chrono::DateTime<chrono::Utc>) -> Result<(), ReleaseError> {
        match &self.expires_at {
            Some(t) if parse_expiry(t)? <= now => Err(ReleaseError::Expired(t.clone())),
            _ => Ok(()),
        }
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

    fn terms(serial: u64) -> Terms {
        Terms {
            serial,
            expires_at: None,
        }
    }

    #[test]
    fn a_signed_release_verifies_and_any_change_is_refused() {
        let (secret, public) = new_key([7; 32]);
        let file = b"onnx bytes".to_vec();
        let release = sign("xray-concealment", &file, &terms(1), &secret).unwrap();
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

    #[test]
    fn serial_and_expiry_are_signed_and_old_contracts_refused() {
        let (secret, public) = new_key([9; 32]);
        let file = b"onnx bytes".to_vec();
        let expiring = Terms {
            serial: 4,
            expires_at: Some("2027-01-31T00:00:00Z".into()),
        };
        let release = sign("xray-concealment", &file, &expiring, &secret).unwrap();
        release.verify(&file, &public).unwrap();
        let mut bumped = release.clone();
        bumped.serial = 5;
        assert_eq!(
            bumped.verify(&file, &public),
            Err(ReleaseError::BadSignature)
        );
        let mut extended = release.clone();
        extended.expires_at = Some("2030-01-31T00:00:00Z".into());
        assert_eq!(
            extended.verify(&file, &public),
            Err(ReleaseError::BadSignature)
        );
        let day = |d: &str| {
            chrono::DateTime::parse_from_rfc3339(d)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        release.check_expiry(day("2027-01-30T00:00:00Z")).unwrap();
        assert!(matches!(
            release.check_expiry(day("2027-02-01T00:00:00Z")),
            Err(ReleaseError::Expired(_))
        ));
        let mut old = release.clone();
        old.contract = "baylens.model-release/1".into();
        let err = old.verify(&file, &public).unwrap_err();
        assert!(err.to_string().contains("re-sign"), "{err}");
        assert!(matches!(
            sign("m", &file, &terms(0), &secret),
            Err(ReleaseError::Malformed(_))
        ));
        let bad_date = Terms {
            serial: 1,
            expires_at: Some("next Tuesday".into()),
        };
        assert!(matches!(
            sign("m", &file, &bad_date, &secret),
            Err(ReleaseError::Malformed(_))
        ));
    }
}
