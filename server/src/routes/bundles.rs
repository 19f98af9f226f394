//! Signed case bundles over HTTP (protocol/CASE_BUNDLE.md): a case's bundle for another agency
//! or administration, this server's public key, importing a partner's bundle, and the imported
//! cases, which are read-only.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use object_store::ObjectStore as _;
use object_store::path::Path as ObjectPath;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::cases::visible_case;
use crate::AppState;
use crate::MAX_SMALL_BODY_BYTES;
use crate::auth::{Principal, Role};
use crate::bundle::{self, BundleError, CaseHeader, MAX_BUNDLE_BYTES, MEDIA_TYPE, PublicKey};
use crate::error::{ApiError, Result};
use crate::extract::P;
use crate::store::imports::{Imported, ImportedCase};

/// Routes but the import.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/cases/{id}/bundle", get(export))
        .route("/api/v1/bundle-key", get(public_key))
        .route("/api/v1/imports", get(list_imports))
        .route("/api/v1/imports/{id}", get(one_import))
        .route("/api/v1/imports/{id}/files/{*path}", get(import_file))
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY_BYTES))
}

/// The import, which may take as long as an image upload.
pub fn uploads() -> Router<AppState> {
    Router::new().route(
        "/api/v1/bundles",
        post(import).layer(DefaultBodyLimit::max(MAX_BUNDLE_BYTES)),
    )
}

const NO_KEY: &str =
    "this server has no bundle-signing key: an admin makes one with `server keys generate`";

