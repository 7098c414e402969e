//! Protocol v1 parsing on both sides: anything either parser accepts serialises and parses
//! back to the same message.
#![no_main]

use blende_room::protocol::{parse_client, parse_server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(msg) = parse_client(text) {
        let text = serde_json::to_string(&msg).expect("serialises");
        let again = parse_client(&text).expect("a parsed client message parses again");
        assert_eq!(again, msg);
    }
    if let Ok(msg) = parse_server(text) {
        let again = parse_server(&msg.to_json()).expect("a parsed server message parses again");
        assert_eq!(again, msg);
    }
});
