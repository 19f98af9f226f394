//! [`run`]: the agent's main loop. The drop folder is polled; each ready scan is validated,
//! decoded, analysed, stored durably and only then moved to `done/`. The uplink task delivers
//! stored reports in the background.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use baylens_models::ConcealmentModel;
use baylens_models::concealment::NAME as MODEL_NAME;
use baylens_models::engine::sha256_hex;
use tokio::sync::Notify;

use baylens_protocol::ScanSidecar;
use baylens_protocol::risk::PreArrival;

use crate::analyze::analyse;
use crate::annotations::AnnotationStore;
use crate::bay::{BayState, LatestScan};
use crate::calibration::Calibration;
use crate::declarations::{DeclarationCache, Matched};
use crate::ingest::Rejection;
use crate::ingest::dicos_drop::DicosIntake;
use crate::ingest::drop_folder::{DropFolder, ReadyScan};
use crate::ingest::scan::load_scan;
use crate::outbox::{Accepted, Outbox, PREVIEW_FILE, StoredFile, THUMB_FILE};
use crate::uplink::{self, Uplink};
use crate::{AgentConfig, AgentError};

mod events;
mod heartbeat;
mod model_updates;
mod raw_scans;

pub use heartbeat::HEARTBEAT_SECS;

/// Runs the agent until `shutdown` resolves.
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    // One client for every exchange with the server, its TLS trust set up once (a wrong CA
    // file or pin stops the agent here, before it takes a scan).
    let uplink = Uplink::for_server(&config.server, config.token()?)?;
    let outbox = Outbox::open(&config.data_dir).await?;
    let mut folder = DropFolder::open(&config.drop_dir)?;
    let mut dicos = DicosIntake::new(&config.drop_dir);
    let models_dir = config.models_dir.clone();
    let threads = config.model_threads;
    // A signed release installed earlier wins over the model shipped with the agent.
    let updates = config.model_updates.clone();
    let data_dir = config.data_dir.clone();
    let mut model = tokio::task::spawn_blocking(move || {
        if let Some(u) = &updates
            && let Some((model, release)) =
                crate::updates::load_installed(&data_dir, &u.public_key, threads)
        {
            tracing::info!(sha256 = %release.sha256, "running the installed model release");
            return Ok(model);
        }
        ConcealmentModel::load(&models_dir, threads)
    })
    .await
    .map_err(|e| AgentError::Config(format!("model loader: {e}")))??;
    // A newly installed release waits here until the scan loop picks it up.
    let next_model: Arc<std::sync::Mutex<Option<ConcealmentModel>>> = Arc::default();
    let running_sha = Arc::new(std::sync::Mutex::new(model.sha256().to_owned()));
    let calibration = Arc::new(match &config.calibration_file {
        Some(path) => Calibration::load(path).map_err(AgentError::Config)?,
        None => Calibration::scanner_sim(),
    });
    let cache = DeclarationCache::new(outbox.pool().clone());
    let cached = cache.count().await?;
    tracing::info!(bay = %config.bay, model = MODEL_NAME, sha256 = model.sha256(), declarations = cached, "agent ready");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wake = Arc::new(Notify::new());
    let bay = BayState::new();
    let annotations = AnnotationStore::new(outbox.pool().clone());
    let annotation_task = {
        let client = uplink.clone();
        let annotations = annotations.clone();
        let stop = stop_rx.clone();
        let max_backoff = Duration::from_secs(config.server.max_backoff_secs);
        tokio::spawn(async move { annotations.deliver(client, max_backoff, stop).await })
    };
    let tablet_task = match &config.tablet {
        Some(tablet) => {
            let tls = tablet.tls().map_err(AgentError::Config)?;
            let listener = tokio::net::TcpListener::bind(tablet.listen)
                .await
                .map_err(|e| AgentError::Io {
                    context: format!("binding the tablet page to {}", tablet.listen),
                    source: e,
                })?;
            tracing::info!(
                "officers' tablet page on {}://{}",
                if tls.is_some() { "https" } else { "http" },
                listener
                    .local_addr()
                    .map_err(AgentError::io("tablet address"))?
            );
            let state =
                crate::tablet::TabletState::new(bay.clone(), annotations.clone(), tablet.clone());
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(crate::tablet::serve(
                listener,
                tls,
                state,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };
    let uplink_task = {
        let outbox = outbox.clone();
        let client = uplink.clone();
        let wake = wake.clone();
        let mut stop = stop_rx.clone();
        let max_backoff = Duration::from_secs(config.server.max_backoff_secs);
        tokio::spawn(async move {
            uplink::run(outbox, client, wake, max_backoff, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        })
    };

    let heartbeat_task = heartbeat::spawn(
        heartbeat::Sources {
            outbox: outbox.clone(),
            cache: cache.clone(),
            bay: bay.clone(),
            running_sha: running_sha.clone(),
            data_dir: config.data_dir.clone(),
            min_free_disk_bytes: config.min_free_disk_mb.saturating_mul(1024 * 1024),
        },
        uplink.clone(),
        stop_rx.clone(),
    );

    // Bay equipment (barriers, lights) follows the bay's events over MQTT.
    let events_task = match &config.mqtt {
        Some(mqtt) => {
            let id = format!("baylens-{}", config.bay);
            let publisher = baylens_mqtt::Publisher::start(mqtt, &id, Some(config.bay.as_str()))
                .map_err(|e| AgentError::Config(e.to_string()))?;
            let bay_id = config.bay.to_string();
            Some(events::spawn(
                publisher,
                bay_id,
                bay.clone(),
                stop_rx.clone(),
            ))
        }
        None => None,
    };

    let sync_task = {
        let cache = cache.clone();
        let client = uplink.clone();
        let mut stop = stop_rx.clone();
        let every = Duration::from_secs(config.declaration_sync_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tick.tick() => {}
                }
                let since = cache.newest_lodged().await.ok().flatten();
                let answer = tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    a = client.sync_declarations(since) => a,
                };
                match answer {
                    Ok(answer) => match cache.store(&answer).await {
                        Ok(n) if n > 0 => tracing::info!(declarations = n, "declarations synced"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!("declarations not cached: {e}"),
                    },
                    Err(e) => {
                        tracing::debug!("declaration sync failed (working from the cache): {e}");
                        let _ = cache.record_error(&format!("declaration sync: {e}")).await;
                    }
                }
            }
        })
    };

    // Raw scans the server asks for (dataset exports), checked as often as declarations.
    let raw_task = raw_scans::spawn(
        uplink.clone(),
        config.drop_dir.join("done"),
        Duration::from_secs(config.declaration_sync_secs),
        stop_rx.clone(),
    );

    let update_task = match config.model_updates.clone() {
        Some(updates) => {
            let client = uplink.clone();
            let (next_model, running_sha) = (next_model.clone(), running_sha.clone());
            let data_dir = config.data_dir.clone();
            let stop = stop_rx.clone();
            Some(tokio::spawn(model_updates::watch(
                client,
                updates,
                data_dir,
                threads,
                next_model,
                running_sha,
                stop,
            )))
        }
        None => None,
    };

    let push_task = match &config.push {
        Some(push) => {
            let listener =
                tokio::net::TcpListener::bind(push.listen)
                    .await
                    .map_err(AgentError::io(format!(
                        "binding the push API to {}",
                        push.listen
                    )))?;
            tracing::info!(
                "scanner push API on http://{}",
                listener
                    .local_addr()
                    .map_err(AgentError::io("push API address"))?
            );
            let state = {
                let (config, outbox) = (config.clone(), outbox.clone());
                crate::push::PushState {
                    drop_dir: config.drop_dir.clone(),
                    bay: config.bay.clone(),
                    max_image_bytes: config.max_image_bytes,
                    token_hashes: Arc::new(
                        push.scanner_token_sha256
                            .iter()
                            .map(|h| h.to_ascii_lowercase())
                            .collect(),
                    ),
                    upload_timeout: Duration::from_secs(push.upload_timeout_secs),
                    full: Arc::new(move || {
                        let (config, outbox) = (config.clone(), outbox.clone());
                        Box::pin(async move {
                            store_is_full(&config, &outbox)
                                .await
                                .unwrap_or_else(|e| Some(format!("the store is failing: {e}")))
                        })
                    }),
                }
            };
            let mut stop = stop_rx.clone();
            Some(tokio::spawn(crate::push::serve(
                listener,
                state,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            )))
        }
        None => None,
    };

    // The camera runs on its own threads, started after everything that can fail at start; a
    // missing camera never stops the scan loop.
    let camera_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let camera_thread = start_camera(&config, &bay, &camera_stop, &annotations);
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_millis(config.poll_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_full_warning: Option<std::time::Instant> = None;
    let result = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            _ = tick.tick() => {}
        }
        tokio::task::block_in_place(|| dicos.take(&config.bay, config.max_image_bytes))?;
        let (ready, strays) = match folder.poll() {
            Ok(found) => found,
            Err(e) => break Err(e),
        };
        for stray in &strays {
            tracing::warn!(?stray, "moving aside an image no sidecar names");
            folder.reject_stray(stray)?;
        }
        let waiting = ready.len();
        for scan in ready {
            if let Some(why) = store_is_full(&config, &outbox).await? {
                // This scan and the rest stay in the drop folder; the folder offers them
                // again at a later poll.
                if last_full_warning
                    .is_none_or(|t: std::time::Instant| t.elapsed() >= Duration::from_secs(60))
                {
                    tracing::warn!(waiting, "not taking new scans: {why}");
                    last_full_warning = Some(std::time::Instant::now());
                }
                break;
            }
            last_full_warning = None;
            if let Some(new) = next_model.lock().ok().and_then(|mut slot| slot.take()) {
                tracing::info!(sha256 = new.sha256(), "switched to the new model");
                model = new;
            }
            let matched = find_declaration(&cache, &scan).await;
            let declaration = matched.as_ref().map(|m| m.declaration.clone());
            let outcome;
            (model, outcome) = {
                let config = config.clone();
                let scan = scan.clone();
                let calibration = calibration.clone();
                tokio::task::spawn_blocking(move || {
                    let outcome =
                        prepare(&config, &mut model, &calibration, matched.as_ref(), &scan);
                    (model, outcome)
                })
                .await
                .map_err(|e| AgentError::Config(format!("analysis task: {e}")))?
            };
            match outcome {
                Err(rejection) => {
                    tracing::warn!(sidecar = %scan.sidecar.display(), "scan rejected: {rejection}");
                    folder.reject(&scan, &rejection.0)?;
                }
                Ok(prepared) => match store(&outbox, &prepared).await {
                    Err(AgentError::Io { context, source }) => {
                        // Disk full or failing: the originals stay in the drop folder.
                        tracing::error!(sidecar = %scan.sidecar.display(), "could not store the scan, left in the drop folder: {context}: {source}");
                    }
                    Err(e) => return Err(e),
                    Ok(Accepted::New | Accepted::AlreadyStored) => {
                        folder.finish(&scan)?;
                        bay.publish_scan(latest_scan(&prepared, declaration));
                        tracing::info!(scan_id = %prepared.report.scan_id, risk = prepared.report.risk, lane = prepared.report.lane.as_str(), "scan accepted");
                        wake.notify_one();
                    }
                    Ok(Accepted::Conflict) => folder.reject(
                        &scan,
                        &format!("scan_id {} was already used by a different scan; give each scan a unique id", prepared.report.scan_id),
                    )?,
                },
            }
        }
    };
    let _ = stop_tx.send(true);
    camera_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = annotation_task.await;
    if let Some(task) = tablet_task {
        match task.await {
            Ok(Err(e)) => tracing::error!("tablet page failed: {e}"),
            Err(e) => tracing::error!("tablet task failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(t) = camera_thread {
        // The camera thread notices the flag within a frame or a read timeout.
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    let _ = heartbeat_task.await;
    if let Some(t) = events_task {
        let _ = t.await;
    }
    let _ = sync_task.await;
    let _ = raw_task.await;
    if let Some(task) = update_task {
        let _ = task.await;
    }
    if let Some(task) = push_task {
        match task.await {
            Ok(Err(e)) => tracing::error!("push API failed: {e}"),
            Err(e) => tracing::error!("push API task failed: {e}"),
            Ok(Ok(())) => {}
        }
    }
    match uplink_task.await {
        Ok(r) => r?,
        Err(e) => tracing::error!("uplink task failed: {e}"),
    }
    result
}

/// Why new scans cannot be stored now, if so: the store is over its quota, or the disk is
/// nearly full, even after deleting the files of scans the server already has.
async fn store_is_full(
    config: &AgentConfig,
    outbox: &Outbox,
) -> Result<Option<String>, AgentError> {
    let quota = config.store_quota_mb.saturating_mul(1024 * 1024);
    let min_free = config.min_free_disk_mb.saturating_mul(1024 * 1024);
    let free = || fs4::available_space(&config.data_dir).unwrap_or(u64::MAX);
    if outbox.usage_bytes() < quota && free() >= min_free {
        return Ok(None);
    }
    // Make room from delivered scans first: down to 90 % of the quota, or by what the disk lacks.
    let lacking = min_free.saturating_sub(free());
    let target = (quota / 10 * 9).min(outbox.usage_bytes().saturating_sub(lacking));
    let freed = outbox.prune_delivered(target).await?;
    if freed > 0 {
        tracing::info!(
            freed_bytes = freed,
            "deleted files of delivered scans to make room"
        );
    }
    let (used, free) = (outbox.usage_bytes(), free());
    if used >= quota {
        Ok(Some(format!(
            "store quota reached: {} MiB of {} MiB hold scans the server does not have yet",
            used / (1024 * 1024),
            config.store_quota_mb
        )))
    } else if free < min_free {
        Ok(Some(format!(
            "disk nearly full: {} MiB free, {} MiB required (min_free_disk_mb)",
            free / (1024 * 1024),
            config.min_free_disk_mb
        )))
    } else {
        Ok(None)
    }
}

/// A scan that passed every check, with its analysis, ready to be stored.
#[derive(Debug)]
struct Prepared {
    report: baylens_protocol::ScanReport,
    high_sha256: String,
    files: Vec<(String, Vec<u8>)>,
}

/// Largest sidecar read ahead of the scan to find its declaration.
const MAX_SIDECAR_BYTES: u64 = 1024 * 1024;

/// The scan's declaration from the local cache, if its sidecar names one the cache holds (a
/// sidecar that cannot be read is left for [`prepare`] to refuse with the precise reason).
async fn find_declaration(cache: &DeclarationCache, scan: &ReadyScan) -> Option<Matched> {
    let meta = tokio::fs::metadata(&scan.sidecar).await.ok()?;
    if meta.len() > MAX_SIDECAR_BYTES {
        return None;
    }
    let bytes = tokio::fs::read(&scan.sidecar).await.ok()?;
    let sidecar = ScanSidecar::from_json(&bytes, chrono::Utc::now()).ok()?;
    match cache
        .find(
            sidecar.declaration_ref.as_deref(),
            sidecar.container_code.as_ref().map(|c| c.as_str()),
            sidecar.captured_at,
        )
        .await
    {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!("declaration cache unreadable, scan checked without one: {e}");
            None
        }
    }
}

/// Validation, decoding and analysis: everything that can refuse a scan, nothing that writes.
fn prepare(
    config: &AgentConfig,
    model: &mut ConcealmentModel,
    calibration: &Calibration,
    matched: Option<&Matched>,
    scan: &ReadyScan,
) -> Result<Prepared, Rejection> {
    let loaded = load_scan(&scan.sidecar, config.max_image_bytes)?;
    if loaded.sidecar.bay != config.bay {
        return Err(Rejection(format!(
            "{}: scan is for bay {}, this agent serves bay {}",
            scan.sidecar
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            loaded.sidecar.bay,
            config.bay
        )));
    }
    if !loaded.sidecar.scan_id.is_of_bay(config.bay.as_str()) {
        return Err(Rejection(format!(
            "scan_id {}: must start with this bay, \"{}-\" (protocol/SCAN_FORMAT.md); the server \
             refuses a bay's reports under any other id",
            loaded.sidecar.scan_id, config.bay
        )));
    }
    let high_index = loaded.high_index();
    let pre = matched.map_or(PreArrival::Undeclared, |m| m.pre.clone());
    let analysis = analyse(
        &loaded,
        model,
        calibration,
        matched.map(|m| &m.declaration),
        &pre,
        config.lanes,
    )?;
    let mut files = loaded.files.clone();
    for (name, bytes) in analysis.overlay_files(&loaded)? {
        // The contrast-enhanced scan is the preview the server shows; cleared scans send its
        // thumbnail first.
        if name == "scan.png" {
            let thumb = crate::overlay::thumbnail(&bytes)
                .map_err(|e| Rejection(format!("thumbnail failed: {e}")))?;
            files.push((THUMB_FILE.to_owned(), thumb));
            files.push((PREVIEW_FILE.to_owned(), bytes));
        } else {
            files.push((name, bytes));
        }
    }
    Ok(Prepared {
        report: analysis.report,
        high_sha256: sha256_hex(&files[1 + high_index].1),
        files,
    })
}

/// What the tablet and the camera need of a scan just accepted.
fn latest_scan(
    prepared: &Prepared,
    declaration: Option<baylens_protocol::Declaration>,
) -> LatestScan {
    let mut layers = std::collections::HashMap::new();
    let mut overlay = serde_json::Value::Null;
    for (name, bytes) in &prepared.files {
        if name == PREVIEW_FILE {
            layers.insert("scan".to_owned(), bytes.clone());
        } else if name == "overlay.json" {
            overlay = serde_json::from_slice(bytes).unwrap_or_default();
        } else if let Some(layer) = name.strip_suffix(".png")
            && crate::outbox::LAYERS.contains(&layer)
        {
            layers.insert(layer.to_owned(), bytes.clone());
        }
    }
    LatestScan {
        report: prepared.report.clone(),
        overlay,
        layers,
        declaration,
        arrived: std::time::Instant::now(),
    }
}

/// Starts the camera threads when a camera is configured and the agent was built with them.
#[cfg(feature = "camera")]
fn start_camera(
    config: &AgentConfig,
    bay: &Arc<BayState>,
    stop: &Arc<std::sync::atomic::AtomicBool>,
    annotations: &AnnotationStore,
) -> Option<std::thread::JoinHandle<()>> {
    let camera = config.camera.clone()?;
    // Accepted container codes go to the scan's case on the server, through the same durable
    // queue as officers' annotations.
    let reports = crate::camera::code_loop::CodeReports {
        runtime: tokio::runtime::Handle::current(),
        store: annotations.clone(),
    };
    match crate::camera::live::spawn(camera, bay.clone(), stop.clone(), Some(reports)) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!("could not start the camera thread: {e}; going on without the camera");
            None
        }
    }
}

#[cfg(not(feature = "camera"))]
fn start_camera(
    config: &AgentConfig,
    _bay: &Arc<BayState>,
    _stop: &Arc<std::sync::atomic::AtomicBool>,
    _annotations: &AnnotationStore,
) -> Option<std::thread::JoinHandle<()>> {
    if config.camera.is_some() {
        tracing::warn!(
            "[camera] is configured but this agent was built without camera support (feature `camera`); going on without it"
        );
    }
    None
}

async fn store(outbox: &Outbox, prepared: &Prepared) -> Result<Accepted, AgentError> {
    let files: Vec<StoredFile<'_>> = prepared
        .files
        .iter()
        .map(|(name, bytes)| StoredFile { name, bytes })
        .collect();
    outbox
        .accept(&prepared.report, &prepared.high_sha256, &files)
        .await
}
