//! The store on both backends: migrations in lockstep, ingest matched to declarations,
//! decisions, visibility, and the audit chain catching edits and deletions.

mod common;

use baylens_protocol::{Declaration, ScanReport};
use baylens_server::auth::Role;
use baylens_server::store::{AuditVerdict, Backend, CaseFilter, Decision, Ingested, Lodged, Store};
use sqlx::Row;

async fn agent(store: &Store, name: &str, bay: &str) -> baylens_server::store::Agent {
    let (_, token) = store.add_agent("test", name, bay).await.unwrap();
    store.agent_by_token(&token).await.unwrap().unwrap()
}

fn parse_report(v: &serde_json::Value) -> ScanReport {
    ScanReport::from_json(v.to_string().as_bytes()).unwrap()
}

async fn user(
    store: &Store,
    name: &str,
    role: Role,
    bay: Option<&str>,
) -> baylens_server::store::User {
    // No session: the audit counts below are of the changes each test makes.
    store
        .add_user("test", name, "correct horse battery", role, bay)
        .await
        .unwrap();
    store.user_by_name(name).await.unwrap().unwrap().0
}

#[test]
fn migration_folders_hold_the_same_files() {
    let names = |dir: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

async fn columns(store: &Store) -> Vec<(String, String)> {
    let sql = match store.backend {
        Backend::Sqlite => "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
                            WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '_sqlx%'",
        Backend::Postgres => "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns
                              WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%'",
    };
    let mut cols: Vec<(String, String)> = sqlx::query(sql)
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    cols.sort();
    cols
}

#[tokio::test]
async fn both_backends_have_the_same_tables_and_columns() {
    let backends = common::backends();
    let mut seen = Vec::new();
    for b in &backends {
        let (_d, store) = common::open(b).await;
        seen.push(columns(&store).await);
    }
    assert!(seen[0].len() > 50, "{:?}", seen[0]);
    for other in &seen[1..] {
        assert_eq!(&seen[0], other);
    }
}

#[tokio::test]
async fn reports_are_matched_to_declarations_and_scored() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        let a = agent(&store, "agent-1", "bay-1").await;
        let d = Declaration::from_json(
            &common::declaration("R-100", "bay-1").to_string(),
            chrono::Utc::now(),
        )
        .unwrap();
        let Lodged::Created(row) = store.lodge_declaration("user:sup", &d).await.unwrap() else {
            panic!("not created")
        };
        assert!(row.pre_risk > 0.0, "first declaration from this declarant");
        // Same content again: idempotent; different content: conflict.
        assert!(matches!(
            store.lodge_declaration("user:sup", &d).await.unwrap(),
            Lodged::Unchanged(_)
        ));
        let mut changed = d.clone();
        changed.office = "KENBI".into();
        assert_eq!(
            store.lodge_declaration("user:sup", &changed).await.unwrap(),
            Lodged::Conflict
        );

        // Matched by container code (the report names no declaration).
        let r = parse_report(&common::report("r1", "bay-1-1", "bay-1", 0.1));
        let Ingested::Created(case) = store.ingest_report(&a, &r, "{}").await.unwrap() else {
            panic!("{b}: not created")
        };
        assert_eq!(case.declaration_ref.as_deref(), Some("R-100"), "{b}");
        let expected = baylens_server::risk::case_risk(0.1, Some(row.pre_risk));
        assert!(
            (case.risk - expected).abs() < 1e-6,
            "{b}: {} vs {expected}",
            case.risk
        );

        // No declaration for this container: treated as undeclared goods.
        let mut v = common::report("r2", "bay-1-2", "bay-1", 0.1);
        v["container_code"] = "MSKU9070323".into();
        let Ingested::Created(case) = store
            .ingest_report(&a, &parse_report(&v), "{}")
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(case.declaration_ref, None);
        assert!((case.risk - baylens_server::risk::case_risk(0.1, None)).abs() < 1e-6);
        assert_eq!(
            case.lane, "yellow",
            "{b}: an undeclared load is never green"
        );

        // Idempotent by report id; a second report for the same scan conflicts.
        assert!(matches!(
            store.ingest_report(&a, &r, "{}").await.unwrap(),
            Ingested::Duplicate(_)
        ));
        let other = parse_report(&common::report("r3", "bay-1-1", "bay-1", 0.1));
        assert!(matches!(
            store.ingest_report(&a, &other, "{}").await.unwrap(),
            Ingested::ScanConflict(_)
        ));
        assert_eq!(store.count_cases().await.unwrap(), 2);
    }
}

