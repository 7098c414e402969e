//! Integration tests of the share policy: the labelled corpus, layering and properties.

use blende_policy::{AppFacts, Category, Os, Policy, Source, Verdict, WindowInfo, WindowKind};
use proptest::prelude::*;

fn corpus() -> Vec<(WindowInfo, bool, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/windows.tsv");
    let text = std::fs::read_to_string(path).expect("tests/data/windows.tsv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1) // column names
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert!((5..=7).contains(&cols.len()), "row {l:?}");
            let os = Os::parse(cols[0]).expect("os");
            let expect_block = match cols[3] {
                "block" => true,
                "allow" => false,
                other => panic!("expect column {other:?}"),
            };
            let facts = AppFacts::from_columns(cols.get(5).copied().unwrap_or(""), cols.get(6).copied().unwrap_or(""));
            (WindowInfo::new(os, cols[1], cols[2]).with_facts(facts), expect_block, cols[4].to_owned())
        })
        .collect()
}

#[test]
fn corpus_rows_all_get_their_expected_verdict_and_category() {
    let policy = Policy::builtin();
    let rows = corpus();
    assert!(rows.len() >= 100, "corpus has {} rows", rows.len());
    let mut wrong = Vec::new();
    for (w, expect_block, category) in &rows {
        let v = policy.classify(w);
        let ok = match (expect_block, &v) {
            (true, Verdict::Block { category: c, .. }) => c.as_str() == category,
            (false, Verdict::Allow) => true,
            _ => false,
        };
        if !ok {
            wrong.push(format!("{} | {} | {} → {v:?} (expected {category})", w.os, w.app_name, w.title));
        }
    }
    assert!(wrong.is_empty(), "{} of {} rows wrong:\n{}", wrong.len(), rows.len(), wrong.join("\n"));
}

#[test]
fn documents_that_mention_products_stay_shareable() {
    let p = Policy::builtin();
    for (app, title) in [
        ("Microsoft Excel", "Outlook 2026 Personalplanung.xlsx - Excel"),
        ("firefox", "Signal (Software) – Wikipedia — Mozilla Firefox"),
        ("Google Chrome", "Outlook 2026 Personalplanung.xlsx - Excel - Google Chrome"),
        ("firefox", "Teamsport im Verein – Stadt Musterhausen — Mozilla Firefox"),
    ] {
        assert_eq!(p.classify(&WindowInfo::new(Os::Linux, app, title)), Verdict::Allow, "{app} {title}");
    }
}

#[test]
fn empty_titles_and_unknown_windows_fail_safe() {
    let p = Policy::builtin();
    let v = |app: &str, title: &str| p.classify(&WindowInfo::new(Os::Linux, app, title)).category();
    // Identified by application even without a title (xterm-style STRING WM_NAME).
    assert_eq!(v("Thunderbird", ""), Some(Category::Mail));
    assert_eq!(v("", ""), Some(Category::Unidentified));
    assert_eq!(v("firefox", ""), Some(Category::Unidentified));
    assert_eq!(v("", "Posteingang - Mozilla Thunderbird"), Some(Category::Mail));
    assert_eq!(v("", "WhatsApp"), Some(Category::Messenger));
    assert_eq!(v("", "Gmail - Inbox - Chromium"), Some(Category::Webmail));
    assert_eq!(v("XTerm", ""), None);
    // A window of unknown make whose title ends in a browser's name is judged as a browser.
    assert_eq!(v("XTerm", "Posteingang (3) - Gmail — Mozilla Firefox"), Some(Category::Webmail));
    assert_eq!(v("XTerm", "Bebauungsplan Nord — Mozilla Firefox"), None);
    // Window type from the window manager.
    let mut toast = WindowInfo::new(Os::Linux, "some-app", "Build finished");
    toast.kind = WindowKind::Notification;
    assert_eq!(p.classify(&toast).category(), Some(Category::Notification));
    // Firefox shows the address while a page loads; PWAs have their own WM_CLASS.
    assert_eq!(v("firefox", "https://mail.google.com/mail/u/0/#inbox — Mozilla Firefox"), Some(Category::Webmail));
    assert_eq!(v("crx_hnpfjngllnobngcgfapefoaidbinmjnm", "WhatsApp"), Some(Category::WebMessenger));
}

