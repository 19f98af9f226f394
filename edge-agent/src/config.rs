//! Agent configuration, read from a TOML file. Unknown keys are refused at start-up, so a typo
//! never silently falls back to a default. `config/agent.example.toml` documents every key.

use std::path::{Path, PathBuf};

use baylens_protocol::BayId;
use baylens_protocol::risk::LaneThresholds;
use serde::Deserialize;

use crate::AgentError;

/// The environment variable that, when set, overrides `server.token_file`.
pub const TOKEN_ENV: &str = "BAYLENS_AGENT_TOKEN";

/// Everything the agent needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// This bay's id; scans from other bays are refused.
    pub bay: BayId,
    /// Where scanners drop scans. `done/` and `rejected/` are created inside it.
    pub drop_dir: PathBuf,
    /// The agent's own store: `agent.db` and `scans/`.
    pub data_dir: PathBuf,
    /// Folder with the ONNX models.
    #[serde(default = "default_models_dir")]
    pub models_dir: PathBuf,
    /// ONNX Runtime intra-op threads.
    #[serde(default = "default_model_threads")]
    pub model_threads: usize,
    /// How often the drop folder is scanned, milliseconds. A scan is taken once its files have
    /// kept the same size and time stamp for one interval.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Largest image file accepted, bytes.
    #[serde(default = "default_max_image_bytes")]
    pub max_image_bytes: u64,
    /// Most the agent's store (scan copies and images under `data_dir/scans`) may hold, MiB.
    /// When it is reached, files of scans already delivered are deleted, oldest first; if that
    /// is not enough, new scans wait in the drop folder. Unsent scans are never deleted.
    #[serde(default = "default_store_quota_mb")]
    pub store_quota_mb: u64,
    /// New scans wait in the drop folder while the disk holding `data_dir` has less free
    /// space than this, MiB.
    #[serde(default = "default_min_free_disk_mb")]
    pub min_free_disk_mb: u64,
    /// This scanner's calibration constants (see `assets/calibration/`); without it, the
    /// constants of the simulated scanner.
    #[serde(default)]
    pub calibration_file: Option<PathBuf>,
    /// How often the bay's advance declarations are synced from the server, seconds.
    #[serde(default = "default_declaration_sync_secs")]
    pub declaration_sync_secs: u64,
    /// Where this site draws its lanes (risk thresholds).
    #[serde(default)]
    pub lanes: LaneThresholds,
    /// Signed model updates from the server (off when absent).
    #[serde(default)]
    pub model_updates: Option<crate::updates::ModelUpdatesConfig>,
    /// HTTP push from scanners (off when absent).
    #[serde(default)]
    pub push: Option<crate::push::PushConfig>,
    /// The bay camera: container-code OCR and the live AR view (off when absent).
    #[serde(default)]
    pub camera: Option<CameraConfig>,
    /// The officers' tablet page and overlay stream (off when absent).
    #[serde(default)]
    pub tablet: Option<crate::tablet::TabletConfig>,
    /// MQTT events for bay equipment (off when absent; topics in `protocol/MQTT.md`).
    #[serde(default)]
    pub mqtt: Option<baylens_mqtt::MqttConfig>,
    /// The central server.
    pub server: ServerConfig,
}

/// The bay camera.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// `v4l2:0` or `/dev/video0` (V4L2/USB), `rtsp://…` or `http://…` (IP camera), or a video file.
    pub source: String,
    /// Longest wait between attempts to reopen a lost camera, seconds.
    #[serde(default = "default_camera_backoff_secs")]
    pub max_backoff_secs: u64,
    /// The camera looks at the container's other side from the scanner's (the scan is mirrored).
    #[serde(default)]
    pub mirror: bool,
    /// Read the container code from the camera.
    #[serde(default = "default_true")]
    pub ocr: bool,
    /// Folder with the OCR models; by default `models/onnx/ocr` for `tiny` and `.ocr` (where
    /// `scripts/setup.sh` unpacks the rapidocr wheel) for `small`.
    #[serde(default)]
    pub ocr_models_dir: Option<PathBuf>,
    /// OCR model set: `tiny` (default: on the bay camera's side views it reads more codes, and
    /// faster; see BENCHMARKS.md) or `small`.
    #[serde(default = "default_ocr_models")]
    pub ocr_models: String,
    /// Hand every Nth frame to the OCR until the code is read.
    #[serde(default = "default_ocr_every_frames")]
    pub ocr_every_frames: u32,
    /// JPEG quality of the live view (1-100).
    #[serde(default = "default_jpeg_quality")]
    pub jpeg_quality: i32,
    /// Process at most this many frames a second (none: as many as the camera gives).
    #[serde(default)]
    pub max_fps: Option<f64>,
}

