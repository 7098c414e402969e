//! The server's notice: what `blende-server` stores, for how long, and which other services
//! (TURN, Janus) take part, under its current settings.

use crate::{Inline, Lang, Notice, Writer};

/// The certificate the server presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFacts {
    /// The names it is valid for (subject alternative names, else the subject's CN).
    pub names: Vec<String>,
    pub issuer: String,
    /// `YYYY-MM-DD`, UTC.
    pub not_after: String,
    /// SHA-256 of the DER certificate, hex pairs separated by `:`.
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnFacts {
    pub urls: Vec<String>,
    pub ttl_s: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JanusFacts {
    /// What clients connect to.
    pub client_url: String,
    /// Admitted members from which a meeting moves to Janus.
    pub threshold: usize,
}

/// What the server is configured to do, read from its settings and certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFacts {
    pub version: String,
    /// `SQLite` or `PostgreSQL`.
    pub database: String,
    pub public_url: String,
    /// `None`: plain WebSocket, which the server only allows on a loopback address.
    pub tls: Option<TlsFacts>,
    /// `None`: the audit log is kept until a retention is set.
    pub audit_retention_days: Option<u64>,
    pub turn: Option<TurnFacts>,
    pub janus: Option<JanusFacts>,
    pub lobby_default: bool,
    pub max_participants: usize,
    /// How long failed join attempts are remembered (in memory) after the last one.
    pub failure_memory_min: u64,
    pub argon2_m_kib: u32,
    pub argon2_t: u32,
    /// How long a seat is kept after its connection dropped (`--resume-grace-s`).
    pub resume_grace_s: u64,
}

/// The server's privacy notice.
pub fn server_notice(f: &ServerFacts, lang: Lang) -> Notice {
    let mut w = Writer::new(lang);
    let intro = vec![
        w.t("Dieser Text beschreibt, was der Konferenzserver Blende ", "This text describes what the Blende conference server "),
        Inline::Code(f.version.clone()),
        w.t(" unter ", " at "),
        Inline::Code(f.public_url.clone()),
        w.t(" in seiner jetzigen Einstellung verarbeitet. Er wurde mit ", " processes with its current settings. It was written by "),
        Inline::Code("blende-server privacy-notice".into()),
        w.t(" aus dieser Einstellung erzeugt.", " from those settings."),
    ];
    w.para(intro);
    w.authority_parts();
    stored(&mut w, f);
    in_memory(&mut w, f);
    media(&mut w, f);
    encryption(&mut w, f);
    measures(&mut w, f);
    w.closing_parts();
    w.finish(lang.pick("Datenschutzhinweise: Konferenzserver Blende", "Privacy notice: the Blende conference server"))
}

fn stored(w: &mut Writer, f: &ServerFacts) {
    w.heading("Was der Server speichert", "What the server stores");
    let db = vec![
        w.t("Der Server speichert in seiner Datenbank (", "The server keeps in its database ("),
        Inline::Text(f.database.clone()),
        w.t("):", "):"),
    ];
    w.para(db);
    let audit = match f.audit_retention_days {
        Some(days) => {
            let de = format!("; jeder Eintrag wird nach {days} Tagen gelöscht (stündlich geprüft);");
            let en = format!("; each entry is deleted after {days} days (checked hourly);");
            Inline::Text(w.lang.pick(&de, &en).to_owned())
        }
        None => w.t(
            "; ohne Löschfrist, bis die Administration eine setzt (blende-server admin set audit-retention-days);",
            "; with no retention limit until the administration sets one (blende-server admin set audit-retention-days);",
        ),
    };
    let items = vec![
        vec![w.t(
            "Meetings: Meeting-ID, Titel, Beginn, Dauer, ob es einen Warteraum hat, welche Moderatorin bzw. welcher Moderator es angelegt hat und ob es beendet ist, dazu ein argon2id-Hash des Meeting-Passworts, nie das Passwort selbst; ohne automatische Löschfrist;",
            "meetings: meeting ID, title, start, duration, whether it has a lobby, which moderator created it and whether it has ended, and an argon2id hash of the meeting password, never the password itself; with no automatic deletion;",
        )],
        vec![w.t(
            "Moderatorinnen und Moderatoren: Kennung, Name, Zeitpunkt der Ernennung und ein argon2id-Hash ihres Zugangs-Tokens; bis die Administration sie entfernt;",
            "moderators: identifier, name, when they were named and an argon2id hash of their access token; until the administration removes them;",
        )],
        vec![
            w.t(
                "das Protokoll der Moderationshandlungen: Zeitpunkt, Kennung der Moderatorin bzw. des Moderators, Handlung, Meeting-ID",
                "the log of moderators' actions: time, moderator identifier, action, meeting ID",
            ),
            audit,
        ],
        {
            let de = format!(
                "die Plätze laufender Konferenzen, damit ein Neustart des Servers sie nicht beendet: Meeting-ID, Anzeigename, Rolle, ob im Warteraum, und ein SHA-256-Hash des Wiederverbindungs-Schlüssels; gelöscht, wenn die Person die Konferenz verlässt, entfernt oder abgewiesen wird, die Konferenz endet oder {} Sekunden nach dem Abbruch ihrer Verbindung;",
                f.resume_grace_s
            );
            let en = format!(
                "the seats of running conferences, so that a restart of the server does not end them: meeting ID, display name, role, whether in the lobby, and a SHA-256 hash of the reconnection key; deleted when the person leaves, is removed or denied, the conference ends, or {} seconds after their connection dropped;",
                f.resume_grace_s
            );
            vec![Inline::Text(w.lang.pick(&de, &en).to_owned())]
        },
        vec![w.t(
            "nicht gespeichert werden IP-Adressen, Audio, Video und Bildschirminhalte, und Anzeigenamen nur wie eben beschrieben.",
            "not stored: IP addresses, audio, video and screen content, and display names only as just described.",
        )],
    ];
    w.list(items);
}

