//! Delivery of stored reports to the central server.
//!
//! One report at a time, oldest first: `POST /api/v1/reports` with the stored JSON (the server
//! stores it once per report id, so resending after a lost answer is harmless), then
//! `PUT /api/v1/scans/{scan_id}/preview`, then `PUT /api/v1/scans/{scan_id}/layers/{layer}` for
//! each overlay layer the scan has.
//!
//! **Frugal uplink.** A cleared (green-lane) scan sends only its report and a thumbnail (a third
//! of the preview's size, about a tenth of its bytes) before it counts as delivered. Its
//! full-resolution preview and layers follow when no report is waiting, so a weak link carries
//! the findings of every scan first. `edge-agent status` shows both figures.
//!
//! Timeouts go by phase (connect, idle between bytes, and a floor of [`MIN_BYTES_PER_SEC`] for
//! the body), so a weak link carries large images and model files without one total timeout
//! cutting them off. Network errors, timeouts and 5xx answers are retried
//! with exponential backoff and full jitter, so a fleet of bays does not hammer a server that has
//! just come back. A permanent 4xx refusal is recorded and kept, never dropped silently.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use tokio::sync::Notify;

use baylens_protocol::release::ModelRelease;

use crate::AgentError;
use crate::config::ServerConfig;
use crate::declarations::{DeclarationCache, SyncAnswer};
use crate::outbox::{LAYERS, Outbox, Pending, THUMB_FILE};

/// First retry delay.
const BASE_DELAY_MS: u64 = 1_000;

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The server has the report, the preview and the layers; the bytes sent.
    Delivered(u64),
    /// Try again later; the reason is logged and stored.
    Retry(String),
    /// The server will never accept this report as it stands.
    Refused(String),
}

/// Backoff before attempt `attempts + 1`: `min(max, base * 2^attempts)`, scaled by a random
/// factor in [0.5, 1] so that agents that failed together do not retry together.
pub fn backoff_ms(attempts: u32, max: Duration, rng: &mut impl Rng) -> i64 {
    let cap = max.as_millis().min(u128::from(u64::MAX)) as u64;
    let exp = BASE_DELAY_MS
        .saturating_mul(1u64 << attempts.min(30))
        .min(cap.max(1));
    let jittered = (exp as f64 * rng.random_range(0.5..=1.0)) as u64;
    jittered.max(1).try_into().unwrap_or(i64::MAX)
}

/// HTTP client for the server's agent API.
#[derive(Debug, Clone)]
pub struct Uplink {
    client: reqwest::Client,
    base: String,
    token: String,
    timeout: Duration,
}

/// The slowest link a bay is expected to have, bytes per second (64 kbit/s): a transfer of `n`
/// bytes gets the request timeout plus `n` at this rate, so an 8 MiB photo over a weak link is
/// not cut off by a timeout meant for a small report.
pub const MIN_BYTES_PER_SEC: u64 = 8 * 1024;

/// What a declaration sync answer may weigh, for its time budget.
const SYNC_BUDGET_BYTES: u64 = 2 * 1024 * 1024;

/// What a refused or failed exchange means: retry server errors, timeouts and auth failures
/// (an operator's fix); refuse the rest.
pub(crate) fn classify(status: StatusCode, body: &str, what: &str) -> Attempt {
    let detail = format!(
        "{what}: HTTP {status}: {}",
        body.chars().take(300).collect::<String>()
    );
    if status.is_server_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
        )
    {
        Attempt::Retry(detail)
    } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        // A wrong or revoked token is an operator's fix, not a property of the report: keep
        // retrying (slowly, by backoff) so that nothing is lost while it is fixed.
        Attempt::Retry(detail)
    } else {
        Attempt::Refused(detail)
    }
}

