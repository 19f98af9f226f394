//! Signed case bundles (`baylens.case-bundle/1`, described in `protocol/CASE_BUNDLE.md`): one
//! case with its evidence, in one file that another agency or administration can check.
//!
//! A bundle is a POSIX tar file. Its first member, `manifest.json`, names the issuer, the
//! signing key and every other member with its size and sha256; the second, `manifest.sig`, is
//! the ed25519 signature (hex) of `baylens.case-bundle/1\n` followed by the manifest's bytes.
//! A receiver checks the signature under a key it trusts, then every member against the
//! manifest, and names each member that was altered, added or removed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Contract version of a bundle.
pub const CONTRACT: &str = "baylens.case-bundle/1";
/// Contract version of a secret bundle-signing key file.
pub const KEY_CONTRACT: &str = "baylens.bundle-key/1";
/// Contract version of a published public key.
pub const PUBLIC_KEY_CONTRACT: &str = "baylens.bundle-public-key/1";
/// The manifest member.
pub const MANIFEST: &str = "manifest.json";
/// The signature member.
pub const SIGNATURE: &str = "manifest.sig";
/// Media type of a bundle.
pub const MEDIA_TYPE: &str = "application/vnd.baylens.case-bundle+tar";
/// Largest bundle read (scans at full resolution with their layers fit many times over).
pub const MAX_BUNDLE_BYTES: usize = 128 * 1024 * 1024;
/// Most members a bundle may have.
pub const MAX_MEMBERS: usize = 512;

/// Why a bundle or a key is refused. Each names what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a tar file, or its layout is not a bundle's.
    #[error("not a case bundle: {0}")]
    NotABundle(String),
    /// The manifest or a key file breaks the contract.
    #[error("malformed: {0}")]
    Malformed(String),
    /// Signed by a key the receiver does not trust.
    #[error(
        "signed by key {key_id} (issuer {issuer:?}), which is not a key trusted here (a server trusts a partner's published key with `server keys trust`)"
    )]
    UnknownKey {
        /// The key id the manifest names.
        key_id: String,
        /// The issuer the manifest names.
        issuer: String,
    },
    /// The signature does not verify: the manifest was changed after signing.
    #[error(
        "manifest.json: the signature does not verify under key {0}; the manifest was altered after signing, or signed with another key"
    )]
    BadSignature(String),
    /// Members differ from the manifest; each difference is listed.
    #[error("the bundle was altered: {}", .0.join("; "))]
    Altered(Vec<String>),
}

/// A member of the bundle as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Path inside the bundle, e.g. `images/preview.png`.
    pub path: String,
    /// Media type.
    pub media_type: String,
    /// Size, bytes.
    pub size: u64,
    /// sha256, lower-case hex.
    pub sha256: String,
}

/// The case as the issuer holds it, in short (the whole of it is in `case.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseHeader {
    /// The case's id at the issuer.
    pub id: i64,
    /// Scan id.
    pub scan_id: String,
    /// Bay.
    pub bay: String,
    /// Capture time, RFC 3339.
    pub captured_at: String,
    /// Container code, if known.
    pub container_code: Option<String>,
    /// The declaration's reference, if matched.
    pub declaration_ref: Option<String>,
    /// green, yellow or red.
    pub lane: String,
    /// The case's status when the bundle was made.
    pub status: String,
}

/// The signed manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`CONTRACT`].
    pub contract: String,
    /// The administration that signed, as its key file names it.
    pub issuer: String,
    /// Id of the signing key (see [`key_id`]).
    pub key_id: String,
    /// When the bundle was made, RFC 3339.
    pub created_at: String,
    /// The case.
    pub case: CaseHeader,
    /// Every member but the manifest and its signature, in bundle order.
    pub members: Vec<Member>,
}

/// A secret bundle-signing key file (mode 0600).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    contract: String,
    issuer: String,
    secret_key: String,
}

/// A public key, as an administration publishes it and a receiver trusts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKey {
    /// Always [`PUBLIC_KEY_CONTRACT`].
    pub contract: String,
    /// The administration.
    pub issuer: String,
    /// [`key_id`] of the key.
    pub key_id: String,
    /// The ed25519 public key, 64 hex characters.
    pub public_key: String,
}

/// A key's id: the first 16 hex digits of the sha256 of its 32 public bytes.
pub fn key_id(public: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(public.as_bytes()))[..16].to_owned()
}

impl PublicKey {
    /// Parses and checks a published key (JSON): contract, curve point and id.
    pub fn parse(text: &str) -> Result<Self, BundleError> {
        let key: Self = serde_json::from_str(text)
            .map_err(|e| BundleError::Malformed(format!("public key file: {e}")))?;
        if key.contract != PUBLIC_KEY_CONTRACT {
            return Err(BundleError::Malformed(format!(
                "public key file: contract {:?}, expected {PUBLIC_KEY_CONTRACT:?}",
                key.contract
            )));
        }
        let vk = key.verifying_key()?;
        if key_id(&vk) != key.key_id {
            return Err(BundleError::Malformed(format!(
                "public key file: key_id {:?} is not this key's id {:?}",
                key.key_id,
                key_id(&vk)
            )));
        }
        Ok(key)
    }

