//! Signed case bundles on both backends: a case exported by one store is imported by another
//! that trusts the key, once (a second import changes nothing), with its origin and files, and
//! the audit chains stay intact. The two-server round trip with tampering is
//! `tests/tests/bundles.rs`.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use baylens_server::auth::Role;
use baylens_server::bundle::{BundleSigner, MEDIA_TYPE};
use baylens_server::store::AuditVerdict;
use baylens_server::{AppState, Settings};
use common::{call, json};

#[tokio::test]
async fn a_case_exported_by_one_store_is_imported_once_by_another() {
    for backend in common::backends() {
        let signer = BundleSigner::generate("Administration A").unwrap();
        let public = signer.public();
        let (_da, store_a) = common::open(backend).await;
        let (_db, store_b) = common::open(backend).await;
        let (_, agent) = store_a.add_agent("test", "a1", "BAY01").await.unwrap();
        let sup_a = common::user(&store_a, "sup", Role::Supervisor, None).await;
        let sup_b = common::user(&store_b, "sup", Role::Supervisor, None).await;
        let a = AppState::with_settings(
            store_a,
            Settings {
                bundle_signer: Some(Arc::new(signer)),
                ..Default::default()
            },
        );
        let b = AppState::new(store_b);
        // No key at B: nothing to export, and nothing is trusted yet.
        let r = call(
            &b,
            "GET",
            "/api/v1/bundle-key",
            Some(&sup_b),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{backend}");
        let report = common::report("r-1", "BAY01-1", "BAY01", 0.8);
        let r = json(&a, "POST", "/api/v1/reports", Some(&agent), &report).await;
        let case_id = r.json["case_id"].as_i64().unwrap();
        let r = call(
            &a,
            "GET",
            &format!("/api/v1/cases/{case_id}/bundle"),
            Some(&sup_a),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{backend}: {}", r.text);
        let bundle = r.bytes;
        let import = |bytes: Vec<u8>| {
            call(
                &b,
                "POST",
                "/api/v1/bundles",
                Some(&sup_b),
                Some(MEDIA_TYPE),
                bytes,
            )
        };
        let r = import(bundle.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{backend}: untrusted"
        );
        assert!(r.text.contains(&public.key_id), "{}", r.text);

        let r = call(
            &a,
            "GET",
            "/api/v1/bundle-key",
            Some(&sup_a),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.json["key_id"], public.key_id.as_str());
        assert!(
            b.store
                .trust_key("test", "Partner A", &public)
                .await
                .unwrap()
        );
        assert!(
            !b.store
                .trust_key("test", "Partner A", &public)
                .await
                .unwrap()
        );
        let r = import(bundle.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{backend}: {}", r.text);
        let id = r.json["id"].as_i64().unwrap();
        let r = import(bundle.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{backend}");
        assert_eq!(r.json["id"], id);
        let list = b.store.imported_cases(10).await.unwrap();
        assert_eq!(list.len(), 1, "{backend}");
        assert_eq!(list[0].origin, "Partner A");
        assert_eq!(list[0].origin_case_id, case_id);
        assert_eq!(list[0].manifest.case.scan_id, "BAY01-1");
        let r = call(
            &b,
            "GET",
            &format!("/api/v1/imports/{id}/files/report.json"),
            Some(&sup_b),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["scan_id"], "BAY01-1");
        let r = call(
            &b,
            "GET",
            &format!("/api/v1/imports/{id}/files/nothing.json"),
            Some(&sup_b),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        for state in [&a, &b] {
            let verdict = state.store.verify_audit().await.unwrap();
            assert!(matches!(verdict, AuditVerdict::Intact { .. }), "{backend}");
        }
        let entries = a
            .store
            .audit_entries(Some(&format!("case:{case_id}")), 10)
            .await
            .unwrap();
        assert!(
            entries.iter().any(|e| e.action == "case.bundle"),
            "{backend}"
        );
    }
}