/// Supervisors and admins hand cases to other administrations; an agency gets the bundles
/// of the cases shared with it. Officers work cases at the bay and export nothing.
async fn export(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
) -> Result<Response> {
    let user = visible_case(&state, principal, id).await?;
    if user.role == Role::Officer {
        return Err(ApiError::Forbidden(
            "officers do not export cases; a supervisor, or the agency the case is shared with, does"
                .into(),
        ));
    }
    let signer = state
        .settings
        .bundle_signer
        .clone()
        .ok_or_else(|| ApiError::Unavailable(NO_KEY.into()))?;
    let files = case_files(&state, id).await?;
    let detail = state
        .store
        .case_detail(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let s = detail.summary;
    let header = CaseHeader {
        id,
        scan_id: s.scan_id,
        bay: s.bay,
        captured_at: s.captured_at,
        container_code: s.container_code,
        declaration_ref: s.declaration_ref,
        lane: s.lane,
        status: s.status,
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bytes = tokio::task::spawn_blocking(move || signer.pack(header, &files, &now))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("packing case {id}: {e}")))?;
    let sha = hex::encode(Sha256::digest(&bytes));
    state
        .store
        .audit(
            &format!("user:{}", user.username),
            "case.bundle",
            &format!("case:{id}"),
            &serde_json::json!({"bundle_sha256": sha, "role": user.role.as_str()}),
        )
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, MEDIA_TYPE.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"case-{id}.baylens-bundle.tar\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

/// Every member of a case's bundle but the manifest: the case, the bay's report, the
/// declaration, the history, the examination results, the case's audit entries, and each
/// evidence image, checked against the sha256 recorded when it was stored.
async fn case_files(state: &AppState, id: i64) -> Result<Vec<(String, String, Vec<u8>)>> {
    let detail = state
        .store
        .case_detail(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let json = |v: &dyn pretty::Pretty| ("application/json".to_owned(), v.pretty());
    let mut files = Vec::new();
    let mut add = |path: &str, (media, bytes): (String, Vec<u8>)| {
        files.push((path.to_owned(), media, bytes));
    };
    add(
        "case.json",
        json(&serde_json::json!({
            "case": detail.summary,
            "shared_with": detail.shared_with,
            "layers": detail.layers,
        })),
    );
    add("report.json", json(&detail.report));
    if let Some(declaration) = &detail.declaration {
        add("declaration.json", json(declaration));
    }
    add("history.json", json(&detail.events));
    let examinations: Vec<_> = detail
        .events
        .iter()
        .filter(|e| e.kind == "examination")
        .collect();
    add("examinations.json", json(&examinations));
    let mut audit = state
        .store
        .audit_entries(Some(&format!("case:{id}")), 100_000)
        .await?;
    audit.reverse();
    add("audit.json", json(&audit));
    for (name, key, recorded) in state.store.evidence_objects(id).await? {
        let bytes = read_object(state, &key).await?;
        let sha = hex::encode(Sha256::digest(&bytes));
        if recorded.as_deref().is_some_and(|r| r != sha) {
            return Err(ApiError::Conflict(format!(
                "the {name} image of case {id} no longer matches the sha256 recorded when it was \
                 stored; the image store was altered, so no bundle is signed"
            )));
        }
        let (ext, media) = if key.ends_with(".jpg") {
            ("jpg", "image/jpeg")
        } else {
            ("png", "image/png")
        };
        add(
            &format!("images/{name}.{ext}"),
            (media.into(), bytes.to_vec()),
        );
    }
    Ok(files)
}

/// Reads a whole object from the image store.
async fn read_object(state: &AppState, key: &str) -> Result<Bytes> {
    let fail = |e: object_store::Error| ApiError::Internal(format!("image store, {key}: {e}"));
    state
        .store
        .images
        .get(&ObjectPath::from(key))
        .await
        .map_err(fail)?
        .bytes()
        .await
        .map_err(fail)
}

mod pretty {
    /// Anything serialisable, as pretty JSON bytes (object-safe, so one closure takes them all).
    pub trait Pretty {
        fn pretty(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Pretty for T {
        fn pretty(&self) -> Vec<u8> {
            let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
            out.push(b'\n');
            out
        }
    }
}

async fn public_key(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<PublicKey>> {
    principal.user()?;
    let signer = state
        .settings
        .bundle_signer
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable(NO_KEY.into()))?;
    Ok(Json(signer.public()))
}

/// What an import answers.
#[derive(Debug, Serialize)]
struct ImportAnswer {
    id: i64,
    origin: String,
    origin_case_id: i64,
    scan_id: String,
    bundle_sha256: String,
    created: bool,
}

async fn import(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<ImportAnswer>)> {
    let user = principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let found = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = found.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(MEDIA_TYPE) && !media.eq_ignore_ascii_case("application/x-tar") {
        return Err(ApiError::UnsupportedMedia(format!(
            "expected {MEDIA_TYPE} (or application/x-tar), got {found:?}"
        )));
    }
    let actor = format!("user:{}", user.username);
    let bundle_sha = hex::encode(Sha256::digest(&body));
    let opened = match bundle::open(&body) {
        Ok(o) => o,
        Err(e) => return Err(refuse(&state, &actor, &bundle_sha, e).await),
    };
    let Some(trusted) = state.store.trusted_key(&opened.manifest.key_id).await? else {
        let e = BundleError::UnknownKey {
            key_id: opened.manifest.key_id.clone(),
            issuer: opened.manifest.issuer.clone(),
        };
        return Err(refuse(&state, &actor, &bundle_sha, e).await);
    };
    let key = PublicKey {
        contract: bundle::PUBLIC_KEY_CONTRACT.into(),
        issuer: trusted.issuer.clone(),
        key_id: trusted.key_id.clone(),
        public_key: trusted.public_key.clone(),
    };
    let verified = match opened.verify(&key) {
        Ok(v) => v,
        Err(e) => return Err(refuse(&state, &actor, &bundle_sha, e).await),
    };
    // The files first: a crash between leaves unreferenced objects, never a case without them.
    let prefix = format!("imports/{}", verified.bundle_sha256);
    let mut puts = vec![(format!("{prefix}/bundle.tar"), body.clone())];
    for (path, bytes) in verified.files {
        puts.push((format!("{prefix}/files/{path}"), Bytes::from(bytes)));
    }
    for (key, bytes) in puts {
        state
            .store
            .images
            .put(&ObjectPath::from(key.as_str()), bytes.into())
            .await
            .map_err(|e| ApiError::Internal(format!("image store, {key}: {e}")))?;
    }
    let manifest = verified.manifest;
    let outcome = state
        .store
        .record_import(&user, &trusted.name, &manifest, &verified.bundle_sha256)
        .await?;
    let (id, created, status) = match outcome {
        Imported::Created(id) => (id, true, StatusCode::CREATED),
        Imported::Existing(id) => (id, false, StatusCode::OK),
    };
    Ok((
        status,
        Json(ImportAnswer {
            id,
            origin: trusted.name,
            origin_case_id: manifest.case.id,
            scan_id: manifest.case.scan_id,
            bundle_sha256: verified.bundle_sha256,
            created,
        }),
    ))
}

/// Audits a refused bundle (a tampered bundle is a security event) and says why.
async fn refuse(state: &AppState, actor: &str, bundle_sha: &str, e: BundleError) -> ApiError {
    let reason = e.to_string();
    let audited = state
        .store
        .audit(
            actor,
            "bundle.refused",
            &format!("bundle:{bundle_sha}"),
            &serde_json::json!({"reason": reason}),
        )
        .await;
    if let Err(db) = audited {
        return db.into();
    }
    match e {
        BundleError::Altered(problems) => ApiError::Invalid(problems),
        e => ApiError::Unprocessable(e.to_string()),
    }
}

async fn list_imports(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<ImportedCase>>> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    Ok(Json(state.store.imported_cases(500).await?))
}

/// An imported case with its contents, read from the files it came with.
#[derive(Debug, Serialize)]
struct ImportDetail {
    #[serde(flatten)]
    imported: ImportedCase,
    /// `case.json` as sent.
    case: serde_json::Value,
    /// The bay's report.
    report: serde_json::Value,
    /// The declaration, if the bundle has one.
    declaration: Option<serde_json::Value>,
    /// The history.
    history: serde_json::Value,
    /// The issuer's audit entries about the case.
    audit: serde_json::Value,
    /// Always true: imported cases are never changed here.
    read_only: bool,
}

async fn one_import(
    State(state): State<AppState>,
    principal: Principal,
    P(id): P<i64>,
) -> Result<Json<ImportDetail>> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let imported = state
        .store
        .imported_case(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let read = |path: &'static str| {
        let key = format!("imports/{}/files/{path}", imported.bundle_sha256);
        let has = imported.manifest.members.iter().any(|m| m.path == path);
        let state = &state;
        async move {
            if !has {
                return Ok(None);
            }
            let bytes = read_object(state, &key).await?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ApiError::Internal(format!("{key}: {e}")))
        }
    };
    let case = read("case.json").await?.unwrap_or_default();
    let report = read("report.json").await?.unwrap_or_default();
    let declaration = read("declaration.json").await?;
    let history = read("history.json").await?.unwrap_or_default();
    let audit = read("audit.json").await?.unwrap_or_default();
    Ok(Json(ImportDetail {
        imported,
        case,
        report,
        declaration,
        history,
        audit,
        read_only: true,
    }))
}

async fn import_file(
    State(state): State<AppState>,
    principal: Principal,
    P((id, path)): P<(i64, String)>,
) -> Result<Response> {
    principal.user_with(&[Role::Supervisor, Role::Admin])?;
    let imported = state
        .store
        .imported_case(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let member = imported
        .manifest
        .members
        .iter()
        .find(|m| m.path == path)
        .ok_or(ApiError::NotFound)?;
    let key = format!("imports/{}/files/{}", imported.bundle_sha256, member.path);
    let bytes = read_object(&state, &key).await?;
    // Only the types a bundle is made of are served as such; anything else downloads.
    let media = match member.media_type.as_str() {
        m @ ("image/png" | "image/jpeg" | "application/json") => m,
        _ => "application/octet-stream",
    };
    Ok((
        [
            (header::CONTENT_TYPE, media),
            (header::CACHE_CONTROL, "private, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        bytes,
    )
        .into_response())
}
