//! The `blende` binary from outside: the commands IT uses, against real X windows.

mod entries;
mod share;
mod ui;

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BLENDE: &str = env!("CARGO_BIN_EXE_blende");

pub(crate) fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BLENDE)
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent-blende-test") // no user settings
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn blende");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// A call never runs under a policy file of the user's choosing: it could lift the
/// administrator's blocks and server list.
#[test]
fn join_refuses_a_policy_of_its_own() {
    let out = run(&["join", "--headless", "--server", "janus+ws://127.0.0.1:8188/", "--room", "1234", "--policy", "/dev/null"], "");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("administrator's policy"), "{err}");
    assert!(out.stdout.is_empty(), "nothing started: {}", String::from_utf8_lossy(&out.stdout));
}

fn corpus() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/windows.tsv")).expect("corpus")
}

#[test]
fn classify_reads_the_corpus_and_matches_every_label() {
    let rows: Vec<Vec<String>> =
        corpus().lines().filter(|l| !l.starts_with('#')).skip(1).map(|l| l.split('\t').map(str::to_owned).collect()).collect();
    let col = |c: &[String], i: usize| c.get(i).cloned().unwrap_or_default();
    let input: String = rows.iter().map(|c| format!("{}\t{}\t{}\t{}\t{}\n", c[0], c[1], c[2], col(c, 5), col(c, 6))).collect();
    let out = run(&["policy", "classify", "--policy", "/dev/null"], &input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), rows.len(), "one output line per input line");
    for (row, line) in rows.iter().zip(&lines) {
        let expected = if row[3] == "allow" { "allow".to_owned() } else { format!("block\t{}\t", row[4]) };
        assert!(line.starts_with(&expected), "{row:?} → {line}");
    }
}

#[test]
fn explain_says_which_rule_and_which_part_decided() {
    let input = "linux\torg.telegram.desktop\tTelegram\n\
                 linux\tPostkutsche\tVorgang 12\tNetwork;Email;\tde.example.Postkutsche.desktop|Postkutsche\n\
                 linux\tfirefox\tRoundcube Webmail :: Posteingang — Mozilla Firefox\n\
                 windows\tEXCEL.EXE\tTelegram-Kosten.xlsx - Excel\n";
    let out = run(&["policy", "explain", "--policy", "/dev/null"], input);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let blocks: Vec<&str> = text.split("\nblock").collect();
    assert!(text.starts_with("block\tmessenger\tmessenger (Telegram)\n  rule: builtin:app:telegram\n"), "{text}");
    assert!(text.contains("  because: the application name \"org.telegram.desktop\" is a known program's\n"), "{text}");
    assert!(
        text.contains("\tmail\te-mail program (desktop entry de.example.Postkutsche.desktop: Email)\n  rule: os:category:Email\n"),
        "{text}"
    );
    assert!(text.contains("  because: its desktop entry de.example.Postkutsche.desktop lists the category Email\n"), "{text}");
    assert!(
        text.contains("  rule: builtin:site:roundcube\n  because: the browser title part \"roundcube webmail\" names the site\n"),
        "{text}"
    );
    assert!(text.ends_with("allow\n  rule: -\n  because: no rule blocks it\n"), "{text}");
    assert_eq!(blocks.len(), 3, "{text}");
}

