//! The scan sidecar parser (`baylens.scan/1`): any bytes give a sidecar or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    if let Ok(s) = baylens_protocol::ScanSidecar::from_json(data, now) {
        let _ = s.high();
        let _ = s.low();
    }
});
