//! Codec benchmarks: VP8 720p at 1.5 Mbit/s (encode, decode) and Opus 20 ms mono
//! (encode, decode). Run with `cargo bench -p blende-media --bench codecs`.

use std::hint::black_box;

use blende_media::audio_codec::{OPUS_FRAME_SAMPLES, OPUS_SAMPLE_RATE_HZ};
use blende_media::synthetic::{TestPatternCamera, ToneMicrophone};
use blende_media::{OpusConfig, OpusDecoder, OpusEncoder, VideoFrame, Vp8Decoder, Vp8Encoder, Vp8EncoderConfig};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

fn vp8(c: &mut Criterion) {
    let mut cam = TestPatternCamera::new(1280, 720, 30);
    let frames: Vec<_> = (0..60u64).map(|i| cam.next_frame(i * 33_333)).collect();
    let mut enc = Vp8Encoder::new(Vp8EncoderConfig::camera(1280, 720, 1_500_000)).expect("encoder");
    let mut i = 0u64;
    c.bench_function("vp8_encode_720p_1500kbps", |b| {
        b.iter_batched(
            || {
                // Restamp the cycled pictures 33 ms apart: rate control reads the
                // timestamps, and pictures 1 µs apart starve it.
                i += 1;
                let f = &frames[(i % frames.len() as u64) as usize];
                VideoFrame::new(f.width(), f.height(), f.format(), f.data().to_vec(), i * 33_333, i).expect("frame")
            },
            |frame| black_box(enc.encode(&frame).expect("encode")),
            BatchSize::LargeInput,
        )
    });
    // Decode a realistic stream: one keyframe then deltas, looped from the keyframe.
    let mut enc = Vp8Encoder::new(Vp8EncoderConfig::camera(1280, 720, 1_500_000)).expect("encoder");
    let packets: Vec<_> = frames.iter().flat_map(|f| enc.encode(f).expect("encode")).collect();
    let mut dec = Vp8Decoder::new(2).expect("decoder");
    let mut j = 0usize;
    c.bench_function("vp8_decode_720p_1500kbps", |b| {
        b.iter(|| {
            // Restart at the keyframe so every delta has its references.
            let out = dec.decode(&packets[j]).expect("decode");
            j = (j + 1) % packets.len();
            black_box(out)
        })
    });
}

fn opus(c: &mut Criterion) {
    let mut mic = ToneMicrophone::new(440.0, -12.0, OPUS_SAMPLE_RATE_HZ, 1);
    let frames: Vec<_> = (0..50u64).map(|i| mic.next_frame(OPUS_FRAME_SAMPLES, i * 20_000)).collect();
    let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
    let mut i = 0usize;
    c.bench_function("opus_encode_20ms_mono_32kbps", |b| {
        b.iter(|| {
            i = (i + 1) % frames.len();
            black_box(enc.encode(&frames[i]).expect("encode"))
        })
    });
    let mut enc = OpusEncoder::new(OpusConfig::default()).expect("encoder");
    let packets: Vec<_> = frames.iter().map(|f| enc.encode(f).expect("encode")).collect();
    let mut dec = OpusDecoder::new(1).expect("decoder");
    let mut j = 0usize;
    c.bench_function("opus_decode_20ms_mono_32kbps", |b| {
        b.iter(|| {
            j = (j + 1) % packets.len();
            black_box(dec.decode(&packets[j]).expect("decode"))
        })
    });
}

criterion_group!(benches, vp8, opus);
criterion_main!(benches);