impl Uplink {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) that authenticates with `token`.
    /// Timeouts by phase: connecting within 5 s (or `timeout`, if shorter), no more than
    /// `timeout` without a byte moving, and for the whole exchange `timeout` plus the time the
    /// body takes at [`MIN_BYTES_PER_SEC`].
    pub fn new(base: &str, token: String, timeout: Duration) -> Result<Self, AgentError> {
        Self::build(base, token, timeout, None)
    }

    /// A client for the configured server: over TLS with the configured trust when its URL is
    /// `https://`.
    pub fn for_server(server: &ServerConfig, token: String) -> Result<Self, AgentError> {
        Self::build(
            &server.url,
            token,
            Duration::from_secs(server.request_timeout_secs),
            server.tls()?,
        )
    }

    fn build(
        base: &str,
        token: String,
        timeout: Duration,
        tls: Option<baylens_tls::rustls::ClientConfig>,
    ) -> Result<Self, AgentError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .read_timeout(timeout)
            // The token goes to the configured server only, never to where it redirects.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(tls) = tls {
            builder = builder.use_preconfigured_tls(tls);
        }
        let client = builder
            .build()
            .map_err(|e| AgentError::Config(format!("HTTP client: {e}")))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            token,
            timeout,
        })
    }

    /// A request to `path` on the server, authenticated, timed for moving `bytes`.
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        bytes: u64,
    ) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(self.budget(bytes))
    }

    /// The time allowed for an exchange that moves `bytes`.
    pub fn budget(&self, bytes: u64) -> Duration {
        self.timeout + Duration::from_secs(bytes.div_ceil(MIN_BYTES_PER_SEC))
    }

    /// Sends a heartbeat (`body`: the server's `Heartbeat`, see `agent::heartbeat`) for the
    /// fleet page and `/metrics`. Best effort: a failure only delays the next heartbeat.
    pub async fn heartbeat(&self, body: &serde_json::Value) -> Result<(), String> {
        let r = self
            .client
            .post(format!("{}/api/v1/agents/heartbeat", self.base))
            .bearer_auth(&self.token)
            .timeout(self.timeout)
            .json(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status()))
        }
    }

    /// Delivers what the bay adds to a scan's case: an officer's annotation (`route`
    /// `annotations`) or the camera's code reading (`camera-code`). A case the server does not
    /// have yet (404) is retried: the scan's report is still on its way.
    pub async fn to_case(&self, scan_id: &str, route: &str, body: &serde_json::Value) -> Attempt {
        let sent = self
            .client
            .post(format!("{}/api/v1/scans/{scan_id}/{route}", self.base))
            .bearer_auth(&self.token)
            .timeout(self.budget(body.to_string().len() as u64))
            .json(body)
            .send()
            .await;
        match sent {
            Err(e) => Attempt::Retry(format!("{route}: {e}")),
            Ok(r) if r.status().is_success() => Attempt::Delivered(0),
            Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                Attempt::Retry(format!("{route}: the server has no case for this scan yet"))
            }
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                classify(status, &text, route)
            }
        }
    }

    /// Fetches the bay's declarations lodged after `since` (all within the server's window when
    /// `None`).
    pub async fn sync_declarations(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SyncAnswer, String> {
        let mut request = self
            .client
            .get(format!("{}/api/v1/declarations/sync", self.base))
            .bearer_auth(&self.token)
            .timeout(self.budget(SYNC_BUDGET_BYTES));
        if let Some(t) = since {
            request = request.query(&[(
                "since",
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )]);
        }
        let r = request.send().await.map_err(|e| e.to_string())?;
        let status = r.status();
        if !status.is_success() {
            let body = r.text().await.unwrap_or_default();
            return Err(format!(
                "HTTP {status}: {}",
                body.chars().take(200).collect::<String>()
            ));
        }
        r.json::<SyncAnswer>().await.map_err(|e| e.to_string())
    }

    /// The current signed release of a model, if the server has one.
    pub async fn model_release(&self, name: &str) -> Result<Option<ModelRelease>, String> {
        let r = self
            .client
            .get(format!("{}/api/v1/models/{name}/release", self.base))
            .bearer_auth(&self.token)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => r.json().await.map(Some).map_err(|e| e.to_string()),
            s => Err(format!("HTTP {s}")),
        }
    }

    /// Downloads a release's file (at most [`crate::updates::MAX_MODEL_BYTES`], and no more
    /// than the release says).
    pub async fn model_file(&self, name: &str, release: &ModelRelease) -> Result<Vec<u8>, String> {
        use futures_util::StreamExt;
        if release.size > crate::updates::MAX_MODEL_BYTES {
            return Err(format!(
                "release of {} bytes is over the limit",
                release.size
            ));
        }
        let r = self
            .client
            .get(format!(
                "{}/api/v1/models/{name}/{}",
                self.base, release.sha256
            ))
            .bearer_auth(&self.token)
            .timeout(self.budget(release.size))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("HTTP {}", r.status()));
        }
        let mut out = Vec::new();
        let mut stream = r.bytes_stream();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
            if out.len() as u64 > release.size {
                return Err("the server sent more bytes than the release says".into());
            }
        }
        Ok(out)
    }

    /// Tries once to deliver a report and its images: for a cleared (green) scan with a
    /// thumbnail, the thumbnail as its preview and no layers (the full resolution follows with
    /// [`Uplink::deliver_full`]); otherwise the full-resolution preview and every layer. Returns
    /// the bytes sent and whether the full resolution is still owed.
    pub async fn deliver(&self, pending: &Pending) -> (Attempt, bool) {
        let url = format!("{}/api/v1/reports", self.base);
        let sent = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .timeout(self.budget(pending.report_json.len() as u64))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(pending.report_json.clone())
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return (Attempt::Retry(format!("report: {e}")), false),
        };
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return (classify(status, &body, "report"), false);
        }
        let report_bytes = pending.report_json.len() as u64;
        let thumb = pending.dir.join(THUMB_FILE);
        if pending.cleared && tokio::fs::try_exists(&thumb).await.unwrap_or(false) {
            return match self.put_png(pending, &thumb, "preview", true).await {
                Ok(n) => (Attempt::Delivered(report_bytes + n), true),
                Err(a) => (a, false),
            };
        }
        (
            match self.deliver_full(pending).await {
                Attempt::Delivered(n) => Attempt::Delivered(report_bytes + n),
                other => other,
            },
            false,
        )
    }

    /// Tries once to send a scan's full-resolution preview and its layers (the report is on
    /// the server already).
    pub async fn deliver_full(&self, pending: &Pending) -> Attempt {
        let mut sent = match self
            .put_png(pending, &pending.preview_path, "preview", true)
            .await
        {
            Ok(n) => n,
            Err(a) => return a,
        };
        for layer in LAYERS {
            // Scans stored by older agents, or single-energy scans, lack some layers.
            let path = pending.dir.join(format!("{layer}.png"));
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                continue;
            }
            match self.put_png(pending, &path, layer, false).await {
                Ok(n) => sent += n,
                // The report and preview are stored; a server that refuses an optional layer
                // (an older one, say) must not turn the report into a refusal.
                Err(Attempt::Refused(why)) => {
                    tracing::warn!(scan_id = %pending.scan_id, "{layer} layer not stored: {why}");
                }
                Err(other) => return other,
            }
        }
        Attempt::Delivered(sent)
    }

    /// PUTs one PNG as the scan's preview (`what` = "preview") or as a layer; returns its size.
    async fn put_png(
        &self,
        pending: &Pending,
        path: &std::path::Path,
        what: &str,
        required: bool,
    ) -> Result<u64, Attempt> {
        let png = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) if required => {
                return Err(Attempt::Refused(format!(
                    "{what} {} unreadable: {e}",
                    path.display()
                )));
            }
            Err(e) => return Err(Attempt::Refused(format!("{what}: {e}"))),
        };
        let len = png.len() as u64;
        let url = if what == "preview" {
            format!("{}/api/v1/scans/{}/preview", self.base, pending.scan_id)
        } else {
            format!(
                "{}/api/v1/scans/{}/layers/{what}",
                self.base, pending.scan_id
            )
        };
        let answer = self
            .client
            .put(&url)
            .bearer_auth(&self.token)
            .timeout(self.budget(len))
            .header(reqwest::header::CONTENT_TYPE, "image/png")
            .body(png)
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => Ok(len),
            // The server keeps the evidence it holds for this case (another image in this slot,
            // or a decision came first): the report stands, the answer is logged, the image
            // stays here.
            Ok(r) if r.status() == StatusCode::CONFLICT => {
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(scan_id = %pending.scan_id, "{what} not stored: HTTP 409: {body}");
                Ok(0)
            }
            Ok(r) => {
                let status = r.status();
                let body = r.text().await.unwrap_or_default();
                Err(classify(status, &body, what))
            }
            Err(e) => Err(Attempt::Retry(format!("{what}: {e}"))),
        }
    }
}

