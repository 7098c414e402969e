//! VP8 reassembly on a hostile packet stream: records of [seq u16][timestamp u32][marker u8]
//! [len u16][payload]. Memory stays bounded and every delivered frame is within the cap.
#![no_main]

use blende_media::vp8::keyframe_size;
use blende_media::vp8_rtp::{Assembled, MAX_FRAME_BYTES, Vp8Assembler};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut a = Vp8Assembler::new();
    let mut rest = data;
    while rest.len() >= 9 {
        let seq = u16::from_le_bytes([rest[0], rest[1]]);
        let ts = u32::from_le_bytes([rest[2], rest[3], rest[4], rest[5]]);
        let marker = rest[6] & 1 == 1;
        let len = usize::from(u16::from_le_bytes([rest[7], rest[8]])).min(rest.len() - 9);
        let payload = &rest[9..9 + len];
        rest = &rest[9 + len..];
        if let Assembled::Frame { keyframe, .. } = a.push(seq, ts, marker, payload) {
            assert!(!a.frame().is_empty() && a.frame().len() <= MAX_FRAME_BYTES);
            assert_eq!(keyframe, a.frame()[0] & 1 == 0);
            let _ = keyframe_size(a.frame());
        }
        assert!(a.buffered_capacity() <= 2 * MAX_FRAME_BYTES);
    }
});