#[tokio::test]
async fn visibility_filters_and_decisions() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        let a1 = agent(&store, "agent-1", "bay-1").await;
        let a2 = agent(&store, "agent-2", "bay-2").await;
        for (i, risk) in [0.9f32, 0.2, 0.4].iter().enumerate() {
            let r = parse_report(&common::report(
                &format!("r1-{i}"),
                &format!("bay-1-{i}"),
                "bay-1",
                *risk,
            ));
            store.ingest_report(&a1, &r, "{}").await.unwrap();
        }
        let r = parse_report(&common::report("r2", "bay-2-0", "bay-2", 0.95));
        let Ingested::Created(other_bay) = store.ingest_report(&a2, &r, "{}").await.unwrap() else {
            panic!()
        };

        let sup = user(&store, "sup", Role::Supervisor, None).await;
        let off = user(&store, "off1", Role::Officer, Some("bay-1")).await;
        let agency = user(&store, "health", Role::Agency, None).await;

        let all = store
            .list_cases(&sup, &CaseFilter::default())
            .await
            .unwrap();
        assert_eq!(all.len(), 4);
        assert!(
            all.windows(2).all(|w| w[0].risk >= w[1].risk),
            "{b}: ranked by risk"
        );
        let mine = store
            .list_cases(&off, &CaseFilter::default())
            .await
            .unwrap();
        assert_eq!(mine.len(), 3);
        assert!(mine.iter().all(|c| c.bay == "bay-1"));
        assert!(
            store
                .list_cases(&agency, &CaseFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.case_access(&off, other_bay.id).await.unwrap(),
            Some(false)
        );
        assert_eq!(store.case_access(&off, 999_999).await.unwrap(), None);

        let red = CaseFilter {
            lane: Some("red".into()),
            ..Default::default()
        };
        assert_eq!(store.list_cases(&sup, &red).await.unwrap().len(), 2);
        let by_bay = CaseFilter {
            bay: Some("bay-2".into()),
            container: Some("csqu30".into()),
            ..Default::default()
        };
        assert_eq!(store.list_cases(&sup, &by_bay).await.unwrap().len(), 1);
        // A container prefix alone (a range on the index, on both backends).
        let by_container = CaseFilter {
            container: Some("csqu 30".into()),
            ..Default::default()
        };
        let hits = store.list_cases(&sup, &by_container).await.unwrap();
        assert!(!hits.is_empty());
        assert!(hits.iter().all(|c| {
            c.container_code
                .as_deref()
                .is_some_and(|k| k.starts_with("CSQU30"))
        }));
        let nothing = CaseFilter {
            container: Some("ZZZZ".into()),
            ..Default::default()
        };
        assert!(store.list_cases(&sup, &nothing).await.unwrap().is_empty());
        let future = CaseFilter {
            from: Some(chrono::Utc::now() + chrono::Duration::days(1)),
            ..Default::default()
        };
        assert!(store.list_cases(&sup, &future).await.unwrap().is_empty());

        // Sharing makes a case visible to the agency, and only that case.
        store
            .add_event(&sup, other_bay.id, "share", Some("health"), None)
            .await
            .unwrap();
        let shared = store
            .list_cases(&agency, &CaseFilter::default())
            .await
            .unwrap();
        assert_eq!(
            shared.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![other_bay.id]
        );

        // Decisions: hold, then release; nothing after release.
        assert_eq!(
            store
                .decide(&sup, other_bay.id, Decision::Hold, Some("check the seals"))
                .await
                .unwrap(),
            Ok("held")
        );
        assert_eq!(
            store
                .decide(&sup, other_bay.id, Decision::Release, None)
                .await
                .unwrap(),
            Ok("released")
        );
        assert_eq!(
            store
                .decide(&sup, other_bay.id, Decision::Seize, Some("too late"))
                .await
                .unwrap(),
            Err("released".to_string())
        );
        let detail = store.case_detail(other_bay.id).await.unwrap().unwrap();
        assert_eq!(detail.summary.status, "released");
        let kinds: Vec<_> = detail.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["share", "decision", "decision"]);
        assert_eq!(detail.shared_with, ["health"]);
        let rows = store.release_rows(&sup, 0, i64::MAX).await.unwrap();
        let row = rows.iter().find(|r| r.case_id == other_bay.id).unwrap();
        assert!(row.decided_at.is_some() && row.released_at >= row.decided_at);
    }
}

