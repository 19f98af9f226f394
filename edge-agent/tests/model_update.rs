//! Signed model updates through the real ONNX Runtime: a good release is installed and the old
//! one kept; a tampered file, a wrong key and a model that fails its self-check are refused,
//! logged as errors, and leave the running model in place.

use std::path::Path;

use baylens_models::concealment::{FILE, NAME};
use baylens_protocol::release::{ModelRelease, ReleaseError, Terms, new_key};
use edge_agent::updates::{
    UpdateError, active, highest_serial, install, load_installed, releases_dir,
};

fn shipped_model() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../models/onnx")
            .join(FILE),
    )
    .unwrap()
}

/// The shipped model with an unknown protobuf field appended (field 1000, varint `n`): a
/// different file, the same network; ONNX Runtime skips unknown fields.
/// Signs `file` as release `serial` of `name`.
fn sign(name: &str, file: &[u8], serial: u64, secret: &str) -> ModelRelease {
    let terms = Terms {
        serial,
        expires_at: None,
    };
    baylens_protocol::release::sign(name, file, &terms, secret).unwrap()
}

fn variant(n: u8) -> Vec<u8> {
    let mut bytes = shipped_model();
    bytes.extend_from_slice(&[0xC0, 0x3E, n]);
    bytes
}

#[test]
fn a_good_release_is_installed_and_the_previous_one_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = new_key([11; 32]);
    let first = variant(1);
    let r1 = sign(NAME, &first, 1, &secret);
    let model = install(dir.path(), &r1, &first, &public, 1).unwrap();
    assert_eq!(model.sha256(), r1.sha256);
    assert_eq!(active(dir.path()).unwrap(), r1);

    let second = variant(2);
    let r2 = sign(NAME, &second, 2, &secret);
    install(dir.path(), &r2, &second, &public, 1).unwrap();
    assert_eq!(active(dir.path()).unwrap(), r2);
    let models = releases_dir(dir.path());
    assert!(models.join("previous.json").exists());
    assert!(
        models.join(format!("{}.onnx", r1.sha256)).exists(),
        "the previous model is kept"
    );

    // After a restart the active release is loaded again; if its file is damaged, the previous.
    let (model, release) = load_installed(dir.path(), &public, 1).unwrap();
    assert_eq!((model.sha256(), &release), (r2.sha256.as_str(), &r2));
    std::fs::write(models.join(format!("{}.onnx", r2.sha256)), b"damaged").unwrap();
    let (_, release) = load_installed(dir.path(), &public, 1).unwrap();
    assert_eq!(release, r1);
}

#[test]
fn a_tampered_file_or_a_wrong_key_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = new_key([12; 32]);
    let good = variant(3);
    let release = sign(NAME, &good, 1, &secret);
    install(dir.path(), &release, &good, &public, 1).unwrap();

    let mut tampered = variant(4);
    tampered.truncate(good.len());
    let err = install(dir.path(), &release, &tampered, &public, 1).unwrap_err();
    assert!(
        matches!(err, UpdateError::Refused(ReleaseError::Tampered(_))),
        "{err}"
    );

    let (other_secret, _) = new_key([13; 32]);
    let other = variant(5);
    let forged = sign(NAME, &other, 2, &other_secret);
    let err = install(dir.path(), &forged, &other, &public, 1).unwrap_err();
    assert!(
        matches!(err, UpdateError::Refused(ReleaseError::BadSignature)),
        "{err}"
    );
    assert!(err.to_string().contains("wrong key"), "{err}");

    assert_eq!(
        active(dir.path()).unwrap(),
        release,
        "the running release is unchanged"
    );
    assert!(
        !releases_dir(dir.path())
            .join(format!("{}.onnx", forged.sha256))
            .exists()
    );
}

#[test]
fn a_signed_model_that_fails_its_self_check_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = new_key([14; 32]);
    let good = variant(6);
    let release = sign(NAME, &good, 1, &secret);
    install(dir.path(), &release, &good, &public, 1).unwrap();

    // Signed by the right key, but not a working model.
    let broken = b"this is not an ONNX model".to_vec();
    let bad = sign(NAME, &broken, 2, &secret);
    let err = install(dir.path(), &bad, &broken, &public, 1).unwrap_err();
    assert!(matches!(err, UpdateError::SelfCheck { .. }), "{err}");
    assert!(err.to_string().contains("rolled back"), "{err}");
    assert_eq!(active(dir.path()).unwrap(), release);
    assert!(
        !releases_dir(dir.path())
            .join(format!("{}.onnx", bad.sha256))
            .exists()
    );

    let other = sign("another-model", &good, 2, &secret);
    assert!(matches!(
        install(dir.path(), &other, &good, &public, 1),
        Err(UpdateError::WrongModel(_))
    ));
}

#[test]
fn an_older_release_is_refused_even_after_a_restart_and_an_expired_one_too() {
    let dir = tempfile::tempdir().unwrap();
    let (secret, public) = new_key([15; 32]);
    let (a, b) = (variant(7), variant(8));
    let (v1, v2) = (sign(NAME, &a, 1, &secret), sign(NAME, &b, 2, &secret));
    install(dir.path(), &v1, &a, &public, 1).unwrap();
    install(dir.path(), &v2, &b, &public, 1).unwrap();
    assert_eq!(highest_serial(dir.path()), 2);

    // v1 again: genuinely signed, but older.
    let err = install(dir.path(), &v1, &a, &public, 1).unwrap_err();
    assert!(
        matches!(
            err,
            UpdateError::Rollback {
                serial: 1,
                highest: 2
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("not above 2"), "{err}");
    assert_eq!(active(dir.path()).unwrap(), v2);

    // The serial survives the kept releases: with both release files gone, v1 is still older.
    let models = releases_dir(dir.path());
    std::fs::remove_file(models.join("active.json")).unwrap();
    std::fs::remove_file(models.join("previous.json")).unwrap();
    assert!(matches!(
        install(dir.path(), &v1, &a, &public, 1),
        Err(UpdateError::Rollback { .. })
    ));
    // A re-signed copy of the same file under a new serial is a new release.
    let v3 = sign(NAME, &a, 3, &secret);
    install(dir.path(), &v3, &a, &public, 1).unwrap();
    assert_eq!(highest_serial(dir.path()), 3);

    let expired = baylens_protocol::release::sign(
        NAME,
        &b,
        &Terms {
            serial: 4,
            expires_at: Some("2020-01-01T00:00:00Z".into()),
        },
        &secret,
    )
    .unwrap();
    let err = install(dir.path(), &expired, &b, &public, 1).unwrap_err();
    assert!(
        matches!(err, UpdateError::Refused(ReleaseError::Expired(_))),
        "{err}"
    );
    assert_eq!(active(dir.path()).unwrap(), v3);
}
