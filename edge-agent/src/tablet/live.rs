//! The live views: the camera frame with the overlay warped in (JPEG, MJPEG) and the AR
//! overlay stream (WebSocket). A stream re-checks its viewer's credentials at least every
//! second and ends when they no longer hold (sign-out, idle timeout), so a tablet left in the
//! bay stops showing the bay.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, STREAM_CONTRACT, TabletState};
use crate::bay::{BayState, LiveFrame};

/// How often a stream re-checks its viewer's credentials when no frame comes.
const RECHECK: Duration = Duration::from_secs(1);

fn no_frame(s: &TabletState) -> ApiError {
    let camera = s.bay.camera();
    let why = if !s.camera_built {
        "this agent was built without camera support".to_owned()
    } else if camera.state == "off" && camera.source.is_none() {
        "no camera is configured ([camera] in the agent's config)".to_owned()
    } else {
        format!(
            "no camera frame yet (camera {}{})",
            camera.state,
            camera.error.map(|e| format!(": {e}")).unwrap_or_default()
        )
    };
    ApiError(StatusCode::SERVICE_UNAVAILABLE, why)
}

pub(super) async fn live_jpg(
    State(s): State<TabletState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.officer(&headers)?;
    let f = s.bay.frame().ok_or_else(|| no_frame(&s))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        f.jpeg.clone(),
    )
        .into_response())
}

pub(super) async fn live_mjpg(
    State(s): State<TabletState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    s.officer(&headers)?;
    let signed_in = s.still_signed_in(&headers);
    let rx = s.bay.frames();
    let stream = futures_util::stream::unfold((rx, signed_in), |(mut rx, signed_in)| async move {
        loop {
            let changed = tokio::time::timeout(RECHECK, rx.changed()).await;
            if !signed_in() {
                return None;
            }
            match changed {
                Ok(Ok(())) => break,
                Ok(Err(_)) => return None,
                Err(_) => continue,
            }
        }
        let frame = rx.borrow_and_update().clone()?;
        let mut part = format!(
            "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            frame.jpeg.len()
        )
        .into_bytes();
        part.extend_from_slice(&frame.jpeg);
        part.extend_from_slice(b"\r\n");
        Some((Ok::<_, std::io::Error>(Bytes::from(part)), (rx, signed_in)))
    });
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "multipart/x-mixed-replace; boundary=frame",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// One overlay-stream message (see `assets/overlay-stream.schema.json`).
pub fn stream_message(bay: &BayState, frame: &LiveFrame) -> Value {
    let latest = bay.latest();
    let scan = latest
        .as_ref()
        .filter(|l| frame.scan_id.as_deref() == Some(l.report.scan_id.as_str()));
    json!({
        "contract": STREAM_CONTRACT,
        "seq": frame.seq,
        "captured_at": frame.captured_at,
        "frame": {"width": frame.width, "height": frame.height},
        "face_corners": frame.corners,
        "homography": frame.homography,
        "scan": scan.map(|l| json!({
            "scan_id": l.report.scan_id,
            "width": l.report.width,
            "height": l.report.height,
            "risk": l.report.risk,
            "lane": l.report.lane,
        })),
        "primitives": scan.map(|l| json!({
            "cargo_space": l.overlay.get("cargo_space"),
            "expected": l.overlay.get("expected"),
            "observed": l.overlay.get("observed"),
            "findings": l.overlay.get("findings"),
        })),
        "container_code": bay.code().map(|c| json!({
            "code": c.reading.code,
            "check": c.reading.check,
            "confidence": c.reading.confidence,
            "best_guess": c.reading.best_guess,
            "matches_scan": c.matches_scan,
        })),
    })
}

pub(super) async fn stream(
    State(s): State<TabletState>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Credentials first, so an unauthenticated caller learns nothing but 401.
    s.officer(&headers)?;
    let ws = ws.map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("this is a WebSocket endpoint: {e}"),
        )
    })?;
    let signed_in = s.still_signed_in(&headers);
    Ok(ws.on_upgrade(move |socket| send_frames(socket, s, signed_in)))
}

async fn send_frames(mut socket: WebSocket, s: TabletState, signed_in: impl Fn() -> bool) {
    let mut rx = s.bay.frames();
    let mut recheck = tokio::time::interval(RECHECK);
    // The current frame first, so a client draws at once.
    let mut first = rx.borrow_and_update().clone();
    loop {
        let frame = match first.take() {
            Some(f) => f,
            None => {
                let mut fresh = false;
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        fresh = true;
                    }
                    _ = recheck.tick() => {}
                    incoming = socket.recv() => match incoming {
                        // Clients only listen; a close or an error ends the stream.
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => continue,
                    },
                }
                if !signed_in() {
                    // 4401: the application's "unauthorised" (4000-4999 are the application's).
                    let close = CloseFrame {
                        code: 4401,
                        reason: "session ended; sign in again".into(),
                    };
                    let _ = socket.send(Message::Close(Some(close))).await;
                    return;
                }
                if !fresh {
                    continue;
                }
                let Some(f) = rx.borrow_and_update().clone() else {
                    continue;
                };
                f
            }
        };
        let text = stream_message(&s.bay, &frame).to_string();
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
}