#[tokio::test]
async fn the_audit_chain_catches_edits_and_deletions() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        let sup = user(&store, "sup", Role::Supervisor, None).await;
        let a = agent(&store, "agent-1", "bay-1").await;
        let r = parse_report(&common::report("r1", "bay-1-1", "bay-1", 0.9));
        let Ingested::Created(case) = store.ingest_report(&a, &r, "{}").await.unwrap() else {
            panic!()
        };
        store
            .decide(
                &sup,
                case.id,
                Decision::PhysicalExamination,
                Some("dense block"),
            )
            .await
            .unwrap()
            .unwrap();
        store
            .add_event(&sup, case.id, "note", None, Some("seal intact"))
            .await
            .unwrap();
        let AuditVerdict::Intact { rows, .. } = store.verify_audit().await.unwrap() else {
            panic!("{b}: fresh chain broken")
        };
        assert_eq!(rows, 4, "user, agent, decision, note");

        // Someone rewrites the decision.
        sqlx::query("UPDATE audit_log SET detail = $1 WHERE seq = 3")
            .bind(r#"{"decision":"release","note":null}"#)
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(
            matches!(
                store.verify_audit().await.unwrap(),
                AuditVerdict::Broken { seq: 3, .. }
            ),
            "{b}"
        );

        // Or deletes it.
        sqlx::query("DELETE FROM audit_log WHERE seq = 3")
            .execute(&store.pool)
            .await
            .unwrap();
        let AuditVerdict::Broken { seq, reason } = store.verify_audit().await.unwrap() else {
            panic!()
        };
        assert_eq!(seq, 3);
        assert!(reason.contains("missing"), "{reason}");
    }
}

#[tokio::test]
async fn the_cli_verifies_the_audit_log() {
    let (dir, store) = common::open("sqlite").await;
    user(&store, "sup", Role::Supervisor, None).await;
    user(&store, "adm", Role::Admin, None).await;
    let verify = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_server"))
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "audit",
                "verify",
            ])
            .output()
            .unwrap()
    };
    let ok = verify();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact: 2 entries"));
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1")
        .execute(&store.pool)
        .await
        .unwrap();
    let bad = verify();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("BROKEN at entry 1"));
}

#[tokio::test]
async fn revoked_agents_and_ended_sessions_stop_at_once() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        let (_, token) = store.add_agent("test", "agent-1", "bay-1").await.unwrap();
        assert!(store.agent_by_token(&token).await.unwrap().is_some());
        assert!(store.revoke_agent("test", "agent-1").await.unwrap());
        assert!(store.agent_by_token(&token).await.unwrap().is_none(), "{b}");
        let session = common::user(&store, "sup", Role::Supervisor, None).await;
        assert!(store.user_by_session(&session).await.unwrap().is_some());
        store.end_session(&session).await.unwrap();
        assert!(store.user_by_session(&session).await.unwrap().is_none());
        // A role change ends the user's sessions, so the new role applies now.
        let session = store
            .new_session(&store.user_by_name("sup").await.unwrap().unwrap().0)
            .await
            .unwrap();
        assert!(
            store
                .set_role("test", "sup", Role::Officer, Some("bay-1"))
                .await
                .unwrap()
        );
        assert!(store.user_by_session(&session).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_audited_changes_all_land_and_the_chain_holds() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        let sup = user(&store, "sup", Role::Supervisor, None).await;
        let a = agent(&store, "agent-1", "bay-1").await;
        let r = parse_report(&common::report("r1", "bay-1-1", "bay-1", 0.9));
        let Ingested::Created(case) = store.ingest_report(&a, &r, "{}").await.unwrap() else {
            panic!()
        };
        let case_id = case.id;
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (store, sup) = (store.clone(), sup.clone());
            tasks.push(tokio::spawn(async move {
                store
                    .add_event(&sup, case_id, "note", None, Some(&format!("note {i}")))
                    .await
            }));
        }
        // Two supervisors close the case at the same moment: exactly one wins.
        let (s1, s2) = (store.clone(), store.clone());
        let (u1, u2) = (sup.clone(), sup.clone());
        let seize = tokio::spawn(async move {
            s1.decide(&u1, case_id, Decision::Seize, Some("cigarettes"))
                .await
        });
        let release =
            tokio::spawn(async move { s2.decide(&u2, case_id, Decision::Release, None).await });
        for t in tasks {
            t.await
                .unwrap()
                .unwrap_or_else(|e| panic!("{b}: a concurrent note failed: {e}"));
        }
        let outcomes = [
            seize.await.unwrap().unwrap(),
            release.await.unwrap().unwrap(),
        ];
        assert_eq!(
            outcomes.iter().filter(|o| o.is_ok()).count(),
            1,
            "{b}: {outcomes:?}"
        );
        let AuditVerdict::Intact { rows, .. } = store.verify_audit().await.unwrap() else {
            panic!("{b}: chain broken by concurrent appends")
        };
        assert_eq!(rows, 2 + 16 + 1, "{b}: user, agent, 16 notes, one decision");
    }
}

