//! Decisions drive the queue (issue "feedback loop", item 4): each finding kind in the review
//! queue shows how often it was confirmed at the bay with the model that raised it, and a
//! supervisor can keep only the cases whose findings this model often gets wrong there. On both
//! backends, through the real page.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use baylens_server::auth::Role;
use baylens_server::{AppState, app};
use common::json;
use tower::ServiceExt;

/// The queue page at `query` for the session `token`.
async fn queue(state: &AppState, query: &str, token: &str) -> String {
    let req = Request::builder()
        .uri(format!("/queue{query}"))
        .header(header::COOKIE, format!("__Host-baylens_session={token}"))
        .body(Body::empty())
        .unwrap();
    let r = app(state.clone()).oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The queue's rows, as the case ids they link to.
fn listed(page: &str) -> Vec<i64> {
    page.split("<tr data-href=\"/cases/")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_queue_shows_each_findings_record_and_filters_on_the_often_wrong() {
    for backend in common::backends() {
        let (_dir, store) = common::open(backend).await;
        let (_, agent1) = store.add_agent("test", "a1", "bay-1").await.unwrap();
        let (_, agent2) = store.add_agent("test", "a2", "bay-2").await.unwrap();
        let sup = common::user(&store, "sup", Role::Supervisor, None).await;
        let state = AppState::new(store);
        let (old, new) = ("aa11aa11aa11aa11", "bb22bb22bb22bb22");
        let mut n = 0;
        let mut report = |bay: &str, sha: &str| {
            n += 1;
            let mut r = common::report(&format!("r-{n}"), &format!("{bay}-{n}"), bay, 0.9);
            r["model"]["sha256"] = sha.into();
            r
        };
        let mut post = Vec::new();
        // Five judged concealed-object alarms of release `old` at bay-1: one confirmed.
        for _ in 0..5 {
            post.push(("bay-1", report("bay-1", old)));
        }
        // Open: bay-1 with `old` (its kind is often wrong there), bay-1 with `new` (no record
        // for that release), bay-2 with `old` (no record at that bay).
        post.push(("bay-1", report("bay-1", old)));
        post.push(("bay-1", report("bay-1", new)));
        post.push(("bay-2", report("bay-2", old)));
        let mut ids = Vec::new();
        for (bay, body) in &post {
            let token = if *bay == "bay-1" { &agent1 } else { &agent2 };
            let r = json(&state, "POST", "/api/v1/reports", Some(token), body).await;
            assert_eq!(r.status, StatusCode::CREATED, "{backend}: {}", r.text);
            ids.push(r.json["case_id"].as_i64().unwrap());
        }
        for (i, id) in ids[..5].iter().enumerate() {
            let (result, decision) = if i == 0 {
                ("discrepancy", "seize")
            } else {
                ("consistent", "release")
            };
            for (what, body) in [
                (
                    "examinations",
                    serde_json::json!({"result": result, "note": "examined"}),
                ),
                (
                    "decisions",
                    serde_json::json!({"decision": decision, "note": "decided"}),
                ),
            ] {
                let path = format!("/api/v1/cases/{id}/{what}");
                let r = json(&state, "POST", &path, Some(&sup), &body).await;
                assert!(r.status.is_success(), "{backend}: {path}: {}", r.text);
            }
        }

        let all = queue(&state, "", &sup).await;
        assert_eq!(listed(&all).len(), 8, "{backend}");
        assert!(
            all.contains("confirmed in 1 of 5 judged cases at bay-1"),
            "{backend}: the record is shown with its counts"
        );
        assert!(all.contains("concealed object 20 %"), "{backend}");
        assert!(all.contains("class=\"kind often-wrong\""), "{backend}");
        assert!(all.contains("id=\"track-record\""), "{backend}");
        assert!(
            all.contains("no judged case of this kind at bay-2"),
            "{backend}"
        );

        let doubtful = queue(&state, "?record=often_wrong&status=open", &sup).await;
        assert_eq!(
            listed(&doubtful),
            vec![ids[5]],
            "{backend}: only the open case whose kind this release often gets wrong at its bay"
        );
        assert!(
            doubtful.contains("value=\"often_wrong\" checked"),
            "{backend}"
        );
        // Every judged bay-1 case with `old` counts too when no status is chosen.
        let mut judged = listed(&queue(&state, "?record=often_wrong", &sup).await);
        judged.sort();
        assert_eq!(judged, ids[..6].to_vec(), "{backend}");
    }
}
