//! `server dataset export`: the cleared scans and labelled cases of a period, for
//! `edge-agent calibrate --cleared` and the site adaptation (`baylens_server::dataset`).

use std::path::PathBuf;

use anyhow::{Result, bail};
use baylens_server::dataset::{DirSink, export, params};
use baylens_server::store::Store;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Write the cleared scans (released without a discrepancy) to OUT/cleared, the labelled
    /// cases (findings and their outcome, COCO) to OUT/labelled, and OUT/manifest.json with
    /// the sha256 of every file. Raw scans the bays have not uploaded yet are asked for; run
    /// the export again once they have arrived.
    Export {
        /// Scans captured on or after (YYYY-MM-DD or RFC 3339).
        #[arg(long)]
        from: String,
        /// Scans captured up to this day, inclusive (YYYY-MM-DD), or before this time (RFC 3339).
        #[arg(long)]
        to: String,
        /// Only this bay.
        #[arg(long)]
        bay: Option<String>,
        /// A new or empty folder.
        #[arg(long)]
        out: PathBuf,
        /// Keep declarant names and ids, plates and references (default: pseudonyms).
        #[arg(long)]
        keep_names: bool,
    },
}

/// Runs a `dataset` command.
pub async fn run(command: DatasetCommand, store: &Store) -> Result<()> {
    let DatasetCommand::Export {
        from,
        to,
        bay,
        out,
        keep_names,
    } = command;
    let p = match params(&from, &to, bay.as_deref(), keep_names) {
        Ok(p) => p,
        Err(e) => bail!("{e}"),
    };
    let mut sink = match DirSink::new(&out) {
        Ok(s) => s,
        Err(e) => bail!("{e}"),
    };
    store
        .audit(
            "cli",
            "dataset.export",
            &format!("folder:{}", out.display()),
            &serde_json::to_value(&p)?,
        )
        .await?;
    let s = match export(store, &p, &mut sink, |_, _| {}).await {
        Ok(s) => s,
        Err(e) => bail!("{e}"),
    };
    println!(
        "{} cleared scans in {}, {} labelled cases ({} boxes) in {}, {} files; manifest {}",
        s.cleared,
        out.join("cleared").display(),
        s.labelled,
        s.boxes,
        out.join("labelled").display(),
        s.files,
        out.join("manifest.json").display()
    );
    if !p.keep_names {
        println!("declarant names and ids, plates and references are pseudonyms");
    }
    if s.cleared_without_declaration > 0 {
        println!(
            "{} released cases had no declaration and were left out of cleared/",
            s.cleared_without_declaration
        );
    }
    if s.awaiting_raw > 0 {
        println!(
            "{} scans await their raw data from the bays ({} asked for now); run the export \
             again once they have been uploaded",
            s.awaiting_raw, s.raw_requested
        );
    }
    Ok(())
}
