//! Chat, documents and the identity check between real processes on loopback: Blende's room
//! server, `blende join --headless` participants, and a hostile sender in the test process (our
//! own signalling and WebRTC crates, speaking `blende-p2p/1` with lies in it).
//!
//! Everything runs in this process's network namespace (ICE on 127.0.0.1): the hostile peer
//! lives in the test process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use blende_p2p::IdentityCode;
use blende_p2p::wire::{self, Control, Frame};
use blende_rtc::{DataLink, Peer, PeerConfig, PeerRole, RtcEvent};
use blende_signal::{JoinOptions, SignalCommand, SignalEvent, SignalHandle};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::harness::{Participant, serial};
use crate::room::{RoomServer, RoomSetup};

const WAIT: Duration = Duration::from_secs(20);

fn folder(setup: &RoomSetup, name: &str) -> PathBuf {
    let dir = setup.dir.join(name);
    std::fs::create_dir_all(&dir).expect("folder");
    dir
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).expect("read dir").flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn participant_id(p: &Participant) -> String {
    p.wait_for("joined", WAIT, |v| v["event"] == "joined")["participant_id"].as_str().expect("id").to_owned()
}

fn document_event(p: &Participant, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    p.wait_for(what, WAIT, |v| v["event"] == "document" && pred(v))
}

/// Deterministic content that no two offsets share.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed).collect()
}

