//! Load: 500 concurrent signalling connections in 50 meetings. Ignored by default; run with
//! `cargo test -p blende-server --test server -- --ignored --nocapture load_`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::support::Server;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: run explicitly"]
async fn load_500_connections_in_50_meetings() {
    // Production argon2 cost unless overridden: join latency includes the password check.
    let m_kib = std::env::var("BLENDE_LOAD_ARGON2_M_KIB").unwrap_or_else(|_| (19 * 1024).to_string());
    let t = std::env::var("BLENDE_LOAD_ARGON2_T").unwrap_or_else(|_| "2".to_owned());
    let server = Server::start("load", None, &["--argon2-m-kib", &m_kib, "--argon2-t", &t, "--log-format", "json"]);
    let token = server.add_moderator();
    let mut mo = server.client().await;
    mo.hello().await;
    mo.auth(&token).await;
    let mut meetings = Vec::new();
    for _ in 0..50 {
        meetings.push(mo.create_meeting(false).await);
    }
    let rss_before = rss_kib(server.pid());
    let spread = Duration::from_millis(std::env::var("BLENDE_LOAD_SPREAD_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..500usize {
        let (id, pw) = meetings[i % 50].clone();
        // 500 distinct source addresses, like 500 real clients.
        let ip = Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1);
        let server = &server;
        tasks.push(async move {
            // Arrivals spread over `BLENDE_LOAD_SPREAD_MS` (default 0: all at once).
            tokio::time::sleep(spread * u32::try_from(i).unwrap_or(0) / 500).await;
            let t0 = Instant::now();
            let mut c = server.client_from(ip).await;
            c.hello().await;
            let m = c.join(&id, &pw).await;
            assert_eq!(m["state"], "admitted", "{m}");
            (t0.elapsed(), c)
        });
    }
    let results = futures_util::future::join_all(tasks).await;
    let wall = start.elapsed();
    let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    lat.sort();
    let rss_after = rss_kib(server.pid());
    println!(
        "load: 500 connections in 50 meetings joined in {:.2} s; join latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server RSS {} KiB before, {} KiB with 500 connected (argon2 m={m_kib} KiB t={t}, arrivals spread over {} ms)",
        wall.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        rss_before.unwrap_or(0),
        rss_after.unwrap_or(0),
        spread.as_millis(),
    );
    assert_eq!(results.len(), 500);
}