#[tokio::test]
async fn a_model_release_must_have_a_higher_serial_than_the_current_one() {
    use baylens_protocol::release::{Terms, new_key, sign};
    let (_d, store) = common::open("sqlite").await;
    let (secret, _) = new_key([5; 32]);
    let release = |file: &[u8], serial| {
        let terms = Terms {
            serial,
            expires_at: None,
        };
        sign("xray-concealment", file, &terms, &secret).unwrap()
    };
    assert!(
        store
            .current_release("xray-concealment")
            .await
            .unwrap()
            .is_none()
    );
    let v2 = release(b"two", 2);
    store
        .publish_model("owner", &v2, b"two".to_vec())
        .await
        .unwrap();
    for serial in [1, 2] {
        let old = release(b"one", serial);
        let err = store
            .publish_model("owner", &old, b"one".to_vec())
            .await
            .unwrap_err();
        assert!(err.contains("not above"), "{err}");
    }
    let current = store.current_release("xray-concealment").await.unwrap();
    assert_eq!(current, Some(v2));
    let v3 = release(b"three", 3);
    store
        .publish_model("owner", &v3, b"three".to_vec())
        .await
        .unwrap();
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_directory_and_secret_files_are_private_whatever_their_old_mode() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _store = Store::open(&data).await.unwrap();
    assert_eq!(mode(&data), 0o700);

    let secret = dir.path().join("token");
    std::fs::write(&secret, "old").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    baylens_server::auth::write_secret(&secret, "bls_new").unwrap();
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "bls_new");
}

#[tokio::test]
async fn login_attempts_are_counted_in_the_database_on_both_backends() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        for _ in 0..3 {
            let wait = store.take_login_attempt("user:x", 3, 60_000).await.unwrap();
            assert_eq!(wait, None, "{b}");
        }
        let wait = store.take_login_attempt("user:x", 3, 60_000).await.unwrap();
        assert!(wait.is_some_and(|s| (1..=60).contains(&s)), "{b}: {wait:?}");
        store.clear_login_attempts("user:x").await.unwrap();
        assert_eq!(
            store.take_login_attempt("user:x", 3, 60_000).await.unwrap(),
            None
        );
        // A window long past starts over.
        for _ in 0..5 {
            store.take_login_attempt("addr:y", 1, 0).await.unwrap();
        }
        assert_eq!(
            store.take_login_attempt("addr:y", 1, 0).await.unwrap(),
            None,
            "{b}"
        );
    }
}

#[tokio::test]
async fn a_reference_to_another_bays_or_containers_declaration_is_a_finding_not_a_match() {
    for b in common::backends() {
        let (_d, store) = common::open(b).await;
        let a = agent(&store, "agent-1", "bay-1").await;
        let lodge = |v: serde_json::Value| {
            Declaration::from_json(&v.to_string(), chrono::Utc::now()).unwrap()
        };
        let mut other_box = common::declaration("R-OWN", "bay-1");
        other_box["container_code"] = "MSKU9070323".into();
        for d in [common::declaration("R-FAR", "bay-2"), other_box] {
            store
                .lodge_declaration("user:sup", &lodge(d))
                .await
                .unwrap();
        }
        for (n, reference, why) in [(1, "R-FAR", "another bay"), (2, "R-OWN", "MSKU9070323")] {
            let mut v = common::report(&format!("r{n}"), &format!("bay-1-{n}"), "bay-1", 0.1);
            v["declaration_ref"] = reference.into();
            let Ingested::Created(case) = store
                .ingest_report(&a, &parse_report(&v), &v.to_string())
                .await
                .unwrap()
            else {
                panic!("{b}: not created")
            };
            let detail = store.case_detail(case.id).await.unwrap().unwrap();
            assert!(detail.declaration.is_none(), "{b}: {reference} was matched");
            let findings = detail.report["findings"].as_array().unwrap();
            let last = findings.last().unwrap();
            assert_eq!(last["kind"], "container_code_mismatch", "{b}");
            assert!(
                last["message"].as_str().unwrap().contains(why),
                "{b}: {last}"
            );
            assert_ne!(case.lane, "green", "{b}");
        }
    }
}
