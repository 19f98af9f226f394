//! `server declarations import FILE`: batch loads from a national system, in any format
//! `POST /api/v1/declarations/import` reads (`baylens_server::interop`), all or nothing.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use baylens_server::interop::{Format, read};
use baylens_server::store::{Lodged, Store};
use clap::Subcommand;

/// Largest file read.
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Most declarations in one file.
const MAX_DECLARATIONS: usize = 200_000;

#[derive(Debug, Subcommand)]
pub enum DeclarationsCommand {
    /// Lodge every declaration of FILE: a JSON array of baylens.declaration/1, WCO DEC-DMS XML
    /// or a UN/EDIFACT CUSCAR interchange (told apart by content). Each is checked first; one bad declaration lodges none,
    /// and every problem is listed, naming the declaration and the element.
    Import {
        /// The file.
        file: PathBuf,
    },
}

/// Runs a `declarations` command.
pub async fn run(command: DeclarationsCommand, store: &Store) -> Result<()> {
    let DeclarationsCommand::Import { file } = command;
    let size = std::fs::metadata(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        bail!(
            "{} is larger than {MAX_FILE_BYTES} bytes; split it",
            file.display()
        );
    }
    let body = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let Some(format) = Format::sniff(&body) else {
        bail!(
            "{}: neither a JSON array, XML nor EDIFACT; BayLens reads {}",
            file.display(),
            Format::ACCEPTED
        );
    };
    let started = std::time::Instant::now();
    let valid = match read(format, &body, chrono::Utc::now(), MAX_DECLARATIONS) {
        Ok(v) => v,
        Err(problems) => bail!(
            "{}: nothing lodged; {} problem(s):\n  {}",
            file.display(),
            problems.len(),
            problems.join("\n  ")
        ),
    };
    let mapped = started.elapsed();
    let outcomes = match store.lodge_declarations("cli", &valid).await? {
        Ok(o) => o,
        Err(reference) => bail!(
            "declaration {reference} was lodged before with different content; nothing was lodged"
        ),
    };
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Lodged::Created(_)))
        .count();
    println!(
        "{}: {created} lodged, {} unchanged ({format:?}; read and checked in {:.2} s, lodged in {:.2} s)",
        file.display(),
        outcomes.len() - created,
        mapped.as_secs_f64(),
        (started.elapsed() - mapped).as_secs_f64()
    );
    Ok(())
}