    /// The key itself.
    pub fn verifying_key(&self) -> Result<VerifyingKey, BundleError> {
        let bytes: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                BundleError::Malformed("public_key must be 32 bytes in hex (64 characters)".into())
            })?;
        VerifyingKey::from_bytes(&bytes)
            .map_err(|e| BundleError::Malformed(format!("public_key is not an ed25519 key: {e}")))
    }
}

/// The administration's bundle-signing key.
#[derive(Clone)]
pub struct BundleSigner {
    issuer: String,
    key: SigningKey,
}

impl std::fmt::Debug for BundleSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("BundleSigner")
            .field("issuer", &self.issuer)
            .field("key_id", &key_id(&self.key.verifying_key()))
            .finish_non_exhaustive()
    }
}

impl BundleSigner {
    /// A new key for `issuer`, from 32 random bytes.
    pub fn generate(issuer: &str) -> Result<Self, BundleError> {
        let issuer = issuer.trim();
        if issuer.is_empty() || issuer.chars().count() > 200 {
            return Err(BundleError::Malformed(
                "the issuer is the administration's name, 1 to 200 characters".into(),
            ));
        }
        let secret: [u8; 32] = rand::random();
        Ok(Self {
            issuer: issuer.to_owned(),
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// Writes the secret key file (mode 0600; an existing file is never replaced).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let file = KeyFile {
            contract: KEY_CONTRACT.into(),
            issuer: self.issuer.clone(),
            secret_key: hex::encode(self.key.to_bytes()),
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(serde_json::to_string_pretty(&file)?.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    }

    /// Reads a secret key file.
    pub fn load(path: &Path) -> Result<Self, BundleError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BundleError::Malformed(format!("bundle-signing key {}: {e}", path.display()))
        })?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|e| {
            BundleError::Malformed(format!("bundle-signing key {}: {e}", path.display()))
        })?;
        if file.contract != KEY_CONTRACT {
            return Err(BundleError::Malformed(format!(
                "bundle-signing key {}: contract {:?}, expected {KEY_CONTRACT:?}",
                path.display(),
                file.contract
            )));
        }
        let secret: [u8; 32] = hex::decode(&file.secret_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                BundleError::Malformed(format!(
                    "bundle-signing key {}: secret_key must be 32 bytes in hex",
                    path.display()
                ))
            })?;
        Ok(Self {
            issuer: file.issuer,
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The public key, to publish.
    pub fn public(&self) -> PublicKey {
        let vk = self.key.verifying_key();
        PublicKey {
            contract: PUBLIC_KEY_CONTRACT.into(),
            issuer: self.issuer.clone(),
            key_id: key_id(&vk),
            public_key: hex::encode(vk.as_bytes()),
        }
    }

    /// Packs and signs a bundle of `case` with `files` (path, media type, bytes), in order.
    pub fn pack(
        &self,
        case: CaseHeader,
        files: &[(String, String, Vec<u8>)],
        created_at: &str,
    ) -> Result<Vec<u8>, BundleError> {
        let mut seen = std::collections::BTreeSet::new();
        for (path, _, _) in files {
            check_path(path)?;
            if !seen.insert(path.as_str()) {
                return Err(BundleError::Malformed(format!("{path}: listed twice")));
            }
        }
        let manifest = Manifest {
            contract: CONTRACT.into(),
            issuer: self.issuer.clone(),
            key_id: key_id(&self.key.verifying_key()),
            created_at: created_at.into(),
            case,
            members: files
                .iter()
                .map(|(path, media_type, bytes)| Member {
                    path: path.clone(),
                    media_type: media_type.clone(),
                    size: bytes.len() as u64,
                    sha256: hex::encode(Sha256::digest(bytes)),
                })
                .collect(),
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BundleError::Malformed(e.to_string()))?;
        let signature = hex::encode(self.key.sign(&signed_bytes(&manifest_bytes)).to_bytes());
        let mut tar = tar::Builder::new(Vec::new());
        let mtime = chrono::DateTime::parse_from_rfc3339(created_at)
            .map(|t| t.timestamp().max(0) as u64)
            .unwrap_or(0);
        let mut append = |path: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            tar.append_data(&mut header, path, bytes)
        };
        let io = |e: std::io::Error| BundleError::Malformed(format!("writing the bundle: {e}"));
        append(MANIFEST, &manifest_bytes).map_err(io)?;
        append(SIGNATURE, signature.as_bytes()).map_err(io)?;
        for (path, _, bytes) in files {
            append(path, bytes).map_err(io)?;
        }
        tar.into_inner().map_err(io)
    }
}

