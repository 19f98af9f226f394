//! The Debian packages (`scripts/package.sh`): they build, carry what a bay PC and a server
//! need, their systemd units pass systemd's checks (offline: no systemd runs here), and the
//! unpacked binaries work from any working directory: the agent analyses a scan in a temporary
//! folder with the ONNX Runtime and models the package brought, and the server starts.

mod support;

use std::path::Path;
use std::process::Command;

use edge_agent::AgentConfig;
use scanner_sim::Scenario;
use support::*;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packages_install_and_work_from_anywhere() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("no dpkg-deb: the package test needs Debian's dpkg");
        return;
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let debs = tmp.path().join("debs");
    // The binaries as this test run built them (a nested cargo build would see another
    // environment and rebuild).
    workspace_binary("edge-agent", "edge-agent");
    workspace_binary("server", "baylens-server");
    run(Command::new(repo.join("scripts/package.sh"))
        .args(["--profile", "debug", "--no-build", "--out"])
        .arg(&debs)
        .current_dir(&repo));
    let agent_deb = debs.join("baylens-agent_0.1.0_amd64.deb");
    let server_deb = debs.join("baylens-server_0.1.0_amd64.deb");

    let info = run(Command::new("dpkg-deb").arg("--info").arg(&agent_deb));
    assert!(info.contains("Package: baylens-agent"), "{info}");
    assert!(
        info.contains("libopencv-core"),
        "OpenCV's libraries are dependencies: {info}"
    );
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&agent_deb));
    for path in [
        "./usr/bin/edge-agent",
        "./usr/lib/baylens/libonnxruntime.so",
        "./usr/share/baylens/models/xray-concealment.onnx",
        "./usr/share/baylens/models/ocr/PP-OCRv6_det_tiny.onnx",
        "./usr/share/baylens/calibration/scanner-sim.toml",
        "./etc/baylens/agent.toml",
        "./lib/systemd/system/baylens-agent.service",
    ] {
        assert!(
            contents.contains(path),
            "{path} missing from the agent package"
        );
    }
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&server_deb));
    for path in [
        "./usr/bin/baylens-server",
        "./etc/baylens/server.env",
        "./lib/systemd/system/baylens-server.service",
    ] {
        assert!(
            contents.contains(path),
            "{path} missing from the server package"
        );
    }

    // Unpacked as dpkg would install them, under a root of their own.
    let root = tmp.path().join("root");
    for deb in [&agent_deb, &server_deb] {
        run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&root));
    }
    let units = root.join("lib/systemd/system");
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        for unit in ["baylens-agent.service", "baylens-server.service"] {
            run(Command::new("systemd-analyze")
                .arg("verify")
                .arg(format!("--root={}", root.display()))
                .arg("--recursive-errors=no")
                .arg(units.join(unit)));
            // Hardened: systemd's own exposure score stays in its "OK" band.
            run(Command::new("systemd-analyze")
                .args(["security", "--offline=yes", "--threshold=40"])
                .arg(units.join(unit)));
        }
    }
    // The shipped config parses as it stands and points into the installed tree.
    let config = std::fs::read_to_string(root.join("etc/baylens/agent.toml")).unwrap();
    let config = AgentConfig::from_toml(&config).unwrap();
    assert_eq!(config.models_dir, Path::new("/usr/share/baylens/models"));

    // The agent, run from a folder that is not the checkout, without ORT_DYLIB_PATH or
    // --models, finds the runtime and models its package brought.
    let work = tmp.path().join("work");
    let g = sim_scan(Scenario::Honest, 3);
    let files = scanner_sim::write::write_scan(&work, &g.scan, &g.meta, false).unwrap();
    let declaration = work.join("declaration.json");
    std::fs::write(&declaration, serde_json::to_string(&g.declaration).unwrap()).unwrap();
    let out = run(Command::new(root.join("usr/bin/edge-agent"))
        .arg("analyze")
        .arg(&files.sidecar)
        .arg("--declaration")
        .arg(&declaration)
        .arg("--json")
        .current_dir(&work)
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("BAYLENS_MODELS_DIR"));
    let analysed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        analysed[0]["report"]["scan_id"],
        g.meta.scan_id.as_str(),
        "{analysed:#}"
    );

    // The server starts from its package and answers.
    let port = free_port();
    let mut server = Command::new(root.join("usr/bin/baylens-server"))
        .arg("--data-dir")
        .arg(tmp.path().join("server-data"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&work)
        .spawn()
        .unwrap();
    let up = wait_until_answers(&format!("http://127.0.0.1:{port}/readyz"))
        .await
        .status()
        .is_success();
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "the packaged server answered /readyz");
}
