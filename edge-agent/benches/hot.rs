//! criterion benches of the bay pipeline's hot pure functions, on one simulated 40' container on
//! its truck (about 2,040 x 490 pixels, the largest scan a bay sees):
//!
//! ```sh
//! cargo bench -p edge-agent --bench hot
//! ```
//!
//! Figures go into BENCHMARKS.md; nothing here is a test.

use std::hint::black_box;

use baylens_protocol::{BayId, ContainerCode, Declaration, ScanId, ScanSidecar};
use criterion::{Criterion, criterion_group, criterion_main};
use edge_agent::calibration::{Calibration, attenuation, box_mean, estimate_cargo};
use edge_agent::expected;
use edge_agent::ingest::decode::decode_image16;
use edge_agent::material_map::classify;
use edge_agent::overlay;
use scanner_sim::geometry::ContainerType;
use scanner_sim::render::{HIGH, LOW};
use scanner_sim::write::write_scan;
use scanner_sim::{Scenario, ScenarioChoice, SimOptions, generate};

fn scan() -> scanner_sim::Generated {
    let mut options = SimOptions::new(ScenarioChoice::Fixed(Scenario::Honest));
    options.scene.container = Some(ContainerType::Forty);
    options.scene.truck = Some(true);
    generate(
        options,
        5,
        0,
        ScanId::parse("BAY01-bench-0").unwrap(),
        BayId::parse("BAY01").unwrap(),
        chrono::Utc::now(),
    )
}

fn benches(c: &mut Criterion) {
    let g = scan();
    let (w, h) = (g.scan.width as usize, g.scan.height as usize);
    let cal = Calibration::scanner_sim();
    let ah = attenuation(&g.scan.high, HIGH.air, HIGH.dark);
    let al = attenuation(&g.scan.low, LOW.air, LOW.dark);
    let pitch = [g.scan.pitch_mm, g.scan.pitch_vertical_mm];
    let cargo = estimate_cargo(&ah, &al, w, h, pitch, &cal).expect("a container");
    let dir = tempfile::tempdir().unwrap();
    let files = write_scan(dir.path(), &g.scan, &g.meta, false).unwrap();
    let png = std::fs::read(&files.high).unwrap();
    let sidecar = std::fs::read(&files.sidecar).unwrap();
    let declaration = serde_json::to_string(&g.declaration).unwrap();
    println!("scan: {w} x {h} pixels");

    c.bench_function("calibration/attenuation (one energy)", |b| {
        b.iter(|| attenuation(black_box(&g.scan.high), HIGH.air, HIGH.dark))
    });
    c.bench_function("calibration/box_mean 7x7", |b| {
        b.iter(|| box_mean(black_box(&ah), w, h, 3))
    });
    c.bench_function("calibration/estimate_cargo (both energies)", |b| {
        b.iter(|| estimate_cargo(black_box(&ah), black_box(&al), w, h, pitch, &cal))
    });
    c.bench_function("material_map/classify 1M pixels", |b| {
        let inputs: Vec<(f64, f64, f64)> = (0..1_000_000)
            .map(|i| {
                let n = 0.2 + (i % 997) as f64 / 200.0;
                (n, n * (1.1 + (i % 13) as f64 / 100.0), n + 0.5)
            })
            .collect();
        b.iter(|| {
            inputs
                .iter()
                .map(|&(nh, nl, t)| classify(nh, nl, t, &cal) as u32)
                .sum::<u32>()
        })
    });
    c.bench_function("expected/blocks", |b| {
        b.iter(|| expected::blocks(black_box(&cargo), w, pitch))
    });
    c.bench_function("overlay/render_scan", |b| {
        b.iter(|| {
            overlay::render_scan(
                black_box(&g.scan.high),
                w as u32,
                h as u32,
                HIGH.air,
                HIGH.dark,
            )
            .unwrap()
        })
    });
    c.bench_function("overlay/render_material", |b| {
        b.iter(|| overlay::render_material(black_box(&cargo), w as u32, h as u32).unwrap())
    });
    c.bench_function("iso6346/parse", |b| {
        b.iter(|| ContainerCode::parse(black_box("CSQU 305438 3")).unwrap())
    });
    c.bench_function("ingest/sidecar from_json", |b| {
        b.iter(|| ScanSidecar::from_json(black_box(&sidecar), chrono::Utc::now()).unwrap())
    });
    c.bench_function("ingest/declaration from_json", |b| {
        b.iter(|| Declaration::from_json(black_box(&declaration), chrono::Utc::now()).unwrap())
    });
    c.bench_function("ingest/decode 16-bit PNG", |b| {
        b.iter(|| decode_image16("high.png", black_box(&png)).unwrap())
    });
}

criterion_group! {
    name = hot;
    config = Criterion::default().sample_size(20);
    targets = benches
}
criterion_main!(hot);
