//! Blende's room-server client machine fed what a hostile server could send: one message per
//! line. It may refuse any of them, never panic, and its output stays drainable.
#![no_main]

use blende_signal::JoinOptions;
use blende_signal::blende::BlendeMachine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let options = JoinOptions { room: Some("k7dm3xqa9fhp".into()), password: Some("pw".into()), display_name: "A".into(), moderator_token: None, resume: None };
    let mut m = BlendeMachine::new(options);
    for line in text.split('\n') {
        let _ = m.handle_message(line);
        while m.poll_transmit().is_some() {}
        while m.poll_event().is_some() {}
    }
});
