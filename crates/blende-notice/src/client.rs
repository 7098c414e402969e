//! The client's notice: what `blende` contacts, sends and keeps, under the effective policy.

use crate::{Inline, Lang, Notice, Writer};

/// What the client is configured to do, read from the effective policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFacts {
    pub version: String,
    /// The administrator's policy file in force, if there is one.
    pub admin_policy: Option<String>,
    /// `Some`: the only servers the client may contact. `None`: whichever server an
    /// invitation or the user names.
    pub servers_allowed: Option<Vec<String>>,
    /// The administrator's own STUN/TURN servers.
    pub ice_servers: Vec<String>,
    pub require_tls: bool,
    pub full_screen_allowed: bool,
    /// Only applications the administrator listed may be shared.
    pub allowlist: bool,
    /// Media only through the authority's TURN server: no host addresses reach other people.
    pub relay_only: bool,
    /// Where the user's settings file lives, as the user would look for it.
    pub settings_file: String,
    /// `Some(max_mb)`: documents may pass between participants, up to this size; `None`: the
    /// administrator switched them off.
    pub documents_max_mb: Option<u64>,
}

/// The client's privacy notice.
pub fn client_notice(f: &ClientFacts, lang: Lang) -> Notice {
    let mut w = Writer::new(lang);
    let mut intro = vec![
        w.t(
            "Dieser Text beschreibt, was die Videokonferenz-Software Blende ",
            "This text describes what the video-conferencing client Blende ",
        ),
        Inline::Code(f.version.clone()),
        w.t(
            " in der Konfiguration der Behörde verarbeitet. Er wurde mit ",
            " processes as the authority configured it. It was written by ",
        ),
        Inline::Code("blende privacy-notice".into()),
        w.t(" aus der wirksamen Konfiguration erzeugt", " from the effective configuration"),
    ];
    match &f.admin_policy {
        Some(path) => {
            intro.push(w.t(" (Richtlinie der IT: ", " (IT's policy: "));
            intro.push(Inline::Code(path.clone()));
            intro.push(w.t(").", ")."));
        }
        None => intro.push(w.t(" (ohne Richtlinie der IT: eingebaute Voreinstellungen).", " (no policy from IT: built-in defaults).")),
    }
    w.para(intro);
    w.authority_parts();

    servers(&mut w, f);
    transmitted(&mut w, f);
    stored(&mut w, f);

    w.closing_parts();
    w.finish(lang.pick("Datenschutzhinweise: Videokonferenzen mit Blende", "Privacy notice: video conferences with Blende"))
}

fn servers(w: &mut Writer, f: &ClientFacts) {
    w.heading("Welche Server Blende kontaktiert", "Which servers Blende contacts");
    match &f.servers_allowed {
        Some(list) if list.is_empty() => {
            w.text("Die IT hat keinen Server freigegeben: Blende baut keine Verbindung auf.", "IT has allowed no server: Blende connects to none.");
        }
        Some(list) => {
            w.text("Blende verbindet sich ausschließlich mit diesen Konferenzservern:", "Blende connects only to these conference servers:");
            w.list(list.iter().map(|s| vec![Inline::Code(s.clone())]).collect());
        }
        None => w.text(
            "Die IT hat keine Liste freigegebener Server festgelegt: Blende verbindet sich mit dem Konferenzserver, den die Einladung oder die Nutzerin bzw. der Nutzer angibt.",
            "IT has not limited the servers: Blende connects to the conference server that the invitation or the user names.",
        ),
    }
    if f.ice_servers.is_empty() {
        w.text(
            "Für den Verbindungsaufbau von Audio und Video nutzt Blende keinen STUN- oder TURN-Server außer denen, die der Konferenzserver für die Sitzung nennt.",
            "To connect audio and video, Blende uses no STUN or TURN server other than those the conference server names for the session.",
        );
    } else {
        w.text(
            "Für den Verbindungsaufbau von Audio und Video (STUN/TURN) nutzt Blende diese Server der Behörde:",
            "To connect audio and video (STUN/TURN), Blende uses these servers of the authority:",
        );
        w.list(f.ice_servers.iter().map(|s| vec![Inline::Code(s.clone())]).collect());
    }
    if f.require_tls {
        w.text(
            "Anmeldung, Rollen und Verbindungsaufbau laufen nur über TLS-verschlüsselte Verbindungen (wss://, https://); unverschlüsselt nur zu Testzwecken innerhalb des eigenen Rechners. Audio und Video sind immer mit DTLS-SRTP verschlüsselt.",
            "Sign-in, roles and connection set-up use TLS-encrypted connections only (wss://, https://); unencrypted only for tests within the computer itself. Audio and video are always encrypted with DTLS-SRTP.",
        );
    } else {
        w.text(
            "Die IT erlaubt auch unverschlüsselte Verbindungen für Anmeldung und Verbindungsaufbau (ws://, http://). Audio und Video sind immer mit DTLS-SRTP verschlüsselt.",
            "IT also allows unencrypted connections for sign-in and connection set-up (ws://, http://). Audio and video are always encrypted with DTLS-SRTP.",
        );
    }
}