#[test]
fn hostile_titles_do_not_slip_through() {
    let p = Policy::builtin();
    let v = |title: &str| p.classify(&WindowInfo::new(Os::Windows, "Google Chrome", title)).category();
    assert_eq!(v("G\u{200B}mail - Posteingang - Google Chrome"), Some(Category::Webmail));
    assert_eq!(v("WHATSAPP\u{00A0}\u{2014} Google Chrome"), Some(Category::WebMessenger));
    assert_eq!(v("\u{202E}Gmail - Google Chrome"), Some(Category::Webmail));
    assert_eq!(v("(99+) WhatsApp - Google Chrome"), Some(Category::WebMessenger));
    assert_eq!(v("Inbox (1,234) - a.b@c.de - Google Chrome"), Some(Category::Webmail));
}

const ADMIN: &str = r#"
version = 1
[share]
allow_full_screen = true
[[share.block]]
app = "KeePassXC"
reason = "Passwortmanager"
[[share.block]]
site = "Intranet-Mail"
[[share.allow]]
app = "Slack"
"#;

#[test]
fn admin_blocks_and_exceptions_apply_and_users_only_add() {
    let user = "[[share.block]]\ntitle_contains = \"Personalakte\"\n";
    let p = Policy::try_from_sources(
        Some(Source { name: "/etc/blende/policy.toml", text: ADMIN }),
        Some(Source { name: "settings.toml", text: user }),
    )
    .expect("valid layers");
    let c = |app: &str, title: &str| p.classify(&WindowInfo::new(Os::Linux, app, title));
    assert!(
        matches!(c("KeePassXC", "Passwords.kdbx"), Verdict::Block { category: Category::AdminRule, ref reason, .. } if reason == "Passwortmanager")
    );
    assert_eq!(c("firefox", "Intranet-Mail Posteingang — Mozilla Firefox").category(), Some(Category::AdminRule));
    assert_eq!(c("libreoffice-writer", "Personalakte Müller.odt - LibreOffice Writer").category(), Some(Category::UserRule));
    // The administrator's exception lifts the built-in Slack block …
    assert_eq!(c("Slack", "Slack | general"), Verdict::Allow);
    // … and whole-screen sharing.
    assert_eq!(p.screen_verdict(), Verdict::Allow);
    assert_eq!(Policy::builtin().screen_verdict().category(), Some(Category::FullScreen));
    assert!(p.report().contains("allow_full_screen = true  # administrator: /etc/blende/policy.toml"));
    assert!(p.report().contains("# layer: administrator: /etc/blende/policy.toml\n"), "{}", p.report());
    assert!(Policy::builtin().report().starts_with("# layers: built-in only\n"));
}

/// IT can force every call through its TURN server; a user cannot switch that off.
#[test]
fn relay_only_is_an_admin_key() {
    let admin = Source { name: "/etc/blende/policy.toml", text: "version = 1\n[network]\nrelay_only = true\n" };
    let p = Policy::try_from_sources(Some(admin), None).expect("policy");
    assert!(p.servers().relay_only);
    assert!(p.report().contains("relay_only = true  # administrator: /etc/blende/policy.toml"), "{}", p.report());
    assert!(!Policy::builtin().servers().relay_only);
    let user = Source { name: "settings.toml", text: "[network]\nrelay_only = false\n" };
    let e = Policy::try_from_sources(Some(admin), Some(user)).expect_err("user may not lift it");
    assert!(e.to_string().contains("network.relay_only"), "{e}");
}

