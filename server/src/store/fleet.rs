//! The fleet: each registered agent's health, from its heartbeats, for the operators' fleet
//! page, `GET /api/v1/fleet` and Prometheus. An agent says what it knows (outbox, camera,
//! disk, clock); the server decides what is wrong, so every page and alert agrees.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Agent, Store, ms_to_rfc3339, now_ms};

/// An agent is stale after three missed heartbeats (they come every minute).
pub const STALE_AFTER_MS: i64 = 3 * 60_000;
/// Reports waiting longer than this are a backlog worth a look.
pub const BACKLOG_AFTER_MS: i64 = 15 * 60_000;
/// Clocks further apart than this make capture times and release figures wrong.
pub const MAX_CLOCK_SKEW_MS: i64 = 2 * 60_000;

/// What an agent says about itself every minute or so. Everything after `queue_depth` came
/// later: an older agent leaves it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Agent build version.
    pub version: String,
    /// Model name → sha256 of each loaded model.
    pub models: std::collections::BTreeMap<String, String>,
    /// Reports waiting in the agent's outbox.
    pub queue_depth: u32,
    /// Capture time of the oldest report not yet delivered.
    #[serde(default)]
    pub oldest_unsent_at: Option<DateTime<Utc>>,
    /// The camera: `off` (none configured), `connecting`, `live` or `unavailable`.
    #[serde(default)]
    pub camera: Option<String>,
    /// Free space where the agent keeps its data.
    #[serde(default)]
    pub free_disk_bytes: Option<u64>,
    /// Below this free space the agent stops taking scans (`min_free_disk_mb`).
    #[serde(default)]
    pub min_free_disk_bytes: Option<u64>,
    /// Scans taken since midnight UTC.
    #[serde(default)]
    pub scans_today: Option<u64>,
    /// Declarations in the agent's cache.
    #[serde(default)]
    pub declarations_cached: Option<u64>,
    /// The installed model release's serial (none: the model shipped with the agent).
    #[serde(default)]
    pub model_serial: Option<u64>,
    /// The agent's clock when it sent this (for the clock skew).
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
}

/// The health an agent reported last, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Capture time of the oldest report not yet delivered (RFC 3339).
    pub oldest_unsent_at: Option<String>,
    /// Camera state.
    pub camera: Option<String>,
    /// Free disk space, bytes.
    pub free_disk_bytes: Option<u64>,
    /// The agent's own floor of free disk space, bytes.
    pub min_free_disk_bytes: Option<u64>,
    /// Scans taken since midnight UTC.
    pub scans_today: Option<u64>,
    /// Declarations cached.
    pub declarations_cached: Option<u64>,
    /// Installed model release serial.
    pub model_serial: Option<u64>,
    /// Agent clock minus server clock at the last heartbeat, milliseconds.
    pub clock_skew_ms: Option<i64>,
}

/// One agent on the fleet page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetAgent {
    /// Name.
    pub name: String,
    /// Bay.
    pub bay: String,
    /// Heard from within [`STALE_AFTER_MS`].
    pub online: bool,
    /// Last heartbeat or report (RFC 3339).
    pub last_seen_at: Option<String>,
    /// Agent version.
    pub version: Option<String>,
    /// Model name → sha256.
    pub models: serde_json::Value,
    /// Reports waiting in the outbox.
    pub queue_depth: Option<i64>,
    /// The rest of the last heartbeat.
    #[serde(flatten)]
    pub health: Health,
    /// What needs an operator, in words (empty: healthy).
    pub problems: Vec<Problem>,
}

/// The part of an agent's health a problem is about (the fleet page marks that cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Heartbeats.
    Contact,
    /// The camera.
    Camera,
    /// Free disk.
    Disk,
    /// Reports waiting in the outbox.
    Backlog,
    /// The agent's clock.
    Clock,
}

/// A problem: which check it is about, and what an operator reads (the API gives the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What it is about.
    pub check: Check,
    /// In words.
    pub text: String,
}