fn transmitted(w: &mut Writer, f: &ClientFacts) {
    w.heading("Was während einer Konferenz übertragen wird", "What is sent during a conference");
    let share = match (f.full_screen_allowed, f.allowlist) {
        (false, false) => w.t(
            "bei der Bildschirmfreigabe nur das eine Fenster, das Sie auswählen; darüberliegende Fenster werden geschwärzt. E-Mail- und Messenger-Programme, Webmail und Benachrichtigungen lassen sich nicht freigeben; wird ein freigegebenes Fenster zu einem solchen, endet die Übertragung sofort. Der ganze Bildschirm kann nicht freigegeben werden;",
            "when you share your screen, only the one window you choose; windows on top of it are blacked out. Mail and messenger programs, webmail and notifications cannot be shared; if a shared window turns into one, sending stops at once. The whole screen cannot be shared;",
        ),
        (true, false) => w.t(
            "bei der Bildschirmfreigabe das Fenster, das Sie auswählen, oder – von der IT erlaubt – der ganze Bildschirm; darüberliegende und gesperrte Fenster (E-Mail, Messenger, Webmail, Benachrichtigungen) werden geschwärzt und nie übertragen;",
            "when you share your screen, the window you choose or, as IT allows it, the whole screen; windows on top and blocked windows (mail, messengers, webmail, notifications) are blacked out and never sent;",
        ),
        (_, true) => w.t(
            "bei der Bildschirmfreigabe nur ein Fenster eines Programms, das die IT freigegeben hat; darüberliegende Fenster werden geschwärzt. E-Mail- und Messenger-Fenster und Benachrichtigungen werden nie übertragen;",
            "when you share your screen, only a window of a program IT has allowed; windows on top of it are blacked out. Mail and messenger windows and notifications are never sent;",
        ),
    };
    let items = vec![
        vec![w.t(
            "an den Konferenzserver: die Meeting-ID, das Meeting-Passwort und der Anzeigename, den Sie beim Beitritt angeben, sowie ob Ihre Kamera und Ihr Mikrofon an sind;",
            "to the conference server: the meeting ID, the meeting password and the display name you give when joining, and whether your camera and microphone are on;",
        )],
        vec![w.t(
            "der Ton Ihres Mikrofons und das Bild Ihrer Kamera, nur solange Sie sie eingeschaltet haben. Ausschalten gibt das Gerät frei (die Kamera-Leuchte erlischt); nichts, was danach aufgenommen würde, verlässt den Rechner. Geöffnet werden die Geräte erst beim Beitritt oder beim Gerätetest;",
            "the sound of your microphone and the picture of your camera, only while you have them switched on. Switching off releases the device (the camera light goes out); nothing captured afterwards leaves the computer. The devices open only when you join or test them;",
        )],
        vec![share],
        vec![if f.relay_only {
            w.t(
                "technische Verbindungsdaten (IP-Adressen und Ports) nur an die Server der Behörde: Die IT lässt Audio und Video ausschließlich über ihren TURN-Server laufen, andere Teilnehmende erfahren die IP-Adressen Ihres Rechners nicht;",
                "technical connection data (IP addresses and ports) only to the authority's servers: IT sends audio and video through its TURN server only, so other participants do not learn your computer's IP addresses;",
            )
        } else {
            w.t(
                "technische Verbindungsdaten (IP-Adressen und Ports): In kleinen Konferenzen gehen Audio und Video direkt zwischen den Teilnehmenden, die dabei die IP-Adressen der anderen erfahren; in größeren über den Medienserver der Behörde;",
                "technical connection data (IP addresses and ports): in small conferences audio and video go directly between participants, who then learn each other's IP addresses; in larger ones through the authority's media server;",
            )
        }],
        vec![w.t(
            "Chatnachrichten gehen Ende-zu-Ende-verschlüsselt an die Teilnehmenden, an die Sie sie richten (an alle oder privat an eine Person); kein Server kann sie lesen oder speichern (auch ein TURN-Server leitet nur verschlüsselte Daten weiter); der Chatverlauf liegt nur im Arbeitsspeicher und ist mit dem Ende der Konferenz gelöscht, es sei denn, Sie speichern ihn selbst in eine Datei;",
            "chat messages go end-to-end encrypted to the participants you address (everyone, or one person privately); no server can read or keep them (a TURN server, too, only passes on encrypted data); the chat history is kept in memory only and is gone when the conference ends, unless you save it to a file yourself;",
        )],
        vec![match f.documents_max_mb {
            Some(mb) => w.t(
                &format!("Dokumente, die Sie anbieten, gehen Ende-zu-Ende-verschlüsselt an die Person, die sie annimmt, und werden auf keinem Server gespeichert. Ein Dokument, das Sie annehmen (bis {mb} MB), wird nur in dem Ordner gespeichert, den Sie wählen, und erst, nachdem seine Prüfsumme (SHA-256) stimmt; eine vorhandene Datei wird nie überschrieben."),
                &format!("documents you offer go end-to-end encrypted to the person who accepts them and are stored on no server. A document you accept (up to {mb} MB) is saved only in the folder you choose, and only after its checksum (SHA-256) matched; an existing file is never overwritten."),
            ),
            None => w.t(
                "Dokumente können nicht weitergegeben werden: Die IT hat es abgeschaltet.",
                "Documents cannot be passed on: IT has switched this off.",
            ),
        }],
    ];
    w.list(items);
}

fn stored(w: &mut Writer, f: &ClientFacts) {
    w.heading("Was auf Ihrem Rechner gespeichert wird", "What is kept on your computer");
    let items = vec![
        vec![
            w.t(
                "persönliche Einstellungen (eigene Sperrregeln für Fenster, bekannte Server, Tastenkürzel) in ",
                "personal settings (your own window block rules, known servers, shortcuts) in ",
            ),
            Inline::Code(f.settings_file.clone()),
            w.t(", bis Sie sie löschen;", ", until you delete them;"),
        ],
        vec![w.t(
            "Meeting-Passwörter nur, wenn Sie „Passwort merken“ wählen, und dann nur im Schlüsselbund des Betriebssystems, nie in einer Datei;",
            "meeting passwords only when you tick \"remember password\", and then only in the operating system's keychain, never in a file;",
        )],
        vec![w.t(
            "keine Aufzeichnungen, keine Gesprächsverläufe, keine Teilnehmerlisten. Was der Konferenzserver speichert, beschreibt dessen eigener Hinweis (",
            "no recordings, no call history, no lists of participants. What the conference server keeps is described in its own notice (",
        ), Inline::Code("blende-server privacy-notice".into()), w.t(").", ").")],
    ];
    w.list(items);
}