#[test]
fn chat_documents_and_identity_between_three_blende_participants() {
    let _serial = serial();
    let setup = RoomSetup::new("direct");
    let server = RoomServer::start_in(&setup.db, None);
    let m = setup.create_meeting(&server, "Akte 4711", false);
    let (url, pw) = (server.url(), m.password_path().to_owned());
    // Sound only: the mesh connections (and their data channels) without the cost of video.
    let args = ["--room", m.id.as_str(), "--password-file", pw.as_str(), "--camera", "none"];
    let mut anna = Participant::spawn_local("Anna", &url, &args);
    let mut bernd = Participant::spawn_local("Bernd", &url, &args);
    let cem = Participant::spawn_local("Cem", &url, &args);
    let (a, b, c) = (participant_id(&anna), participant_id(&bernd), participant_id(&cem));
    for (p, others) in [(&anna, [&b, &c]), (&bernd, [&a, &c]), (&cem, [&a, &b])] {
        for o in others {
            p.wait_for("a direct link", WAIT, |v| v["event"] == "direct" && v["participant"] == o.as_str() && v["open"] == true);
        }
    }

    // The identity code of each pair is the same at both ends, and differs between pairs.
    let code = |p: &Participant, other: &str| {
        p.wait_for("an identity code", WAIT, |v| v["event"] == "identity" && v["participant"] == other)["code"]
            .as_str()
            .expect("code")
            .to_owned()
    };
    let (ab, ba, ac) = (code(&anna, &b), code(&bernd, &a), code(&anna, &c));
    eprintln!("identity codes: Anna–Bernd {ab} / {ba}, Anna–Cem {ac}");
    assert_eq!(ab, ba);
    assert_ne!(ab, ac);
    anna.send(&format!("identity checked {b}"));
    anna.wait_for("marked checked", WAIT, |v| v["event"] == "identity" && v["participant"] == b.as_str() && v["checked"] == true);

    // Chat: to everyone, then privately; the room server sees none of it. 20 messages of
    // 2000 characters to two people are 80 kB of text.
    let before = server.socket_bytes();
    let long = "Vertraulich ".repeat(200)[..2000].to_owned();
    for i in 0..20 {
        anna.send(&format!("say {i:02} {}", &long[3..]));
    }
    anna.send(&format!("say-to {b} nur für Bernd: Az. 4711"));
    for p in [&bernd, &cem] {
        p.wait_for("the last message to everyone", WAIT, |v| {
            v["event"] == "chat" && v["text"].as_str().is_some_and(|t| t.starts_with("19 "))
        });
    }
    bernd.wait_for("the private message", WAIT, |v| {
        v["event"] == "chat" && v["private_with"] == a.as_str() && v["text"] == "nur für Bernd: Az. 4711"
    });
    std::thread::sleep(Duration::from_millis(500));
    let chats = |p: &Participant| p.events().iter().filter(|v| v["event"] == "chat").count();
    assert_eq!((chats(&bernd), chats(&cem)), (21, 20), "the private message reached Bernd only");
    let server_moved = server.socket_bytes() - before;
    eprintln!("chat: 80 kB of text to two participants; the room server moved {server_moved} bytes meanwhile ({before} before)");
    assert!(before > 0, "no bytes counted on the server's connections: does `ss` see them?");
    assert!(server_moved < 8_000, "the room server moved {server_moved} bytes while 80 kB of chat went out: chat through the server?");

    // A document: offered to Bernd, accepted into a folder, checked, named; a second one of the
    // same name does not replace the first.
    let inbox = folder(&setup, "bernd-inbox");
    let outbox = folder(&setup, "anna-outbox");
    let file = outbox.join("Bescheid 4711.pdf");
    let data = content(3_000_000, 1);
    std::fs::write(&file, &data).expect("file");
    for round in 0..2 {
        anna.send(&format!("send-to {b} {}", file.display()));
        let offer = document_event(&bernd, "an offer", |v| v["state"] == "offered" && v["id"].as_u64().is_some_and(|id| id > round));
        assert_eq!(
            (offer["name"].as_str(), offer["size"].as_u64(), offer["from"].as_str()),
            (Some("Bescheid 4711.pdf"), Some(3_000_000), Some(a.as_str()))
        );
        let id = offer["id"].as_u64().expect("id");
        if round == 1 {
            // "Everything off" before the second transfer: media stops, the document still goes.
            anna.send("all off");
            anna.wait_for("everything off", WAIT, |v| v["event"] == "switch" && v["kind"] == "all" && v["on"] == false);
            anna.wait_for("mic released", WAIT, |v| v["event"] == "device" && v["kind"] == "mic" && v["to"] == "off");
        }
        bernd.send(&format!("accept {id} {}", inbox.display()));
        let saved = document_event(&bernd, "saved", |v| v["state"] == "saved" && v["id"] == id);
        let path = PathBuf::from(saved["path"].as_str().expect("path"));
        assert_eq!(path.parent(), Some(inbox.as_path()));
        assert_eq!(std::fs::read(&path).expect("saved file"), data);
    }
    document_event(&anna, "delivered", |v| v["state"] == "delivered");
    assert_eq!(listing(&inbox), ["Bescheid 4711 (2).pdf", "Bescheid 4711.pdf"]);
    // While the second document went, Anna's switch held: Bernd hears nothing from her.
    std::thread::sleep(Duration::from_millis(1200));
    let t0 = bernd.last_t_ms();
    let s = bernd.wait_feed_stats("Anna's feed after everything off", WAIT, t0, |v| v["feed"] == a.as_str());
    let silent = s["audio_frames_since_last"].as_u64().unwrap_or(0) == 0 || s["audio_dbfs"].as_f64().is_none_or(|d| d < -60.0);
    assert!(silent, "Bernd still hears Anna after everything off: {s}");

    // A document to everyone needs the presenter role.
    anna.send(&format!("send {}", file.display()));
    anna.wait_for("refused without the presenter role", WAIT, |v| {
        v["event"] == "error" && v["message"].as_str().is_some_and(|m| m.contains("presenter"))
    });
    drop(cem);
    anna.leave();
    bernd.leave();
}

/// A participant in the test process that speaks `blende-p2p/1` and lies: our own signalling
/// and WebRTC crates, driven by hand.
struct Hostile {
    rt: tokio::runtime::Runtime,
    signal: SignalHandle,
    peer: Option<Peer>,
    events: Option<mpsc::Receiver<RtcEvent>>,
    link: Option<DataLink>,
    certificate: blende_rtc::DtlsCertificate,
    /// Who we offer our connection to.
    to: String,
}

impl Hostile {
    fn join(url: &str, meeting: &str, password: &str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let url = blende_policy::ServerUrl::parse(url).expect("url");
        let options = JoinOptions {
            room: Some(meeting.to_owned()),
            password: Some(password.to_owned()),
            display_name: "Mallory".into(),
            moderator_token: None,
            resume: None,
        };
        let signal = rt.block_on(blende_signal::connect(&url, options)).expect("signalling");
        let certificate = blende_rtc::DtlsCertificate::generate().expect("certificate");
        Hostile { rt, signal, peer: None, events: None, link: None, certificate, to: String::new() }
    }

