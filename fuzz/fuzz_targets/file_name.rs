//! Any name the store accepts is one safe path segment.
#![no_main]
use libfuzzer_sys::fuzz_target;
use parley_server::files::names::validate;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    if validate(name, 200).is_ok() {
        assert!(!name.contains('/') && !name.contains('\\') && name != "." && name != "..");
        assert!(!name.chars().any(char::is_control));
    }
});
