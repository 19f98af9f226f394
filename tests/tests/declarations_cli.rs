//! `server declarations import FILE`: batch loads in each format a national system sends
//! (BayLens JSON, WCO DEC-DMS XML, UN/EDIFACT CUSCAR), told apart by content, all or nothing,
//! through the real binary.

mod support;

use std::path::Path;
use std::process::Command;

use support::workspace_binary;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../server/tests/fixtures")
            .join(name),
    )
    .unwrap()
}

#[test]
fn each_format_imports_from_the_command_line_and_a_bad_file_lodges_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = workspace_binary("server", "baylens-server");
    let run = |file: &Path| {
        let out = Command::new(&server)
            .args(["declarations", "import"])
            .arg(file)
            .env("BAYLENS_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), said)
    };
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    let json = serde_json::json!([{
        "contract": "baylens.declaration/1", "reference": "26KE-CLI-1",
        "declarant": {"name": "Coast Imports Ltd", "id": "KE0009999999"},
        "office": "KEMBA01", "container_code": "TGHU7700174",
        "expected_arrival": tomorrow.to_rfc3339(), "gross_mass_kg": 1000.0,
        "items": [{"hs_code": "0901.11", "description": "Green coffee beans", "packages": 10, "gross_mass_kg": 1000.0}]
    }]);
    let files = [
        ("batch.json", json.to_string()),
        (
            "dec.xml",
            fixture("dec-dms.xml")
                .replace("{{ARRIVAL}}", &tomorrow.format("%Y%m%d%H%M%SZ").to_string())
                .replace(
                    "{{ISSUED}}",
                    &chrono::Utc::now().format("%Y%m%d%H%M%SZ").to_string(),
                ),
        ),
        (
            "cargo.edi",
            fixture("cuscar.edi")
                .replace("{{ARRIVAL}}", &tomorrow.format("%Y%m%d%H%M").to_string()),
        ),
    ];
    for (name, body, lodged, format) in [
        (files[0].0, &files[0].1, 1, "Json"),
        (files[1].0, &files[1].1, 1, "DecDms"),
        (files[2].0, &files[2].1, 2, "Cuscar"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let (ok, said) = run(&path);
        assert!(ok, "{name}: {said}");
        assert!(
            said.contains(&format!("{lodged} lodged, 0 unchanged ({format}")),
            "{name}: {said}"
        );
        // Again: nothing new.
        let (ok, said) = run(&path);
        assert!(
            ok && said.contains(&format!("0 lodged, {lodged} unchanged")),
            "{said}"
        );
    }
    // One bad declaration in the batch: nothing lodged, the problem named.
    let mut batch = json.clone();
    batch[0]["reference"] = "26KE-CLI-2".into();
    let mut bad = batch[0].clone();
    bad["reference"] = "26KE-CLI-3".into();
    bad["office"] = "?".into();
    batch.as_array_mut().unwrap().push(bad);
    let path = dir.path().join("bad.json");
    std::fs::write(&path, batch.to_string()).unwrap();
    let (ok, said) = run(&path);
    assert!(!ok, "{said}");
    assert!(
        said.contains("nothing lodged") && said.contains("[1] invalid office"),
        "{said}"
    );
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "hello").unwrap();
    let (ok, said) = run(&path);
    assert!(
        !ok && said.contains("neither a JSON array, XML nor EDIFACT"),
        "{said}"
    );
}
