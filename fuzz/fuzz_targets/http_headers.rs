//! Header parsers never panic and ranges stay inside the file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use parley_server::files::headers::{disposition_filename, parse_digest, parse_range, RangeReq};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    let _ = parse_digest(value);
    let _ = disposition_filename(value);
    for size in [0u64, 1, 100, u64::MAX] {
        if let RangeReq::Part(a, b) = parse_range(value, size) {
            assert!(a <= b && b < size);
        }
    }
});
