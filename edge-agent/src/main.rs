//! `edge-agent run --config FILE`: the bay agent. `edge-agent analyze SIDECAR...`: the bay
//! pipeline on scans from disk, no server.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use edge_agent::AgentConfig;

#[derive(Debug, Parser)]
#[command(version, about = "BayLens edge agent: one per inspection bay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent until Ctrl-C or SIGTERM.
    Run {
        /// TOML configuration (see config/agent.example.toml).
        #[arg(long, env = "BAYLENS_AGENT_CONFIG")]
        config: PathBuf,
        /// Override one key of the file, e.g. `--set server.url=http://10.0.0.5:8080` or
        /// `--set lanes.red=0.6` (repeatable). Environment variables `BAYLENS_AGENT__KEY`
        /// (`__` between levels: `BAYLENS_AGENT__SERVER__URL`) override too; flags win.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Make a scanner token for the push API: prints the token (give it to the scanner) and the
    /// sha256 to add to `push.scanner_token_sha256` in the agent's config.
    ScannerToken,
    /// Make an access code for an officer's tablet; prints the code (give it to the officer)
    /// and the line for `[tablet] officers` in the agent's config (only its sha256 is stored).
    OfficerCode {
        /// The officer's user name on the server (an officer of this bay there).
        #[arg(long)]
        username: String,
    },
    /// Show the agent's queue: scans waiting for the server, the oldest of them, the last
    /// contact with the server, the declarations held, and the bytes sent per scan.
    Status {
        #[arg(long, env = "BAYLENS_AGENT_CONFIG")]
        config: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Analyse scans from disk and print their reports; no server needed. Exits 0 when every
    /// scan was analysed (whatever was found), 2 when a scan or the declaration is bad.
    Analyze(AnalyzeArgs),
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// Sidecar files (`<scan_id>.json`); the images they name sit next to them.
    #[arg(required = true)]
    sidecars: Vec<PathBuf>,
    /// The advance declaration (`baylens.declaration/1`) to verify the load against; without
    /// it, a missing declaration is itself a finding.
    #[arg(long)]
    declaration: Option<PathBuf>,
    /// Folder with the ONNX models.
    #[arg(long, env = "BAYLENS_MODELS_DIR", default_value = "models/onnx")]
    models: PathBuf,
    /// Per-scanner calibration (default: the simulator's, assets/calibration/scanner-sim.toml).
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print JSON (documented in edge-agent/src/analyze.rs) instead of text.
    #[arg(long)]
    json: bool,
    /// Write the overlay layers (PNG, vector JSON, legend) to DIR/<scan_id>/.
    #[arg(long, value_name = "DIR")]
    overlay: Option<PathBuf>,
    /// Risk from which a load goes to the yellow lane (this site's threshold).
    #[arg(long, default_value_t = 0.35)]
    lane_yellow: f32,
    /// Risk from which a load goes to the red lane (this site's threshold).
    #[arg(long, default_value_t = 0.7)]
    lane_red: f32,
}

fn analyze(args: &AnalyzeArgs) -> Result<bool> {
    use edge_agent::calibration::Calibration;
    let AnalyzeArgs {
        sidecars,
        declaration,
        models,
        calibration,
        threads,
        json,
        overlay,
        lane_yellow,
        lane_red,
    } = args;
    let (threads, json) = (*threads, *json);
    let lanes = baylens_protocol::risk::LaneThresholds {
        yellow: *lane_yellow,
        red: *lane_red,
    };
    if let Err(e) = lanes.validate() {
        eprintln!("edge-agent analyze: {e}");
        return Ok(false);
    }
    let declaration = match declaration {
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("edge-agent analyze: {}: cannot read: {e}", path.display());
                    return Ok(false);
                }
            };
            match baylens_protocol::Declaration::from_json(&text, chrono::Utc::now()) {
                Ok(d) => Some(d),
                Err(errors) => {
                    let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    eprintln!(
                        "edge-agent analyze: {}: {}",
                        path.display(),
                        list.join("; ")
                    );
                    return Ok(false);
                }
            }
        }
        None => None,
    };
    let calibration = match calibration {
        Some(path) => match Calibration::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("edge-agent analyze: {e}");
                return Ok(false);
            }
        },
        None => Calibration::scanner_sim(),
    };
    let mut model = baylens_models::ConcealmentModel::load(models, threads)
        .with_context(|| format!("loading the model from {}", models.display()))?;
    let mut all_ok = true;
    let mut out = Vec::new();
    for sidecar in sidecars {
        let value = match edge_agent::analyze::analyze_one(
            sidecar,
            &mut model,
            &calibration,
            declaration.as_ref(),
            lanes,
            overlay.as_deref(),
        ) {
            Ok(v) => v,
            Err(e) => {
                all_ok = false;
                eprintln!("edge-agent analyze: {}: {e}", sidecar.display());
                serde_json::json!({"sidecar": sidecar.display().to_string(), "error": e.to_string()})
            }
        };
        if !json {
            print_text(&value);
        }
        out.push(value);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(all_ok)
}