    /// Waits for the room server to say whom to offer to (the Blende participant).
    fn wait_publish_to(&mut self) {
        let to = self.rt.block_on(async {
            loop {
                match tokio::time::timeout(WAIT, self.signal.events.recv()).await.expect("in time").expect("signalling open") {
                    SignalEvent::PublishTo { peer } => break peer,
                    SignalEvent::Error { message, fatal: true } => panic!("{message}"),
                    _ => {}
                }
            }
        });
        self.to = to;
    }

    /// A (new) connection with a data channel to the participant; waits until it is open.
    fn connect(&mut self) {
        if let Some(old) = self.peer.take() {
            self.rt.block_on(old.close());
        }
        let config = PeerConfig {
            role: PeerRole::Publisher,
            ice_bind_ip: Some("127.0.0.1".parse().expect("ip")),
            video: None,
            audio: false,
            data_channel: true,
            certificate: Some(self.certificate.clone()),
            ..PeerConfig::default()
        };
        let to = self.to.clone();
        let (peer, events, link) = self.rt.block_on(async {
            let (peer, mut events) = Peer::new(config).await.expect("peer");
            let sdp = peer.create_offer().await.expect("offer");
            self.signal.commands.send(SignalCommand::PublishTo { peer: to.clone(), sdp }).await.expect("send offer");
            let answer = loop {
                match tokio::time::timeout(WAIT, self.signal.events.recv()).await.expect("an answer in time").expect("open") {
                    SignalEvent::PeerAnswer { peer: from, sdp } if from == to => break sdp,
                    _ => {}
                }
            };
            peer.apply_answer(&answer).await.expect("answer");
            let link = loop {
                if let RtcEvent::DataOpen(link) =
                    tokio::time::timeout(WAIT, events.recv()).await.expect("data channel in time").expect("events")
                {
                    break link;
                }
            };
            (peer, events, link)
        });
        self.peer = Some(peer);
        self.events = Some(events);
        self.link = Some(link);
    }

    fn send(&self, message: &[u8]) {
        let link = self.link.clone().expect("link");
        self.rt.block_on(async { link.send(message).await.expect("data channel send") });
    }

    fn control(&self, control: &Control) {
        self.send(&wire::encode_control(control));
    }

    /// Chunks of `data` from `from`, with `tamper` applied to each piece.
    fn chunks(&self, id: u32, data: &[u8], from: usize, to: usize, tamper: impl Fn(usize, &mut Vec<u8>)) {
        let mut frame = Vec::new();
        let mut offset = from;
        while offset < to {
            let end = (offset + wire::MAX_CHUNK_BYTES).min(to);
            let mut piece = data[offset..end].to_vec();
            tamper(offset, &mut piece);
            wire::encode_chunk(id, offset as u64, &piece, &mut frame);
            self.send(&frame);
            offset = end;
        }
    }

    /// The next control message the participant sends us.
    fn next_control(&mut self) -> Control {
        let events = self.events.as_mut().expect("events");
        self.rt.block_on(async {
            loop {
                match tokio::time::timeout(WAIT, events.recv()).await.expect("a message in time").expect("events") {
                    RtcEvent::Data(bytes) => match wire::decode(&bytes).expect("well-formed") {
                        Frame::Control(c) => break c,
                        Frame::Chunk { .. } => panic!("the participant sent us a chunk"),
                    },
                    RtcEvent::DataClosed => panic!("the data channel closed"),
                    _ => {}
                }
            }
        })
    }

    fn fingerprints(&self) -> ([u8; 32], [u8; 32]) {
        let peer = self.peer.as_ref().expect("peer");
        self.rt.block_on(peer.dtls_fingerprints()).expect("fingerprints")
    }
}