fn signed_bytes(manifest: &[u8]) -> Vec<u8> {
    let mut out = format!("{CONTRACT}\n").into_bytes();
    out.extend_from_slice(manifest);
    out
}

/// Member paths: letters, digits, `.`, `_`, `-` and `/` between names, at most
/// 160 characters; no absolute paths, no `..`, never the manifest's or signature's names.
fn check_path(path: &str) -> Result<(), BundleError> {
    let ok = !path.is_empty()
        && path.len() <= 160
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        });
    if !ok {
        return Err(BundleError::Malformed(format!(
            "member path {path:?}: only letters, digits, '.', '_', '-' and '/' between names"
        )));
    }
    if path == MANIFEST || path == SIGNATURE {
        return Err(BundleError::Malformed(format!(
            "member path {path:?} is reserved"
        )));
    }
    Ok(())
}

/// A bundle read but not yet checked.
#[derive(Debug)]
pub struct Opened {
    /// The manifest as signed (parsed).
    pub manifest: Manifest,
    manifest_bytes: Vec<u8>,
    signature: Vec<u8>,
    members: Vec<(String, Vec<u8>)>,
    /// sha256 of the whole bundle file.
    pub bundle_sha256: String,
}

/// A bundle whose signature and members all check.
#[derive(Debug)]
pub struct Verified {
    /// The manifest.
    pub manifest: Manifest,
    /// Every member's bytes by path.
    pub files: BTreeMap<String, Vec<u8>>,
    /// sha256 of the whole bundle file.
    pub bundle_sha256: String,
}

/// Reads a bundle's layout: a tar of regular files, manifest first, then the signature.
pub fn open(bytes: &[u8]) -> Result<Opened, BundleError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(BundleError::NotABundle(format!(
            "{} bytes, more than the {MAX_BUNDLE_BYTES} a bundle may have",
            bytes.len()
        )));
    }
    let not = |what: String| BundleError::NotABundle(what);
    let mut archive = tar::Archive::new(bytes);
    let entries = archive
        .entries()
        .map_err(|e| not(format!("not a tar file: {e}")))?;
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| not(format!("not a readable tar file: {e}")))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            return Err(not(format!(
                "{path}: only regular files may be in a bundle (links, folders and devices are refused)"
            )));
        }
        if members.len() == MAX_MEMBERS {
            return Err(not(format!("more than {MAX_MEMBERS} members")));
        }
        // The whole file is in memory already, so the sizes are bounded by its length.
        let mut data = Vec::with_capacity(entry.size().min(bytes.len() as u64) as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| not(format!("{path}: {e}")))?;
        members.push((path, data));
    }
    let mut it = members.into_iter();
    let (first, manifest_bytes) = it
        .next()
        .ok_or_else(|| not("the tar file is empty".into()))?;
    if first != MANIFEST {
        return Err(not(format!(
            "the first member is {first:?}, not {MANIFEST}"
        )));
    }
    let (second, signature) = it
        .next()
        .ok_or_else(|| not(format!("{SIGNATURE} is missing")))?;
    if second != SIGNATURE {
        return Err(not(format!(
            "the second member is {second:?}, not {SIGNATURE}"
        )));
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| BundleError::Malformed(format!("{MANIFEST}: {e}")))?;
    if manifest.contract != CONTRACT {
        return Err(BundleError::Malformed(format!(
            "{MANIFEST}: contract {:?}, expected {CONTRACT:?}",
            manifest.contract
        )));
    }
    Ok(Opened {
        manifest,
        manifest_bytes,
        signature,
        members: it.collect(),
        bundle_sha256: hex::encode(Sha256::digest(bytes)),
    })
}

