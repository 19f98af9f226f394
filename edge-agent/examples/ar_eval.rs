//! AR registration on simulated bay camera views: reprojection error against the known pose.
//!
//! ```text
//! cargo run --release -p edge-agent --example ar_eval -- [--count 100] [--seed 7]
//! ```
//!
//! Each view is a side view from `scanner_sim::camera` at 1280 x 720 (random pose, light, blur,
//! dirt, occluding posts), of a 20', 40' or 40' high-cube container. The error is the distance
//! between where the estimated and the true homographies put a 9 x 5 grid over the face, as a
//! share of the face's width in the frame (target: under 2 %).

use std::time::Instant;

use baylens_protocol::ContainerCode;
use edge_agent::camera::{register, to_bgr_mat};
use rand::Rng;
use scanner_sim::ContainerType;
use scanner_sim::camera::{self, CameraOptions, View};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let count: u64 = arg("--count").map_or(Ok(100), |v| v.parse())?;
    let seed: u64 = arg("--seed").map_or(Ok(7), |v| v.parse())?;
    let verbose = args.iter().any(|a| a == "--verbose");
    let mut errors = Vec::new();
    let mut missed = 0;
    let mut seconds = Vec::new();
    let only: Option<u64> = arg("--only").map(|v| v.parse()).transpose()?;
    for i in 0..count {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let mut rng = scanner_sim::scan_rng(seed, i);
        let code = ContainerCode::from_parts("MSK", 'U', rng.random_range(0..1_000_000))?;
        let kind = [
            ContainerType::Twenty,
            ContainerType::Forty,
            ContainerType::FortyHighCube,
        ][rng.random_range(0..3)];
        let f = camera::render(View::Side, kind, &code, &CameraOptions::default(), &mut rng);
        let bgr = to_bgr_mat(f.image.as_raw(), f.image.width(), f.image.height())?;
        let t = Instant::now();
        let found = register::register(&bgr, f.face_m)?;
        seconds.push(t.elapsed().as_secs_f64());
        match found {
            Some(r) => {
                let (mean, max, width) =
                    register::reprojection_error(&r.homography, &f.homography, f.face_m);
                if let Some(dir) = arg("--dump") {
                    std::fs::create_dir_all(&dir)?;
                    let mut img = f.image.clone();
                    for c in r.corners.iter().chain(f.corners.iter()) {
                        for dx in -4i64..=4 {
                            for dy in -4i64..=4 {
                                let (x, y) = (c[0] as i64 + dx, c[1] as i64 + dy);
                                if x >= 0
                                    && y >= 0
                                    && (x as u32) < img.width()
                                    && (y as u32) < img.height()
                                {
                                    img.put_pixel(x as u32, y as u32, image::Rgb([255, 0, 255]));
                                }
                            }
                        }
                    }
                    img.save(format!("{dir}/{i:03}.png"))?;
                }
                errors.push((100.0 * mean / width, 100.0 * max / width));
                if verbose {
                    println!(
                        "{i}: mean {:.2} % max {:.2} % (inliers {}/{}){}",
                        100.0 * mean / width,
                        100.0 * max / width,
                        r.inliers,
                        r.points,
                        if f.occluded { " occluded" } else { "" }
                    );
                }
            }
            None => {
                missed += 1;
                if verbose {
                    println!(
                        "{i}: not found{}",
                        if f.occluded { " (occluded)" } else { "" }
                    );
                }
                if let Some(dir) = arg("--failures") {
                    std::fs::create_dir_all(&dir)?;
                    f.image.save(format!("{dir}/{i:03}.png"))?;
                }
            }
        }
    }
    let mut means: Vec<f64> = errors.iter().map(|e| e.0).collect();
    let mut maxes: Vec<f64> = errors.iter().map(|e| e.1).collect();
    means.sort_by(f64::total_cmp);
    maxes.sort_by(f64::total_cmp);
    seconds.sort_by(f64::total_cmp);
    let pct = |v: &[f64], q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "views {count}: registered {}, not found {missed}",
        errors.len()
    );
    println!(
        "reprojection error (share of container width): mean over grid: median {:.2} %, p95 {:.2} %, worst {:.2} %; largest grid point: median {:.2} %, p95 {:.2} %",
        pct(&means, 0.5),
        pct(&means, 0.95),
        pct(&means, 1.0),
        pct(&maxes, 0.5),
        pct(&maxes, 0.95)
    );
    println!(
        "views under 2 %: {} of {}",
        means.iter().filter(|&&m| m < 2.0).count(),
        count
    );
    println!(
        "registration time: median {:.1} ms",
        1e3 * pct(&seconds, 0.5)
    );
    Ok(())
}
