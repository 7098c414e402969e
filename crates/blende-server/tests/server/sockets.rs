//! Sockets that never authenticate: 5,000 that only say `hello` are closed at the
//! authentication deadline while a real participant still gets in, and the per-address cap
//! closes extra connections before any TLS work.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::support::Server;

const DEADLINE_S: u64 = 10;

/// The soft limit on open files of this process (the test holds 5,000 sockets, the server too).
fn open_files_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).expect("soft limit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_hello_only_sockets_are_closed_at_the_deadline() {
    assert!(open_files_limit() >= 12_000, "this test needs `ulimit -n` of at least 12000, have {}", open_files_limit());
    let deadline = DEADLINE_S.to_string();
    let server = Server::start("hello-flood", None, &["--auth-deadline-s", &deadline, "--max-connections-per-address", "64"]);
    let token = server.add_moderator();
    let mut mo = server.client().await;
    mo.hello().await;
    mo.auth(&token).await;
    let (id, pw) = mo.create_meeting(false).await;

    // 5,000 sockets from 100 addresses, 50 each (under the per-address cap), opened by 100
    // tasks at once.
    let opened_at = Instant::now();
    let server = std::sync::Arc::new(server);
    let mut openers = Vec::new();
    for a in 1..=100u8 {
        let server = std::sync::Arc::clone(&server);
        openers.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(50);
            for _ in 0..50 {
                let mut c = server.client_from(Ipv4Addr::new(127, 0, 4, a)).await;
                c.hello().await;
                mine.push(c);
            }
            mine
        }));
    }
    let mut flood = Vec::with_capacity(5000);
    for o in openers {
        flood.extend(o.await.expect("opener"));
    }
    let opened = opened_at.elapsed();
    assert!(opened < Duration::from_secs(DEADLINE_S), "opening took {opened:?}, longer than the deadline");
    println!("hello flood: 5000 sockets open after {:.1} s", opened.as_secs_f64());

    // During the flood a real participant joins, and the moderator is still answered.
    let mut bea = server.client_from(Ipv4Addr::new(127, 0, 9, 1)).await;
    bea.hello().await;
    let m = bea.join(&id, &pw).await;
    assert_eq!((m["type"].as_str(), m["state"].as_str()), (Some("lobby"), Some("admitted")), "{m}");
    let _ = mo.drain().await;

    // Every anonymous socket is closed at the deadline (pinging does not keep one alive).
    let mut tasks = Vec::new();
    for mut c in flood {
        tasks.push(tokio::spawn(async move {
            if c.try_send_raw(r#"{"type":"ping"}"#.to_owned()).await.is_ok() {
                let _ = c.next().await; // the pong
            }
            c.closed().await
        }));
    }
    let mut closed = 0;
    for t in tasks {
        closed += usize::from(t.await.expect("task"));
    }
    let after = opened_at.elapsed();
    println!("hello flood: {closed} of 5000 closed {:.1} s after opening began", after.as_secs_f64());
    assert_eq!(closed, 5000);
    // The authenticated stay.
    assert!(bea.drain().await.iter().all(|m| m["type"] != "error"));
    let _ = mo.drain().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_socket() {
    let server = Server::start("per-address", None, &["--max-connections-per-address", "8"]);
    let ip = Ipv4Addr::new(127, 0, 10, 1);
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut c = server.client_from(ip).await;
        c.hello().await;
        held.push(c);
    }
    // The ninth from the same address is closed before TLS; another address is served.
    let refused = tokio::time::timeout(Duration::from_secs(5), server.try_client_from(ip)).await.expect("no hang");
    assert!(refused.is_err(), "a ninth connection from one address got through");
    let mut other = server.client_from(Ipv4Addr::new(127, 0, 10, 2)).await;
    other.hello().await;
    // A slot comes back when a connection closes.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = server.client_from(ip).await;
    again.hello().await;
}

/// A member whose network vanished (no FIN, nothing read or sent, so no pong either) loses
/// the seat at the idle timeout; a member who merely says nothing answers the server's pings
/// by itself and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dead_connection_is_closed_at_the_idle_timeout() {
    let server = Server::start("idle", None, &["--idle-timeout-s", "3"]);
    let (mut mo, id, pw) = server.hosted_meeting(true).await;
    let mut gone = server.client_from(Ipv4Addr::new(127, 0, 7, 1)).await;
    gone.hello().await;
    assert_eq!(gone.join(&id, &pw).await["state"], "admitted");
    let gone_pid = gone.pid.expect("pid");
    mo.drain().await;

    // The moderator reads (and so answers pings) but sends nothing; `gone` does neither.
    let start = Instant::now();
    let mut left_after = None;
    while start.elapsed() < Duration::from_secs(7) && left_after.is_none() {
        let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), mo.next()).await else { continue };
        if m["type"] == "participants" && m["participants"].as_array().is_some_and(|p| p.iter().all(|x| x["id"] != gone_pid)) {
            left_after = Some(start.elapsed());
        }
    }
    let left_after = left_after.expect("the dead connection kept its seat");
    println!("idle: the silent member left after {} ms (idle timeout 3 s)", left_after.as_millis());
    assert!(left_after >= Duration::from_millis(2500), "closed before the idle timeout: {left_after:?}");
    assert!(gone.closed().await, "the server closes the dead connection");
    // The moderator stays silent well past the idle timeout (its last frame came before
    // `start`), reading only, and is still served.
    while start.elapsed() < Duration::from_millis(4500) {
        let _ = tokio::time::timeout(Duration::from_millis(250), mo.next()).await;
    }
    let t = Instant::now();
    let _ = mo.drain().await;
    assert!(t.elapsed() < Duration::from_secs(1), "the quiet but live moderator is still served");
}