/// IT decides whether documents pass between participants and how large; a user cannot lift
/// either, a nonsense size is an error naming the key, and a broken policy allows none.
#[test]
fn documents_are_an_admin_key_and_fail_closed() {
    assert_eq!(Policy::builtin().documents(), blende_policy::DEFAULT_DOCUMENTS);
    let admin = Source { name: "/etc/blende/policy.toml", text: "version = 1\n[documents]\nenabled = true\nmax_mb = 25\n" };
    let p = Policy::try_from_sources(Some(admin), None).expect("policy");
    assert_eq!((p.documents().enabled, p.documents().max_bytes()), (true, 25_000_000));
    assert!(p.report().contains("max_mb = 25  # administrator: /etc/blende/policy.toml"), "{}", p.report());
    for user in ["[documents]\nenabled = true\n", "[documents]\nmax_mb = 99999\n"] {
        let e = Policy::try_from_sources(Some(admin), Some(Source { name: "settings.toml", text: user })).expect_err("user may not set it");
        assert!(e.to_string().contains("documents."), "{e}");
    }
    for bad in
        ["[documents]\nmax_mb = 0\n", "[documents]\nmax_mb = -1\n", "[documents]\nenabled = \"yes\"\n", "[documents]\nmax_size = 1\n"]
    {
        let e = Policy::try_from_sources(Some(Source { name: "/etc/blende/policy.toml", text: bad }), None).expect_err(bad);
        assert!(["documents", "max_mb", "max_size", "enabled"].iter().any(|k| e.to_string().contains(k)), "{bad}: {e}");
    }
    let broken = Policy::from_sources(Some(Source { name: "/etc/blende/policy.toml", text: "[documents\n" }), None);
    assert!(!broken.documents().enabled, "a broken policy allows no documents");
}

/// The packaged /etc/blende/policy.toml is the documented example commented out: it is read
/// as the administrator's layer and changes nothing.
#[test]
fn a_policy_of_comments_only_is_the_builtin_policy() {
    let example = include_str!("../../../installer/policy.toml.example");
    let commented: String =
        example.lines().map(|l| if l.is_empty() || l.starts_with('#') { format!("{l}\n") } else { format!("# {l}\n") }).collect();
    let p = Policy::try_from_sources(Some(Source { name: "/etc/blende/policy.toml", text: &commented }), None).expect("comments parse");
    assert!(p.report().contains("# layer: administrator: /etc/blende/policy.toml\n"));
    assert_eq!(p.report().lines().skip(1).collect::<Vec<_>>(), Policy::builtin().report().lines().skip(1).collect::<Vec<_>>());
}

#[test]
fn allowlist_mode_shares_only_listed_applications() {
    let admin = "[share]\nmode = \"allowlist\"\n[[share.allow]]\napp = \"libreoffice-writer\"\n";
    let p = Policy::try_from_sources(Some(Source { name: "p.toml", text: admin }), None).expect("valid");
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "libreoffice-writer", "a.odt")), Verdict::Allow);
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "Evince", "a.pdf")).category(), Some(Category::AdminRule));
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "Thunderbird", "x")).category(), Some(Category::Mail));
}

#[test]
fn broken_policy_fails_closed() {
    let p = Policy::from_sources(Some(Source { name: "/etc/blende/policy.toml", text: "[share]\nallow_full_screen = maybe\n" }), None);
    let err = p.failure().expect("error kept").to_string();
    assert!(err.starts_with("/etc/blende/policy.toml:2:"), "{err}");
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "XTerm", "xterm")).category(), Some(Category::PolicyError));
    assert_eq!(p.screen_verdict().category(), Some(Category::PolicyError));
    // A broken user layer does not fail open either.
    let p = Policy::from_sources(None, Some(Source { name: "s.toml", text: "[[share.block]]\nnonsense = 1\n" }));
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "XTerm", "xterm")).category(), Some(Category::PolicyError));
}

/// The benign rows whose names look like a blocked product's ("Telegram-Kosten.xlsx",
/// "Posteingang" folders, "Thunderbird (Vogel) – Wikipedia").
fn arb_look_alike() -> impl Strategy<Value = WindowInfo> {
    const WORDS: [&str; 24] = [
        "outlook",
        "signal",
        "telegram",
        "nachrichten",
        "posteingang",
        "inbox",
        "teams",
        "whatsapp",
        "mail",
        "chat",
        "element",
        "threema",
        "slack",
        "thunderbird",
        "postfach",
        "messenger",
        "discord",
        "wire",
        "station",
        "session",
        "line",
        "spark",
        "evolution",
        "boîte",
    ];
    let rows: Vec<WindowInfo> = corpus()
        .into_iter()
        .filter(|(w, block, _)| !block && WORDS.iter().any(|k| format!("{} {}", w.app_name, w.title).to_lowercase().contains(k)))
        .map(|(w, _, _)| w)
        .collect();
    assert!(rows.len() >= 100, "only {} look-alike rows", rows.len());
    (0..rows.len()).prop_map(move |i| rows[i].clone())
}