/// Delivers pending reports until `shutdown` resolves. `wake` is notified whenever a new report
/// is stored, so it goes out at once rather than at the next timer.
pub async fn run(
    outbox: Outbox,
    uplink: Uplink,
    wake: Arc<Notify>,
    max_backoff: Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    tokio::pin!(shutdown);
    let contact = DeclarationCache::new(outbox.pool().clone());
    loop {
        while let Some(pending) = outbox.next_due().await? {
            let (attempt, full_due) = tokio::select! {
                a = uplink.deliver(&pending) => a,
                () = &mut shutdown => return Ok(()),
            };
            match attempt {
                Attempt::Delivered(bytes) => {
                    outbox
                        .mark_delivered(&pending.scan_id, bytes, full_due)
                        .await?;
                    let _ = contact.record_contact().await;
                    tracing::info!(scan_id = %pending.scan_id, bytes, "report delivered");
                }
                Attempt::Retry(why) => {
                    let _ = contact.record_error(&why).await;
                    let delay = backoff_ms(pending.attempts, max_backoff, &mut rand::rng());
                    tracing::warn!(scan_id = %pending.scan_id, attempts = pending.attempts + 1, retry_in_ms = delay, "delivery failed: {why}");
                    outbox.mark_retry(&pending.scan_id, &why, delay).await?;
                    // Later reports go to the same server; wait for this one's backoff rather
                    // than hammering it with the rest of the queue.
                    break;
                }
                Attempt::Refused(why) => {
                    tracing::error!(scan_id = %pending.scan_id, "server refused the report; kept in the outbox as 'refused': {why}");
                    outbox.mark_refused(&pending.scan_id, &why).await?;
                }
            }
        }
        // Nothing urgent left: one owed full-resolution upload, then back to the reports.
        if let Some(full) = outbox.next_full_due().await? {
            let attempt = tokio::select! {
                a = uplink.deliver_full(&full) => a,
                () = &mut shutdown => return Ok(()),
            };
            match attempt {
                Attempt::Delivered(bytes) => {
                    outbox.mark_full_sent(&full.scan_id, bytes).await?;
                    tracing::debug!(scan_id = %full.scan_id, bytes, "full resolution delivered");
                    continue;
                }
                Attempt::Refused(why) => {
                    // The report and thumbnail are there; give up on the rest of this one.
                    tracing::warn!(scan_id = %full.scan_id, "server refused the full resolution: {why}");
                    outbox.mark_full_sent(&full.scan_id, 0).await?;
                }
                Attempt::Retry(why) => {
                    let delay = backoff_ms(4, max_backoff, &mut rand::rng());
                    tracing::debug!(scan_id = %full.scan_id, retry_in_ms = delay, "full resolution not delivered: {why}");
                    outbox.mark_full_retry(&full.scan_id, delay).await?;
                }
            }
        }
        let next = match (
            outbox.ms_until_next_due().await?,
            outbox.ms_until_full_due().await?,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let wait = next.map_or(Duration::from_secs(3600), |ms| {
            Duration::from_millis(ms.max(10) as u64)
        });
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            () = &mut shutdown => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let max = Duration::from_secs(300);
        for attempts in 0..40 {
            let d = backoff_ms(attempts, max, &mut rng);
            let full = (1000u64 << attempts.min(30)).min(300_000) as i64;
            assert!(
                d >= full / 2 && d <= full,
                "attempt {attempts}: {d} not in [{}, {full}]",
                full / 2
            );
        }
        let spread: std::collections::HashSet<i64> =
            (0..20).map(|_| backoff_ms(5, max, &mut rng)).collect();
        assert!(spread.len() > 10, "no jitter");
    }

    #[test]
    fn server_errors_retry_and_client_errors_are_refused() {
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, "", "r"),
            Attempt::Retry(_)
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, "", "r"),
            Attempt::Retry(_)
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, "", "r"),
            Attempt::Retry(_)
        ));
        assert!(
            matches!(classify(StatusCode::UNPROCESSABLE_ENTITY, "bad lane", "r"), Attempt::Refused(m) if m.contains("bad lane"))
        );
    }
}
