//! VP8 frames from RTP payloads (RFC 7741), without IO: the payload descriptor is read here,
//! and frames are reassembled by timestamp and marker bit. A sequence gap drops the frame in
//! progress and every frame up to the next keyframe (the caller asks the sender for one).
//! Every byte comes from the network, so nothing here trusts a length: a frame larger than
//! [`MAX_FRAME_BYTES`] is dropped, and a broken frame keeps no bytes at all.

/// The largest compressed frame reassembled: a 4K keyframe of a detailed screen is well under
/// 2 MiB. Past it the frame is dropped, so a sender that never sets the marker bit (or never
/// changes the timestamp) cannot grow the buffer.
pub const MAX_FRAME_BYTES: usize = 4 << 20;

/// The VP8 payload descriptor (RFC 7741 §4.2) of one RTP payload: whether it starts a
/// partition, and the VP8 bytes after it. `None` for a payload too short for its descriptor or
/// without bytes after it.
#[must_use]
pub fn payload(p: &[u8]) -> Option<(bool, &[u8])> {
    let first = *p.first()?;
    let start = first & 0x10 != 0 && first & 0x07 == 0;
    let mut i = 1;
    if first & 0x80 != 0 {
        let ext = *p.get(i)?;
        i += 1;
        if ext & 0x80 != 0 {
            // PictureID: 7 bits, or 15 when its M bit is set.
            i += if *p.get(i)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if ext & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    let body = p.get(i..)?;
    (!body.is_empty()).then_some((start, body))
}

/// What one packet did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Assembled {
    Nothing,
    /// A whole frame: read it with [`Vp8Assembler::frame`] before the next packet.
    Frame {
        timestamp: u32,
        keyframe: bool,
    },
    /// A loss was detected: ask for a keyframe.
    Lost,
}

/// Reassembles VP8 frames from RTP packets into one reused buffer.
#[derive(Debug)]
pub struct Vp8Assembler {
    frame: Vec<u8>,
    timestamp: Option<u32>,
    last_seq: Option<u16>,
    broken: bool,
    /// Set after a loss: frames are dropped until a keyframe arrives.
    pub waiting_for_keyframe: bool,
}

impl Default for Vp8Assembler {
    fn default() -> Self {
        Self::new()
    }
}

impl Vp8Assembler {
    #[must_use]
    pub fn new() -> Self {
        Self { frame: Vec::new(), timestamp: None, last_seq: None, broken: false, waiting_for_keyframe: true }
    }

    /// The frame the last [`Assembled::Frame`] announced.
    #[must_use]
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// Bytes held for the frame in progress (its buffer's capacity).
    #[must_use]
    pub fn buffered_capacity(&self) -> usize {
        self.frame.capacity()
    }

    pub fn push(&mut self, seq: u16, timestamp: u32, marker: bool, packet: &[u8]) -> Assembled {
        let mut lost = false;
        if let Some(last) = self.last_seq
            && seq != last.wrapping_add(1)
        {
            // Old duplicates (retransmissions already covered) are ignored.
            if seq.wrapping_sub(last) > 0x8000 {
                return Assembled::Nothing;
            }
            lost = true;
        }
        self.last_seq = Some(seq);
        if self.timestamp != Some(timestamp) {
            // A new picture starts; whatever was pending is incomplete (or was delivered).
            self.frame.clear();
            self.broken = false;
            self.timestamp = Some(timestamp);
        }
        if lost {
            self.broken = true;
            self.waiting_for_keyframe = true;
        }
        match payload(packet) {
            Some((start, body)) => {
                if self.frame.is_empty() && !start {
                    // Continuation without a start: the start was lost.
                    self.broken = true;
                }
                if self.frame.len() + body.len() > MAX_FRAME_BYTES {
                    self.broken = true;
                }
                if self.broken {
                    self.frame.clear();
                } else {
                    self.frame.extend_from_slice(body);
                }
            }
            None => self.broken = true,
        }
        if !marker {
            return if lost { Assembled::Lost } else { Assembled::Nothing };
        }
        // The marker ends this picture: later packets with its timestamp start afresh.
        self.timestamp = None;
        if self.broken || self.frame.is_empty() {
            // Later delta frames refer to this one: only a keyframe decodes again.
            self.broken = false;
            self.waiting_for_keyframe = true;
            self.frame.clear();
            return Assembled::Lost;
        }
        // VP8 frame tag: the P bit (bit 0 of the first byte) is 0 for keyframes (RFC 6386 §9.1).
        let keyframe = self.frame[0] & 1 == 0;
        if self.waiting_for_keyframe && !keyframe {
            self.frame.clear();
            return if lost { Assembled::Lost } else { Assembled::Nothing };
        }
        if keyframe {
            self.waiting_for_keyframe = false;
        }
        Assembled::Frame { timestamp, keyframe }
    }
}

/// When a receiver asks the sender for a keyframe (a PLI): at once when the picture breaks,
/// then again every interval for as long as none has come. Asking once is not enough: the
/// request, or the keyframe answering it, can be lost as well (on a capped link a keyframe is
/// the burst most likely to be), and every delta frame after a loss is dropped unseen, so
/// nothing else would ask again. Janus forwards at most one request a second per publisher;
/// a shorter interval here costs a few RTCP bytes and no keyframes.
#[derive(Debug)]
pub struct KeyframeAsk {
    interval_us: u64,
    last_us: Option<u64>,
    asked: u64,
}

impl KeyframeAsk {
    #[must_use]
    pub fn new(interval_us: u64) -> Self {
        Self { interval_us, last_us: None, asked: 0 }
    }

    /// Whether to send a request now; `wanting` is whether a keyframe is awaited (the
    /// assembler's [`Vp8Assembler::waiting_for_keyframe`]). A `true` counts as sent.
    pub fn poll(&mut self, now_us: u64, wanting: bool) -> bool {
        if !wanting || self.last_us.is_some_and(|t| now_us.saturating_sub(t) < self.interval_us) {
            return false;
        }
        self.last_us = Some(now_us);
        self.asked += 1;
        true
    }

    /// When the next request falls due if a keyframe is still awaited then.
    #[must_use]
    pub fn deadline_us(&self, wanting: bool) -> Option<u64> {
        wanting.then(|| self.last_us.map_or(0, |t| t.saturating_add(self.interval_us)))
    }

    /// Requests sent so far.
    #[must_use]
    pub fn asked(&self) -> u64 {
        self.asked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(start: bool, body: &[u8]) -> Vec<u8> {
        let mut v = vec![if start { 0x10 } else { 0x00 }];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn reads_payload_descriptors() {
        assert_eq!(payload(&[0x10, 1, 2]), Some((true, &[1u8, 2][..])));
        // X, I with a 15-bit PictureID, L, T: five descriptor bytes.
        assert_eq!(payload(&[0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 9]), Some((true, &[9u8][..])));
        assert_eq!(payload(&[0x90, 0x80, 0x7f, 9]), Some((true, &[9u8][..])), "7-bit PictureID");
        assert_eq!(payload(&[0x11, 9]), Some((false, &[9u8][..])), "partition 1 is no frame start");
        assert_eq!(payload(&[0x90, 0xe0, 0x81]), None, "descriptor cut short");
        assert_eq!(payload(&[0x10]), None, "no VP8 bytes");
        assert_eq!(payload(&[]), None);
    }

    #[test]
    fn reassembles_a_keyframe_split_over_packets() {
        let mut a = Vp8Assembler::new();
        assert_eq!(a.push(1, 100, false, &pkt(true, &[0x10, 1, 2])), Assembled::Nothing);
        assert_eq!(a.push(2, 100, true, &pkt(false, &[3, 4, 5])), Assembled::Frame { timestamp: 100, keyframe: true });
        assert_eq!(a.frame(), &[0x10, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn drops_delta_frames_until_a_keyframe() {
        let mut a = Vp8Assembler::new();
        assert_eq!(a.push(1, 100, true, &pkt(true, &[0x01, 9, 9])), Assembled::Nothing);
        assert!(matches!(a.push(2, 200, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { keyframe: true, .. }));
        assert!(matches!(a.push(3, 300, true, &pkt(true, &[0x01, 9, 9])), Assembled::Frame { keyframe: false, .. }));
    }

    #[test]
    fn a_gap_breaks_the_frame_and_waits_for_a_keyframe() {
        let mut a = Vp8Assembler::new();
        assert!(matches!(a.push(1, 100, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { .. }));
        assert_eq!(a.push(2, 200, false, &pkt(true, &[0x01, 9, 9])), Assembled::Nothing);
        // seq 3 lost
        assert_eq!(a.push(4, 200, true, &pkt(false, &[9, 9, 9])), Assembled::Lost);
        assert_eq!(a.push(5, 300, true, &pkt(true, &[0x01, 9, 9])), Assembled::Nothing);
        assert!(matches!(a.push(6, 400, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { keyframe: true, .. }));
    }

    /// A hostile sender: one timestamp, never a marker bit, 100,000 packets of 1,200 bytes
    /// (120 MB). The buffer stays within twice the cap (its growth step), and the next real
    /// frame comes through.
    #[test]
    fn a_frame_without_end_keeps_memory_bounded() {
        let mut a = Vp8Assembler::new();
        let body = vec![7u8; 1200];
        let mut seq = 0u16;
        for i in 0..100_000u32 {
            seq = seq.wrapping_add(1);
            assert_eq!(a.push(seq, 100, false, &pkt(i == 0, &body)), Assembled::Nothing);
            assert!(a.buffered_capacity() <= 2 * MAX_FRAME_BYTES, "buffer grew to {}", a.buffered_capacity());
        }
        // Its marker at last: dropped, not delivered.
        seq = seq.wrapping_add(1);
        assert_eq!(a.push(seq, 100, true, &pkt(false, &body)), Assembled::Lost);
        seq = seq.wrapping_add(1);
        assert!(matches!(a.push(seq, 200, true, &pkt(true, &[0x00, 9, 9])), Assembled::Frame { keyframe: true, .. }));
    }

    /// The gap seen as a freeze in the thin-uplink test: a loss, one request, and its answer
    /// lost too. The delta frames that follow are complete and dropped; the receiver keeps
    /// asking every interval until the keyframe comes, then stops.
    #[test]
    fn keeps_asking_for_a_keyframe_until_one_comes() {
        const MS: u64 = 1000;
        let mut a = Vp8Assembler::new();
        let mut ask = KeyframeAsk::new(500 * MS);
        let mut asked_at = Vec::new();
        let mut seq = 0u16;
        let mut t = 0u64;
        // A keyframe, then 33 ms delta frames; packet 10 lost; the keyframe answering the
        // first request lost as well, the next one arrives at 2.5 s.
        while t <= 3_000 * MS {
            seq = seq.wrapping_add(1);
            let keyframe = t == 0 || t == 2_508 * MS;
            if seq != 10 {
                let got = a.push(seq, u32::try_from(t / 11).expect("a 32-bit RTP time"), true, &pkt(true, &[u8::from(!keyframe), 9]));
                if let Assembled::Frame { keyframe: true, .. } = got {
                    assert!(t == 0 || t == 2_508 * MS, "keyframe at {t}");
                }
            }
            if ask.poll(t, a.waiting_for_keyframe) {
                asked_at.push(t / MS);
            }
            if !a.waiting_for_keyframe {
                assert_eq!(ask.deadline_us(false), None);
            }
            t += 33 * MS;
        }
        // When the loss shows (packet 11, at 330 ms), every 500 ms after that (on the next
        // packet), and no more once the keyframe at 2508 ms decoded.
        assert_eq!(asked_at, [330, 858, 1386, 1914, 2442]);
        assert_eq!(ask.asked(), 5);
        assert!(!a.waiting_for_keyframe);
    }

    #[test]
    fn a_broken_frame_without_a_gap_waits_for_a_keyframe() {
        let mut a = Vp8Assembler::new();
        assert!(matches!(a.push(1, 100, true, &pkt(true, &[0x00, 9])), Assembled::Frame { .. }));
        // A continuation without its start, same sequence run: the picture is broken.
        assert_eq!(a.push(2, 200, true, &pkt(false, &[0x01, 9])), Assembled::Lost);
        assert!(a.waiting_for_keyframe);
        assert_eq!(a.push(3, 300, true, &pkt(true, &[0x01, 9])), Assembled::Nothing);
    }

    /// Packets after a marker with the same timestamp start a new frame rather than growing
    /// the delivered one.
    #[test]
    fn repeated_markers_on_one_timestamp_do_not_accumulate() {
        let mut a = Vp8Assembler::new();
        for seq in 1..=1000u16 {
            assert!(matches!(a.push(seq, 100, true, &pkt(true, &[0x00, 1, 2, 3])), Assembled::Frame { .. }));
            assert_eq!(a.frame().len(), 4);
        }
    }
}