#[test]
fn desktop_entry_categories_block_programs_nobody_listed() {
    let p = Policy::builtin();
    let entry =
        "[Desktop Entry]\nType=Application\nName=Postkutsche\nExec=postkutsche\nStartupWMClass=Postkutsche\nCategories=Network;Email;\n";
    let dir = blende_policy::AppDirectory::new(blende_policy::DesktopEntry::parse("de.example.Postkutsche.desktop", entry));
    let w = WindowInfo::new(Os::Linux, "Postkutsche", "Entwürfe").with_facts(dir.lookup(["Postkutsche", "postkutsche"]));
    match p.classify(&w) {
        Verdict::Block { category: Category::Mail, rule, reason } => {
            assert_eq!(rule, "os:category:Email");
            assert!(reason.contains("desktop entry de.example.Postkutsche.desktop") && reason.contains("Email"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "Postkutsche", "Entwürfe")), Verdict::Allow, "without the entry nothing says so");
    let chat = AppFacts::from_columns("Network;Chat;", "");
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "Plauderstube", "Raum 1").with_facts(chat)).category(), Some(Category::Messenger));
    let office = AppFacts::from_columns("Office;WordProcessor;", "org.example.Schreiber.desktop");
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "Schreiber", "Brief.odt").with_facts(office)), Verdict::Allow);
    // An administrator's allow rule lifts a category block like any built-in block.
    let admin = "[[share.allow]]\napp = \"Postkutsche\"\n";
    let lifted = Policy::try_from_sources(Some(Source { name: "p.toml", text: admin }), None).expect("valid");
    assert_eq!(lifted.classify(&w), Verdict::Allow);
}

#[test]
fn mailbox_words_in_nine_languages_with_any_separator() {
    let p = Policy::builtin();
    let words = [
        "Posteingang",
        "Inbox",
        "Boîte de réception",
        "Postvak IN",
        "Odebrane",
        "Doručená pošta",
        "Indbakke",
        "Posta in arrivo",
        "Bandeja de entrada",
    ];
    for word in words {
        for sep in [" - ", ": ", " :: ", " | ", "|", " • ", " · ", " / ", " — "] {
            let title = format!("{word} (12){sep}Stadtmail — Mozilla Firefox");
            let v = p.classify(&WindowInfo::new(Os::Linux, "firefox", title.as_str()));
            assert_eq!(v.category(), Some(Category::Webmail), "{title}");
            // A program nobody knows that shows a mailbox is a mail program.
            let v = p.classify(&WindowInfo::new(Os::Windows, "KommunalPost.exe", format!("{word}{sep}Amt 32")));
            assert_eq!(v.category(), Some(Category::Mail), "{word}{sep}");
        }
        // A program whose name merely contains a tool's is not that tool.
        let v = p.classify(&WindowInfo::new(Os::Windows, "ExcelMail.exe", format!("{word} | Amt 32")));
        assert_eq!(v.category(), Some(Category::Mail), "ExcelMail {word}");
        // A folder of that name in a file manager is a folder.
        assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "org.gnome.Nautilus", word)), Verdict::Allow, "{word}");
    }
}

#[test]
fn explain_names_the_part_that_decided() {
    let p = Policy::builtin();
    let e = p.explain(&WindowInfo::new(Os::Linux, "io.github.mimbrero.WhatsAppDesktop", "WhatsApp"));
    assert_eq!(e.verdict.category(), Some(Category::Messenger));
    assert_eq!(
        e.evidence.to_string(),
        "the application name \"io.github.mimbrero.WhatsAppDesktop\" contains the program name \"whatsappdesktop\""
    );
    let e = p.explain(&WindowInfo::new(Os::Linux, "firefox", "Posteingang (3) | Stadtmail — Mozilla Firefox"));
    assert_eq!(e.evidence.to_string(), "the title part \"posteingang\" is a mailbox");
    let e = p.explain(&WindowInfo::new(Os::Linux, "libreoffice-calc", "Telegram-Kosten.ods - LibreOffice Calc"));
    assert_eq!((e.verdict, e.evidence.to_string()), (Verdict::Allow, "no rule blocks it".to_owned()));
}

