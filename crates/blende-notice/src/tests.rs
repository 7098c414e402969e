use super::*;

fn client() -> ClientFacts {
    ClientFacts {
        version: "0.1.0".into(),
        admin_policy: None,
        servers_allowed: None,
        ice_servers: vec![],
        require_tls: true,
        full_screen_allowed: false,
        allowlist: false,
        relay_only: false,
        settings_file: "~/.config/blende/settings.toml".into(),
        documents_max_mb: Some(2000),
    }
}

fn server() -> ServerFacts {
    ServerFacts {
        version: "0.1.0".into(),
        database: "SQLite".into(),
        public_url: "blende+wss://meet.example.org".into(),
        tls: None,
        audit_retention_days: None,
        turn: None,
        janus: None,
        lobby_default: true,
        max_participants: 100,
        failure_memory_min: 15,
        argon2_m_kib: 19_456,
        argon2_t: 2,
        resume_grace_s: 120,
    }
}

const LANGS: [Lang; 2] = [Lang::De, Lang::En];

/// The parts only the authority knows are placeholders, each once, and the sections that
/// name them hold nothing else: no controller, officer or legal basis is ever invented.
#[test]
fn authority_parts_are_placeholders_never_text() {
    for lang in LANGS {
        for notice in [client_notice(&client(), lang), server_notice(&server(), lang)] {
            let mut fills = notice.fills();
            fills.sort();
            assert_eq!(fills, Fill::ALL.to_vec(), "{lang:?}");
            let controller = lang.pick("Verantwortliche Stelle", "Controller");
            let dpo = lang.pick("Datenschutzbeauftragte", "Data-protection officer");
            let rights = lang.pick("Ihre Rechte", "Your rights");
            for heading in [controller, dpo, rights] {
                let section = notice.section(heading);
                assert!(!section.is_empty(), "{heading}");
                for block in section {
                    let Block::Para(line) = block else { panic!("{heading}: {block:?}") };
                    assert!(line.iter().all(|i| matches!(i, Inline::Fill(_))), "{heading}: {line:?}");
                }
            }
            for format in [Format::Markdown, Format::Html] {
                let text = notice.render(format);
                let marker = lang.pick("Von der Behörde auszufüllen", "To be filled in by the authority");
                assert_eq!(text.matches(marker).count(), Fill::ALL.len(), "{format:?}\n{text}");
            }
        }
    }
}

#[test]
fn an_allowed_server_appears_in_the_client_notice() {
    for lang in LANGS {
        let before = client_notice(&client(), lang).render(Format::Markdown);
        assert!(!before.contains("konferenz.example.org"));
        let facts = ClientFacts {
            servers_allowed: Some(vec!["blende+wss://konferenz.example.org".into(), "janus+wss://media.example.org/janus".into()]),
            ..client()
        };
        let after = client_notice(&facts, lang).render(Format::Markdown);
        assert!(after.contains("- `blende+wss://konferenz.example.org`\n- `janus+wss://media.example.org/janus`"), "{after}");
        assert!(after.contains(lang.pick("ausschließlich mit diesen Konferenzservern", "only to these conference servers")), "{after}");
        let none = client_notice(&ClientFacts { servers_allowed: Some(vec![]), ..client() }, lang).render(Format::Markdown);
        assert!(none.contains(lang.pick("keinen Server freigegeben", "allowed no server")), "{none}");
    }
}

#[test]
fn the_client_notice_follows_ice_tls_and_share_settings() {
    for lang in LANGS {
        let base = client_notice(&client(), lang).render(Format::Markdown);
        let f = ClientFacts {
            ice_servers: vec!["turn:turn.example.org:3478".into()],
            require_tls: false,
            full_screen_allowed: true,
            admin_policy: Some("/etc/blende/policy.toml".into()),
            ..client()
        };
        let text = client_notice(&f, lang).render(Format::Markdown);
        assert!(text.contains("`turn:turn.example.org:3478`") && !base.contains("turn.example.org"));
        assert!(text.contains("ws://, http://") && !base.contains("ws://, http://"));
        assert!(text.contains(lang.pick("der ganze Bildschirm;", "the whole screen;")));
        assert!(base.contains(lang.pick("Der ganze Bildschirm kann nicht freigegeben werden", "The whole screen cannot be shared")));
        assert!(text.contains("`/etc/blende/policy.toml`") && !base.contains("/etc/blende/policy.toml"));
    }
}

