//! ISO 6346 container codes: parsing never panics, and whatever parses re-parses to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(code) = baylens_protocol::ContainerCode::parse(text) {
        let again = baylens_protocol::ContainerCode::parse(code.as_str()).expect("a parsed code re-parses");
        assert_eq!(again, code);
        let _ = code.owner();
    }
});