impl CameraConfig {
    /// Where the OCR models are: `ocr_models_dir`, else beside the binaries
    /// (`baylens_models::share`).
    pub fn ocr_dir(&self) -> PathBuf {
        self.ocr_models_dir
            .clone()
            .unwrap_or_else(|| ocr_models_dir(&self.ocr_models))
    }

    fn validate(&self) -> Result<(), String> {
        if self.source.trim().is_empty() {
            return Err("camera.source is empty".into());
        }
        if !matches!(self.ocr_models.as_str(), "small" | "tiny") {
            return Err(format!(
                "camera.ocr_models {:?}: use small or tiny",
                self.ocr_models
            ));
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            return Err(format!(
                "camera.jpeg_quality {} must be 1 to 100",
                self.jpeg_quality
            ));
        }
        Ok(())
    }
}

fn default_camera_backoff_secs() -> u64 {
    30
}
fn default_true() -> bool {
    true
}
fn default_ocr_models() -> String {
    "tiny".into()
}
fn default_ocr_every_frames() -> u32 {
    5
}
fn default_jpeg_quality() -> i32 {
    80
}

/// How to reach the central server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// File holding this agent's token (from `server agent add`). `BAYLENS_AGENT_TOKEN` overrides it.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Longest wait between delivery attempts while the server is unreachable, seconds.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// Longest a connection to the server may carry nothing, seconds; a stalled one is
    /// abandoned and retried after this. A whole exchange may take this plus its body's size at
    /// 64 kbit/s ([`crate::uplink::MIN_BYTES_PER_SEC`]), so large images and model files get
    /// through weak links.
    #[serde(default = "default_request_timeout_secs")]
    pub request_timeout_secs: u64,
    /// PEM file of the CA(s) that sign the server's certificate (a customs network's own);
    /// without it, the system's CAs are trusted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// sha256 fingerprints of the server certificates to accept (any of them; two during a
    /// renewal), on top of the CA check: `openssl x509 -noout -fingerprint -sha256`.
    #[serde(default)]
    pub pin_sha256: Vec<String>,
    /// Allows plain `http://` to a server on another machine. Off: only loopback may be plain.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl ServerConfig {
    /// The TLS client configuration for an `https://` server; none for plain HTTP.
    pub fn tls(&self) -> Result<Option<baylens_tls::rustls::ClientConfig>, AgentError> {
        if !self.url.starts_with("https://") {
            return Ok(None);
        }
        baylens_tls::client::client_config(self.ca_file.as_deref(), &self.pin_sha256)
            .map(Some)
            .map_err(|e| AgentError::Config(format!("server TLS: {e}")))
    }
}

/// Prefix of environment variables that override config keys (`BAYLENS_AGENT__SERVER__URL`).
pub const ENV_PREFIX: &str = "BAYLENS_AGENT__";

/// `KEY=VALUE` overrides from environment variables named [`ENV_PREFIX`]`KEY`, with `__`
/// between levels and the key lower-cased.
pub fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut out: Vec<String> = vars
        .filter_map(|(k, v)| {
            let key = k.strip_prefix(ENV_PREFIX)?;
            Some(format!(
                "{}={v}",
                key.to_ascii_lowercase().replace("__", ".")
            ))
        })
        .collect();
    out.sort();
    out
}