impl Opened {
    /// Checks the signature under `key`, then every member against the manifest.
    pub fn verify(self, key: &PublicKey) -> Result<Verified, BundleError> {
        if key.key_id != self.manifest.key_id {
            return Err(BundleError::UnknownKey {
                key_id: self.manifest.key_id.clone(),
                issuer: self.manifest.issuer.clone(),
            });
        }
        let vk = key.verifying_key()?;
        let bad = || BundleError::BadSignature(key.key_id.clone());
        let signature: [u8; 64] = std::str::from_utf8(&self.signature)
            .ok()
            .and_then(|s| hex::decode(s.trim()).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or_else(bad)?;
        vk.verify_strict(
            &signed_bytes(&self.manifest_bytes),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| bad())?;
        let mut problems = Vec::new();
        let mut files = BTreeMap::new();
        let mut listed: BTreeMap<&str, &Member> = BTreeMap::new();
        for m in &self.manifest.members {
            if let Err(e) = check_path(&m.path) {
                problems.push(e.to_string());
            }
            listed.insert(&m.path, m);
        }
        for (path, data) in self.members {
            if files.contains_key(&path) {
                problems.push(format!("{path}: in the bundle twice"));
                continue;
            }
            let Some(m) = listed.remove(path.as_str()) else {
                problems.push(format!(
                    "{path}: in the bundle but not in the manifest (added)"
                ));
                continue;
            };
            let sha = hex::encode(Sha256::digest(&data));
            if sha != m.sha256 || data.len() as u64 != m.size {
                problems.push(format!(
                    "{path}: {} bytes with sha256 {}…, the manifest says {} bytes with sha256 {}… (altered)",
                    data.len(),
                    &sha[..12],
                    m.size,
                    m.sha256.get(..12).unwrap_or(&m.sha256)
                ));
                continue;
            }
            files.insert(path, data);
        }
        for path in listed.keys() {
            problems.push(format!(
                "{path}: in the manifest but not in the bundle (removed)"
            ));
        }
        if !problems.is_empty() {
            return Err(BundleError::Altered(problems));
        }
        Ok(Verified {
            manifest: self.manifest,
            files,
            bundle_sha256: self.bundle_sha256,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> CaseHeader {
        CaseHeader {
            id: 7,
            scan_id: "BAY01-1".into(),
            bay: "BAY01".into(),
            captured_at: "2026-12-05T10:00:00Z".into(),
            container_code: Some("CSQU3054383".into()),
            declaration_ref: None,
            lane: "red".into(),
            status: "seized".into(),
        }
    }

    fn files() -> Vec<(String, String, Vec<u8>)> {
        vec![
            (
                "case.json".into(),
                "application/json".into(),
                b"{}".to_vec(),
            ),
            (
                "images/preview.png".into(),
                "image/png".into(),
                vec![1, 2, 3, 4],
            ),
        ]
    }

    #[test]
    fn a_bundle_verifies_under_its_key_and_under_no_other() {
        let signer = BundleSigner::generate("Administration A").unwrap();
        let bytes = signer
            .pack(header(), &files(), "2026-12-05T10:00:00Z")
            .unwrap();
        let v = open(&bytes).unwrap().verify(&signer.public()).unwrap();
        assert_eq!(v.files["images/preview.png"], vec![1, 2, 3, 4]);
        assert_eq!(v.manifest.case, header());
        let other = BundleSigner::generate("Administration A").unwrap();
        assert!(matches!(
            open(&bytes).unwrap().verify(&other.public()),
            Err(BundleError::UnknownKey { .. })
        ));
        // Another key under the same id: the signature does not verify.
        let mut forged = other.public();
        forged.key_id = signer.public().key_id;
        assert!(matches!(
            open(&bytes).unwrap().verify(&forged),
            Err(BundleError::BadSignature(_))
        ));
    }

    #[test]
    fn an_altered_member_is_named() {
        let signer = BundleSigner::generate("A").unwrap();
        let mut bytes = signer
            .pack(header(), &files(), "2026-12-05T10:00:00Z")
            .unwrap();
        let at = bytes.windows(4).position(|w| w == [1, 2, 3, 4]).unwrap();
        bytes[at] = 9;
        match open(&bytes).unwrap().verify(&signer.public()) {
            Err(BundleError::Altered(p)) => {
                assert_eq!(p.len(), 1, "{p:?}");
                assert!(p[0].starts_with("images/preview.png:") && p[0].contains("altered"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsafe_paths_and_non_bundles_are_refused() {
        let signer = BundleSigner::generate("A").unwrap();
        for path in ["../etc/passwd", "/abs", "a//b", "manifest.json", "a b", ""] {
            let f = vec![(path.to_owned(), "text/plain".to_owned(), vec![])];
            assert!(
                signer.pack(header(), &f, "2026-12-05T10:00:00Z").is_err(),
                "{path}"
            );
        }
        assert!(matches!(open(b"hello"), Err(BundleError::NotABundle(_))));
        assert!(BundleSigner::generate("  ").is_err());
    }

    #[test]
    fn keys_round_trip_through_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let signer = BundleSigner::generate("Administration A").unwrap();
        signer.save(&path).unwrap();
        assert!(signer.save(&path).is_err(), "never replaced");
        let loaded = BundleSigner::load(&path).unwrap();
        assert_eq!(loaded.public(), signer.public());
        let text = serde_json::to_string(&signer.public()).unwrap();
        assert_eq!(PublicKey::parse(&text).unwrap(), signer.public());
        let wrong_id = text.replace(&signer.public().key_id, "0000000000000000");
        assert!(PublicKey::parse(&wrong_id).is_err());
        assert!(!format!("{signer:?}").contains(&hex::encode(signer.key.to_bytes())));
    }
}
