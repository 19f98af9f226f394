//! `scanner-sim`: writes synthetic scans and their declarations (`generate`) or feeds them to a
//! bay's drop folder at a steady rate (`feed`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use baylens_protocol::{BayId, ScanId};
use chrono::Utc;
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use scanner_sim::write::write_declaration;
use scanner_sim::{
    ContainerType, Generated, RenderOptions, ScannerProfile, ScenarioChoice, SceneOptions,
    SimOptions, generate, write_scan,
};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Synthetic X-ray cargo scans and declarations per the BayLens contracts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Sim {
    /// honest, concealment, compartment, undeclared, mismatch, false_empty, empty, or mixed.
    #[arg(long, default_value = "mixed")]
    scenario: String,
    /// Random seed; the same seed gives the same scans, bit for bit.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bay id written into the sidecars and declarations.
    #[arg(long, default_value = "BAY01")]
    bay: String,
    /// Container type: 20, 40, 40hc, or any.
    #[arg(long, default_value = "any")]
    container: String,
    /// Tractor and trailer in the image: yes, no, or any.
    #[arg(long, default_value = "any")]
    truck: String,
    /// The scanner: scanner-sim (the training portal), mobile-d, portal-b or gantry-c
    /// (scanner-sim/src/profile.rs).
    #[arg(long, default_value = "scanner-sim")]
    profile: String,
    /// Pixel pitch at the container's centre plane, mm, 4 to 15 (default: the profile's).
    #[arg(long)]
    pitch_mm: Option<f64>,
    /// Pitch between detector rows, mm, when it differs from --pitch-mm (default: the
    /// profile's).
    #[arg(long)]
    pitch_vertical_mm: Option<f64>,
    /// No dead channels or motion stretch.
    #[arg(long)]
    no_defects: bool,
}

impl Sim {
    fn options(&self) -> Result<(SimOptions, BayId)> {
        let scenario = ScenarioChoice::parse(&self.scenario).with_context(|| {
            format!(
                "unknown scenario {:?}; use honest, concealment, compartment, undeclared, \
                 mismatch, false_empty, empty or mixed",
                self.scenario
            )
        })?;
        let container = match self.container.as_str() {
            "any" => None,
            c => Some(
                ContainerType::parse(c)
                    .with_context(|| format!("unknown container {c:?}; use 20, 40, 40hc or any"))?,
            ),
        };
        let truck = match self.truck.as_str() {
            "any" => None,
            "yes" => Some(true),
            "no" => Some(false),
            t => bail!("--truck must be yes, no or any, not {t:?}"),
        };
        let options = SimOptions {
            scenario,
            scene: SceneOptions { container, truck },
            render: self.render()?,
        };
        Ok((options, BayId::parse(&self.bay)?))
    }
}

