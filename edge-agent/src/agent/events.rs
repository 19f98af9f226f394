//! MQTT events of the bay (`[mqtt]`; topics in `protocol/MQTT.md`): availability (retained,
//! with a last will), each scan taken, the lane (retained, `before`/`after`: what a barrier or
//! traffic light follows), and the camera going up or down (retained, `before`/`after`).

use std::sync::Arc;
use std::time::Duration;

use baylens_mqtt::Publisher;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::bay::BayState;

/// How often the camera state is compared with the last one published.
const CAMERA_POLL: Duration = Duration::from_secs(1);

/// The `scan` event of a scan.
fn scan_event(report: &baylens_protocol::ScanReport) -> Value {
    json!({
        "scan_id": report.scan_id,
        "captured_at": report.captured_at,
        "container_code": report.container_code,
        "declaration": report.declaration_ref,
        "lane": report.lane,
        "risk": report.risk,
        "findings": report.findings.iter().map(|f| json!({"kind": f.kind, "message": f.message})).collect::<Vec<_>>(),
    })
}

/// Publishes the bay's events until `stop`, then says `offline` and disconnects.
pub(super) fn spawn(
    publisher: Publisher,
    bay_id: String,
    bay: Arc<BayState>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut scans = bay.scan_changes();
        let mut lane: Option<Value> = None;
        let mut camera = bay.camera().state;
        let mut poll = tokio::time::interval(CAMERA_POLL);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                changed = scans.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let Some(latest) = bay.latest() else { continue };
                    let report = &latest.report;
                    publisher.publish(&bay_id, "scan", &scan_event(report), false);
                    let after = json!({"lane": report.lane, "scan_id": report.scan_id, "risk": report.risk});
                    let event = json!({"before": lane, "after": after});
                    publisher.publish(&bay_id, "lane", &event, true);
                    lane = Some(after);
                }
                _ = poll.tick() => {
                    let now = bay.camera();
                    if now.state != camera {
                        let event = json!({
                            "before": camera,
                            "after": now.state,
                            "error": now.error,
                        });
                        publisher.publish(&bay_id, "camera", &event, true);
                        camera = now.state;
                    }
                }
            }
        }
        publisher.stop(Some(&bay_id)).await;
    })
}
