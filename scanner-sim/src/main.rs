//! `scanner-sim`: writes synthetic scans (`generate`) or feeds them to a bay's drop folder (`feed`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use baylens_protocol::{BayId, ScanId};
use chrono::Utc;
use clap::{Parser, Subcommand};
use scanner_sim::{ScenarioChoice, generate, write_scan};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Synthetic X-ray cargo scans per the BayLens scan contract"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write COUNT scans and a truth.json into OUT.
    Generate {
        /// honest, concealment or mixed.
        #[arg(long, default_value = "mixed")]
        scenario: String,
        /// Number of scans.
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// Random seed; the same seed gives the same scans.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Bay id written into the sidecars.
        #[arg(long, default_value = "BAY01")]
        bay: String,
        /// Also write the truth masks (`<scan_id>.mask.png`), for training.
        #[arg(long)]
        masks: bool,
    },
    /// Drop a scan into DROP every INTERVAL seconds, as a scanner would.
    Feed {
        /// The agent's drop folder.
        #[arg(long, env = "BAYLENS_DROP_DIR")]
        drop: PathBuf,
        /// Seconds between scans.
        #[arg(long, default_value_t = 4.0)]
        interval: f64,
        /// Stop after this many scans (0: run until interrupted).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// honest, concealment or mixed.
        #[arg(long, default_value = "mixed")]
        scenario: String,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Bay id written into the sidecars.
        #[arg(long, default_value = "BAY01")]
        bay: String,
    },
}

fn scenario(name: &str) -> Result<ScenarioChoice> {
    ScenarioChoice::parse(name)
        .with_context(|| format!("unknown scenario {name:?}; use honest, concealment or mixed"))
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate {
            scenario: name,
            count,
            seed,
            out,
            bay,
            masks,
        } => {
            let choice = scenario(&name)?;
            let bay = BayId::parse(&bay)?;
            let mut truths = Vec::new();
            for i in 0..count {
                let scan_id = ScanId::parse(&format!("{bay}-s{seed}-{i:06}"))?;
                let g = generate(choice, seed, i, scan_id.clone(), bay.clone(), Utc::now());
                write_scan(&out, &g.scan, &g.meta, masks)
                    .with_context(|| format!("writing scan {scan_id} into {}", out.display()))?;
                let boxes: Vec<[u32; 4]> = g
                    .truth
                    .concealed
                    .iter()
                    .map(|c| c.package.pixel_box())
                    .collect();
                truths.push(serde_json::json!({
                    "scan_id": scan_id, "scenario": g.truth.scenario, "concealed_boxes": boxes,
                    "concealed": g.truth.concealed, "cargo": g.truth.cargo,
                }));
            }
            let truth_path = out.join("truth.json");
            std::fs::write(&truth_path, serde_json::to_vec_pretty(&truths)?)
                .with_context(|| format!("writing {}", truth_path.display()))?;
            println!("wrote {count} scans and {}", truth_path.display());
        }
        Command::Feed {
            drop,
            interval,
            count,
            scenario: name,
            seed,
            bay,
        } => {
            let choice = scenario(&name)?;
            let bay = BayId::parse(&bay)?;
            if !(interval.is_finite() && interval >= 0.0) {
                bail!("--interval must be a non-negative number of seconds");
            }
            let run = Utc::now().format("%Y%m%dT%H%M%S");
            let mut i = 0;
            while count == 0 || i < count {
                let scan_id = ScanId::parse(&format!("{bay}-{run}-{i:05}"))?;
                let g = generate(choice, seed, i, scan_id.clone(), bay.clone(), Utc::now());
                write_scan(&drop, &g.scan, &g.meta, false)
                    .with_context(|| format!("writing scan into {}", drop.display()))?;
                let code = g
                    .meta
                    .container_code
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                println!(
                    "scanner-sim: dropped {scan_id} ({code}, {:?})",
                    g.truth.scenario
                );
                i += 1;
                std::thread::sleep(Duration::from_secs_f64(interval));
            }
        }
    }
    Ok(())
}
