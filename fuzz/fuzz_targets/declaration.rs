//! The declaration parser and validator (`baylens.declaration/1`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap();
    if let Ok(d) = baylens_protocol::Declaration::from_json(text, now) {
        for item in &d.items {
            let _ = item.chapter();
        }
    }
});