#[test]
fn a_hostile_sender_gets_nothing_half_written_and_nothing_outside_the_folder() {
    let _serial = serial();
    let setup = RoomSetup::new("direct-hostile");
    let server = RoomServer::start_in(&setup.db, None);
    let m = setup.create_meeting(&server, "Akte 0815", false);
    let mut bea =
        Participant::spawn_local("Bea", &server.url(), &["--room", &m.id, "--password-file", m.password_path(), "--camera", "none"]);
    participant_id(&bea);
    let mut mallory = Hostile::join(&server.url(), &m.id, &m.password);
    mallory.wait_publish_to();
    mallory.connect();
    let me = bea.wait_for("Mallory's link", WAIT, |v| v["event"] == "direct" && v["open"] == true)["participant"]
        .as_str()
        .expect("id")
        .to_owned();

    // The identity code Bea shows is the one our own end of the connection computes.
    let (ours, theirs) = mallory.fingerprints();
    let expected = IdentityCode::new(&ours, &theirs).digits();
    let shown = bea.wait_for("identity", WAIT, |v| v["event"] == "identity" && v["participant"] == me.as_str());
    assert_eq!(shown["code"].as_str(), Some(expected.as_str()), "both ends of one connection read the same code");

    // Chat with hidden direction overrides arrives cleaned.
    mallory.control(&Control::Chat { text: "Rechnung\u{202E}fdp.exe".into(), private: true });
    bea.wait_for("cleaned chat", WAIT, |v| v["event"] == "chat" && v["text"] == "Rechnungfdp.exe");

    let inbox = folder(&setup, "bea-inbox");
    let chunk = wire::MAX_CHUNK_BYTES;
    let data = content(4 * chunk + 100, 7);
    let sha = wire::hex(&blende_p2p::transfer::sha256(&data));
    let offer = |mallory: &Hostile, bea: &mut Participant, id: u32, name: &str, size: u64, sha256: &str| -> u64 {
        mallory.control(&Control::Offer { id, name: name.into(), size, sha256: sha256.into(), to_all: None });
        // Shown without its invisible characters.
        let shown: String = name.chars().filter(|c| !blende_p2p::chat::is_hidden(*c)).collect();
        let ev = document_event(bea, "offered", |v| v["state"] == "offered" && v["size"] == size && v["name"] == shown.as_str());
        let transfer = ev["id"].as_u64().expect("id");
        bea.send(&format!("accept {transfer} {}", inbox.display()));
        transfer
    };
    let expect_failure = |bea: &Participant, transfer: u64, words: &str| {
        let ev = document_event(bea, "failed", |v| v["state"] == "failed" && v["id"] == transfer);
        let reason = ev["reason"].as_str().unwrap_or_default().to_owned();
        assert!(reason.contains(words), "transfer {transfer}: {reason:?} does not say {words:?}");
        eprintln!("hostile sender, transfer {transfer}: {reason}");
    };

    // 1. A flipped bit: caught by the SHA-256, nothing kept.
    let t = offer(&mallory, &mut bea, 1, "../../etc/passwd", data.len() as u64, &sha);
    assert_eq!(mallory.next_control(), Control::Accept { id: 1, from: 0 });
    mallory.chunks(1, &data, 0, data.len(), |offset, piece| {
        if offset == 2 * chunk {
            piece[17] ^= 0x10;
        }
    });
    mallory.control(&Control::Done { id: 1 });
    assert!(matches!(mallory.next_control(), Control::Failed { id: 1, reason } if reason.contains("SHA-256")));
    expect_failure(&bea, t, "SHA-256");

    // 2. Truncated: Done after 2 of 4+ chunks.
    let t = offer(&mallory, &mut bea, 2, "Bescheid.pdf", data.len() as u64, &sha);
    assert_eq!(mallory.next_control(), Control::Accept { id: 2, from: 0 });
    mallory.chunks(2, &data, 0, 2 * chunk, |_, _| {});
    mallory.control(&Control::Done { id: 2 });
    assert!(matches!(mallory.next_control(), Control::Failed { id: 2, .. }), "the sender hears why");
    expect_failure(&bea, t, &format!("after {} of {} bytes", 2 * chunk, data.len()));

    // 3. A lie about the size: 1000 bytes announced, a whole chunk sent.
    let t = offer(&mallory, &mut bea, 3, "klein.txt", 1000, &wire::hex(&blende_p2p::transfer::sha256(&data[..1000])));
    assert_eq!(mallory.next_control(), Control::Accept { id: 3, from: 0 });
    mallory.chunks(3, &data, 0, chunk, |_, _| {});
    assert!(matches!(mallory.next_control(), Control::Failed { id: 3, .. }), "the sender hears why");
    expect_failure(&bea, t, "more than the 1000 bytes");
    std::thread::sleep(Duration::from_millis(300));
    assert!(listing(&inbox).is_empty(), "nothing half-written is left: {:?}", listing(&inbox));

    // 4. Hostile names, honest content: saved inside the folder under safe names, never over
    // an existing file.
    let small = &data[..5000];
    let small_sha = wire::hex(&blende_p2p::transfer::sha256(small));
    for (id, name) in [(4, "../../etc/passwd"), (5, "CON"), (6, "con"), (7, "/etc/shadow"), (8, "Rechnung\u{202E}fdp.exe")] {
        let t = offer(&mallory, &mut bea, id, name, small.len() as u64, &small_sha);
        assert_eq!(mallory.next_control(), Control::Accept { id, from: 0 });
        mallory.chunks(id, small, 0, small.len(), |_, _| {});
        mallory.control(&Control::Done { id });
        assert_eq!(mallory.next_control(), Control::Verified { id });
        document_event(&bea, "saved", |v| v["state"] == "saved" && v["id"] == t);
    }
    assert_eq!(listing(&inbox), ["Rechnungfdp.exe", "_CON", "_con", "passwd", "shadow"]);
    for name in listing(&inbox) {
        assert_eq!(std::fs::read(inbox.join(&name)).expect("saved"), small);
    }

    // 5. A cut in the middle: the connection is replaced, the receiver asks for the rest only.
    let big = content(10 * chunk, 9);
    let t = offer(&mallory, &mut bea, 9, "gross.bin", big.len() as u64, &wire::hex(&blende_p2p::transfer::sha256(&big)));
    assert_eq!(mallory.next_control(), Control::Accept { id: 9, from: 0 });
    mallory.chunks(9, &big, 0, 4 * chunk, |_, _| {});
    document_event(&bea, "progress", |v| {
        v["state"] == "progress" && v["id"] == t && v["bytes"].as_u64().is_some_and(|b| b >= 4 * chunk as u64)
    });
    let cut_at = Instant::now();
    mallory.connect();
    let resume = mallory.next_control();
    assert_eq!(resume, Control::Accept { id: 9, from: 4 * chunk as u64 }, "the rest, from the last byte written");
    mallory.chunks(9, &big, 4 * chunk, big.len(), |_, _| {});
    mallory.control(&Control::Done { id: 9 });
    assert_eq!(mallory.next_control(), Control::Verified { id: 9 });
    let saved = document_event(&bea, "saved", |v| v["state"] == "saved" && v["id"] == t);
    assert_eq!(std::fs::read(saved["path"].as_str().expect("path")).expect("file"), big);
    eprintln!("cut transfer resumed at byte {} and completed {:?} after the cut", 4 * chunk, cut_at.elapsed());

    // 6. Garbage on the channel is reported and ends nothing.
    mallory.send(b"X\x00garbage");
    mallory.send(b"J{\"type\":\"exec\",\"cmd\":\"rm -rf /\"}");
    bea.wait_for("garbage reported", WAIT, |v| v["event"] == "error" && v["message"].as_str().is_some_and(|m| m.contains("malformed")));
    assert!(std::process::Command::new("true").status().is_ok());
    bea.send("stats");
    bea.wait_for("still in the call", WAIT, |v| v["event"] == "stats");
    drop(mallory);
    bea.leave();
}

