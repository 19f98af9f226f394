//! Signed model releases (`baylens_protocol::release`), kept in the image store beside the scans
//! so that every replica serves the same ones: `models/<name>/<sha256>.onnx` and
//! `models/<name>/release.json`, the current release. The server never holds the signing key
//! and never alters a release; bays verify each against their own copy of the public key.

use baylens_protocol::release::ModelRelease;
use object_store::path::Path as ObjectPath;

use super::Store;

/// Whether `name` can be a model name (it ends up in object keys and URLs).
pub fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Object key of a model file.
pub fn model_key(name: &str, sha256: &str) -> ObjectPath {
    ObjectPath::from(format!("models/{name}/{sha256}.onnx"))
}

/// Object key of a model's current release.
pub fn release_key(name: &str) -> ObjectPath {
    ObjectPath::from(format!("models/{name}/release.json"))
}

impl Store {
    /// The model's current release, if one was published.
    pub async fn current_release(&self, name: &str) -> Result<Option<ModelRelease>, String> {
        match self.images.get(&release_key(name)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| format!("reading the release: {e}"))?;
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| format!("the stored release of {name} is unreadable: {e}"))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(format!("reading the release: {e}")),
        }
    }

    /// Publishes a signed release: the file first, then the release that points at it, then an
    /// audit entry. The signature is not checked here (the server has no key); bays check it.
    /// A serial not above the current release's is refused here already: every bay that ran
    /// the current one would refuse it.
    pub async fn publish_model(
        &self,
        actor: &str,
        release: &ModelRelease,
        file: Vec<u8>,
    ) -> Result<(), String> {
        if !valid_model_name(&release.name) {
            return Err(format!(
                "model name {:?}: lower-case letters, digits and '-' only",
                release.name
            ));
        }
        if let Some(current) = self.current_release(&release.name).await?
            && release.serial <= current.serial
        {
            return Err(format!(
                "release serial {} of {} is not above the current release's, {}: bays would \
                 refuse it as a rollback",
                release.serial, release.name, current.serial
            ));
        }
        self.images
            .put(&model_key(&release.name, &release.sha256), file.into())
            .await
            .map_err(|e| format!("storing the model file: {e}"))?;
        let json = serde_json::to_vec_pretty(release).map_err(|e| e.to_string())?;
        self.images
            .put(&release_key(&release.name), json.into())
            .await
            .map_err(|e| format!("storing the release: {e}"))?;
        self.audit(
            actor,
            "model.publish",
            &release.name,
            &serde_json::json!({
                "sha256": release.sha256,
                "size": release.size,
                "serial": release.serial,
                "expires_at": release.expires_at,
            }),
        )
        .await
        .map_err(|e| format!("audit: {e}"))
    }
}
