//! `server keys …` and `server bundle …`: the administration's bundle-signing key, the keys of
//! partners whose bundles this server accepts, and checking a bundle file offline.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use baylens_server::bundle::{self, BundleError, BundleSigner, PublicKey};
use baylens_server::store::Store;
use clap::Subcommand;

/// The key file `serve` loads when `--bundle-key` is not given.
pub fn default_key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("bundle-signing.key")
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make the administration's bundle-signing key (ed25519): the secret goes to --key-file
    /// (mode 0600, never replaced), the public key to KEY_FILE.pub and to standard output,
    /// for partners to trust.
    Generate {
        /// The administration's name, as receivers will see it.
        #[arg(long)]
        issuer: String,
        /// Where to write the secret key; default DATA_DIR/bundle-signing.key.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Print the public key of a signing key, to publish.
    Public {
        /// The secret key file; default DATA_DIR/bundle-signing.key.
        #[arg(long)]
        key_file: Option<PathBuf>,
    },
    /// Accept bundles signed with a partner's key (its published public key file).
    Trust {
        /// What this server calls the partner: shown as the origin of every case it sends.
        #[arg(long)]
        name: String,
        /// The partner's public key file (`baylens.bundle-public-key/1`).
        #[arg(long)]
        public_key: PathBuf,
    },
    /// List the partners' keys this server trusts.
    Trusted,
}

#[derive(Debug, Subcommand)]
pub enum BundleCommand {
    /// Check a bundle's signature and every file in it; exit 0 if intact, 1 if refused (each
    /// altered, added or removed file is named), 2 if the file or key cannot be read.
    Verify {
        /// The bundle file.
        file: PathBuf,
        /// The issuer's public key file.
        #[arg(long)]
        key: PathBuf,
    },
}

/// The key commands that need no database.
pub fn keys_offline(command: &KeysCommand, data_dir: &Path) -> Result<bool> {
    match command {
        KeysCommand::Generate { issuer, key_file } => {
            let path = key_file
                .clone()
                .unwrap_or_else(|| default_key_file(data_dir));
            if path.exists() {
                bail!(
                    "{} exists; a signing key is never replaced (partners trust it): move it away first",
                    path.display()
                );
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let signer = BundleSigner::generate(issuer)?;
            signer
                .save(&path)
                .with_context(|| format!("writing {}", path.display()))?;
            let public = serde_json::to_string_pretty(&signer.public())?;
            let pub_path = PathBuf::from(format!("{}.pub", path.display()));
            std::fs::write(&pub_path, format!("{public}\n"))
                .with_context(|| format!("writing {}", pub_path.display()))?;
            eprintln!(
                "secret key written to {} (mode 0600); public key to {}",
                path.display(),
                pub_path.display()
            );
            println!("{public}");
            Ok(true)
        }
        KeysCommand::Public { key_file } => {
            let path = key_file
                .clone()
                .unwrap_or_else(|| default_key_file(data_dir));
            let signer = BundleSigner::load(&path)?;
            println!("{}", serde_json::to_string_pretty(&signer.public())?);
            Ok(true)
        }
        KeysCommand::Trust { .. } | KeysCommand::Trusted => Ok(false),
    }
}

/// The key commands on the database.
pub async fn keys_store(command: KeysCommand, store: &Store) -> Result<()> {
    match command {
        KeysCommand::Trust { name, public_key } => {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > 100 {
                bail!("--name must be 1 to 100 characters");
            }
            let text = std::fs::read_to_string(&public_key)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let key = PublicKey::parse(&text)?;
            if store.trust_key("cli", name, &key).await? {
                println!(
                    "trusting key {} of {:?} as {name:?}",
                    key.key_id, key.issuer
                );
            } else {
                println!("key {} is trusted already", key.key_id);
            }
        }
        KeysCommand::Trusted => {
            for k in store.trusted_keys().await? {
                println!(
                    "{}  {:<24}  issuer {:?}  trusted {} by {}",
                    k.key_id, k.name, k.issuer, k.added_at, k.added_by
                );
            }
        }
        KeysCommand::Generate { .. } | KeysCommand::Public { .. } => {}
    }
    Ok(())
}

/// `server bundle verify`: the process's exit code.
pub fn bundle(command: &BundleCommand) -> i32 {
    let BundleCommand::Verify { file, key } = command;
    let read = || -> Result<(Vec<u8>, PublicKey)> {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let text =
            std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
        Ok((bytes, PublicKey::parse(&text)?))
    };
    let (bytes, key) = match read() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e:#}");
            return 2;
        }
    };
    let verified = match bundle::open(&bytes) {
        Ok(opened) => opened.verify(&key),
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return 2;
        }
    };
    match verified {
        Ok(v) => {
            let m = &v.manifest;
            println!(
                "{}: intact, signed by {:?} (key {}) at {}",
                file.display(),
                m.issuer,
                m.key_id,
                m.created_at
            );
            println!(
                "case {} of bay {}, scan {}, {} {}",
                m.case.id, m.case.bay, m.case.scan_id, m.case.lane, m.case.status
            );
            for member in &m.members {
                println!(
                    "  {:<40} {:>10} bytes  sha256 {}",
                    member.path, member.size, member.sha256
                );
            }
            0
        }
        Err(BundleError::Altered(problems)) => {
            eprintln!("{}: REFUSED, the bundle was altered:", file.display());
            for p in problems {
                eprintln!("  {p}");
            }
            1
        }
        Err(e) => {
            eprintln!("{}: REFUSED: {e}", file.display());
            1
        }
    }
}
