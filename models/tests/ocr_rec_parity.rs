//! BayLens's container-code recogniser (`models/onnx/ocr/baylens-code-rec.onnx`) in Rust against
//! PyTorch: the golden crops and values written by `models/train/train_ocr_rec.py` (four
//! straightened lines and two stacked codes from its validation crops, `tests/fixtures/`), run
//! through the reader's own input path and ONNX Runtime.

use baylens_models::ocr::{self, OcrModel, OcrOptions, ctc_decode};

fn model() -> OcrModel {
    let (det, rec) = ocr::checkout_model_paths("code").unwrap();
    OcrModel::load(&det, &rec, OcrOptions::default()).unwrap()
}

#[test]
fn the_recogniser_agrees_with_pytorch_on_the_golden_crops() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let golden: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/baylens-code-rec.golden.json")).unwrap(),
    )
    .unwrap();
    let sheet = image::open(format!("{dir}/baylens-code-rec.golden.png"))
        .unwrap()
        .into_rgb8();
    let mut model = model();
    let classes = model.classes().to_vec();
    let cases = golden["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for (k, case) in cases.iter().enumerate() {
        let width = case["width"].as_u64().unwrap() as u32;
        let mut pixels = Vec::with_capacity(width as usize * 48 * 3);
        for y in 0..48 {
            for x in 0..width {
                let p = sheet.get_pixel(x, k as u32 * 48 + y);
                pixels.extend(p.0.map(f32::from));
            }
        }
        let (steps, probs) = model.line_probabilities(&pixels).unwrap();
        let best: Vec<f64> = case["best"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(steps, best.len(), "case {k}: steps");
        for (t, want) in best.iter().enumerate() {
            let row = &probs[t * classes.len()..(t + 1) * classes.len()];
            let got = row.iter().copied().fold(0.0f32, f32::max);
            assert!(
                (f64::from(got) - want).abs() < 1e-4,
                "case {k} step {t}: {got} against {want}"
            );
        }
        let (text, _) = ctc_decode(&probs, steps, &classes);
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(text, case["text"].as_str().unwrap(), "case {k}");
    }
}

#[test]
fn the_recogniser_reads_a_clear_door_view() {
    use baylens_protocol::ContainerCode;
    use scanner_sim::ContainerType;
    use scanner_sim::camera::{self, CameraOptions, View};
    let code = ContainerCode::parse("MSKU9070323").unwrap();
    let opts = CameraOptions {
        difficulty: 0.0,
        vertical_share: 0.0,
        ..CameraOptions::default()
    };
    let mut rng = scanner_sim::scan_rng(3, 0);
    let frame = camera::render(View::Door, ContainerType::Forty, &code, &opts, &mut rng);
    let img = ocr::Rgb {
        data: frame.image.as_raw(),
        width: frame.image.width() as usize,
        height: frame.image.height() as usize,
    };
    let (reading, lines) = model().read_code(img).unwrap();
    assert_eq!(reading.code.as_ref(), Some(&code), "{reading:?} {lines:?}");
    assert!(reading.check.accepted());
}
