//! `blende-server privacy-notice` and the configuration file, from outside: the notice
//! follows the database's settings and the certificate the server would present, and
//! secrets never travel on a command line.

use std::process::{Command, Stdio};

use crate::support::{BIN, admin, temp_dir, test_certificate};

fn notice(args: &[&str]) -> String {
    let out = Command::new(BIN).arg("privacy-notice").args(args).output().expect("privacy-notice");
    assert!(out.status.success(), "privacy-notice {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_notice_follows_settings_certificate_and_configuration_file() {
    let dir = temp_dir("notice");
    let (cert, key, _) = test_certificate(&dir);
    let db = format!("sqlite:{}", dir.join("blende.db").display());
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!("db = \"{db}\"\nlisten = \"127.0.0.1:0\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\npublic_url = \"blende+wss://meet.example.org\"\nlockout_s = 600\n", cert.display(), key.display()),
    )
    .expect("config");
    let config = config.to_str().expect("path");

    for (lang, unlimited, turn) in [("de", "ohne Löschfrist", "## TURN-Server"), ("en", "with no retention limit", "## TURN server")] {
        let text = notice(&["--config", config, "--lang", lang]);
        assert!(text.contains("`blende+wss://meet.example.org`") && text.contains("`localhost`"), "{text}");
        assert!(text.contains("10 Minuten") || text.contains("10 minutes"), "lockout_s from the file: {text}");
        let fingerprint =
            text.lines().find(|l| l.contains("SHA-256-Fingerabdruck") || l.contains("SHA-256 fingerprint")).expect("fingerprint line");
        assert_eq!(fingerprint.matches(':').count(), 31, "{fingerprint}");
        assert!(text.contains(unlimited) && !text.contains(turn), "{text}");
    }

    // Secrets are read from a file (or stdin), never from the command line.
    let refused = Command::new(BIN)
        .args(["admin", "--db", &db, "set", "turn", "--url", "turn:turn.example.org:3478", "--secret", "0123456789abcdef"])
        .output()
        .expect("admin");
    assert!(!refused.status.success());
    let mut child = Command::new(BIN)
        .args([
            "admin",
            "--config",
            config,
            "set",
            "turn",
            "--url",
            "turn:turn.example.org:3478?transport=udp",
            "--secret-file",
            "-",
            "--ttl-s",
            "300",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("admin");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"0123456789abcdef0123\n").expect("secret");
    assert!(child.wait().expect("admin").success());
    admin(&db, &["set", "audit-retention-days", "30"]);
    let shown = admin(&db, &["show"]);
    assert!(shown.contains("turn_secret = ***") && !shown.contains("0123456789abcdef"), "{shown}");

    for (lang, retention, turn) in [("de", "nach 30 Tagen gelöscht", "## TURN-Server"), ("en", "deleted after 30 days", "## TURN server")]
    {
        let text = notice(&["--config", config, "--lang", lang, "--format", "md"]);
        assert!(text.contains(retention), "{text}");
        assert!(text.contains(turn) && text.contains("`turn:turn.example.org:3478?transport=udp`") && text.contains("300"), "{text}");
        assert!(!text.contains("0123456789abcdef"), "the secret never appears");
    }
    let html = notice(&["--config", config, "--format", "html"]);
    assert!(html.starts_with("<section lang=\"de\">") && html.contains("<mark data-fill=\"controller\">"), "{html}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_configuration_file_stops_serve_with_its_name() {
    let dir = temp_dir("bad-config");
    let config = dir.join("server.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisen = 1\n").expect("config");
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&config).output().expect("serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.toml") && err.contains("lisen"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