fn print_text(v: &serde_json::Value) {
    let Some(report) = v.get("report") else {
        return;
    };
    println!(
        "{}: lane {}, risk {:.2}",
        report["scan_id"].as_str().unwrap_or("?"),
        report["lane"].as_str().unwrap_or("?"),
        report["risk"].as_f64().unwrap_or(0.0)
    );
    if let Some(mass) = v["cargo"]["mass_kg"].as_f64() {
        println!("  cargo: about {:.1} t", mass / 1000.0);
    }
    for c in report["breakdown"]["contributions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "  risk {:.2} from {}",
            c["share"].as_f64().unwrap_or(0.0),
            c["source"].as_str().unwrap_or("?")
        );
    }
    if let Some(dir) = v["overlay"]["dir"].as_str() {
        println!("  overlay: {dir}");
    }
    for f in report["findings"].as_array().into_iter().flatten() {
        println!(
            "  - {} ({:.2}): {}",
            f["kind"].as_str().unwrap_or("?"),
            f["score"].as_f64().unwrap_or(0.0),
            f["message"].as_str().unwrap_or("")
        );
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    // `analyze` prints its results on stdout, so its logs go to stderr.
    let to_stderr = matches!(cli.command, Command::Analyze(_));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        // Colours only on a terminal, not in log files.
        .with_ansi(if to_stderr {
            std::io::IsTerminal::is_terminal(&std::io::stderr())
        } else {
            std::io::IsTerminal::is_terminal(&std::io::stdout())
        });
    if to_stderr {
        subscriber.with_writer(std::io::stderr).init();
    } else {
        subscriber.init();
    }
    match cli.command {
        Command::Analyze(args) => {
            let ok = tokio::task::block_in_place(|| analyze(&args))?;
            if !ok {
                std::process::exit(2);
            }
        }
        Command::ScannerToken => {
            let (token, hash) = edge_agent::push::new_token();
            println!("token (give it to the scanner; it is not stored anywhere): {token}");
            println!("add to the agent's config, [push] scanner_token_sha256: \"{hash}\"");
        }
        Command::OfficerCode { username } => {
            let (code, hash) = edge_agent::tablet::new_code();
            println!("code (give it to {username}; it is not stored anywhere): {code}");
            println!(
                "add to the agent's config, [tablet] officers: {{ username = {username:?}, code_sha256 = \"{hash}\" }}"
            );
        }
        Command::Status { config, json } => {
            let config = AgentConfig::load(&config)
                .with_context(|| format!("loading {}", config.display()))?;
            let status = edge_agent::status::collect(&config).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", edge_agent::status::text(&status));
            }
        }
        Command::Run { config, set } => {
            let mut overrides = edge_agent::config::env_overrides(std::env::vars());
            overrides.extend(set);
            let config = AgentConfig::load_with(&config, &overrides)
                .with_context(|| format!("loading {}", config.display()))?;
            edge_agent::run(config, shutdown_signal())
                .await
                .context("edge agent stopped")?;
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}
