//! Share pipeline throughput on a real X display: capture → guard → I420 → VP8 (screen mode),
//! for a 1280×720 and a 1920×1080 window with another window on top, next to xcap's own
//! capture of the same window. Prints figures; needs DISPLAY with a window manager.
//!
//! Run: `cargo bench -p blende-windows --bench share_pipeline` (scripts/services.sh starts Xvfb);
//! `taskset -c 0` for the one-core figure, `BLENDE_BENCH_VP8_THREADS=2` to compare.

use std::time::{Duration, Instant};

use blende_guard::{FrameMut, ShareGuard, apply};
use blende_media::convert::to_i420;
use blende_media::frame::{PixelFormat, VideoFrame};
use blende_media::vp8::{Vp8Encoder, Vp8EncoderConfig};
use blende_policy::Policy;
use blende_windows::share::{Bgra, X11WindowShare};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{AtomEnum, ConnectionExt, CreateWindowAux, MapState, PropMode, WindowClass};
use x11rb::wrapper::ConnectionExt as _;

const FRAMES: u32 = 90;

fn main() {
    if std::env::var_os("DISPLAY").is_none() {
        eprintln!("share_pipeline: needs DISPLAY (source scripts/services.sh; blende_start_x)");
        return;
    }
    let (conn, screen_num) = x11rb::connect(None).expect("X connection");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>12}",
        "window", "capture", "guard", "i420", "vp8", "total", "fps", "xcap capture"
    );
    for (w, h) in [(1280u16, 720u16), (1920, 1080)] {
        let root = conn.setup().roots[screen_num].root;
        let win = make_window(&conn, root, (0, 0, w, h), 0x3366cc, "Bench.odt - LibreOffice Writer");
        let cover = make_window(&conn, root, (i16::try_from(w / 2).unwrap_or(0), 100, 300, 200), 0x00ff00, "Signal");
        bench(win);
        conn.destroy_window(cover).expect("destroy");
        conn.destroy_window(win).expect("destroy");
        conn.flush().expect("flush");
    }
}

fn make_window(conn: &impl Connection, root: u32, (x, y, w, h): (i16, i16, u16, u16), colour: u32, title: &str) -> u32 {
    let id = conn.generate_id().expect("id");
    conn.create_window(
        0,
        id,
        root,
        x,
        y,
        w,
        h,
        0,
        WindowClass::INPUT_OUTPUT,
        0,
        &CreateWindowAux::new().background_pixel(colour).override_redirect(0),
    )
    .expect("create");
    conn.change_property8(PropMode::REPLACE, id, AtomEnum::WM_NAME, AtomEnum::STRING, title.as_bytes()).expect("name");
    conn.change_property8(PropMode::REPLACE, id, AtomEnum::WM_CLASS, AtomEnum::STRING, b"bench\0Bench\0").expect("class");
    conn.map_window(id).expect("map");
    conn.flush().expect("flush");
    let deadline = Instant::now() + Duration::from_secs(5);
    while conn.get_window_attributes(id).expect("attrs").reply().expect("attrs").map_state != MapState::VIEWABLE {
        assert!(Instant::now() < deadline, "window not mapped");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    id
}

fn bench(win: u32) {
    let share = X11WindowShare::open(win).expect("open");
    let mut guard = ShareGuard::start(Policy::builtin(), u64::from(win), &share.snapshot()).expect("shareable");
    let mut frame = Bgra::default();
    // The window manager may shrink a window to fit the screen: encode what is captured.
    share.capture(&mut frame).expect("capture");
    // libvpx's VP8 worker threads spin while waiting: on one core, one encoder thread is faster.
    let threads = std::env::var("BLENDE_BENCH_VP8_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(1);
    let mut enc =
        Vp8Encoder::new(Vp8EncoderConfig { threads, ..Vp8EncoderConfig::screen(frame.width, frame.height, 2_500_000) }).expect("encoder");
    let (mut t_cap, mut t_guard, mut t_conv, mut t_enc) = (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    for n in 0..FRAMES {
        let t0 = Instant::now();
        let before = share.snapshot();
        share.capture(&mut frame).expect("capture");
        let after = share.snapshot();
        let t1 = Instant::now();
        let decision = guard.handle_frame(frame.width, frame.height, &before, &after, u64::from(n) * 33_333);
        let mut fm = FrameMut { data: &mut frame.data, width: frame.width, height: frame.height, stride_bytes: frame.width as usize * 4 };
        assert!(apply(&decision, &mut fm));
        let t2 = Instant::now();
        let vf = VideoFrame::new(frame.width, frame.height, PixelFormat::Bgra, frame.data.clone(), u64::from(n) * 33_333, u64::from(n))
            .expect("frame");
        let i420 = to_i420(&vf);
        let t3 = Instant::now();
        let _packets = enc.encode(&i420).expect("encode");
        let t4 = Instant::now();
        t_cap += t1 - t0;
        t_guard += t2 - t1;
        t_conv += t3 - t2;
        t_enc += t4 - t3;
    }
    let total = start.elapsed();
    let xwin = xcap::Window::all().expect("xcap").into_iter().find(|x| x.id().ok() == Some(win)).expect("xcap window");
    let xstart = Instant::now();
    for _ in 0..20 {
        let _img = xwin.capture_image().expect("xcap capture");
    }
    let xcap_ms = xstart.elapsed().as_secs_f64() * 1000.0 / 20.0;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(FRAMES);
    println!(
        "{:<10} {:>7.2}ms {:>7.3}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>8.1} {:>10.2}ms",
        format!("{}x{}", frame.width, frame.height),
        ms(t_cap),
        ms(t_guard),
        ms(t_conv),
        ms(t_enc),
        ms(total),
        f64::from(FRAMES) / total.as_secs_f64(),
        xcap_ms
    );
}
