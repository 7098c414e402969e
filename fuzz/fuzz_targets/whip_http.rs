//! The WHIP/WHEP HTTP/1.1 response parser on arbitrary bytes from a server.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = blende_signal::http::parse_offer_response(data) {
        // Whatever it accepted is usable: the resource path is a path, not a URL elsewhere.
        let _ = blende_signal::http::strip_origin(&format!("{r:?}"));
    }
});
