//! MQTT events for bay equipment, after Frigate's conventions: every topic is
//! `<prefix>/<bay>/<event>`, every payload JSON, and a state that changes carries `before` and
//! `after`. The topics and payloads are documented in `protocol/MQTT.md`.
//!
//! The [`Publisher`] keeps its connection in a background task that reconnects after an
//! outage; a publish while the broker is away is dropped with a log line (events are for
//! equipment acting now, not a record: the server keeps that).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde::Deserialize;

/// Where to publish: the `[mqtt]` section of the agent's config, or the server's `--mqtt-*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// First level of every topic.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// MQTT client id (default: `baylens-` and the bay or `server`).
    #[serde(default)]
    pub client_id: Option<String>,
    /// User name, if the broker wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// File holding the password (never the password itself in the config).
    #[serde(default)]
    pub password_file: Option<std::path::PathBuf>,
}

fn default_port() -> u16 {
    1883
}

fn default_prefix() -> String {
    "baylens".into()
}

/// A setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("mqtt: {0}")]
pub struct MqttError(pub String);

impl MqttConfig {
    /// Checks the prefix (no wildcards, no empty levels) and the host.
    pub fn validate(&self) -> Result<(), MqttError> {
        if self.host.trim().is_empty() {
            return Err(MqttError("host is empty".into()));
        }
        let p = &self.prefix;
        if p.is_empty() || p.contains(['+', '#']) || p.split('/').any(str::is_empty) {
            return Err(MqttError(format!(
                "prefix {p:?} must be topic levels without wildcards or empty levels, e.g. baylens or site/baylens"
            )));
        }
        Ok(())
    }
}

/// The topic of `event` for `bay`.
pub fn topic(prefix: &str, bay: &str, event: &str) -> String {
    format!("{prefix}/{bay}/{event}")
}

/// Publishes events; cheap to clone.
#[derive(Debug, Clone)]
pub struct Publisher {
    client: AsyncClient,
    prefix: String,
    stopped: Arc<AtomicBool>,
}

impl Publisher {
    /// Connects in the background as `default_id` (unless the config names one). With
    /// `availability`, `<prefix>/<bay>/available` becomes `online` (retained) at every
    /// connection, and the broker sets it to `offline` if the connection drops (last will).
    pub fn start(
        config: &MqttConfig,
        default_id: &str,
        availability: Option<&str>,
    ) -> Result<Self, MqttError> {
        config.validate()?;
        let id = config
            .client_id
            .clone()
            .unwrap_or_else(|| default_id.into());
        let mut options = MqttOptions::new(id, config.host.clone(), config.port);
        options.set_keep_alive(Duration::from_secs(30));
        if let Some(user) = &config.username {
            let password = match &config.password_file {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| MqttError(format!("password_file {}: {e}", path.display())))?
                    .trim()
                    .to_owned(),
                None => String::new(),
            };
            options.set_credentials(user.clone(), password);
        }
        let available = availability.map(|bay| topic(&config.prefix, bay, "available"));
        if let Some(t) = &available {
            options.set_last_will(LastWill::new(t.clone(), "offline", QoS::AtLeastOnce, true));
        }
        let (client, mut events) = AsyncClient::new(options, 64);
        let announcer = client.clone();
        let host = format!("{}:{}", config.host, config.port);
        let stopped = Arc::new(AtomicBool::new(false));
        let done = stopped.clone();
        tokio::spawn(async move {
            let mut down_logged = false;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        tracing::info!(broker = %host, "MQTT connected");
                        down_logged = false;
                        if let Some(t) = &available {
                            let _ =
                                announcer.try_publish(t.clone(), QoS::AtLeastOnce, true, "online");
                        }
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        // Our own clean disconnect: drain it, then stop.
                        let _ = events.poll().await;
                        return;
                    }
                    Ok(_) => {}
                    Err(_) if done.load(Ordering::SeqCst) => return,
                    Err(e) => {
                        if !down_logged {
                            tracing::warn!(broker = %host, "MQTT broker unreachable: {e}; retrying");
                            down_logged = true;
                        }
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                }
            }
        });
        Ok(Self {
            client,
            prefix: config.prefix.clone(),
            stopped,
        })
    }

    /// Publishes `payload` as JSON on `<prefix>/<bay>/<event>`, at least once; `retain` for
    /// states (what a device connecting later should see).
    pub fn publish(&self, bay: &str, event: &str, payload: &serde_json::Value, retain: bool) {
        let t = topic(&self.prefix, bay, event);
        if let Err(e) =
            self.client
                .try_publish(t.clone(), QoS::AtLeastOnce, retain, payload.to_string())
        {
            tracing::warn!(topic = %t, "MQTT event dropped: {e}");
        }
    }

    /// Says `offline` on the availability topic of `bay` and disconnects cleanly (within two
    /// seconds: a broker that is away does not hold up a shutdown).
    pub async fn stop(&self, bay: Option<&str>) {
        self.stopped.store(true, Ordering::SeqCst);
        let goodbye = async {
            if let Some(bay) = bay {
                let t = topic(&self.prefix, bay, "available");
                let _ = self
                    .client
                    .publish(t, QoS::AtLeastOnce, true, "offline")
                    .await;
            }
            let _ = self.client.disconnect().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), goodbye).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_without_wildcards_or_empty_levels() {
        let config = |prefix: &str| MqttConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            prefix: prefix.into(),
            client_id: None,
            username: None,
            password_file: None,
        };
        config("baylens").validate().unwrap();
        config("site-7/baylens").validate().unwrap();
        for bad in ["", "a/#", "+/x", "a//b", "/a"] {
            assert!(config(bad).validate().is_err(), "{bad}");
        }
        assert_eq!(topic("baylens", "BAY01", "lane"), "baylens/BAY01/lane");
    }
}