impl Sim {
    /// Profile, pitch and defects.
    fn render(&self) -> Result<RenderOptions> {
        let profile = ScannerProfile::by_name(&self.profile).with_context(|| {
            format!(
                "unknown scanner profile {:?}; use one of {}",
                self.profile,
                ScannerProfile::names()
            )
        })?;
        let mut render = RenderOptions::for_profile(profile);
        if let Some(p) = self.pitch_mm {
            render.pitch_mm = p;
            render.pitch_vertical_mm = None;
        }
        if let Some(p) = self.pitch_vertical_mm {
            render.pitch_vertical_mm = Some(p);
        }
        for (flag, p) in [
            ("--pitch-mm", Some(render.pitch_mm)),
            ("--pitch-vertical-mm", render.pitch_vertical_mm),
        ] {
            if let Some(p) = p
                && !(p.is_finite() && (4.0..=15.0).contains(&p))
            {
                bail!("{flag} must be between 4 and 15 mm, got {p}");
            }
        }
        render.defects = !self.no_defects;
        Ok(render)
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write COUNT scans into OUT, their declarations into OUT/declarations, and truth.json.
    Generate {
        #[command(flatten)]
        sim: Sim,
        /// Number of scans.
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Also write the truth masks (`<scan_id>.mask.png`), for training.
        #[arg(long)]
        masks: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Capture time of the first scan (RFC 3339; later scans follow a second apart).
        /// Defaults to now; pass it to make the sidecars and declarations bit-identical too.
        #[arg(long)]
        captured_at: Option<chrono::DateTime<Utc>>,
    },
    /// Drop a scan into DROP every INTERVAL seconds, as a scanner would.
    Feed {
        #[command(flatten)]
        sim: Sim,
        /// The agent's drop folder.
        #[arg(long, env = "BAYLENS_DROP_DIR")]
        drop: PathBuf,
        /// Seconds between scans.
        #[arg(long, default_value_t = 4.0)]
        interval: f64,
        /// Stop after this many scans (0: run until interrupted).
        #[arg(long, default_value_t = 0)]
        count: u64,
        /// Also write each scan's declaration here, before its scan is dropped (for lodging).
        #[arg(long)]
        declarations: Option<PathBuf>,
        /// Write declarations this many scans ahead of their scans, as traders lodge them
        /// before arrival (TFA Art. 7), so a bay has synced them when the truck arrives.
        #[arg(long, default_value_t = 0)]
        lead: u64,
        /// Also serve a simulated IP camera (MJPEG over HTTP) at this address, showing the side
        /// of the container last dropped: http://ADDR/stream.mjpg.
        #[arg(long)]
        camera: Option<std::net::SocketAddr>,
    },
    /// Write a scan of the calibration phantom (a step wedge of polyethylene, aluminium, steel
    /// and lead) as OUT/<scan_id>.json with its images, and its description as
    /// OUT/<scan_id>.phantom.json (`baylens.phantom/1`), for `edge-agent calibrate --phantom`.
    Phantom {
        #[command(flatten)]
        sim: Sim,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Threat image projection: insert threats from the simulator's library (drug bricks,
    /// cigarette cases, weapons, ammunition, false walls, floors and ceilings) into a folder
    /// of cleared scans, for the scanner PROFILE; writes the projected scans with their masks,
    /// truth.json and before/after pictures (OUT/examples) into OUT.
    Tip {
        /// Folder of cleared scans (sidecars and both images).
        #[arg(long)]
        cleared: PathBuf,
        /// The scanner the cleared scans come from (scanner-sim/src/profile.rs).
        #[arg(long, default_value = "scanner-sim")]
        profile: String,
        /// A real scanner: its physics fitted from its phantom scan (the sidecar, with
        /// `<scan_id>.phantom.json` beside it), instead of --profile.
        #[arg(long, conflicts_with = "profile")]
        phantom: Option<PathBuf>,
        /// Threat kinds, comma-separated, projected in turn (default: all).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// Projected scans to write.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Random seed; the same seed and folder give the same scans.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Before/after pictures to write.
        #[arg(long, default_value_t = 4)]
        examples: usize,
    },
    /// Serve a simulated IP camera (MJPEG over HTTP) showing one container:
    /// http://LISTEN/stream.mjpg and /snapshot.jpg.
    Camera {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8554")]
        listen: std::net::SocketAddr,
        /// The container code painted on the container (none: the empty bay).
        #[arg(long)]
        code: Option<String>,
        /// Container type: 20, 40 or 40hc.
        #[arg(long, default_value = "40")]
        container: String,
        /// Frames a second.
        #[arg(long, default_value_t = 5.0)]
        fps: f64,
        /// Fixes the camera pose.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// The truth record of one scan, as written into truth.json.
fn truth_record(g: &Generated) -> serde_json::Value {
    let concealed_boxes: Vec<[u32; 4]> = g
        .truth
        .items
        .iter()
        .filter(|i| i.concealed)
        .filter_map(|i| i.box_px)
        .collect();
    serde_json::json!({
        "scan_id": g.meta.scan_id,
        "scenario": g.truth.scenario,
        "variant": g.truth.variant,
        "container": g.truth.container,
        "truck": g.truth.truck,
        "container_code": g.meta.container_code,
        "declaration_ref": g.declaration.reference,
        "width": g.scan.width,
        "height": g.scan.height,
        "pixel_pitch_mm": g.scan.pitch_mm,
        "pixel_pitch_vertical_mm": g.scan.pitch_vertical_mm,
        "cargo_mass_kg": g.truth.cargo_mass_kg,
        "declared_mass_kg": g.declaration.gross_mass_kg,
        "declared_empty": g.truth.declared_empty,
        "anomalies": g.truth.anomalies,
        "items": g.truth.items,
        "concealed_boxes": concealed_boxes,
        "concealed_pixels": g.scan.concealment_mask.iter().filter(|&&m| m == 1).count(),
        "defects": g.scan.defects,
    })
}

fn generate_run(
    sim: &Sim,
    count: u64,
    out: &Path,
    masks: bool,
    quiet: bool,
    captured_at: chrono::DateTime<Utc>,
) -> Result<()> {
    let (options, bay) = sim.options()?;
    let seed = sim.seed;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let declarations = out.join("declarations");
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(count).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} scans, {per_sec}, eta {eta}")
                .expect("valid template"),
        )
    };
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let truths = (0..count)
        .into_par_iter()
        .map(|i| -> Result<serde_json::Value> {
            let scan_id = ScanId::parse(&format!("{bay}-s{seed}-{i:06}"))?;
            let at = captured_at + chrono::Duration::seconds(i as i64);
            let g = generate(options, seed, i, scan_id.clone(), bay.clone(), at);
            write_scan(out, &g.scan, &g.meta, masks)
                .with_context(|| format!("writing scan {scan_id} into {}", out.display()))?;
            write_declaration(&declarations, &g.declaration)
                .with_context(|| format!("writing the declaration of {scan_id}"))?;
            done.fetch_add(1, Ordering::Relaxed);
            bar.inc(1);
            Ok(truth_record(&g))
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    let truth_path = out.join("truth.json");
    scanner_sim::write::write_atomic(out, "truth.json", &serde_json::to_vec_pretty(&truths)?)
        .with_context(|| format!("writing {}", truth_path.display()))?;
    println!(
        "wrote {} scans, their declarations and {} in {:.1} s",
        done.load(Ordering::Relaxed),
        truth_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `scanner-sim phantom`: the step wedge's scan and description.
fn write_phantom(sim: &Sim, out: &Path) -> Result<()> {
    let render = sim.render()?;
    let bay = BayId::parse(&sim.bay)?;
    let scan_id = ScanId::parse(&format!(
        "{bay}-phantom-{}-s{}",
        render.profile.name, sim.seed
    ))?;
    let (scan, description) =
        scanner_sim::phantom::phantom(render, &mut scanner_sim::scan_rng(sim.seed, 0));
    let meta = scanner_sim::write::ScanMeta {
        scan_id: scan_id.clone(),
        bay,
        captured_at: Utc::now(),
        container_code: None,
        declaration_ref: None,
    };
    let files = write_scan(out, &scan, &meta, false)
        .with_context(|| format!("writing the phantom scan into {}", out.display()))?;
    scanner_sim::write::write_atomic(
        out,
        &format!("{scan_id}.phantom.json"),
        &serde_json::to_vec_pretty(&description)?,
    )
    .with_context(|| format!("writing the phantom description into {}", out.display()))?;
    println!(
        "wrote the phantom scan {} ({} steps, profile {}) and {scan_id}.phantom.json",
        files.sidecar.display(),
        description.steps.len(),
        render.profile.name
    );
    Ok(())
}

/// `scanner-sim tip`: checks the arguments, runs, and says what it wrote.
fn tip(
    cleared: PathBuf,
    profile: ScannerProfile,
    kinds: &[String],
    count: usize,
    seed: u64,
    out: PathBuf,
    examples: usize,
) -> Result<()> {
    use scanner_sim::tip::library::ThreatKind;
    let kinds = if kinds.is_empty() {
        ThreatKind::ALL.to_vec()
    } else {
        kinds
            .iter()
            .map(|k| {
                ThreatKind::parse(k).with_context(|| {
                    let all: Vec<&str> = ThreatKind::ALL.iter().map(|k| k.name()).collect();
                    format!("unknown threat kind {k:?}; use {}", all.join(", "))
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    let opts = scanner_sim::tip::run::TipOptions {
        cleared,
        profile,
        kinds,
        count,
        seed,
        out,
        examples,
    };
    let summary = scanner_sim::tip::run::run(&opts).map_err(anyhow::Error::msg)?;
    let written: Vec<String> = summary
        .written
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!(
        "projected into {} cleared scans: {}; {} found no room; wrote {}",
        summary.cleared,
        written.join(", "),
        summary.no_room,
        opts.out.display()
    );
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate {
            sim,
            count,
            out,
            masks,
            quiet,
            captured_at,
        } => generate_run(
            &sim,
            count,
            &out,
            masks,
            quiet,
            captured_at.unwrap_or_else(Utc::now),
        )?,
        Command::Feed {
            sim,
            drop,
            interval,
            count,
            declarations,
            lead,
            camera,
        } => {
            let (options, bay) = sim.options()?;
            let ipcam = match camera {
                Some(addr) => {
                    let listener = std::net::TcpListener::bind(addr)
                        .with_context(|| format!("binding the simulated camera to {addr}"))?;
                    let cam = scanner_sim::ipcam::IpCamera::new(1280, 720);
                    let served = cam.clone();
                    std::thread::spawn(move || scanner_sim::ipcam::serve(listener, served, 5.0));
                    println!("scanner-sim: camera on http://{addr}/stream.mjpg");
                    Some(cam)
                }
                None => None,
            };
            if !(interval.is_finite() && interval >= 0.0) {
                bail!("--interval must be a non-negative number of seconds");
            }
            let run = Utc::now().format("%Y%m%dT%H%M%S");
            // Scans generated (and declared) but not dropped yet.
            let mut ahead = std::collections::VecDeque::new();
            let mut next = 0;
            let mut i = 0;
            while count == 0 || i < count {
                while next <= i + lead && (count == 0 || next < count) {
                    let scan_id = ScanId::parse(&format!("{bay}-{run}-{next:05}"))?;
                    let g = generate(options, sim.seed, next, scan_id, bay.clone(), Utc::now());
                    if let Some(dir) = &declarations {
                        write_declaration(dir, &g.declaration).with_context(|| {
                            format!("writing a declaration into {}", dir.display())
                        })?;
                    }
                    ahead.push_back(g);
                    next += 1;
                }
                let Some(mut g) = ahead.pop_front() else {
                    break;
                };
                let scan_id = g.meta.scan_id.clone();
                // Captured now, when it is dropped.
                g.meta.captured_at = Utc::now();
                if let (Some(cam), Some(code)) = (&ipcam, &g.meta.container_code) {
                    // The truck is in the bay: the camera sees it as it is scanned.
                    cam.show(Some((code, g.truth.container, i)));
                }
                write_scan(&drop, &g.scan, &g.meta, false)
                    .with_context(|| format!("writing scan into {}", drop.display()))?;
                let code = g
                    .meta
                    .container_code
                    .map(|c| c.to_string())
                    .unwrap_or_default();
                println!(
                    "scanner-sim: dropped {scan_id} ({code}, {})",
                    g.truth.scenario.name()
                );
                i += 1;
                std::thread::sleep(Duration::from_secs_f64(interval));
            }
        }
        Command::Phantom { sim, out } => write_phantom(&sim, &out)?,
        Command::Tip {
            cleared,
            profile,
            phantom,
            kinds,
            count,
            seed,
            out,
            examples,
        } => {
            let profile = match phantom {
                Some(sidecar) => {
                    let f = scanner_sim::tip::fit::fit(&sidecar).map_err(anyhow::Error::msg)?;
                    let p = f.profile;
                    println!(
                        "phantom fit over {} steps: hardening {:.4} (high), {:.4} (low); low/high \
                         ratio scale {:.3}, exponent {:.2}; photons {:.0} (high), {:.0} (low); \
                         rms residual {:.3}, {:.3}",
                        f.steps,
                        p.hardening_high,
                        p.hardening_low,
                        p.ratio_scale,
                        p.ratio_exponent,
                        p.high.photons_in_air,
                        p.low.photons_in_air,
                        f.rms[0],
                        f.rms[1]
                    );
                    p
                }
                None => ScannerProfile::by_name(&profile).with_context(|| {
                    format!(
                        "unknown scanner profile {profile:?}; use one of {}",
                        ScannerProfile::names()
                    )
                })?,
            };
            tip(cleared, profile, &kinds, count, seed, out, examples)?
        }

        Command::Camera {
            listen,
            code,
            container,
            fps,
            seed,
        } => {
            let kind = scanner_sim::ContainerType::parse(&container)
                .with_context(|| format!("--container {container:?}: use 20, 40 or 40hc"))?;
            let code = code
                .map(|c| baylens_protocol::ContainerCode::parse(&c))
                .transpose()?;
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("binding the simulated camera to {listen}"))?;
            let cam = scanner_sim::ipcam::IpCamera::new(1280, 720);
            cam.show(code.as_ref().map(|c| (c, kind, seed)));
            println!("scanner-sim: camera on http://{listen}/stream.mjpg");
            scanner_sim::ipcam::serve(listener, cam, fps);
        }
    }
    Ok(())
}
