//! `edge-agent status`: what an operator asks first when a bay seems stuck. Read from the
//! agent's own store, so it works whether or not the agent or the server is running.

use serde_json::{Value, json};

use crate::declarations::DeclarationCache;
use crate::outbox::Outbox;
use crate::{AgentConfig, AgentError};

/// Collects the status as JSON: `queue_depth` (scans the server does not have yet),
/// `oldest_unsent` (capture time), `refused`, `delivered`, `last_server_contact`,
/// `last_declaration_sync`, `last_error`, `declarations_cached`, `store_bytes`, and
/// `uplink` (mean bytes per delivered scan; per cleared, green-lane, scan: the first part, the
/// report and a thumbnail, and the full resolution that followed).
pub async fn collect(config: &AgentConfig) -> Result<Value, AgentError> {
    let outbox = Outbox::open_existing(&config.data_dir).await?;
    let cache = DeclarationCache::new(outbox.pool().clone());
    let (pending, delivered, refused) = outbox.counts().await?;
    let (last_contact, last_error) = cache.contact().await?;
    let uplink = outbox.uplink_stats().await?;
    Ok(json!({
        "bay": config.bay,
        "queue_depth": pending,
        "oldest_unsent": outbox.oldest_pending().await?,
        "delivered": delivered,
        "refused": refused,
        "last_server_contact": last_contact,
        "last_declaration_sync": cache.last_sync().await?,
        "last_error": last_error,
        "declarations_cached": cache.count().await?,
        "store_bytes": outbox.usage_bytes(),
        "uplink": {
            "delivered_scans": uplink.delivered,
            "mean_bytes_per_scan": uplink.mean_bytes.round(),
            "cleared_scans": uplink.cleared,
            "mean_bytes_per_cleared_scan": uplink.mean_cleared_bytes.round(),
            "cleared_scans_full_resolution_sent": uplink.cleared_full,
            "mean_full_resolution_bytes_per_cleared_scan": uplink.mean_cleared_full_bytes.round(),
        },
    }))
}

/// The status as lines of text.
pub fn text(s: &Value) -> String {
    let or_never = |v: &Value| v.as_str().unwrap_or("never").to_owned();
    let mut out = format!(
        "bay {}\n  queue depth:            {} scan(s) not yet on the server\n  oldest unsent:          {}\n  delivered / refused:    {} / {}\n  last server contact:    {}\n  last declaration sync:  {} ({} declarations cached)\n  store:                  {:.1} MiB\n  uplink per cleared scan: {:.0} KiB first (report and thumbnail, mean over {} green-lane scans), {:.0} KiB of full resolution later; {:.0} KiB per scan over all\n",
        s["bay"].as_str().unwrap_or("?"),
        s["queue_depth"],
        s["oldest_unsent"].as_str().unwrap_or("none"),
        s["delivered"],
        s["refused"],
        or_never(&s["last_server_contact"]),
        or_never(&s["last_declaration_sync"]),
        s["declarations_cached"],
        s["store_bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0,
        s["uplink"]["mean_bytes_per_cleared_scan"]
            .as_f64()
            .unwrap_or(0.0)
            / 1024.0,
        s["uplink"]["cleared_scans"],
        s["uplink"]["mean_full_resolution_bytes_per_cleared_scan"]
            .as_f64()
            .unwrap_or(0.0)
            / 1024.0,
        s["uplink"]["mean_bytes_per_scan"].as_f64().unwrap_or(0.0) / 1024.0,
    );
    if let Some(e) = s["last_error"].as_str() {
        out.push_str(&format!("  last error:             {e}\n"));
    }
    out
}