/// Applies `KEY=VALUE` overrides to a TOML document.
pub fn apply_overrides(text: &str, overrides: &[String]) -> Result<String, AgentError> {
    if overrides.is_empty() {
        return Ok(text.to_owned());
    }
    let mut doc: toml::Table =
        toml::from_str(text).map_err(|e| AgentError::Config(e.to_string()))?;
    for o in overrides {
        let (key, raw) = o.split_once('=').ok_or_else(|| {
            AgentError::Config(format!("override {o:?} must look like KEY=VALUE"))
        })?;
        let value: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
        let parts: Vec<&str> = key.trim().split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(AgentError::Config(format!("override {o:?}: empty key")));
        }
        let mut table = &mut doc;
        for part in &parts[..parts.len() - 1] {
            let entry = table
                .entry((*part).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| {
                AgentError::Config(format!("override {o:?}: {part} is not a table"))
            })?;
        }
        table.insert(parts[parts.len() - 1].to_owned(), value);
    }
    toml::to_string(&doc).map_err(|e| AgentError::Config(e.to_string()))
}

fn default_declaration_sync_secs() -> u64 {
    60
}
fn default_models_dir() -> PathBuf {
    baylens_models::share::models_dir()
}
fn default_model_threads() -> usize {
    1
}
fn default_poll_interval_ms() -> u64 {
    500
}
fn default_store_quota_mb() -> u64 {
    20 * 1024
}
fn default_min_free_disk_mb() -> u64 {
    1024
}
fn default_max_image_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_max_backoff_secs() -> u64 {
    300
}
fn default_request_timeout_secs() -> u64 {
    60
}

impl AgentConfig {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, AgentError> {
        let config: Self = toml::from_str(text).map_err(|e| AgentError::Config(e.to_string()))?;
        baylens_tls::client::check_scheme(&config.server.url, config.server.allow_insecure_http)
            .map_err(|e| AgentError::Config(e.to_string()))?;
        if !config.server.url.starts_with("https://")
            && (config.server.ca_file.is_some() || !config.server.pin_sha256.is_empty())
        {
            return Err(AgentError::Config(
                "server.ca_file and server.pin_sha256 need an https:// server.url".into(),
            ));
        }
        for pin in &config.server.pin_sha256 {
            baylens_tls::parse_pin(pin)
                .map_err(|e| AgentError::Config(format!("server.pin_sha256: {e}")))?;
        }
        if config.poll_interval_ms == 0
            || config.model_threads == 0
            || config.declaration_sync_secs == 0
        {
            return Err(AgentError::Config(
                "poll_interval_ms, model_threads and declaration_sync_secs must be positive".into(),
            ));
        }
        config
            .lanes
            .validate()
            .map_err(|e| AgentError::Config(e.to_string()))?;
        if let Some(push) = &config.push {
            push.validate().map_err(AgentError::Config)?;
        }
        if let Some(camera) = &config.camera {
            camera.validate().map_err(AgentError::Config)?;
        }
        if let Some(tablet) = &config.tablet {
            tablet.validate().map_err(AgentError::Config)?;
        }
        if let Some(mqtt) = &config.mqtt {
            mqtt.validate()
                .map_err(|e| AgentError::Config(e.to_string()))?;
        }
        if let Some(u) = &config.model_updates {
            let key = u.public_key.trim();
            if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) || u.check_secs == 0 {
                return Err(AgentError::Config(
                    "model_updates.public_key must be 64 hex characters (server model keygen prints it) and check_secs positive".into(),
                ));
            }
        }
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        let text = std::fs::read_to_string(path)
            .map_err(AgentError::io(format!("reading {}", path.display())))?;
        Self::from_toml(&text).map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))
    }

    /// Reads a TOML file and applies `KEY=VALUE` overrides (dotted keys, e.g. `server.url`;
    /// the value in TOML syntax, or else taken as a string) before parsing, so an override
    /// goes through the same checks as the file, unknown keys included.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self, AgentError> {
        let text = std::fs::read_to_string(path)
            .map_err(AgentError::io(format!("reading {}", path.display())))?;
        let text = apply_overrides(&text, overrides)?;
        Self::from_toml(&text).map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))
    }

    /// The agent's token: `BAYLENS_AGENT_TOKEN` if set, else the contents of `server.token_file`.
    pub fn token(&self) -> Result<String, AgentError> {
        if let Ok(t) = std::env::var(TOKEN_ENV) {
            if !t.trim().is_empty() {
                return Ok(t.trim().to_owned());
            }
        }
        let Some(path) = &self.server.token_file else {
            return Err(AgentError::Config(format!(
                "no agent token: set {TOKEN_ENV} or server.token_file"
            )));
        };
        let t = std::fs::read_to_string(path).map_err(AgentError::io(format!(
            "reading token file {}",
            path.display()
        )))?;
        let t = t.trim();
        if t.is_empty() {
            return Err(AgentError::Config(format!(
                "token file {} is empty",
                path.display()
            )));
        }
        Ok(t.to_owned())
    }
}