fn arb_window() -> impl Strategy<Value = WindowInfo> {
    let rows = corpus();
    (0..rows.len(), any::<u8>()).prop_map(move |(i, _)| rows[i].0.clone())
}

fn arb_user_rule() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec!["Signal", "Excel", "Posteingang", "xterm", "Word", "firefox", "Gmail", "docx", "ä", "-"]);
    (prop::option::of(word.clone()), prop::option::of(word.clone()), prop::option::of(word)).prop_filter_map(
        "needs a matcher",
        |(a, t, s)| {
            if a.is_none() && t.is_none() && s.is_none() {
                return None;
            }
            let mut r = String::from("[[share.block]]\n");
            for (k, v) in [("app", a), ("title_contains", t), ("site", s)] {
                if let Some(v) = v {
                    r.push_str(&format!("{k} = \"{v}\"\n"));
                }
            }
            Some(r)
        },
    )
}

/// Case, dash and whitespace variants of a title.
fn variant(title: &str, seed: u8) -> String {
    let mut out = String::new();
    for (i, c) in title.chars().enumerate() {
        let flip = (seed as usize + i).is_multiple_of(3);
        match c {
            '-' | '–' | '—' => out.push(['-', '–', '—', '‐'][(seed as usize + i) % 4]),
            ' ' if seed.is_multiple_of(2) => out.push_str(" \u{00A0}"),
            c if flip => out.extend(c.to_uppercase()),
            c => out.extend(c.to_lowercase()),
        }
        if seed.is_multiple_of(5) && i == 1 {
            out.push('\u{200B}');
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn user_rules_never_turn_a_block_into_an_allow(w in arb_window(), rules in prop::collection::vec(arb_user_rule(), 0..4)) {
        let admin = Some(Source { name: "admin.toml", text: ADMIN });
        let base = Policy::try_from_sources(admin, None).expect("admin");
        let user_text = rules.concat();
        let with_user = Policy::try_from_sources(admin, Some(Source { name: "user.toml", text: &user_text })).expect("user");
        if !base.classify(&w).is_allowed() {
            prop_assert!(!with_user.classify(&w).is_allowed());
        }
        let builtin_only = Policy::try_from_sources(None, Some(Source { name: "user.toml", text: &user_text })).expect("user");
        if !Policy::builtin().classify(&w).is_allowed() {
            prop_assert!(!builtin_only.classify(&w).is_allowed());
        }
    }

    #[test]
    fn any_text_gets_a_verdict_without_panicking(app in "\\PC{0,40}", title in "(\\PC| - | \\| |\\(|\\)|\\[|[0-9]){0,120}") {
        let p = Policy::builtin();
        let _ = p.classify(&WindowInfo::new(Os::Linux, app, title));
    }

    #[test]
    fn look_alikes_stay_allowed_under_case_dash_space_and_invisible_variants(w in arb_look_alike(), seed in any::<u8>()) {
        let p = Policy::builtin();
        let mut v = w.clone();
        v.title = variant(&w.title, seed);
        v.app_name = variant(&w.app_name, seed.wrapping_add(1));
        prop_assert!(p.classify(&w).is_allowed());
        prop_assert!(p.classify(&v).is_allowed(), "variant {:?} / {:?}: {:?}", v.app_name, v.title, p.classify(&v));
    }

    #[test]
    fn verdicts_are_stable_under_case_dash_and_whitespace_variants(w in arb_window(), seed in any::<u8>()) {
        let p = Policy::builtin();
        let mut v = w.clone();
        v.title = variant(&w.title, seed);
        v.app_name = variant(&w.app_name, seed.wrapping_add(1));
        prop_assert_eq!(p.classify(&w).category(), p.classify(&v).category(), "variant {:?} / {:?}", v.app_name, v.title);
    }
}

#[test]
fn the_shipped_example_policy_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../installer/policy.toml.example");
    let text = std::fs::read_to_string(path).expect("installer/policy.toml.example");
    let p = Policy::try_from_sources(Some(Source { name: path, text: &text }), None).expect("example parses");
    assert_eq!(p.classify(&WindowInfo::new(Os::Linux, "KeePassXC", "db.kdbx")).category(), Some(Category::AdminRule));
    assert_eq!(p.screen_verdict().category(), Some(Category::FullScreen));
}
