//! `edge-agent run --config FILE`: the bay agent. `edge-agent analyze SIDECAR...`: the bay
//! pipeline on scans from disk, no server. `edge-agent read-code INPUT...`: the container-code
//! reader on photos, videos or a camera.

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
        /// Override one key of the file, e.g. `--set server.url=https://10.0.0.5:8443` or
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
    /// Commission a scanner: fit its calibration from a phantom scan (`--phantom`), or the
    /// site's tolerances and model threshold from cleared scans (`--cleared`). README,
    /// "Commissioning a scanner".
    Calibrate(CalibrateArgs),
    /// Read a container code from photos, a video file or a camera (`rtsp://`, `http://`,
    /// `v4l2:N`), all inputs as one truck pass, and print it as JSON. Exits 0 with a code, 1
    /// when none could be accepted, 2 when an input cannot be read.
    ReadCode(ReadCodeArgs),
}

#[derive(Debug, clap::Args)]
struct ReadCodeArgs {
    /// Photos (PNG, JPEG, TIFF, BMP), video files or camera addresses.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Frames to take from each video or camera.
    #[arg(long, default_value_t = 10)]
    frames: usize,
    /// Take every N-th frame of a video or camera.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// OCR model set: tiny (the agent's default) or small.
    #[arg(long, default_value = "tiny")]
    models: String,
    /// Folder with the OCR models (default: where the agent finds them).
    #[arg(long)]
    models_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct CalibrateArgs {
    /// The phantom scan's sidecar; its description is `<stem>.phantom.json` beside it unless
    /// --phantom-description says otherwise.
    #[arg(long, conflicts_with = "cleared", required_unless_present = "cleared")]
    phantom: Option<PathBuf>,
    /// The phantom's description (`baylens.phantom/1`).
    #[arg(long, requires = "phantom")]
    phantom_description: Option<PathBuf>,
    /// A folder of scans the site's officers cleared, with their declarations in
    /// DIR/declarations/ (the layout of `scanner-sim generate` and `server dataset export`).
    #[arg(long)]
    cleared: Option<PathBuf>,
    /// The scanner's calibration to start from (with --cleared; default: the simulator's).
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Scans with anomalies from the same scanner and a truth.json (scanner-sim generate), to
    /// say what detection the fitted settings cost (with --cleared).
    #[arg(long, requires = "cleared")]
    anomalies: Option<PathBuf>,
    /// Largest share of cleared loads the site accepts to see flagged (with --cleared).
    #[arg(long, default_value_t = 0.01)]
    target_false_alarms: f64,
    /// The site's yellow-lane risk threshold: a load below it counts as not flagged (with
    /// --cleared; the agent's `[lanes] yellow`).
    #[arg(long, default_value_t = 0.35)]
    lane_yellow: f32,
    /// The site's red-lane risk threshold (with --cleared; the agent's `[lanes] red`).
    #[arg(long, default_value_t = 0.7)]
    lane_red: f32,
    /// Name of the scanner, for the file (with --phantom).
    #[arg(long)]
    scanner: Option<String>,
    /// Where to write the calibration file.
    #[arg(long)]
    out: PathBuf,
    /// Folder with the ONNX models (default: beside the binary, /usr/share/baylens/models, or
    /// a checkout's models/onnx).
    #[arg(long, env = "BAYLENS_MODELS_DIR")]
    models: Option<PathBuf>,
    /// A concealment model other than the shipped one (a site's adapted model, with its
    /// `.sha256` beside it), instead of --models.
    #[arg(long, conflicts_with = "models")]
    model: Option<PathBuf>,
    /// ONNX Runtime threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Debug, clap::Args)]
struct AnalyzeArgs {
    /// Sidecar files (`<scan_id>.json`; the images they name sit next to them), or DICOS DX
    /// files (`.dcs`/`.dcm`; the high- and low-energy files of one series make one scan).
    #[arg(required = true)]
    sidecars: Vec<PathBuf>,
    /// The bay a DICOS scan's id starts with (`<bay>-DX-...`).
    #[arg(long, default_value = "DICOS")]
    bay: String,
    /// The advance declaration (`baylens.declaration/1`) to verify the load against; without
    /// it, a missing declaration is itself a finding.
    #[arg(long)]
    declaration: Option<PathBuf>,
    /// Folder with the ONNX models (default: beside the binary, /usr/share/baylens/models, or
    /// a checkout's models/onnx).
    #[arg(long, env = "BAYLENS_MODELS_DIR")]
    models: Option<PathBuf>,
    /// A concealment model other than the shipped one (a site's adapted model, with its
    /// `.sha256` beside it), instead of --models.
    #[arg(long, conflicts_with = "models")]
    model: Option<PathBuf>,
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
    /// Write each report as a DICOS Threat Detection Report, DIR/<scan_id>.tdr.dcm.
    #[arg(long, value_name = "DIR")]
    tdr: Option<PathBuf>,
    /// Risk from which a load goes to the yellow lane (this site's threshold).
    #[arg(long, default_value_t = 0.35)]
    lane_yellow: f32,
    /// Risk from which a load goes to the red lane (this site's threshold).
    #[arg(long, default_value_t = 0.7)]
    lane_red: f32,
}

/// The concealment model: `model` (an adapted one, checked against its `.sha256`), else the
/// shipped one from `models` or where the agent finds it.
fn load_model(
    models: &Option<PathBuf>,
    model: &Option<PathBuf>,
    threads: usize,
) -> Result<baylens_models::ConcealmentModel> {
    if let Some(file) = model {
        return baylens_models::ConcealmentModel::load_beside_sha256(file, threads)
            .with_context(|| format!("loading the model {}", file.display()));
    }
    let dir = models
        .clone()
        .unwrap_or_else(baylens_models::share::models_dir);
    baylens_models::ConcealmentModel::load(&dir, threads)
        .with_context(|| format!("loading the model from {}", dir.display()))
}

fn analyze(args: &AnalyzeArgs) -> Result<bool> {
    use edge_agent::calibration::Calibration;
    let AnalyzeArgs {
        sidecars,
        bay,
        declaration,
        models,
        model,
        calibration,
        threads,
        json,
        overlay,
        tdr,
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
    let mut model = load_model(models, model, threads)?;
    let bay = match baylens_protocol::BayId::parse(bay) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("edge-agent analyze: --bay: {e}");
            return Ok(false);
        }
    };
    let mut all_ok = true;
    let mut out = Vec::new();
    for input in edge_agent::analyze::scan_inputs(sidecars) {
        let sidecar = input.label();
        let value = match edge_agent::analyze::analyze_input(
            &input,
            &bay,
            &mut model,
            &calibration,
            declaration.as_ref(),
            lanes,
            overlay.as_deref(),
        ) {
            Ok(v) => v,
            Err(e) => {
                all_ok = false;
                eprintln!("edge-agent analyze: {sidecar}: {e}");
                serde_json::json!({"sidecar": sidecar, "error": e.to_string()})
            }
        };
        if let (Some(dir), Ok(report)) = (
            tdr,
            serde_json::from_value::<baylens_protocol::ScanReport>(value["report"].clone()),
        ) {
            let path = dir.join(format!("{}.tdr.dcm", report.scan_id));
            let written = baylens_dicos::tdr(&report).and_then(|bytes| {
                std::fs::create_dir_all(dir)
                    .and_then(|()| std::fs::write(&path, bytes))
                    .map_err(|e| format!("{}: {e}", path.display()))
            });
            if let Err(e) = written {
                all_ok = false;
                eprintln!("edge-agent analyze: DICOS TDR: {e}");
            }
        }
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

/// `edge-agent calibrate`; `Ok(false)` (exit 2) with a message on bad input.
fn calibrate(args: &CalibrateArgs) -> Result<bool> {
    use edge_agent::commission;
    let fail = |e: String| {
        eprintln!("edge-agent calibrate: {e}");
        Ok(false)
    };
    if let Some(sidecar) = &args.phantom {
        let description = args
            .phantom_description
            .clone()
            .unwrap_or_else(|| commission::description_path(sidecar));
        let fit =
            match commission::calibrate_phantom(sidecar, &description, args.scanner.as_deref()) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
        println!(
            "phantom fit ({:.0} photons per pixel in air):",
            fit.photons_in_air
        );
        for r in &fit.residuals {
            println!("  {r}");
        }
        if let Err(e) = std::fs::write(&args.out, &fit.toml) {
            return fail(format!("cannot write {}: {e}", args.out.display()));
        }
        println!("wrote {}", args.out.display());
        return Ok(true);
    }
    let Some(dir) = &args.cleared else {
        return fail("give --phantom SIDECAR or --cleared DIR".into());
    };
    if !(args.target_false_alarms > 0.0 && args.target_false_alarms < 0.5) {
        return fail("--target-false-alarms must lie in (0, 0.5)".into());
    }
    let lanes = baylens_protocol::risk::LaneThresholds {
        yellow: args.lane_yellow,
        red: args.lane_red,
    };
    if let Err(e) = lanes.validate() {
        return fail(e.to_string());
    }
    let (calibration, text) = match &args.calibration {
        Some(p) => match edge_agent::calibration::Calibration::load_with_text(p) {
            Ok(ct) => ct,
            Err(e) => return fail(e),
        },
        None => (
            edge_agent::calibration::Calibration::scanner_sim(),
            edge_agent::calibration::SCANNER_SIM.to_owned(),
        ),
    };
    let mut model = load_model(&args.models, &args.model, args.threads)?;
    let load_all = |dir: &std::path::Path, model: &mut baylens_models::ConcealmentModel| {
        commission::cleared::analyse_folder(dir, model, &calibration)
    };
    let cleared = match load_all(dir, &mut model) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let fit = commission::fit::fit(&cleared, args.target_false_alarms, lanes);
    println!(
        "{} cleared loads, target at most {:.1} % flagged:",
        cleared.len(),
        args.target_false_alarms * 100.0
    );
    for l in &fit.lines {
        println!("  {l}");
    }
    println!(
        "  together: {:.1} % of the cleared loads would leave the green lane",
        fit.flagged_share * 100.0
    );
    if let Some(adir) = &args.anomalies {
        let (scans, truth) = match load_all(adir, &mut model)
            .and_then(|s| Ok((s, commission::cleared::truth_scenarios(adir)?)))
        {
            Ok(x) => x,
            Err(e) => return fail(e),
        };
        let default_index = commission::cleared::default_threshold_index();
        let before = commission::cleared::per_scenario(
            &scans,
            &truth,
            default_index,
            edge_agent::manifest::Tolerances::default(),
            lanes,
        );
        let after = commission::cleared::per_scenario(
            &scans,
            &truth,
            fit.threshold_index,
            fit.tolerances,
            lanes,
        );
        println!(
            "flagged per scenario in {} (defaults -> fitted):",
            adir.display()
        );
        for ((name, b, n), (_, a, _)) in before.iter().zip(&after) {
            println!("  {name:<12} {b:>4}/{n:<4} -> {a:>4}/{n}");
        }
    }
    let record = format!(
        "from {} cleared loads in {}, target {:.1} %; {:.1} % of them flagged after the fit",
        cleared.len(),
        dir.display(),
        args.target_false_alarms * 100.0,
        fit.flagged_share * 100.0
    );
    let out = commission::fit::with_site_sections(&text, &fit, &record);
    if let Err(e) = std::fs::write(&args.out, out) {
        return fail(format!("cannot write {}: {e}", args.out.display()));
    }
    println!("wrote {}", args.out.display());
    Ok(true)
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

/// A one-shot command whose reader goes away (`edge-agent analyze ... | head`) ends as a Unix
/// tool killed by SIGPIPE does (exit 141, nothing on stderr), instead of with a panic message:
/// Rust ignores SIGPIPE, so `println!` panics on the closed pipe. The agent itself (`run`) keeps
/// the default hook.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        quiet_on_closed_stdout();
    }
    // `analyze` prints its results on stdout, so its logs go to stderr.
    let to_stderr = matches!(
        cli.command,
        Command::Analyze(_) | Command::Calibrate(_) | Command::ReadCode(_)
    );
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
        Command::Calibrate(args) => {
            let ok = tokio::task::block_in_place(|| calibrate(&args))?;
            if !ok {
                std::process::exit(2);
            }
        }
        Command::ReadCode(args) => {
            let options = edge_agent::read_code::ReadCodeOptions {
                frames: args.frames.max(1),
                every: args.every.max(1),
                models_dir: args
                    .models_dir
                    .unwrap_or_else(|| edge_agent::config::ocr_models_dir(&args.models)),
                set: args.models,
            };
            let result = tokio::task::block_in_place(|| {
                edge_agent::read_code::read_code(&args.inputs, &options)
            });
            match result {
                Ok((value, accepted)) => {
                    println!("{}", serde_json::to_string_pretty(&value)?);
                    if !accepted {
                        std::process::exit(1);
                    }
                }
                Err(e) => {
                    eprintln!("edge-agent read-code: {e}");
                    std::process::exit(2);
                }
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