fn in_memory(w: &mut Writer, f: &ServerFacts) {
    w.heading("Was nur während einer Konferenz verarbeitet wird", "What is processed only during a conference");
    let memory = {
        let de = format!(
            "Im Arbeitsspeicher, solange die Konferenz läuft: Anzeigenamen, Rollen, Warteraum und ob Kamera und Mikrofon an sind; sie werden an die Teilnehmenden derselben Konferenz weitergegeben. Fehlgeschlagene Beitrittsversuche werden je IP-Adresse und Meeting gezählt, um das Erraten von Passwörtern zu bremsen, und {} Minuten nach dem letzten Fehlversuch vergessen.",
            f.failure_memory_min
        );
        let en = format!(
            "In memory while the conference runs: display names, roles, the lobby and whether cameras and microphones are on; they are passed to the participants of the same conference. Failed joins are counted per IP address and meeting, to slow down password guessing, and forgotten {} minutes after the last failure.",
            f.failure_memory_min
        );
        Inline::Text(w.lang.pick(&de, &en).to_owned())
    };
    w.para(vec![memory]);
    w.text(
        "Die Betriebsprotokolle des Servers enthalten auf der üblichen Stufe (info) keine Anzeigenamen, Passwörter oder IP-Adressen. Wie lange das System sie aufbewahrt (z. B. journald), legt die IT fest.",
        "The server's operating logs carry no display names, passwords or IP addresses at the usual level (info). How long the system keeps them (journald, for instance) is IT's setting.",
    );
}

fn media(w: &mut Writer, f: &ServerFacts) {
    w.heading("Audio und Video", "Audio and video");
    match &f.janus {
        None => w.text(
            "Audio und Video laufen nie über diesen Server: sie gehen verschlüsselt direkt zwischen den Teilnehmenden (Peer-to-Peer), die dabei die IP-Adressen der anderen erfahren.",
            "Audio and video never pass this server: they go encrypted directly between the participants (peer to peer), who then learn each other's IP addresses.",
        ),
        Some(j) => {
            let (de, en) = (
                format!(
                    "Bis {} Teilnehmende gehen Audio und Video verschlüsselt direkt zwischen ihnen (Peer-to-Peer), die dabei die IP-Adressen der anderen erfahren. Ab {} Teilnehmenden laufen sie über den Medienserver (Janus) der Behörde unter ",
                    j.threshold.saturating_sub(1),
                    j.threshold
                ),
                format!(
                    "Up to {} participants, audio and video go encrypted directly between them (peer to peer), who then learn each other's IP addresses. From {} participants they go through the authority's media server (Janus) at ",
                    j.threshold.saturating_sub(1),
                    j.threshold
                ),
            );
            let line = vec![
                Inline::Text(w.lang.pick(&de, &en).to_owned()),
                Inline::Code(j.client_url.clone()),
                w.t(
                    ", der die Medien zur Weiterleitung entschlüsselt, nichts davon speichert und die IP-Adressen der Teilnehmenden sieht.",
                    ", which decrypts the media to forward them, stores none of it and sees the participants' IP addresses.",
                ),
            ];
            w.para(line);
        }
    }
    if let Some(t) = &f.turn {
        w.heading("TURN-Server", "TURN server");
        let (de, en) = (
            format!(
                "Wo keine direkte Verbindung möglich ist, leitet der TURN-Server der Behörde die verschlüsselten Medien weiter; er kann sie nicht entschlüsseln, sieht aber die IP-Adressen. Der Server gibt jeder Person dafür Zugangsdaten, die {} Sekunden gelten. TURN-Server:",
                t.ttl_s
            ),
            format!(
                "Where no direct connection is possible, the authority's TURN server relays the encrypted media; it cannot decrypt them but sees the IP addresses. The server gives each person credentials for it that are valid for {} seconds. TURN servers:",
                t.ttl_s
            ),
        );
        w.para(vec![Inline::Text(w.lang.pick(&de, &en).to_owned())]);
        w.list(t.urls.iter().map(|u| vec![Inline::Code(u.clone())]).collect());
    }
}