#[test]
fn classify_with_a_broken_policy_blocks_everything_and_says_where() {
    let dir = std::env::temp_dir().join(format!("blende-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("policy.toml");
    std::fs::write(&file, "[share]\nallow_full_screen = true\nbogus = 1\n").expect("write");
    let out = run(&["policy", "classify", "--policy", file.to_str().expect("utf-8 path")], "XTerm\txterm\nWord\tdoc.docx - Word\n");
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("block\tpolicy-error\t")).count(), 2, "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("policy.toml:3:") && stderr.contains("bogus"), "{stderr}");
    // A missing file named on purpose is an error too, not "no policy".
    let out = run(&["policy", "show", "--policy", "/nonexistent/policy.toml"], "");
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn policy_show_names_the_origin_of_each_setting() {
    let dir = std::env::temp_dir().join(format!("blende-show-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("policy.toml");
    std::fs::write(&file, "[share]\nallow_full_screen = true\n[hotkeys]\nall_off = \"Ctrl+Alt+Pause\"\n").expect("write");
    let out = run(&["policy", "show", "--policy", file.to_str().expect("path")], "");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("allow_full_screen = true  # administrator: {}", file.display())), "{text}");
    assert!(text.contains("mode = \"blocklist\"  # built-in"), "{text}");
    assert!(text.contains("all_off = \"Ctrl+Alt+Pause\"  # administrator"), "{text}");
}

/// The notice IT publishes follows the policy it checks, in both languages and formats, and
/// none is written under a broken policy.
#[test]
fn privacy_notice_follows_the_policy_file() {
    let dir = std::env::temp_dir().join(format!("blende-notice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let file = dir.join("policy.toml");
    std::fs::write(&file, "version = 1\n[servers]\nallowed = [\"blende+wss://konferenz.example.org\"]\n").expect("write");
    let path = file.to_str().expect("path");
    for (lang, phrase) in [("de", "ausschließlich mit diesen Konferenzservern"), ("en", "only to these conference servers")] {
        let out = run(&["privacy-notice", "--lang", lang, "--policy", path], "");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("# ") && text.contains(phrase) && text.contains("`blende+wss://konferenz.example.org/`"), "{text}");
        assert!(text.contains(&format!("`{path}`")), "names the policy file: {text}");
        let out = run(&["privacy-notice", "--lang", lang, "--format", "html", "--policy", "/dev/null"], "");
        let html = String::from_utf8_lossy(&out.stdout);
        assert!(html.starts_with(&format!("<section lang=\"{lang}\">")) && !html.contains("konferenz.example.org"), "{html}");
    }
    std::fs::write(&file, "[servers]\nallowed = 3\n").expect("write");
    let out = run(&["privacy-notice", "--policy", path], "");
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty(), "no notice from a broken policy");
}

#[test]
fn meeting_ids_and_passwords_differ_each_time() {
    let ids: std::collections::HashSet<String> =
        (0..20).map(|_| String::from_utf8(run(&["meeting-id"], "").stdout).expect("utf-8").trim().to_owned()).collect();
    assert_eq!(ids.len(), 20);
    assert!(ids.iter().all(|id| id.replace('-', "").len() >= 10));
    let out = run(&["password", "--entropy"], "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bits"));
}

/// X tests need a display with a window manager (scripts/test.sh starts Xvfb and openbox).
pub(crate) fn display_or_skip() -> bool {
    if std::env::var_os("DISPLAY").is_some() {
        assert!(window_manager_runs(), "no window manager runs on $DISPLAY (scripts/services.sh starts openbox)");
        return true;
    }
    assert!(std::env::var_os("BLENDE_REQUIRE_X11").is_none(), "BLENDE_REQUIRE_X11 is set but there is no DISPLAY");
    eprintln!("skipped: no DISPLAY (run scripts/test.sh for the X11 tests)");
    false
}

/// The root's `_NET_SUPPORTING_WM_CHECK` names a window that still exists.
fn window_manager_runs() -> bool {
    let xprop = |args: &[&str]| Command::new("xprop").args(args).output().ok().filter(|o| o.status.success());
    let Some(root) = xprop(&["-root", "_NET_SUPPORTING_WM_CHECK"]) else { return false };
    let text = String::from_utf8_lossy(&root.stdout).into_owned();
    text.split("window id # ").nth(1).map(str::trim).is_some_and(|id| xprop(&["-id", id, "_NET_SUPPORTING_WM_CHECK"]).is_some())
}

pub(crate) struct Windows(pub(crate) Vec<Child>);
impl Drop for Windows {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn xterm(class: &str, title: &str) -> Child {
    share::xterm(class, title, [0xff, 0xff, 0xff], "40x10")
}

fn windows_json() -> Vec<serde_json::Value> {
    let out = run(&["windows", "--json", "--policy", "/dev/null"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).expect("json array")
}

#[test]
fn windows_json_reports_verdicts_of_real_x_windows() {
    if !display_or_skip() {
        return;
    }
    let tag = std::process::id();
    let mail = format!("Posteingang - Mozilla Thunderbird {tag}");
    let doc = format!("Bauantrag_{tag}_final.docx - Word");
    let webmail = format!("Gmail - Inbox (3) - amt{tag}@gmail.com - Mozilla Firefox");
    let wiki = format!("Signal {tag} (Software) - Wikipedia - Mozilla Firefox");
    let toast = format!("Build {tag} finished");
    let _windows = Windows(vec![
        xterm("Thunderbird", &mail),
        xterm("XTerm", &doc),
        xterm("firefox", &webmail),
        xterm("firefox", &wiki),
        xterm("some-tool", &toast),
    ]);
    let find = |list: &[serde_json::Value], title: &str| list.iter().find(|w| w["title"] == title).cloned();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut marked = false;
    loop {
        let list = windows_json();
        let all_there = [&mail, &doc, &webmail, &wiki, &toast].iter().all(|t| find(&list, t).is_some());
        if all_there && !marked {
            // Make the last one a notification pop-up the way notification daemons do.
            let id = find(&list, &toast).and_then(|w| w["id"].as_u64()).expect("toast id");
            let ok = Command::new("xprop")
                .args([
                    "-id",
                    &id.to_string(),
                    "-f",
                    "_NET_WM_WINDOW_TYPE",
                    "32a",
                    "-set",
                    "_NET_WM_WINDOW_TYPE",
                    "_NET_WM_WINDOW_TYPE_NOTIFICATION",
                ])
                .status()
                .expect("xprop (apt-get install x11-utils)");
            assert!(ok.success());
            marked = true;
            continue;
        }
        if all_there && find(&list, &toast).is_some_and(|w| w["verdict"] == "block") {
            let verdict = |t: &str| {
                let w = find(&list, t).expect("window");
                (w["verdict"].as_str().unwrap_or_default().to_owned(), w["category"].as_str().unwrap_or("-").to_owned())
            };
            assert_eq!(verdict(&mail), ("block".into(), "mail".into()));
            assert_eq!(verdict(&doc), ("allow".into(), "-".into()));
            assert_eq!(verdict(&webmail), ("block".into(), "webmail".into()));
            assert_eq!(verdict(&wiki), ("allow".into(), "-".into()));
            assert_eq!(verdict(&toast), ("block".into(), "notification".into()));
            // xterm sets a plain STRING WM_NAME, which xcap cannot read: the title came from our own read.
            assert_eq!(find(&list, &doc).expect("doc")["app_name"], "XTerm");
            return;
        }
        assert!(Instant::now() < deadline, "windows did not show up with verdicts: {list:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The real keychain (Secret Service from gnome-keyring on the test's D-Bus session bus):
/// a password is stored, found and deleted. Skips without a Secret Service unless
/// `BLENDE_REQUIRE_KEYRING=1` (scripts/test.sh starts one).
#[test]
fn meeting_passwords_round_trip_through_the_os_keychain() {
    use blende_app::secrets::{OsKeychain, SecretStore, meeting_key};
    let key = meeting_key("blende+wss://meet.example.org", &format!("test-{}", std::process::id()));
    let store = OsKeychain;
    if let Err(e) = store.set(&key, "k7dm-3xqa-9fhp-2wvb") {
        assert!(std::env::var("BLENDE_REQUIRE_KEYRING").as_deref() != Ok("1"), "keychain unavailable but BLENDE_REQUIRE_KEYRING=1: {e}");
        eprintln!("skipped: no Secret Service ({e}); scripts/test.sh starts gnome-keyring");
        return;
    }
    assert_eq!(store.get(&key).expect("get").as_deref(), Some("k7dm-3xqa-9fhp-2wvb"));
    store.delete(&key).expect("delete");
    assert_eq!(store.get(&key).expect("get after delete"), None);
}