/// (VmRSS, VmHWM) of a process, bytes.
fn rss_and_peak(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A document of `BLENDE_BENCH_MB` MB (default 500) from one Blende participant to another on
/// loopback, beside the same amount between two RTCPeerConnections in headless Chromium, in
/// one run: throughput and memory of each. Prints figures; asserts only that the transfer
/// worked and that the receiver's memory did not grow with the file.
///
/// ```sh
/// cargo test --release -p blende-app --test interop -- --ignored --nocapture bench_document
/// ```
#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn bench_document_blende_vs_chromium() {
    let _serial = serial();
    let mb: usize = std::env::var("BLENDE_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let setup = RoomSetup::new("bench-document");
    let server = RoomServer::start_in(&setup.db, None);
    let m = setup.create_meeting(&server, "Bench", false);
    let (url, pw) = (server.url(), m.password_path().to_owned());
    let args = ["--room", m.id.as_str(), "--password-file", pw.as_str(), "--camera", "none"];
    let mut anna = Participant::spawn_local("Anna", &url, &args);
    let mut bernd = Participant::spawn_local("Bernd", &url, &args);
    let b = participant_id(&bernd);
    anna.wait_for("link", WAIT, |v| v["event"] == "direct" && v["open"] == true);
    let outbox = folder(&setup, "out");
    let inbox = folder(&setup, "in");
    let file = outbox.join("bench.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&file).expect("file"));
        let block = content(1 << 20, 3);
        for i in 0..mb {
            let mut b = block.clone();
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            f.write_all(&b[..1_000_000]).expect("write");
        }
    }
    let size = (mb * 1_000_000) as u64;
    let (_, anna_hwm_before) = rss_and_peak(anna.pid());
    let (bernd_rss_before, _) = rss_and_peak(bernd.pid());
    anna.send(&format!("send-to {b} {}", file.display()));
    let offered = document_event(&bernd, "offered", |v| v["state"] == "offered");
    let id = offered["id"].as_u64().expect("id");
    let hashed_at = Instant::now();
    bernd.send(&format!("accept {id} {}", inbox.display()));
    let accepted = document_event(&anna, "accepted", |v| v["state"] == "accepted");
    // Bernd's memory midway and at the end: it must not grow with the file.
    let mut bernd_rss_mid = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    let delivered = loop {
        if let Some(v) =
            anna.events().into_iter().find(|v| v["event"] == "document" && (v["state"] == "delivered" || v["state"] == "failed"))
        {
            break v;
        }
        let progressed =
            bernd.events().iter().rev().find(|v| v["event"] == "document" && v["state"] == "progress").and_then(|v| v["bytes"].as_u64());
        if progressed.is_some_and(|p| p > size / 2) && bernd_rss_mid == 0 {
            bernd_rss_mid = rss_and_peak(bernd.pid()).0;
        }
        assert!(Instant::now() < deadline, "the transfer did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(delivered["state"], "delivered", "{delivered}");
    let seconds = (delivered["t_ms"].as_u64().unwrap_or(0) - accepted["t_ms"].as_u64().unwrap_or(0)) as f64 / 1000.0;
    let (_, anna_hwm) = rss_and_peak(anna.pid());
    let (bernd_rss_end, bernd_hwm) = rss_and_peak(bernd.pid());
    let saved = document_event(&bernd, "saved", |v| v["state"] == "saved");
    let saved_len = std::fs::metadata(saved["path"].as_str().expect("path")).expect("saved").len();
    assert_eq!(saved_len, size);
    let _ = hashed_at;
    println!(
        "blende: {mb} MB in {seconds:.2} s = {:.1} MB/s (accept → delivered: read, send, write, SHA-256, rename); \
         sender peak RSS {:.1} MB (before {:.1}); receiver RSS {:.1} → {:.1} (midway) → {:.1} MB, peak {:.1} MB",
        size as f64 / 1e6 / seconds,
        anna_hwm as f64 / 1e6,
        anna_hwm_before as f64 / 1e6,
        bernd_rss_before as f64 / 1e6,
        bernd_rss_mid as f64 / 1e6,
        bernd_rss_end as f64 / 1e6,
        bernd_hwm as f64 / 1e6
    );
    assert!(bernd_hwm < bernd_rss_before + 64_000_000, "the receiver's memory grew with the file: {bernd_hwm} bytes peak");
    let _ = std::fs::remove_dir_all(&inbox);
    let _ = std::fs::remove_file(&file);
    anna.leave();
    bernd.leave();

    // The same amount between two Chromium peers.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/chromium_datachannel.py");
    let out = std::process::Command::new(crate::browser::venv_python())
        .arg(&script)
        .args(["--megabytes", &mb.to_string()])
        .current_dir(script.parent().expect("dir"))
        .output()
        .expect("chromium_datachannel.py");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = text.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null);
    println!(
        "chromium: {mb} MB in {:.2} s = {:.1} MB/s (memory to memory, no hash, no disk); peak RSS of its processes {:.1} MB, CPU {} s",
        v["seconds"].as_f64().unwrap_or(f64::NAN),
        v["mb_per_s"].as_f64().unwrap_or(f64::NAN),
        v["chromium_peak_rss_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
        v["chromium_cpu_s"]
    );
    assert_eq!(v["ok"], true, "chromium: {text}");
}

/// The app's panel with a headless participant on the other side: Bernd's chat message shows
/// with his name, a message typed with the keyboard (focus, text, Enter) reaches him, the
/// identity code the app shows is the one Bernd reads, and his document is accepted with a
/// button and saved in the folder the panel names.
#[test]
fn the_app_panel_chats_checks_the_identity_and_accepts_a_document() {
    use blende_app::ui::{BlendeApp, Language};
    use eframe::egui;
    use egui_kittest::Harness;
    use egui_kittest::kittest::{Queryable, by};

    let _serial = serial();
    let setup = RoomSetup::new("direct-app");
    let server = RoomServer::start_in(&setup.db, None);
    let m = setup.create_meeting(&server, "Akte 17", false);
    let mut bernd =
        Participant::spawn_local("Bernd", &server.url(), &["--room", &m.id, "--password-file", m.password_path(), "--camera", "none"]);
    participant_id(&bernd);
    let options = crate::room::app_in_meeting(&server, &m, "Anna", Language::English, Some("127.0.0.1".parse().expect("ip")), None);
    let mut h =
        Harness::builder().with_size(egui::vec2(1300.0, 900.0)).build_eframe(move |cc| BlendeApp::new(&cc.egui_ctx, options.clone()));
    let step_until = |h: &mut Harness<'_, BlendeApp>, what: &str, done: &dyn Fn(&Harness<'_, BlendeApp>) -> bool| {
        let deadline = Instant::now() + WAIT;
        loop {
            h.step();
            if done(h) {
                return;
            }
            if Instant::now() >= deadline {
                let shown: Vec<String> =
                    h.query_all(by().label_contains(":")).map(|n| format!("{n:?}").chars().take(160).collect::<String>()).collect();
                panic!("the app never showed {what}; labels with ':' {shown:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let anna = bernd.wait_for("Anna's link", WAIT, |v| v["event"] == "direct" && v["open"] == true)["participant"]
        .as_str()
        .expect("id")
        .to_owned();

    // A message arrives while the panel is closed: the toggle counts it.
    bernd.send("say Guten Tag, Frau Anna");
    step_until(&mut h, "the unread count", &|h| h.query_by_label("Chat and documents (1 new)").is_some());
    h.get_by_label("Chat and documents (1 new)").click();
    // Names carry the role the room server gave them.
    step_until(&mut h, "Bernd's message", &|h| {
        h.query_all(by().label_contains("Bernd (participant) to Everyone: Guten Tag, Frau Anna")).next().is_some()
    });

    // Keyboard only: focus the input, type, Enter.
    h.get_by_label("Chat message").focus();
    h.step();
    h.get_by_label("Chat message").type_text("Az. 4711 bitte nicht laut");
    h.step();
    h.key_press(egui::Key::Enter);
    h.step();
    bernd.wait_for("Anna's message", WAIT, |v| {
        v["event"] == "chat" && v["text"] == "Az. 4711 bitte nicht laut" && v["from"] == anna.as_str()
    });

    // The code Anna's panel shows is Bernd's.
    let code = bernd.wait_for("identity", WAIT, |v| v["event"] == "identity" && v["participant"] == anna.as_str())["code"]
        .as_str()
        .expect("code")
        .to_owned();
    step_until(&mut h, "the identity code", &|h| h.query_all(by().label_contains(&code)).next().is_some());
    h.get_by_label("Compared with Bernd (participant): the codes match").click();
    h.step();

    // Bernd offers a document; Anna accepts it with the button into the panel's folder.
    let inbox = folder(&setup, "anna-inbox");
    let outbox = folder(&setup, "bernd-outbox");
    let file = outbox.join("Stellungnahme.odt");
    std::fs::write(&file, content(200_000, 5)).expect("file");
    let folder_field = h.get_by_label("Save received documents in");
    folder_field.focus();
    h.step();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Save received documents in").type_text(inbox.to_str().expect("path"));
    h.step();
    bernd.send(&format!("send-to {anna} {}", file.display()));
    step_until(&mut h, "the offer", &|h| h.query_by_label("Accept Stellungnahme.odt").is_some());
    h.get_by_label("Accept Stellungnahme.odt").click();
    step_until(&mut h, "the saved document", &|h| h.query_all(by().label_contains("checked and saved")).next().is_some());
    assert_eq!(std::fs::read(inbox.join("Stellungnahme.odt")).expect("saved"), content(200_000, 5));
    document_event(&bernd, "delivered", |v| v["state"] == "delivered");
    bernd.leave();
}
