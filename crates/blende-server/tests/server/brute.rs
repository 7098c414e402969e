//! Brute force: 1,000 wrong passwords from one address, spread over 100 meeting IDs and ten
//! parallel connections. Locked out, never admitted; after the window the right password
//! works from another address.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::json;

use crate::support::{Server, error_code};

const LOCKOUT_S: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_wrong_passwords_lock_out_and_never_admit() {
    let lockout = LOCKOUT_S.to_string();
    let server = Server::start(
        "brute",
        None,
        &[
            "--lockout-s",
            &lockout,
            "--backoff-base-ms",
            "100",
            "--backoff-max-ms",
            "1000",
            "--address-lockout-failures",
            "20",
            "--meeting-lockout-failures",
            "50",
        ],
    );
    let token = server.add_moderator();
    let mut mo = server.client().await;
    mo.hello().await;
    mo.auth(&token).await;
    let (real_id, pw) = mo.create_meeting(false).await;

    // 99 well-formed unknown IDs and the real one.
    let mut ids: Vec<String> = (0..99u32)
        .map(|i| {
            let alphabet = blende_meeting::ALPHABET;
            let s: String = (0..12).map(|k| char::from(alphabet[((i * 7 + k * 13) % 31) as usize])).collect();
            format!("{}-{}-{}", &s[..4], &s[4..8], &s[8..])
        })
        .collect();
    ids.push(real_id.clone());
    let attacker = Ipv4Addr::new(127, 0, 0, 66);
    let mut tasks = Vec::new();
    for t in 0..10usize {
        let mut c = server.client_from(attacker).await;
        c.hello().await;
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let (mut refused, mut limited) = (0u32, 0u32);
            for k in 0..100usize {
                let id = &ids[(t * 100 + k) % ids.len()];
                let m = c.join(id, "wrongwrongwrongw").await;
                match error_code(&m) {
                    Some("join_refused") => refused += 1,
                    Some("rate_limited") => limited += 1,
                    _ => panic!("attempt answered with {m}"),
                }
            }
            (refused, limited)
        }));
    }
    let (mut refused, mut limited) = (0, 0);
    for t in tasks {
        let (r, l) = t.await.expect("attacker task");
        refused += r;
        limited += l;
    }
    println!("brute force: {refused} attempts reached a password check, {limited} were rate-limited");
    assert_eq!(refused + limited, 1000);
    assert!(refused <= 25, "the address locks out after 20 failures: {refused}");

    // The right password from the locked address: still refused, never admitted.
    let mut c = server.client_from(attacker).await;
    c.hello().await;
    let m = c.join(&real_id, &pw).await;
    assert_eq!(error_code(&m), Some("rate_limited"), "{m}");
    assert!(m["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
    let roster = mo.drain().await;
    assert!(roster.iter().all(|m| m["type"] != "participants"), "nobody joined: {roster:?}");

    // After the window, another address gets in with the right password.
    tokio::time::sleep(Duration::from_secs(LOCKOUT_S) + Duration::from_millis(300)).await;
    let mut good = server.client_from(Ipv4Addr::new(127, 0, 0, 77)).await;
    good.hello().await;
    let m = good.join(&real_id, &pw).await;
    assert_eq!(m["type"], "lobby", "{m}");
    assert_eq!(m["state"], "admitted", "{m}");
    let _ = json!(null);
}

/// The meeting ID is in every invitation: outsiders guessing from many addresses must not lock
/// the meeting against its participants. 60 wrong passwords from 60 addresses (the meeting
/// locks after 10 under these flags); a clean address with the right password still gets in,
/// and the addresses that failed stay bound by the meeting's lockout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_meeting_id_cannot_be_locked_by_outsiders() {
    let server = Server::start(
        "outsiders",
        None,
        &["--meeting-free-failures", "3", "--meeting-lockout-failures", "10", "--lockout-s", "600", "--backoff-base-ms", "100"],
    );
    let token = server.add_moderator();
    let mut mo = server.client().await;
    mo.hello().await;
    mo.auth(&token).await;
    let (id, pw) = mo.create_meeting(false).await;

    let attackers: Vec<Ipv4Addr> = (1..=60).map(|n| Ipv4Addr::new(127, 0, 1, n)).collect();
    let (mut refused, mut limited) = (0, 0);
    for round in 0..2 {
        for ip in &attackers {
            let mut c = server.client_from(*ip).await;
            c.hello().await;
            let m = c.join(&id, "wrongwrongwrongw").await;
            match (round, error_code(&m)) {
                (_, Some("join_refused")) => refused += 1,
                (_, Some("rate_limited")) => limited += 1,
                _ => panic!("round {round}: {m}"),
            }
        }
    }
    println!("outsiders: {refused} password checks, {limited} rate-limited");
    assert!(limited >= 55, "after failing once, the meeting's lockout binds an address: {limited} of 60 limited");

    let mut good = server.client_from(Ipv4Addr::new(127, 0, 2, 1)).await;
    good.hello().await;
    let m = good.join(&id, &pw).await;
    assert_eq!((m["type"].as_str(), m["state"].as_str()), (Some("lobby"), Some("admitted")), "the participant was locked out: {m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_meeting_look_the_same() {
    let server = Server::start("same-answer", None, &[]);
    let token = server.add_moderator();
    let mut mo = server.client().await;
    mo.hello().await;
    mo.auth(&token).await;
    let (id, _) = mo.create_meeting(true).await;
    let mut a = server.client_from(Ipv4Addr::new(127, 0, 0, 8)).await;
    a.hello().await;
    let wrong = a.join(&id, "wrongwrongwrongw").await;
    let mut b = server.client_from(Ipv4Addr::new(127, 0, 0, 9)).await;
    b.hello().await;
    let unknown = b.join("zzzz-zzzz-zzzz", "wrongwrongwrongw").await;
    assert_eq!(wrong, unknown);
    assert_eq!(error_code(&wrong), Some("join_refused"));
    // A wrong moderator token gets the same code.
    a.send(json!({"type": "auth_moderator", "token": "bm1.mnobody.guess"})).await;
    assert_eq!(error_code(&a.recv().await), Some("join_refused"));
}

/// Behind a reverse proxy every client shares its address. With `--trusted-proxy`, the
/// limiter keys each client by the proxy's `X-Forwarded-For`: one client's wrong passwords do
/// not lock out another behind the same proxy, a proxy connection without the header is
/// refused, and the header from anyone else changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_behind_a_trusted_proxy_are_told_apart() {
    let proxy = Ipv4Addr::new(127, 0, 0, 99);
    let server = Server::start(
        "proxy",
        None,
        &["--trusted-proxy", "127.0.0.99", "--address-free-failures", "2", "--address-lockout-failures", "4", "--lockout-s", "60"],
    );
    let (_mo, id, pw) = server.hosted_meeting(false).await;

    // Client A (203.0.113.7) guesses through the proxy until its address is locked out.
    let mut locked = false;
    for _ in 0..12 {
        let mut a = server.try_client_forwarded(proxy, Some("198.51.100.1, 203.0.113.7")).await.expect("through the proxy");
        a.hello().await;
        if error_code(&a.join(&id, "wrongwrongwrongw").await) == Some("rate_limited") {
            locked = true;
            break;
        }
    }
    assert!(locked, "A was never limited");
    let mut a = server.try_client_forwarded(proxy, Some("203.0.113.7")).await.expect("through the proxy");
    a.hello().await;
    assert_eq!(error_code(&a.join(&id, &pw).await), Some("rate_limited"), "A stays limited, the right password too");
    // Client B behind the same proxy is not.
    let mut b = server.try_client_forwarded(proxy, Some("203.0.113.8")).await.expect("through the proxy");
    b.hello().await;
    assert_eq!(b.join(&id, &pw).await["state"], "admitted", "another client behind the proxy");
    // The proxy without the header: closed.
    let bare = server.try_client_forwarded(proxy, None).await;
    let refused = match bare {
        Err(_) => true,
        Ok(mut c) => c.closed().await,
    };
    assert!(refused, "a proxy connection without X-Forwarded-For was served");
    // Someone else claiming A's address is keyed by their own.
    let mut claim = server.try_client_forwarded(Ipv4Addr::new(127, 0, 0, 98), Some("203.0.113.8")).await.expect("direct");
    claim.hello().await;
    assert_eq!(claim.join(&id, &pw).await["state"], "admitted");
    let mut claim_a = server.try_client_forwarded(Ipv4Addr::new(127, 0, 0, 97), Some("203.0.113.7")).await.expect("direct");
    claim_a.hello().await;
    assert_eq!(claim_a.join(&id, &pw).await["state"], "admitted", "a forged header does not inherit A's lockout");
}
