//! The share guard on virtual time: scripted desktops, then a model check.

use blende_guard::{
    Decision, FrameMut, GuardEvent, MASK_GREY, PauseReason, Rect, Refusal, SLATE_BG, SLATE_FG, ShareGuard, Snapshot, TargetRead, apply,
};
use blende_policy::{Category, Os, Policy, WindowInfo};
use proptest::prelude::*;

const WIN: Rect = Rect::new(100, 50, 320, 240);

fn present(app: &str, title: &str, minimized: bool) -> TargetRead {
    TargetRead::Present { info: WindowInfo::new(Os::Linux, app, title), rect: WIN, minimized }
}

fn snap(target: TargetRead, above: &[Rect]) -> Snapshot {
    Snapshot { target, above: above.to_vec() }
}

fn doc() -> Snapshot {
    snap(present("XTerm", "Bauantrag.docx - Word", false), &[])
}

fn frame(guard: &mut ShareGuard, before: &Snapshot, after: &Snapshot, t: u64) -> Decision {
    guard.handle_frame(WIN.width, WIN.height, before, after, t)
}

#[test]
fn blocked_windows_cannot_be_started() {
    let s = snap(present("Thunderbird", "Posteingang - Mozilla Thunderbird", false), &[]);
    match ShareGuard::start(Policy::builtin(), 7, &s) {
        Err(Refusal::Blocked { category: Category::Mail, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ShareGuard::start(Policy::builtin(), 7, &snap(TargetRead::Gone, &[])),
        Err(Refusal::NotShareable(PauseReason::Closed))
    ));
    assert!(ShareGuard::start(Policy::builtin(), 7, &doc()).is_ok());
}

#[test]
fn renamed_to_webmail_pauses_at_once_and_resumes_when_allowed_again() {
    let mut g = ShareGuard::start(Policy::builtin(), 7, &doc()).expect("start");
    assert_eq!(frame(&mut g, &doc(), &doc(), 1), Decision::Send { masks: vec![] });
    let gmail = snap(present("firefox", "Posteingang (3) - Gmail — Mozilla Firefox", false), &[]);
    // Renamed while the pixels were being captured: the later reading sees it.
    match frame(&mut g, &doc(), &gmail, 2) {
        Decision::Pause(PauseReason::Blocked { category: Category::Webmail, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(frame(&mut g, &gmail, &gmail, 3), Decision::Pause(_)));
    // The earlier reading alone also pauses (renamed back during capture).
    assert!(matches!(frame(&mut g, &gmail, &doc(), 4), Decision::Pause(_)));
    assert_eq!(frame(&mut g, &doc(), &doc(), 5), Decision::Send { masks: vec![] });
    let events: Vec<GuardEvent> = std::iter::from_fn(|| g.poll_event()).collect();
    assert!(
        matches!(
            &events[..],
            [GuardEvent::Paused { at_us: 2, reason: PauseReason::Blocked { .. }, .. }, GuardEvent::Resumed { at_us: 5, .. }]
        ),
        "{events:?}"
    );
}

#[test]
fn minimise_pauses_restore_resumes_close_is_final() {
    let mut g = ShareGuard::start(Policy::builtin(), 7, &doc()).expect("start");
    let min = snap(present("XTerm", "Bauantrag.docx - Word", true), &[]);
    assert_eq!(frame(&mut g, &min, &min, 1), Decision::Pause(PauseReason::Minimized));
    assert_eq!(frame(&mut g, &doc(), &doc(), 2), Decision::Send { masks: vec![] });
    let gone = snap(TargetRead::Gone, &[]);
    assert_eq!(frame(&mut g, &doc(), &gone, 3), Decision::Pause(PauseReason::Closed));
    // A new window that got the same id is not the window the user chose.
    assert_eq!(frame(&mut g, &doc(), &doc(), 4), Decision::Pause(PauseReason::Closed));
    let unreadable = snap(TargetRead::Unreadable, &[]);
    let mut g = ShareGuard::start(Policy::builtin(), 8, &doc()).expect("start");
    assert_eq!(frame(&mut g, &unreadable, &doc(), 1), Decision::Pause(PauseReason::Unreadable));
}

#[test]
fn windows_on_top_are_masked_in_frame_coordinates_from_either_reading() {
    let mut g = ShareGuard::start(Policy::builtin(), 7, &doc()).expect("start");
    let cover = Rect::new(300, 200, 400, 400); // overlaps the bottom-right corner
    let popup = Rect::new(90, 40, 20, 20); // a menu over the top-left corner
    let far = Rect::new(1000, 1000, 10, 10);
    let both = snap(present("XTerm", "Bauantrag.docx - Word", false), &[cover, far, popup]);
    let d = frame(&mut g, &both, &both, 1);
    assert_eq!(d, Decision::Send { masks: vec![Rect::new(0, 0, 10, 10), Rect::new(200, 150, 120, 90)] });
    assert_eq!(g.poll_event(), Some(GuardEvent::Masking { window_id: 7, at_us: 1, regions: 2 }));
    // A window far away that moved does not matter.
    let far_moved = snap(present("XTerm", "Bauantrag.docx - Word", false), &[cover, Rect::new(1200, 900, 10, 10), popup]);
    assert!(matches!(frame(&mut g, &both, &far_moved, 2), Decision::Send { .. }));
    // One on top that moved, appeared or went while the window was read may have been
    // anywhere between its readings: the frame is dropped.
    let with_cover = snap(present("XTerm", "Bauantrag.docx - Word", false), &[cover, far]);
    let with_popup = snap(present("XTerm", "Bauantrag.docx - Word", false), &[popup]);
    assert_eq!(frame(&mut g, &with_cover, &with_popup, 3), Decision::Drop);
    assert_eq!(frame(&mut g, &with_cover, &both, 4), Decision::Drop);
}

#[test]
fn moving_during_capture_drops_the_frame() {
    let mut g = ShareGuard::start(Policy::builtin(), 7, &doc()).expect("start");
    let moved = snap(
        TargetRead::Present {
            info: WindowInfo::new(Os::Linux, "XTerm", "a.docx - Word"),
            rect: Rect::new(101, 50, 320, 240),
            minimized: false,
        },
        &[],
    );
    assert_eq!(frame(&mut g, &doc(), &moved, 1), Decision::Drop);
    assert_eq!(g.handle_frame(321, 240, &doc(), &doc(), 2), Decision::Drop, "frame size must match the window");
}

#[test]
fn apply_masks_and_slates_every_pixel() {
    let (w, h) = (WIN.width, WIN.height);
    let mut buf = vec![0x11u8; (w * h * 4) as usize];
    let mut f = FrameMut { data: &mut buf, width: w, height: h, stride_bytes: (w * 4) as usize };
    assert!(apply(&Decision::Send { masks: vec![Rect::new(200, 150, 500, 500)] }, &mut f));
    let px = |buf: &[u8], x: u32, y: u32| buf[((y * w + x) * 4) as usize];
    assert_eq!(px(&buf, 250, 200), MASK_GREY);
    assert_eq!(px(&buf, 10, 10), 0x11);
    let mut f = FrameMut { data: &mut buf, width: w, height: h, stride_bytes: (w * 4) as usize };
    assert!(apply(&Decision::Pause(PauseReason::Minimized), &mut f));
    assert!(buf.chunks_exact(4).all(|p| p[0] == SLATE_BG || p[0] == SLATE_FG), "nothing of the window survives");
    let mut f = FrameMut { data: &mut buf, width: w, height: h, stride_bytes: (w * 4) as usize };
    assert!(!apply(&Decision::Drop, &mut f));
}

#[derive(Clone, Debug)]
enum Step {
    Doc,
    Webmail,
    Minimized,
    Gone,
    Unreadable,
}

fn reading(s: &Step) -> TargetRead {
    match s {
        Step::Doc => present("XTerm", "Bauantrag.docx - Word", false),
        Step::Webmail => present("firefox", "Gmail - Inbox - Mozilla Firefox", false),
        Step::Minimized => present("XTerm", "Bauantrag.docx - Word", true),
        Step::Gone => TargetRead::Gone,
        Step::Unreadable => TargetRead::Unreadable,
    }
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![4 => Just(Step::Doc), 1 => Just(Step::Webmail), 1 => Just(Step::Minimized), 1 => Just(Step::Unreadable), 1 => Just(Step::Gone)]
}

fn arb_rect() -> impl Strategy<Value = Rect> {
    (0i32..600, 0i32..400, 1u32..300, 1u32..300).prop_map(|(x, y, w, h)| Rect::new(x, y, w, h))
}

proptest! {
    /// Reference model: a frame is sent only if the window was shareable at both readings and
    /// never closed before, and the windows on top covered the same parts of it in both;
    /// every covered pixel is masked. Windows on top that moved drop the frame.
    #[test]
    fn model(
        steps in prop::collection::vec(
            (arb_step(), arb_step(), prop::collection::vec(arb_rect(), 0..3), prop::collection::vec(arb_rect(), 0..3), any::<bool>()),
            1..40,
        )
    ) {
        let mut g = ShareGuard::start(Policy::builtin(), 1, &doc()).expect("start");
        let mut closed = false;
        for (t, (b, a, above, moved_to, moved)) in steps.iter().enumerate() {
            let above_after = if *moved { moved_to } else { above };
            let before = snap(reading(b), above);
            let after = snap(reading(a), above_after);
            let d = frame(&mut g, &before, &after, t as u64);
            closed |= matches!(b, Step::Gone) || matches!(a, Step::Gone);
            let shareable = !closed && matches!((b, a), (Step::Doc, Step::Doc));
            let covered = |rs: &[Rect]| {
                let mut v: Vec<Rect> = rs.iter().filter_map(|r| r.intersect(&WIN)).map(|r| r.relative_to(&WIN)).collect();
                v.sort_by_key(|m| (m.y, m.x, m.width, m.height));
                v.dedup();
                v
            };
            let steady = covered(above) == covered(above_after);
            match d {
                Decision::Send { masks } => {
                    prop_assert!(shareable && steady);
                    for rel in covered(above).into_iter().chain(covered(above_after)) {
                        prop_assert!(masks.contains(&rel), "{rel:?} not masked in {masks:?}");
                    }
                }
                Decision::Pause(_) => prop_assert!(!shareable),
                Decision::Drop => prop_assert!(shareable && !steady, "dropped although nothing on top moved"),
            }
        }
    }
}