#[test]
fn relay_only_says_that_addresses_stay_with_the_authority() {
    for lang in LANGS {
        let base = client_notice(&client(), lang).render(Format::Markdown);
        let relay = client_notice(&ClientFacts { relay_only: true, ..client() }, lang).render(Format::Markdown);
        let direct = lang.pick("die dabei die IP-Adressen der anderen erfahren", "who then learn each other's IP addresses");
        assert!(base.contains(direct) && !relay.contains(direct), "{relay}");
        assert!(relay.contains(lang.pick("ausschließlich über ihren TURN-Server", "through its TURN server only")), "{relay}");
    }
}

#[test]
fn audit_retention_sets_the_days_in_the_server_notice() {
    for lang in LANGS {
        let unlimited = server_notice(&server(), lang).render(Format::Markdown);
        assert!(unlimited.contains(lang.pick("ohne Löschfrist", "with no retention limit")), "{unlimited}");
        for days in [30, 90] {
            let text = server_notice(&ServerFacts { audit_retention_days: Some(days), ..server() }, lang).render(Format::Markdown);
            let want = match lang {
                Lang::De => format!("nach {days} Tagen gelöscht"),
                Lang::En => format!("deleted after {days} days"),
            };
            assert!(text.contains(&want), "{text}");
            assert!(!text.contains(lang.pick("ohne Löschfrist", "with no retention limit")));
        }
    }
}

#[test]
fn turn_and_janus_add_their_paragraphs() {
    for lang in LANGS {
        let base = server_notice(&server(), lang);
        let turn_heading = lang.pick("TURN-Server", "TURN server");
        assert!(base.section(turn_heading).is_empty());
        let f = ServerFacts {
            turn: Some(TurnFacts { urls: vec!["turn:turn.example.org:3478?transport=udp".into()], ttl_s: 300 }),
            janus: Some(JanusFacts { client_url: "janus+wss://media.example.org/".into(), threshold: 8 }),
            ..server()
        };
        let n = server_notice(&f, lang);
        let turn = n.section(turn_heading);
        assert!(!turn.is_empty());
        let text = n.render(Format::Markdown);
        assert!(text.contains("`turn:turn.example.org:3478?transport=udp`") && text.contains("300"), "{text}");
        assert!(text.contains("`janus+wss://media.example.org/`") && text.contains(lang.pick("Ab 8 Teilnehmenden", "From 8 participants")));
        assert!(!base.render(Format::Markdown).contains("Janus"));
    }
}

#[test]
fn the_certificate_in_use_is_described() {
    let tls = TlsFacts {
        names: vec!["meet.example.org".into()],
        issuer: "CN=Example CA".into(),
        not_after: "2027-06-30".into(),
        sha256: "AB:CD".into(),
    };
    for lang in LANGS {
        let without = server_notice(&server(), lang).render(Format::Html);
        assert!(without.contains(lang.pick("ohne TLS-Zertifikat", "without a TLS certificate")));
        let with = server_notice(&ServerFacts { tls: Some(tls.clone()), ..server() }, lang).render(Format::Html);
        for part in ["<code>meet.example.org</code>", "<code>CN=Example CA</code>", "2027-06-30", "<code>AB:CD</code>"] {
            assert!(with.contains(part), "{part}\n{with}");
        }
    }
}

/// Configuration values are literals: markup in a server name cannot become markup.
#[test]
fn configured_values_are_escaped() {
    let f = ClientFacts { servers_allowed: Some(vec!["blende+wss://<script>x`y</script>".into()]), ..client() };
    let n = client_notice(&f, Lang::En);
    let html = n.render(Format::Html);
    assert!(html.contains("<code>blende+wss://&lt;script&gt;x`y&lt;/script&gt;</code>"), "{html}");
    assert!(!html.contains("<script>"));
    let md = n.render(Format::Markdown);
    assert!(md.contains("``blende+wss://<script>x`y</script>``"), "{md}");
    assert!(html.starts_with("<section lang=\"en\">\n<h1>") && html.ends_with("</section>\n"));
}

#[test]
fn documents_follow_the_policy() {
    for lang in [Lang::De, Lang::En] {
        let on = client_notice(&client(), lang).render(Format::Markdown);
        assert!(on.contains("2000 MB") && on.contains("SHA-256"), "{on}");
        let off = client_notice(&ClientFacts { documents_max_mb: None, ..client() }, lang).render(Format::Markdown);
        assert!(!off.contains("SHA-256") && (off.contains("abgeschaltet") || off.contains("switched this off")), "{off}");
    }
}
