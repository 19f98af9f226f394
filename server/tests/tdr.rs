//! A case's DICOS Threat Detection Report (`GET /api/v1/cases/{id}/tdr`), read back by an
//! independent reader, pydicom (pinned in scripts/test-requirements.txt): every attribute
//! BayLens writes, against the report it came from.

mod common;

use axum::http::StatusCode;
use baylens_server::AppState;
use baylens_server::auth::Role;
use common::{call, json};

#[tokio::test]
async fn a_cases_tdr_carries_its_findings_as_pydicom_reads_them() {
    let (_dir, store) = common::open("sqlite").await;
    let (_, agent) = store.add_agent("test", "a1", "bay-1").await.unwrap();
    let sup = common::user(&store, "sup", Role::Supervisor, None).await;
    let other = common::user(&store, "off2", Role::Officer, Some("bay-2")).await;
    let state = AppState::new(store);
    let mut report = common::report("r-1", "bay-1-1", "bay-1", 0.9);
    report["findings"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "kind": "mass_mismatch", "score": 0.8,
            "message": "the load weighs 31 % more than declared"
        }));
    let r = json(&state, "POST", "/api/v1/reports", Some(&agent), &report).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["case_id"].as_i64().unwrap();
    let path = format!("/api/v1/cases/{id}/tdr");
    let r = call(&state, "GET", &path, Some(&sup), None, Vec::new()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.headers["content-type"], "application/dicom");
    let tdr = common::python_reading("tdr_pydicom.py", "case.tdr.dcm", &r.bytes);

    assert_eq!(tdr["transfer_syntax"], "1.2.840.10008.1.2.1");
    assert_eq!(tdr["sop_class"], "1.2.840.10008.5.1.4.1.1.501.3");
    assert_eq!(tdr["media_sop_class"], tdr["sop_class"]);
    assert!(tdr["sop_instance"].as_str().unwrap().starts_with("2.25."));
    assert_eq!(tdr["dicos_version"], "V03");
    assert_eq!(tdr["meta_dicos_version"], "V03", "DICOS's (0002,0004)");
    assert_eq!(tdr["modality"], "TDR");
    assert_eq!(
        (&tdr["ooi_id"], &tdr["ooi_type"]),
        (
            &serde_json::json!("CSQU3054383"),
            &serde_json::json!("CARGO")
        )
    );
    assert_eq!(
        tdr["referenced_scans"][0],
        baylens_dicos::uid("scan", "bay-1-1")
    );
    assert_eq!(tdr["tdr_type"], "MACHINE");
    assert_eq!(tdr["alarm"], "ALARM", "a red-lane report is an alarm");
    assert_eq!(tdr["algorithm"][0], "BayLens concealment-v1");
    assert_eq!(tdr["algorithm"][1], "sha256:ab");
    assert_eq!(
        (tdr["total"].as_u64(), tdr["alarms"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(tdr["processing_ms"], 20.0);
    assert_eq!(tdr["itinerary"], "CSQU3054383", "the container code");
    let threats = tdr["threats"].as_array().unwrap();
    assert_eq!(threats.len(), 2);
    let (box_, mass) = (&threats[0], &threats[1]);
    assert_eq!(box_["id"], 1);
    assert_eq!(box_["category"], "CONTRABAND");
    assert!((box_["probability"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(box_["flag"], "THREAT");
    assert_eq!(
        box_["description"],
        "BayLens concealed_object: dense object inside textiles"
    );
    assert_eq!(
        box_["polygon"],
        serde_json::json!([10.0, 10.0, 0.0, 30.0, 30.0, 0.0]),
        "the finding's box, in scan pixels"
    );
    assert_eq!(box_["referenced_class"], "1.2.840.10008.5.1.4.1.1.501.2.1");
    assert_eq!(
        box_["referenced_instance"],
        baylens_dicos::uid("scan", "bay-1-1")
    );
    assert_eq!(mass["category"], "ANOMALY");
    assert!(mass["polygon"].is_null(), "a mass finding has no place");
    assert_eq!(box_["roi_base"], serde_json::json!([10.0, 10.0, 0.0]));
    assert_eq!(box_["roi_extents"], serde_json::json!([20.0, 20.0, 1.0]));
    assert_eq!(
        mass["roi_base"],
        serde_json::json!([0.0, 0.0, 0.0]),
        "the whole scan"
    );

    // The DICOS toolkit (pyDICOS) reads it too, with every attribute DICOS requires.
    let toolkit = common::python_reading("tdr_pydicos.py", "case.tdr.dcm", &r.bytes);
    assert_eq!(toolkit["alarm"], "ALARM");
    assert_eq!(toolkit["threats"].as_array().unwrap().len(), 2);
    assert_eq!(toolkit["threats"][1]["category"], "ANOMALY");
    assert!(
        mass["description"]
            .as_str()
            .unwrap()
            .starts_with("BayLens mass_mismatch: the load weighs 31 %")
    );

    // Only who may read the case may read its report.
    let r = call(&state, "GET", &path, Some(&other), None, Vec::new()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = call(
        &state,
        "GET",
        "/api/v1/cases/999/tdr",
        Some(&sup),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
