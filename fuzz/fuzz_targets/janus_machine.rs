//! The Janus VideoRoom machine fed what a hostile Janus could send, one message per line,
//! with its timers fired between them on a virtual clock.
#![no_main]

use std::time::{Duration, Instant};

use blende_signal::JoinOptions;
use blende_signal::janus::JanusMachine;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let options = JoinOptions { room: Some("1234".into()), password: Some("pin".into()), display_name: "A".into(), moderator_token: None, resume: None };
    let mut m = JanusMachine::new(options);
    let mut now = Instant::now();
    m.start(now);
    for line in text.split('\n') {
        let _ = m.handle_message(line);
        while m.poll_transmit().is_some() {}
        while m.poll_event().is_some() {}
        now += Duration::from_secs(7);
        if m.poll_timeout().is_some_and(|t| t <= now) {
            m.handle_timeout(now);
        }
    }
});
