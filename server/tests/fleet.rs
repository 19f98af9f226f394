//! The fleet: agents' heartbeats become the fleet API, page and metrics, with what needs an
//! operator named, on both backends.

mod common;

use axum::body::Body;
use axum::http::StatusCode;
use baylens_server::AppState;
use baylens_server::auth::Role;
use common::{call, json};

#[tokio::test]
async fn heartbeats_become_the_fleet_with_its_problems_named() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        let (_, healthy) = store
            .add_agent("test", "bay01-agent", "BAY01")
            .await
            .unwrap();
        let (_, ailing) = store
            .add_agent("test", "bay02-agent", "BAY02")
            .await
            .unwrap();
        store
            .add_agent("test", "bay03-agent", "BAY03")
            .await
            .unwrap();
        let sup = common::user(&store, "sup", Role::Supervisor, None).await;
        let officer = common::user(&store, "off", Role::Officer, Some("BAY01")).await;
        let admin = common::user(&store, "root", Role::Admin, None).await;
        let state = AppState::new(store);
        let now = chrono::Utc::now();
        let beat = |token: String, body: serde_json::Value| {
            let state = state.clone();
            async move {
                let r = json(
                    &state,
                    "POST",
                    "/api/v1/agents/heartbeat",
                    Some(&token),
                    &body,
                )
                .await;
                assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
            }
        };
        beat(healthy, serde_json::json!({
            "version": "0.1.0", "models": {"xray-concealment": "ab".repeat(32)}, "queue_depth": 0,
            "camera": "live", "free_disk_bytes": 40u64 << 30, "min_free_disk_bytes": 1u64 << 30,
            "scans_today": 17, "declarations_cached": 230, "model_serial": 3,
            "sent_at": now.to_rfc3339(),
        }))
        .await;
        beat(ailing, serde_json::json!({
            "version": "0.1.0", "models": {}, "queue_depth": 4,
            "oldest_unsent_at": (now - chrono::Duration::minutes(50)).to_rfc3339(),
            "camera": "unavailable", "free_disk_bytes": 1500u64 << 20, "min_free_disk_bytes": 1u64 << 30,
            "scans_today": 2, "declarations_cached": 0,
            "sent_at": (now + chrono::Duration::minutes(5)).to_rfc3339(),
        }))
        .await;

        let get = |path: &'static str, token: String| {
            let state = state.clone();
            async move { call(&state, "GET", path, Some(&token), None, Body::empty()).await }
        };
        let fleet = get("/api/v1/fleet", sup.clone()).await;
        assert_eq!(fleet.status, StatusCode::OK, "{b}: {}", fleet.text);
        let fleet: Vec<serde_json::Value> = serde_json::from_str(&fleet.text).unwrap();
        assert_eq!(fleet.len(), 3, "{b}");
        let by = |name: &str| fleet.iter().find(|a| a["name"] == name).unwrap().clone();
        let ok = by("bay01-agent");
        assert_eq!(ok["online"], true, "{b}: {ok}");
        assert_eq!(ok["problems"], serde_json::json!([]), "{b}: {ok}");
        assert_eq!(ok["scans_today"], 17);
        assert_eq!(ok["declarations_cached"], 230);
        assert_eq!(ok["model_serial"], 3);
        assert!(ok["clock_skew_ms"].as_i64().unwrap().abs() < 60_000, "{ok}");
        let bad = by("bay02-agent");
        let problems: Vec<&str> = bad["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(problems.len(), 4, "{b}: {problems:?}");
        assert_eq!(problems[0], "camera down");
        assert!(problems[1].starts_with("disk low"), "{problems:?}");
        assert!(
            problems[2].starts_with("reports waiting for 5"),
            "{problems:?}"
        );
        assert!(problems[3].starts_with("clock off by 29"), "{problems:?}");
        let silent = by("bay03-agent");
        assert_eq!(silent["online"], false);
        assert_eq!(silent["problems"], serde_json::json!(["never heard from"]));

        // Officers see their bay, not the fleet; metrics carry the same states for alerts.
        assert_eq!(
            get("/api/v1/fleet", officer).await.status,
            StatusCode::FORBIDDEN
        );
        let metrics = get("/metrics", admin).await.text;
        for line in [
            "baylens_agent_up{agent=\"bay01-agent\",bay=\"BAY01\"} 1",
            "baylens_agent_up{agent=\"bay03-agent\",bay=\"BAY03\"} 0",
            "baylens_agent_camera_up{agent=\"bay02-agent\",bay=\"BAY02\"} 0",
            "baylens_agent_camera_up{agent=\"bay01-agent\",bay=\"BAY01\"} 1",
            "baylens_agent_problems{agent=\"bay02-agent\",bay=\"BAY02\"} 4",
        ] {
            assert!(metrics.contains(line), "{b}: missing {line} in\n{metrics}");
        }
        // The store agrees with the API on who needs attention.
        let page = state.store.fleet().await.unwrap();
        assert_eq!(page.iter().filter(|a| !a.problems.is_empty()).count(), 2);
    }
}
