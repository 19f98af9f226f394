//! Prometheus metrics, hand-rolled (a few counters and histograms do not need a framework):
//! requests and latency per route, report ingests by outcome, and, read from the store at
//! scrape time, cases by lane and status and the agents' outbox depths.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// Latency histogram bucket bounds in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    ingests: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts a report ingest by outcome (created, duplicate, conflict, rejected).
    pub fn ingest(&self, outcome: &'static str) {
        *self
            .ingests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(outcome)
            .or_default() += 1;
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let mut lat = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = lat
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// The in-process part of the exposition text.
    pub fn render(&self, out: &mut String) {
        out.push_str("# HELP baylens_http_requests_total HTTP requests by route and status.\n# TYPE baylens_http_requests_total counter\n");
        for ((m, r, s), n) in self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "baylens_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}"
            );
        }
        out.push_str("# HELP baylens_http_request_duration_seconds Request latency.\n# TYPE baylens_http_request_duration_seconds histogram\n");
        for ((m, r), h) in self
            .latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "baylens_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "baylens_http_request_duration_seconds_bucket{{method=\"{m}\",route=\"{r}\",le=\"+Inf\"}} {}\nbaylens_http_request_duration_seconds_sum{{method=\"{m}\",route=\"{r}\"}} {}\nbaylens_http_request_duration_seconds_count{{method=\"{m}\",route=\"{r}\"}} {}",
                h.count, h.sum, h.count
            );
        }
        out.push_str("# HELP baylens_reports_ingested_total Reports from agents by outcome.\n# TYPE baylens_reports_ingested_total counter\n");
        for (outcome, n) in self
            .ingests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "baylens_reports_ingested_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
    }
}

/// Middleware: counts and times every request by its route template (never the raw path,
/// which would let clients create unbounded label sets).
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

/// The fleet's gauges, per agent not revoked (labels `agent`, `bay`): what the fleet page shows,
/// for alerting (`deploy/prometheus-alerts.yml`). A gauge an agent did not report is left out.
pub fn render_fleet(out: &mut String, fleet: &[crate::store::fleet::FleetAgent]) {
    let now = chrono::Utc::now();
    let seconds_since = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| (now - t.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 1000.0)
    };
    type Gauge = fn(
        &crate::store::fleet::FleetAgent,
        &dyn Fn(&Option<String>) -> Option<f64>,
    ) -> Option<f64>;
    let gauges: [(&str, &str, Gauge); 9] = [
        (
            "baylens_agent_up",
            "1 if the agent sent a heartbeat in the last 3 minutes.",
            |a, _| Some(f64::from(u8::from(a.online))),
        ),
        (
            "baylens_agent_last_seen_seconds",
            "Seconds since the agent's last heartbeat or report.",
            |a, since| since(&a.last_seen_at),
        ),
        (
            "baylens_agent_queue_depth",
            "Reports waiting in each agent's outbox, from its last heartbeat.",
            |a, _| a.queue_depth.map(|d| d as f64),
        ),
        (
            "baylens_agent_oldest_unsent_seconds",
            "Age of the oldest report waiting in the agent's outbox.",
            |a, since| since(&a.health.oldest_unsent_at),
        ),
        (
            "baylens_agent_camera_up",
            "1 if the bay camera is live, 0 if it is connecting or unavailable (absent: no camera).",
            |a, _| match a.health.camera.as_deref() {
                Some("live") => Some(1.0),
                Some("off") | None => None,
                Some(_) => Some(0.0),
            },
        ),
        (
            "baylens_agent_free_disk_bytes",
            "Free space where the agent keeps its data.",
            |a, _| a.health.free_disk_bytes.map(|b| b as f64),
        ),
        (
            "baylens_agent_min_free_disk_bytes",
            "Free space below which the agent stops taking scans.",
            |a, _| a.health.min_free_disk_bytes.map(|b| b as f64),
        ),
        (
            "baylens_agent_clock_skew_seconds",
            "The agent's clock minus the server's at the last heartbeat.",
            |a, _| a.health.clock_skew_ms.map(|ms| ms as f64 / 1000.0),
        ),
        (
            "baylens_agent_problems",
            "Problems the fleet page shows for the agent (0: healthy).",
            |a, _| Some(a.problems.len() as f64),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for a in fleet {
            if let Some(v) = value(a, &seconds_since) {
                let _ = writeln!(out, "{name}{{agent=\"{}\",bay=\"{}\"}} {v}", a.name, a.bay);
            }
        }
    }
}
