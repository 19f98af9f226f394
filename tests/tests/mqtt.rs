//! MQTT events against the real Mosquitto broker on 127.0.0.1:1883 (`./baylens test` starts one
//! where none runs): a subscriber, as a barrier or traffic-light controller would be, sees the
//! bay come online, its camera down, the scan, the lane (retained, before/after), the server's
//! new case and the supervisor's decision, and the bay go offline when the agent stops.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use scanner_sim::Scenario;
use support::*;
use tokio::sync::{mpsc, oneshot};

/// Every message under `prefix/#`, as (topic, payload, retained).
async fn subscribe(prefix: &str) -> mpsc::UnboundedReceiver<(String, String, bool)> {
    let mut options = MqttOptions::new(format!("{prefix}-sub"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(10));
    let (client, mut events) = AsyncClient::new(options, 16);
    client
        .subscribe(format!("{prefix}/#"), QoS::AtLeastOnce)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed, ready) = oneshot::channel();
    let mut subscribed = Some(subscribed);
    tokio::spawn(async move {
        let _client = client;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = String::from_utf8_lossy(&p.payload).into_owned();
                    if tx.send((p.topic, payload, p.retain)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    panic!("the test's MQTT subscriber lost the broker on 127.0.0.1:1883: {e}")
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("Mosquitto answers on 127.0.0.1:1883 (./baylens test starts it)")
        .unwrap();
    rx
}

/// Waits (up to 30 s) for a message on `topic`; returns its payload as JSON (or a string).
async fn next_on(
    rx: &mut mpsc::UnboundedReceiver<(String, String, bool)>,
    seen: &mut HashMap<String, Vec<String>>,
    topic: &str,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = seen
            .get_mut(topic)
            .and_then(|v| (!v.is_empty()).then(|| v.remove(0)))
        {
            return serde_json::from_str(&p).unwrap_or(serde_json::Value::String(p));
        }
        let (t, p, _) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("nothing on {topic}; seen {seen:?}"))
            .unwrap();
        seen.entry(t).or_default().push(p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bay_equipment_hears_scans_lanes_cases_and_decisions() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("baylens-test-{}-{nanos}", std::process::id());
    let mut rx = subscribe(&prefix).await;
    let mut seen = HashMap::new();
    let mqtt = baylens_mqtt::MqttConfig {
        host: "127.0.0.1".into(),
        port: 1883,
        prefix: prefix.clone(),
        client_id: None,
        username: None,
        password_file: None,
    };

    let root = tempfile::tempdir().unwrap();
    let mut server = start_server_with(
        &root.path().join("server"),
        "127.0.0.1:0",
        None,
        Some(mqtt.clone()),
    )
    .await;
    let token_file = register_agent(&server, root.path()).await;
    server
        .store
        .add_user(
            "test",
            "sup",
            PASSWORD,
            baylens_server::auth::Role::Supervisor,
            None,
        )
        .await
        .unwrap();
    let mut config = agent_config(root.path(), &server.url, &token_file);
    config.mqtt = Some(mqtt);
    // A camera that is not there: the bay reports it down.
    config.camera = Some(sim_camera_config(free_port()));
    std::fs::create_dir_all(&config.drop_dir).unwrap();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(edge_agent::run(config.clone(), async {
        let _ = agent_stopped.await;
    }));
    let bay = |event: &str| format!("{prefix}/BAY01/{event}");
    assert_eq!(
        next_on(&mut rx, &mut seen, &bay("available")).await,
        "online"
    );

    let camera = next_on(&mut rx, &mut seen, &bay("camera")).await;
    assert_eq!(camera["after"], "unavailable", "{camera}");
    assert_ne!(camera["before"], camera["after"]);

    // A scan: the bay tells its equipment, and the lane (retained) says what changed.
    let g = drop_scan(&config.drop_dir, Scenario::Concealment, 1);
    let scan = next_on(&mut rx, &mut seen, &bay("scan")).await;
    assert_eq!(scan["scan_id"], g.meta.scan_id.as_str());
    let lane = next_on(&mut rx, &mut seen, &bay("lane")).await;
    assert_eq!(lane["before"], serde_json::Value::Null);
    assert_eq!(lane["after"]["scan_id"], g.meta.scan_id.as_str());
    assert_eq!(lane["after"]["lane"], scan["lane"]);

    // The server's case, then a supervisor's decision with before and after.
    let case = next_on(&mut rx, &mut seen, &bay("case")).await;
    assert_eq!(case["scan_id"], g.meta.scan_id.as_str());
    let id = case["id"].as_i64().unwrap();
    let client = reqwest::Client::new();
    let sup = session_token(&client, &server.url, "sup").await;
    let decided = client
        .post(format!("{}/api/v1/cases/{id}/decisions", server.url))
        .bearer_auth(&sup)
        .json(&serde_json::json!({"decision": "release", "note": "seal intact"}))
        .send()
        .await
        .unwrap();
    assert!(
        decided.status().is_success(),
        "{}",
        decided.text().await.unwrap()
    );
    let decision = next_on(&mut rx, &mut seen, &bay("decision")).await;
    assert_eq!(decision["case_id"], id);
    assert_eq!(decision["decision"], "release");
    assert_eq!(decision["before"]["status"], "open");
    assert_eq!(decision["after"]["status"], "released");
    assert_eq!(decision["by"], "sup");

    // A second scan: the lane event carries the first one as `before`.
    let g2 = drop_scan(&config.drop_dir, Scenario::Honest, 2);
    let lane = next_on(&mut rx, &mut seen, &bay("lane")).await;
    assert_eq!(lane["before"]["scan_id"], g.meta.scan_id.as_str());
    assert_eq!(lane["after"]["scan_id"], g2.meta.scan_id.as_str());

    // The agent stops: the bay goes offline (retained, for equipment connecting later).
    stop_agent.send(()).unwrap();
    agent.await.unwrap().unwrap();
    assert_eq!(
        next_on(&mut rx, &mut seen, &bay("available")).await,
        "offline"
    );
    server.stop.take().unwrap().send(()).unwrap();
    server.task.await.unwrap().unwrap();
}
