//! `edge-agent read-code` through the real binary and the committed OCR models: a photo, a
//! video file (written with OpenCV) and the simulated IP camera, each read as one pass; bad
//! input exits 2 naming it.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use baylens_protocol::ContainerCode;
use rand::SeedableRng;
use scanner_sim::ContainerType;
use scanner_sim::camera::{self, CameraOptions, View};

fn read_code(args: &[&str]) -> (Output, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_edge-agent"))
        .arg("read-code")
        .args(args)
        .args(["--models-dir"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/onnx/ocr"))
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, v)
}

/// Side-view frames of one container, each from its own pose, at `difficulty`.
fn frames(code: &ContainerCode, n: usize, difficulty: f64) -> Vec<image::RgbImage> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let opts = CameraOptions {
        difficulty,
        vertical_share: 0.0,
        ..CameraOptions::default()
    };
    let face = camera::paint(View::Side, ContainerType::Forty, code, &opts, &mut rng);
    (0..n).map(|_| face.frame(&opts, &mut rng).image).collect()
}

#[test]
fn a_photo_is_read_with_its_check_digit_size_type_and_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let code = ContainerCode::parse("CSQU3054383").unwrap();
    let photo = dir.path().join("gate.png");
    frames(&code, 1, 0.0)[0].save(&photo).unwrap();
    let (out, v) = read_code(&[photo.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}: {v}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["code"], "CSQU3054383");
    assert!(["valid", "corrected"].contains(&v["check"].as_str().unwrap()));
    assert_eq!(v["size_type"]["code"], "42G1");
    assert_eq!(v["frames_used"], 1);
    let lines = v["frames"][0]["lines"].as_array().unwrap();
    assert!(
        lines.iter().any(|l| l["text"]
            .as_str()
            .unwrap()
            .replace(' ', "")
            .contains("CSQU")),
        "{lines:?}"
    );
    assert_eq!(lines[0]["box"].as_array().unwrap().len(), 4);
}

#[test]
fn a_video_file_is_read_as_one_pass() {
    use opencv::core::Size;
    use opencv::prelude::*;
    use opencv::videoio::VideoWriter;
    let dir = tempfile::tempdir().unwrap();
    let code = ContainerCode::parse("MSKU9070323").unwrap();
    let video = dir.path().join("gate.avi");
    let fourcc = VideoWriter::fourcc('M', 'J', 'P', 'G').unwrap();
    let mut writer = VideoWriter::new(
        video.to_str().unwrap(),
        fourcc,
        5.0,
        Size::new(1280, 720),
        true,
    )
    .unwrap();
    for f in frames(&code, 6, 0.3) {
        let mat = edge_agent::camera::to_bgr_mat(f.as_raw(), f.width(), f.height()).unwrap();
        writer.write(&mat).unwrap();
    }
    writer.release().unwrap();
    let (out, v) = read_code(&[video.to_str().unwrap(), "--frames", "4"]);
    assert!(
        out.status.success(),
        "{}: {v}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["code"], "MSKU9070323");
    assert_eq!(v["frames_used"], 4);
    assert!(v["frames_agreeing"].as_u64().unwrap() >= 2, "{v}");
}

#[test]
fn the_simulated_camera_is_read_over_http() {
    let cam = scanner_sim::ipcam::IpCamera::new(1280, 720);
    let code = ContainerCode::parse("TGHU1234567").unwrap();
    cam.show(Some((&code, ContainerType::Forty, 3)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || scanner_sim::ipcam::serve_until(listener, cam, 8.0, &flag));
    let url = format!("http://127.0.0.1:{port}/stream.mjpg");
    let (out, v) = read_code(&[&url, "--frames", "3"]);
    stop.store(true, Ordering::SeqCst);
    assert!(
        out.status.success(),
        "{}: {v}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["code"], "TGHU1234567");
    assert_eq!(v["frames_used"], 3);
}

#[test]
fn input_that_cannot_be_read_exits_2_naming_it_and_no_code_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let (out, _) = read_code(&[bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.png") && err.contains("not a readable image"),
        "{err}"
    );
    let (out, _) = read_code(&["/nonexistent/gate.jpg"]);
    assert_eq!(out.status.code(), Some(2));

    // A readable photo with no container in it: unreadable, with nothing guessed.
    let blank = dir.path().join("blank.png");
    image::RgbImage::from_pixel(640, 360, image::Rgb([90, 90, 90]))
        .save(&blank)
        .unwrap();
    let (out, v) = read_code(&[blank.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["code"], serde_json::Value::Null);
    assert_eq!(v["check"], "not_found");
}
