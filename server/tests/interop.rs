//! Declarations in WCO DEC-DMS XML through `POST /api/v1/declarations/import`: mapped onto
//! `baylens.declaration/1` element by element, and refused naming the XPath of what is
//! missing or wrong, on both backends.

mod common;

use axum::http::StatusCode;
use baylens_server::AppState;
use baylens_server::auth::Role;
use common::call;

/// `POST /api/v1/declarations/import` of `body` as `media`.
async fn post_import(state: &AppState, token: &str, media: &str, body: String) -> common::Reply {
    call(
        state,
        "POST",
        "/api/v1/declarations/import",
        Some(token),
        Some(media),
        body,
    )
    .await
}

/// The test's DEC-DMS declaration, arriving tomorrow at 09:30 (+03:00): the same text all day,
/// so that importing it twice is the same message.
fn dec_dms() -> String {
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    include_str!("fixtures/dec-dms.xml")
        .replace(
            "{{ARRIVAL}}",
            &tomorrow.format("%Y%m%d093000+0300").to_string(),
        )
        .replace(
            "{{ISSUED}}",
            &chrono::Utc::now().format("%Y%m%d080000Z").to_string(),
        )
}

#[tokio::test]
async fn a_dec_dms_declaration_is_mapped_and_a_bad_one_is_refused_by_xpath() {
    for backend in common::backends() {
        let (_dir, store) = common::open(backend).await;
        let sup = common::user(&store, "sup", Role::Supervisor, None).await;
        let state = AppState::new(store);
        let import = |media: &'static str, body: String| post_import(&state, &sup, media, body);
        let r = import("application/xml", dec_dms()).await;
        assert_eq!(r.status, StatusCode::OK, "{backend}: {}", r.text);
        assert_eq!(r.json["lodged"], 1, "{backend}");
        let d = state
            .store
            .declaration("26KE-DMS-0001")
            .await
            .unwrap()
            .expect("lodged under the upper-cased LRN")
            .declaration;
        assert_eq!(d.declarant.name, "Tana River Traders & Sons");
        assert_eq!(d.declarant.id, "KE0001234567");
        assert_eq!(d.office, "KEMBA01");
        assert_eq!(d.container_code.as_deref(), Some("CSQU3054383"));
        let v = d.vehicle.as_ref().unwrap();
        assert_eq!(
            (v.registration.as_str(), v.nationality.as_str()),
            ("KDA 123B", "KE")
        );
        assert_eq!(d.gross_mass_kg, 12_500.0);
        assert_eq!(d.items.len(), 2);
        assert_eq!(d.items[0].hs_code, "61091000");
        assert_eq!(d.items[0].packages, 300);
        assert_eq!(d.items[0].package_type.as_deref(), Some("CT"));
        assert_eq!(d.items[1].hs_code, "69072100", "{backend}: dots dropped");
        assert_eq!(d.items[1].gross_mass_kg, 8000.0);
        // 09:30 at +03:00 is 06:30 UTC on the date written, whatever the hour the test runs.
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).date_naive();
        let expected = tomorrow.and_hms_opt(6, 30, 0).unwrap().and_utc();
        assert_eq!(d.expected_arrival, expected, "{backend}: +03:00 applied");
        // The same message again changes nothing.
        let r = import("text/xml", dec_dms()).await;
        assert_eq!(r.json["unchanged"], 1, "{backend}: {}", r.text);

        // What BayLens needs and does not find is named by its XPath; nothing is lodged.
        let bad = dec_dms()
            .replace("26ke-dms-0001", "26KE-DMS-0002")
            .replace("<ID>KE0001234567</ID>", "")
            .replace("<Description>Glazed ceramic floor tiles</Description>", "")
            .replace(">8000<", ">8000 kg<");
        let r = import("application/xml", bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        let problems: Vec<&str> = r.json["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(problems.len(), 3, "{backend}: {problems:?}");
        for path in [
            "/MetaData/Declaration/Declarant/ID: missing",
            "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/Commodity/Description: missing",
            "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[2]/Commodity/GoodsMeasure/GrossMassMeasure: \"8000 kg\" is not a number",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(path)),
                "{backend}: {path} in {problems:?}"
            );
        }
        assert!(
            state
                .store
                .declaration("26KE-DMS-0002")
                .await
                .unwrap()
                .is_none()
        );
        // Masses that do not add up are the declaration's own rule, still named.
        let r = import(
            "application/xml",
            dec_dms()
                .replace("26ke-dms-0001", "26KE-DMS-0003")
                .replace(">12500<", ">20000<"),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        assert!(
            r.text.contains("[0]") && r.text.contains("gross_mass"),
            "{}",
            r.text
        );

        // Not XML, a DTD, another medium.
        let r = import("application/xml", "<Declaration><ID>".into()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            r.text.contains("XML") || r.text.contains("ends inside"),
            "{}",
            r.text
        );
        let r = import(
            "application/xml",
            "<!DOCTYPE d [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><Declaration>&e;</Declaration>"
                .into(),
        )
        .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text.contains("DOCTYPE"), "{}", r.text);
        let r = import("text/csv", "a,b".into()).await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(r.text.contains("DEC-DMS"), "{}", r.text);
    }
}

