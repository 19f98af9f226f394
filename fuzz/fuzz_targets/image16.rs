//! The agent's image ingest path: header checks and 16-bit decoding of PNG or TIFF bytes.
//! Any bytes give an image or a rejection with a reason, never a panic or a huge allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in ["scan.png", "scan.tiff"] {
        if let Ok(img) = edge_agent::ingest::decode::decode_image16(name, data) {
            assert_eq!(img.samples.len(), img.width as usize * img.height as usize);
        }
    }
});