pub use crate::redact::{redact_address, scrub_password};

/// Where the OCR model set `set` (`tiny` or `small`) is found when the config does not say:
/// beside the binary or under /usr/share/baylens, else in this checkout.
pub fn ocr_models_dir(set: &str) -> PathBuf {
    use baylens_models::share::{Tree, locate};
    if set == "small" {
        locate(Tree::Share, "ocr-small", ".ocr")
    } else {
        locate(Tree::Share, "models/ocr", "models/onnx/ocr")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_passwords_are_redacted_for_logs_and_the_tablet() {
        let url = "rtsp://admin:s3cret@10.0.0.9:554/stream?x=1";
        assert_eq!(
            redact_address(url),
            "rtsp://admin:***@10.0.0.9:554/stream?x=1"
        );
        assert_eq!(
            scrub_password("cannot open rtsp://admin:s3cret@10.0.0.9", url),
            "cannot open rtsp://admin:***@10.0.0.9"
        );
        assert_eq!(
            redact_address("rtsp://admin:pa/ss?w#rd@10.0.0.9/stream"),
            "rtsp://admin:***@10.0.0.9/stream"
        );
        for plain in [
            "v4l2:0",
            "/dev/video1",
            "rtsp://10.0.0.9/a@b",
            "rtsp://cam@10.0.0.9/",
        ] {
            assert_eq!(redact_address(plain), plain);
        }
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../config/agent.example.toml");
        let config = AgentConfig::from_toml(text).unwrap();
        assert_eq!(config.bay.as_str(), "BAY01");
        assert_eq!(config.model_threads, 1);
        assert_eq!(config.lanes, LaneThresholds::default());
        assert_eq!(config.declaration_sync_secs, 60);
        // The calibration file it names parses.
        let cal = config.calibration_file.unwrap();
        crate::calibration::Calibration::load(&std::path::Path::new("..").join(cal)).unwrap();
    }

    #[test]
    fn the_documented_push_section_parses_once_filled_in() {
        let (_, hash) = crate::push::new_token();
        let text = include_str!("../../config/agent.example.toml")
            .replace("# [push]", "[push]")
            .replacen("# listen = ", "listen = ", 1)
            .replace("# upload_timeout_secs", "upload_timeout_secs")
            .replace(
                "# scanner_token_sha256 = [\"<64 hex characters from edge-agent scanner-token>\"]",
                &format!("scanner_token_sha256 = [\"{hash}\"]"),
            );
        let push = AgentConfig::from_toml(&text).unwrap().push.unwrap();
        assert_eq!(push.upload_timeout_secs, 300);
        let bad = text.replace(&hash, "not-a-hash");
        assert!(
            AgentConfig::from_toml(&bad)
                .unwrap_err()
                .to_string()
                .contains("sha256")
        );
    }

    #[test]
    fn the_documented_camera_and_tablet_sections_parse_once_filled_in() {
        let (_, hash) = crate::tablet::new_code();
        let text = include_str!("../../config/agent.example.toml");
        let (head, tail) = text.split_at(text.find("# [camera]").unwrap());
        // Only the commented-out [camera] and [tablet] sections are filled in.
        let (tail, server) = tail.split_at(tail.find("\n[server]").unwrap());
        let tail = tail
            .replace("# [camera]", "[camera]")
            .replace("# [tablet]", "[tablet]")
            .replace("<64 hex characters from edge-agent officer-code>", &hash)
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains(" = "))
                    .unwrap_or(l)
                    .to_owned()
            })
            .collect::<Vec<_>>()
            .join("\n")
            + server;
        let config = AgentConfig::from_toml(&format!("{head}{tail}")).unwrap();
        let camera = config.camera.unwrap();
        assert_eq!(camera.source, "rtsp://10.0.5.20/stream1");
        assert_eq!(camera.ocr_models, "tiny");
        assert!(camera.ocr_dir().ends_with("models/onnx/ocr"));
        // Unset, it is found from any working directory (here: the checkout's, from the test
        // binary in target/).
        let unset = CameraConfig {
            ocr_models_dir: None,
            ..camera.clone()
        };
        assert!(unset.ocr_dir().join("PP-OCRv6_det_tiny.onnx").exists());
        let tablet = config.tablet.unwrap();
        assert_eq!(tablet.officers[0].username, "officer1");
        let bad = format!("{head}{tail}").replace("ocr_models = \"tiny\"", "ocr_models = \"huge\"");
        assert!(
            AgentConfig::from_toml(&bad)
                .unwrap_err()
                .to_string()
                .contains("small or tiny")
        );
    }

    #[test]
    fn flags_and_environment_override_the_file_and_are_checked_like_it() {
        let text = include_str!("../../config/agent.example.toml");
        let env = env_overrides(
            [
                (
                    "BAYLENS_AGENT__SERVER__URL".to_owned(),
                    "https://10.0.0.5:8443".to_owned(),
                ),
                ("BAYLENS_AGENT__LANES__RED".to_owned(), "0.6".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
            ]
            .into_iter(),
        );
        assert_eq!(env, ["lanes.red=0.6", "server.url=https://10.0.0.5:8443"]);
        let mut all = env.clone();
        all.push("bay=BAY07".into());
        let config = AgentConfig::from_toml(&apply_overrides(text, &all).unwrap()).unwrap();
        assert_eq!(config.server.url, "https://10.0.0.5:8443");
        assert_eq!(config.lanes.red, 0.6);
        assert_eq!(config.bay.as_str(), "BAY07");
        // A misspelt key is refused, as in the file.
        let typo = apply_overrides(text, &["server.ulr=x".into()]).unwrap();
        assert!(
            AgentConfig::from_toml(&typo)
                .unwrap_err()
                .to_string()
                .contains("ulr")
        );
        assert!(apply_overrides(text, &["novalue".into()]).is_err());
    }

    #[test]
    fn the_documented_model_updates_section_parses_once_filled_in() {
        let (_, public) = baylens_protocol::release::new_key([1; 32]);
        let text = include_str!("../../config/agent.example.toml")
            .replace("# [model_updates]", "[model_updates]")
            .replace("# check_secs", "check_secs")
            .replace(
                "# public_key = \"<64 hex characters from server model keygen>\"",
                &format!("public_key = \"{public}\""),
            );
        let u = AgentConfig::from_toml(&text)
            .unwrap()
            .model_updates
            .unwrap();
        assert_eq!(u.check_secs, 3600);
        let bad = text.replace(&public, "abc");
        assert!(
            AgentConfig::from_toml(&bad)
                .unwrap_err()
                .to_string()
                .contains("public_key")
        );
    }

    #[test]
    fn lanes_must_rise() {
        let text = include_str!("../../config/agent.example.toml")
            .replace("yellow = 0.35", "yellow = 0.9");
        let err = AgentConfig::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("yellow < red"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let text = format!(
            "{}\npoll_intreval_ms = 5\n",
            include_str!("../../config/agent.example.toml")
        );
        let err = AgentConfig::from_toml(&text).unwrap_err().to_string();
        assert!(err.contains("unknown field `poll_intreval_ms`"), "{err}");
    }

    #[test]
    fn a_server_url_without_scheme_is_refused() {
        let text = include_str!("../../config/agent.example.toml")
            .replace("http://127.0.0.1:8080", "127.0.0.1:8080");
        assert!(
            AgentConfig::from_toml(&text)
                .unwrap_err()
                .to_string()
                .contains("server.url")
        );
    }
}