/// The test's CUSCAR interchange, arriving tomorrow.
fn cuscar() -> String {
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    include_str!("fixtures/cuscar.edi")
        .replace("{{ARRIVAL}}", &tomorrow.format("%Y%m%d1430").to_string())
}

#[tokio::test]
async fn a_cuscar_cargo_report_becomes_one_declaration_per_container_as_pydifact_reads_it() {
    // The independent reading: pydifact (pinned in scripts/test-requirements.txt).
    let pydifact = common::python_reading("cuscar_pydifact.py", "cuscar.edi", cuscar().as_bytes());

    for backend in common::backends() {
        let (_dir, store) = common::open(backend).await;
        let sup = common::user(&store, "sup", Role::Supervisor, None).await;
        let state = AppState::new(store);
        let import = |body: String| post_import(&state, &sup, "application/EDIFACT", body);
        let r = import(cuscar()).await;
        assert_eq!(r.status, StatusCode::OK, "{backend}: {}", r.text);
        assert_eq!(r.json["lodged"], 2, "{backend}");
        let mut items = Vec::new();
        for (n, container) in pydifact["containers"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let container = container.as_str().unwrap();
            let d = state
                .store
                .declaration(&format!("MBL77001-{container}"))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{backend}: a declaration for {container}"))
                .declaration;
            assert_eq!(d.container_code.as_deref(), Some(container));
            assert_eq!(d.office, "KEMBA01");
            let party = &pydifact["parties"][n];
            assert_eq!(d.declarant.id, party[0], "{backend}");
            assert_eq!(
                d.declarant.name, party[1],
                "{backend}: release character resolved"
            );
            assert_eq!(
                d.gross_mass_kg,
                d.items.iter().map(|i| i.gross_mass_kg).sum::<f64>()
            );
            items.extend(d.items);
        }
        assert_eq!(items.len(), 3, "{backend}");
        for (i, item) in items.iter().enumerate() {
            assert_eq!(item.packages, pydifact["packages"][i][0], "{backend}");
            assert_eq!(
                item.package_type.as_deref(),
                pydifact["packages"][i][1].as_str()
            );
            assert_eq!(item.gross_mass_kg, pydifact["weights"][i], "{backend}");
            assert_eq!(item.hs_code, pydifact["codes"][i], "{backend}");
            assert_eq!(item.description, pydifact["descriptions"][i], "{backend}");
        }

        // What is missing is named by its segment; nothing is lodged.
        let bad = cuscar()
            .replace("mbl77001", "mbl77002")
            .replace("LOC+22+KEMBA01'\n", "")
            .replace("MEA+AAE+G+KGM:7600'\n", "");
        let r = import(bad).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{backend}");
        let problems = r.json["problems"].to_string();
        assert!(problems.contains("LOC+22: missing"), "{problems}");
        assert!(
            problems.contains("GID: no gross weight (MEA with G or AAB)"),
            "{problems}"
        );
        assert!(
            state
                .store
                .declaration("MBL77002-CSQU3054383")
                .await
                .unwrap()
                .is_none()
        );
        let r = import(cuscar().replace("CUSCAR:D:95B", "CUSDEC:D:95B")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text.contains("UNH: message CUSDEC"), "{}", r.text);
        // Two messages in one interchange are refused, not mixed.
        let body = cuscar();
        let message = &body[body.find("UNH+").unwrap()..body.find("UNZ+").unwrap()];
        let twice = body.replace(message, &format!("{message}{message}"));
        let r = import(twice).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text.contains("2 messages (UNH)"), "{}", r.text);
        // ISO 8859-1 (UNOC), as the UNB declares: a consignee with an accented name.
        let latin1: Vec<u8> = cuscar()
            .replace("mbl77001", "mbl77003")
            .replace(
                "LAKE VIEW HARDWARE",
                "LAKE VIEW QUINCAILLERIE ET FR\u{c8}RES",
            )
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect();
        let r = call(
            &state,
            "POST",
            "/api/v1/declarations/import",
            Some(&sup),
            Some("application/EDIFACT"),
            latin1,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{backend}: {}", r.text);
        let d = state
            .store
            .declaration("MBL77003-MSKU9070323")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            d.declaration.declarant.name,
            "LAKE VIEW QUINCAILLERIE ET FR\u{c8}RES"
        );
        let r = import("UNB+UNOC:3+A+B+261206:0930+1'UNH+1+CUS".into()).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text.contains("EDIFACT"), "{}", r.text);
    }
}