fn encryption(w: &mut Writer, f: &ServerFacts) {
    w.heading("Verschlüsselung", "Encryption");
    match &f.tls {
        Some(tls) => {
            w.text(
                "Die Verbindungen zum Server sind mit TLS (Version 1.2 oder 1.3) verschlüsselt. Zertifikat:",
                "Connections to the server are encrypted with TLS (version 1.2 or 1.3). Certificate:",
            );
            let names = tls.names.join(", ");
            let items = vec![
                vec![w.t("ausgestellt für ", "issued for "), Inline::Code(names)],
                vec![w.t("ausgestellt von ", "issued by "), Inline::Code(tls.issuer.clone())],
                vec![w.t("gültig bis ", "valid until "), Inline::Text(tls.not_after.clone())],
                vec![w.t("SHA-256-Fingerabdruck ", "SHA-256 fingerprint "), Inline::Code(tls.sha256.clone())],
            ];
            w.list(items);
        }
        None => w.text(
            "Der Server läuft ohne TLS-Zertifikat und nimmt deshalb nur Verbindungen vom eigenen Rechner an (Loopback, für Tests). Für den Betrieb ist ein Zertifikat einzurichten.",
            "The server runs without a TLS certificate and therefore accepts connections from its own computer only (loopback, for tests). Operation needs a certificate.",
        ),
    }
    w.text(
        "Audio und Video sind zwischen den Geräten immer mit DTLS-SRTP verschlüsselt.",
        "Audio and video are always encrypted between the devices with DTLS-SRTP.",
    );
}

fn measures(w: &mut Writer, f: &ServerFacts) {
    w.heading("Technische und organisatorische Maßnahmen", "Technical and organisational measures");
    let hash = {
        let de = format!(
            "Passwörter und Tokens nur als argon2id-Hash ({} KiB Speicher, {} Durchläufe); falsches Passwort, unbekanntes Meeting und ungültiges Token erhalten dieselbe Antwort nach derselben Zeit;",
            f.argon2_m_kib, f.argon2_t
        );
        let en = format!(
            "passwords and tokens only as argon2id hashes ({} KiB memory, {} passes); a wrong password, an unknown meeting and a bad token get the same answer after the same time;",
            f.argon2_m_kib, f.argon2_t
        );
        Inline::Text(w.lang.pick(&de, &en).to_owned())
    };
    let lobby = if f.lobby_default {
        w.t(
            "neue Meetings haben einen Warteraum: wer beitritt, wartet, bis eine Moderatorin oder ein Moderator einlässt;",
            "new meetings have a lobby: whoever joins waits until a moderator admits them;",
        )
    } else {
        w.t(
            "neue Meetings haben keinen Warteraum, wenn die Moderation ihn nicht einschaltet: wer das Passwort kennt, tritt direkt bei;",
            "new meetings have no lobby unless the moderator turns it on: whoever knows the password joins directly;",
        )
    };
    let size = {
        let de = format!("höchstens {} Teilnehmende je Meeting;", f.max_participants);
        let en = format!("at most {} participants per meeting;", f.max_participants);
        Inline::Text(w.lang.pick(&de, &en).to_owned())
    };
    let items = vec![
        vec![hash],
        vec![w.t(
            "Meeting-IDs aus einem kryptographisch sicheren Zufallsgenerator; das Passwort geht getrennt von der Einladung über einen zweiten Kanal;",
            "meeting IDs from a cryptographically secure random generator; the password goes separately from the invitation, by a second channel;",
        )],
        vec![w.t(
            "Rollen (Administration, Moderation, Präsentation, Teilnahme) prüft der Server bei jeder Nachricht;",
            "roles (administrator, moderator, presenter, participant) are checked by the server on every message;",
        )],
        vec![lobby],
        vec![size],
        vec![w.t(
            "wiederholte Fehlversuche beim Beitritt führen zu wachsender Wartezeit und Sperre;",
            "repeated failed joins lead to growing delays and a lockout;",
        )],
        vec![w.t(
            "das Debian-Paket startet den Dienst unter einem eigenen Systembenutzer ohne Sonderrechte, mit schreibgeschütztem System bis auf sein Datenverzeichnis.",
            "the Debian package runs the service as a system user of its own without privileges, with the system read-only except its data folder.",
        )],
    ];
    w.list(items);
}