impl Serialize for Problem {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl PartialEq<&str> for Problem {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

/// What is wrong with an agent last seen at `last_seen` (ms) that reported `health`, at `now`.
pub fn problems(now: i64, last_seen: Option<i64>, health: &Health) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |check, text: String| out.push(Problem { check, text });
    match last_seen {
        None => push(Check::Contact, "never heard from".to_owned()),
        Some(t) if now - t > STALE_AFTER_MS => push(
            Check::Contact,
            format!("stale: no heartbeat for {} min", (now - t) / 60_000),
        ),
        Some(_) => {}
    }
    if health.camera.as_deref() == Some("unavailable") {
        push(Check::Camera, "camera down".to_owned());
    }
    if let (Some(free), Some(floor)) = (health.free_disk_bytes, health.min_free_disk_bytes) {
        // At the floor the agent stops taking scans: warn while there is room to act.
        if free < floor.saturating_mul(2) {
            let text = format!("disk low: {} MiB free", free / (1024 * 1024));
            push(Check::Disk, text);
        }
    }
    if let Some(oldest) = health
        .oldest_unsent_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        let waiting = now - oldest.timestamp_millis();
        if waiting > BACKLOG_AFTER_MS {
            let text = format!("reports waiting for {} min", waiting / 60_000);
            push(Check::Backlog, text);
        }
    }
    if let Some(skew) = health.clock_skew_ms
        && skew.abs() > MAX_CLOCK_SKEW_MS
    {
        push(Check::Clock, format!("clock off by {} s", skew / 1000));
    }
    out
}

impl Store {
    /// Records a heartbeat: the agent was seen, and what it said.
    pub async fn heartbeat(&self, agent: &Agent, hb: &Heartbeat) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let health = Health {
            oldest_unsent_at: hb.oldest_unsent_at.map(|t| t.to_rfc3339()),
            camera: hb.camera.clone(),
            free_disk_bytes: hb.free_disk_bytes,
            min_free_disk_bytes: hb.min_free_disk_bytes,
            scans_today: hb.scans_today,
            declarations_cached: hb.declarations_cached,
            model_serial: hb.model_serial,
            clock_skew_ms: hb.sent_at.map(|t| t.timestamp_millis() - now),
        };
        sqlx::query(
            "UPDATE agents SET last_seen_at = $1, version = $2, models_json = $3, queue_depth = $4,
             status_json = $5 WHERE id = $6",
        )
        .bind(now)
        .bind(&hb.version)
        .bind(serde_json::to_string(&hb.models).unwrap_or_default())
        .bind(i64::from(hb.queue_depth))
        .bind(serde_json::to_string(&health).unwrap_or_default())
        .bind(agent.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every agent not revoked, by bay, with what needs an operator.
    pub async fn fleet(&self) -> Result<Vec<FleetAgent>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT name, bay, last_seen_at, version, models_json, queue_depth, status_json
             FROM agents WHERE revoked_at IS NULL ORDER BY bay, name",
        )
        .fetch_all(&self.pool)
        .await?;
        let now = now_ms();
        Ok(rows
            .iter()
            .map(|r| {
                let last_seen: Option<i64> = r.get(2);
                let health: Health = r
                    .get::<Option<String>, _>(6)
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or_default();
                FleetAgent {
                    name: r.get(0),
                    bay: r.get(1),
                    online: last_seen.is_some_and(|t| now - t <= STALE_AFTER_MS),
                    last_seen_at: last_seen.map(ms_to_rfc3339),
                    version: r.get(3),
                    models: r
                        .get::<Option<String>, _>(4)
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or(serde_json::Value::Null),
                    queue_depth: r.get(5),
                    problems: problems(now, last_seen, &health),
                    health,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_what_an_operator_must_fix() {
        let now = 10 * 3_600_000;
        let fine = Health {
            camera: Some("live".into()),
            free_disk_bytes: Some(50 << 30),
            min_free_disk_bytes: Some(1 << 30),
            clock_skew_ms: Some(800),
            oldest_unsent_at: Some(ms_to_rfc3339(now - 60_000)),
            ..Health::default()
        };
        assert!(problems(now, Some(now - 30_000), &fine).is_empty());
        assert_eq!(problems(now, None, &fine), ["never heard from"]);
        assert_eq!(
            problems(now, Some(now - 10 * 60_000), &fine),
            ["stale: no heartbeat for 10 min"]
        );
        let bad = Health {
            camera: Some("unavailable".into()),
            free_disk_bytes: Some(1500 << 20),
            clock_skew_ms: Some(-300_000),
            oldest_unsent_at: Some(ms_to_rfc3339(now - 40 * 60_000)),
            ..fine
        };
        assert_eq!(
            problems(now, Some(now), &bad),
            [
                "camera down",
                "disk low: 1500 MiB free",
                "reports waiting for 40 min",
                "clock off by -300 s"
            ]
        );
    }
}
