//! Outcome figures from seeded decisions and examination results, checked against values
//! computed by hand (see the table in the test), on both backends, as JSON and CSV.

mod common;

use axum::http::StatusCode;
use baylens_protocol::risk::LaneThresholds;
use baylens_server::AppState;
use baylens_server::auth::Role;
use common::{call, json};

/// A report of `bay` with one concealed-object finding at `scan` risk, analysed by model
/// `sha256`, captured `days_ago`.
fn report(n: u32, bay: &str, scan: f32, sha256: &str, days_ago: i64) -> serde_json::Value {
    let mut r = common::report(&format!("r-{n}"), &format!("{bay}-{n}"), bay, scan);
    let at = chrono::Utc::now() - chrono::Duration::days(days_ago);
    r["captured_at"] = at.to_rfc3339().into();
    r["model"]["sha256"] = sha256.into();
    r
}

#[tokio::test]
async fn outcome_figures_match_the_hand_computed_ones() {
    for backend in common::backends() {
        let (_dir, mut store) = common::open(backend).await;
        // No declarations here, so case risk = 1 − 0.6·(1 − scan): scan 0.8 → 0.88 (red),
        // 0.2 → 0.52 (yellow), 0.0 → 0.40 (green with these thresholds).
        store.lanes = LaneThresholds {
            yellow: 0.45,
            red: 0.7,
        };
        let (_, agent1) = store.add_agent("test", "a1", "bay-1").await.unwrap();
        let (_, agent2) = store.add_agent("test", "a2", "bay-2").await.unwrap();
        let sup = common::user(&store, "sup", Role::Supervisor, None).await;
        let off = common::user(&store, "off", Role::Officer, Some("bay-1")).await;
        let state = AppState::new(store);
        let (old, new) = ("aa11aa11aa11aa11", "bb22bb22bb22bb22");
        // case  week  bay    lane    examination   decision
        // c1    old   bay-1  red     discrepancy   seize
        // c2    old   bay-1  red     consistent    release
        // c3    old   bay-1  yellow  —             release
        // c4    new   bay-2  red     discrepancy   —
        // c5    new   bay-1  green   discrepancy   — (a random check)
        // c6    new   bay-1  green   —             —
        let seeds = [
            (1, "bay-1", 0.8, old, 8, "red"),
            (2, "bay-1", 0.8, old, 8, "red"),
            (3, "bay-1", 0.2, old, 8, "yellow"),
            (4, "bay-2", 0.8, new, 0, "red"),
            (5, "bay-1", 0.0, new, 0, "green"),
            (6, "bay-1", 0.0, new, 0, "green"),
        ];
        let mut ids = Vec::new();
        for (n, bay, scan, sha, days, lane) in seeds {
            let token = if bay == "bay-1" { &agent1 } else { &agent2 };
            let r = json(
                &state,
                "POST",
                "/api/v1/reports",
                Some(token),
                &report(n, bay, scan, sha, days),
            )
            .await;
            assert_eq!(r.status, StatusCode::CREATED, "{backend}: {}", r.text);
            let id = r.json["case_id"].as_i64().unwrap();
            let c = call(
                &state,
                "GET",
                &format!("/api/v1/cases/{id}"),
                Some(&sup),
                None,
                Vec::new(),
            )
            .await;
            assert_eq!(c.json["lane"], lane, "{backend}: case {n}");
            ids.push(id);
        }
        let act = |id: i64, what: &str, body: serde_json::Value, token: &str| {
            let path = format!("/api/v1/cases/{id}/{what}");
            let token = token.to_owned();
            let state = state.clone();
            async move {
                let r = json(&state, "POST", &path, Some(&token), &body).await;
                assert!(r.status.is_success(), "{path}: {}", r.text);
            }
        };
        let exam = |result: &str| serde_json::json!({"result": result, "note": "examined"});
        let decide = |d: &str| serde_json::json!({"decision": d, "note": "decided"});
        act(ids[0], "examinations", exam("discrepancy"), &off).await;
        act(ids[0], "decisions", decide("seize"), &sup).await;
        act(ids[1], "examinations", exam("consistent"), &off).await;
        act(ids[1], "decisions", decide("release"), &sup).await;
        act(ids[2], "decisions", decide("release"), &sup).await;
        act(ids[3], "examinations", exam("discrepancy"), &sup).await;
        act(ids[4], "examinations", exam("discrepancy"), &off).await;

        let get = |q: &str| {
            let path = format!("/api/v1/outcomes{q}");
            let sup = sup.clone();
            let state = state.clone();
            async move { call(&state, "GET", &path, Some(&sup), None, Vec::new()).await }
        };
        let r = get("").await;
        assert_eq!(r.status, StatusCode::OK, "{backend}: {}", r.text);
        let t = &r.json["totals"];
        // Red and yellow: c1–c4. Examined: c1, c2, c4; hits c1, c4. Closed: c1, c2, c3; released
        // clean c2, c3. Examined in all: c1, c2, c4, c5; seized c1. Green checked: c5, a hit.
        let expect = serde_json::json!({
            "cases": 6, "flagged": 4, "flagged_examined": 3, "flagged_hits": 2,
            "hit_rate": 2.0 / 3.0, "flagged_closed": 3, "false_alarms": 2,
            "false_alarm_share": 2.0 / 3.0, "examined": 4, "seizures": 1,
            "examinations_per_seizure": 4.0, "green_examined": 1, "green_discrepancies": 1
        });
        assert_eq!(t, &expect, "{backend}");
        let group = |by: &str, key: &str| {
            r.json["groups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["by"] == by && g["key"].as_str().unwrap().starts_with(key))
                .cloned()
                .unwrap_or_else(|| panic!("no group {by} {key}: {}", r.json))
        };
        let old_week = group("model", "concealment-v1@aa11");
        assert_eq!(
            (old_week["cases"].as_u64(), old_week["hit_rate"].as_f64()),
            (Some(3), Some(0.5))
        );
        assert_eq!(old_week["false_alarm_share"].as_f64(), Some(2.0 / 3.0));
        let new_model = group("model", "concealment-v1@bb22");
        assert_eq!(
            (
                new_model["flagged"].as_u64(),
                new_model["hit_rate"].as_f64()
            ),
            (Some(1), Some(1.0))
        );
        assert!(
            new_model["false_alarm_share"].is_null(),
            "nothing flagged was closed"
        );
        let bay2 = group("bay", "bay-2");
        assert_eq!(bay2["cases"], 1);
        let weeks: Vec<_> = r.json["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["by"] == "week")
            .collect();
        assert_eq!(weeks.len(), 2, "{backend}: the trend has both weeks");
        let changes = r.json["model_changes"].as_array().unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0]["sha256"], old);
        assert_eq!(changes[1]["sha256"], new);
        assert_eq!(changes[1]["week"], weeks[1]["key"]);
        // concealed_object in all six; judged: all but c6 (open, never examined); confirmed c1, c4,
        // c5; refuted c2, c3.
        let kind = &r.json["kinds"][0];
        assert_eq!(kind["kind"], "concealed_object");
        assert_eq!(
            (
                kind["judged"].as_u64(),
                kind["confirmed"].as_u64(),
                kind["refuted"].as_u64()
            ),
            (Some(5), Some(3), Some(2))
        );
        assert_eq!(kind["confirmation_rate"].as_f64(), Some(0.6));

        // Filters: one bay; one model name; a period with nothing in it.
        let r = get("?bay=bay-2").await;
        assert_eq!(r.json["totals"]["cases"], 1);
        let r = get("?model=no-such-model").await;
        assert_eq!(r.json["totals"]["cases"], 0);
        assert!(r.json["totals"]["hit_rate"].is_null());
        let from = (chrono::Utc::now() - chrono::Duration::days(3)).format("%Y-%m-%dT%H:%M:%SZ");
        let r = get(&format!("?from={from}")).await;
        assert_eq!(r.json["totals"]["cases"], 3, "{backend}: only the new week");
        // CSV: totals first, same figures.
        let r = call(
            &state,
            "GET",
            "/api/v1/outcomes?format=csv",
            Some(&sup),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let mut lines = r.text.lines();
        assert!(lines.next().unwrap().starts_with("by,key,cases,flagged,"));
        assert_eq!(
            lines.next().unwrap(),
            "total,\"\",6,4,3,2,0.6667,3,2,0.6667,4,1,4.0000,1,1"
        );
        // Bad queries are named.
        assert_eq!(
            get("?format=xml").await.status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(get("?from=yesterday").await.status, StatusCode::BAD_REQUEST);
        assert_eq!(get("?color=red").await.status, StatusCode::BAD_REQUEST);
        let r = call(
            &state,
            "GET",
            "/api/v1/outcomes",
            Some(&off),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}
