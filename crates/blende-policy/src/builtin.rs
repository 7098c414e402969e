//! The built-in blocklist: mail and messenger applications, notification pop-ups, and the
//! webmail and web-messenger sites that run inside browsers.
//!
//! Keys are normalised (see [`crate::normalize`]): lower case, `.exe` removed, for
//! reverse-DNS identifiers the last part. Add a product by adding its names here and a row to
//! `tests/data/windows.tsv`.

use crate::Category;

/// An application known by identity. `keys` are every name a platform may report for it.
pub(crate) struct App {
    pub name: &'static str,
    pub category: Category,
    pub keys: &'static [&'static str],
}

const fn app(name: &'static str, category: Category, keys: &'static [&'static str]) -> App {
    App { name, category, keys }
}

use Category::{Mail, Messenger, Notification};

pub(crate) const APPS: &[App] = &[
    // --- e-mail programs ---
    app(
        "Outlook",
        Mail,
        &["outlook", "microsoft outlook", "olk", "outlook (new)", "new outlook", "microsoft outlook (new)", "hxoutlook", "hxmail"],
    ),
    app(
        "Thunderbird",
        Mail,
        &["thunderbird", "mozilla thunderbird", "thunderbird-esr", "thunderbird daily", "betterbird", "mail.thunderbird"],
    ),
    app("HCL Notes", Mail, &["hcl notes", "ibm notes", "lotus notes", "notes client", "nlnotes", "hcl nomad"]),
    app("eM Client", Mail, &["em client", "emclient", "mailclient"]),
    app("Apple Mail", Mail, &["mail", "apple mail"]),
    app("Evolution", Mail, &["evolution", "evolution-mail"]),
    app("KMail", Mail, &["kmail", "kmail2", "kontact"]),
    app("Geary", Mail, &["geary"]),
    app("Claws Mail", Mail, &["claws-mail", "claws mail", "sylpheed"]),
    app("Mailbird", Mail, &["mailbird"]),
    app("Mailspring", Mail, &["mailspring"]),
    app("Spark", Mail, &["spark", "spark desktop", "readdle spark"]),
    app("Airmail", Mail, &["airmail", "airmail 5"]),
    app("Postbox", Mail, &["postbox"]),
    app("BlueMail", Mail, &["bluemail"]),
    app("Proton Mail", Mail, &["proton mail", "protonmail", "proton-mail"]),
    app("Tuta Mail", Mail, &["tutanota", "tutanota-desktop", "tuta mail"]),
    app("Canary Mail", Mail, &["canary mail"]),
    app("Mimestream", Mail, &["mimestream"]),
    app("Trojitá", Mail, &["trojita", "trojitá"]),
    app("Windows Mail", Mail, &["windows mail", "mail and calendar", "e-mail und kalender"]),
    // Groupware clients German administrations run, and the mailbox clients of the electronic
    // legal mail (EGVP, beBPo).
    app("Kopano DeskApp", Mail, &["kopano deskapp", "kopano", "deskapp"]),
    app("Zimbra Desktop", Mail, &["zimbra desktop", "zimbra"]),
    app("GroupWise", Mail, &["groupwise", "grpwise", "novell groupwise"]),
    app("Governikus Communicator", Mail, &["governikus communicator", "governikus", "egvp"]),
    app("Balsa", Mail, &["balsa"]),
    app("Astroid", Mail, &["astroid"]),
    app("Opera Mail", Mail, &["opera mail"]),
    app("The Bat!", Mail, &["the bat!", "thebat", "thebat64"]),
    app("Pegasus Mail", Mail, &["pegasus mail", "winpm-32"]),
    app("Windows Live Mail", Mail, &["windows live mail", "wlmail", "outlook express", "msimn"]),
    app("Foxmail", Mail, &["foxmail"]),
    app("Superhuman", Mail, &["superhuman"]),
    app("HEY", Mail, &["hey"]),
    // --- messengers ---
    app("Signal", Messenger, &["signal", "signal desktop", "signal-desktop", "signal beta"]),
    app(
        "WhatsApp",
        Messenger,
        &["whatsapp", "whatsapp desktop", "whatsapp.root", "whatsapp-for-linux", "whatsapp-desktop", "whatsdesk", "zapzap"],
    ),
    app(
        "Telegram",
        Messenger,
        &["telegram", "telegram desktop", "telegramdesktop", "telegram-desktop", "telegram.telegramdesktop", "64gram"],
    ),
    app("Threema", Messenger, &["threema", "threema desktop", "threema work", "threema-desktop"]),
    app("Wire", Messenger, &["wire", "wire desktop", "wire-desktop"]),
    app("Element", Messenger, &["element", "element-desktop", "element desktop", "riot", "bundesmessenger", "element-nightly"]),
    app(
        "Microsoft Teams",
        Messenger,
        &[
            "microsoft teams",
            "ms-teams",
            "teams",
            "teams2",
            "microsoft teams (work or school)",
            "microsoft teams classic",
            "teams-for-linux",
            "msteams",
            "microsoft teams - preview",
        ],
    ),
    app("Slack", Messenger, &["slack", "slackmacgap"]),
    app("Discord", Messenger, &["discord", "discordcanary", "discordptb", "vesktop"]),
    app("Skype", Messenger, &["skype", "skypeforlinux", "skype for business", "lync"]),
    app("Mattermost", Messenger, &["mattermost", "mattermost desktop", "mattermost desktop app"]),
    app("Rocket.Chat", Messenger, &["rocket.chat", "rocketchat", "rocket.chat+"]),
    app("Zulip", Messenger, &["zulip"]),
    app("Webex", Messenger, &["webex", "cisco webex", "ciscowebexstart", "cisco webex meetings", "webexteams"]),
    app("Ferdium", Messenger, &["ferdium"]),
    app("Franz", Messenger, &["franz"]),
    app("Rambox", Messenger, &["rambox"]),
    app("Station", Messenger, &["station"]),
    app("Beeper", Messenger, &["beeper"]),
    app("Apple Messages", Messenger, &["messages", "nachrichten", "imessage", "mobilesms"]),
    app("Facebook Messenger", Messenger, &["messenger", "facebook messenger"]),
    app("Viber", Messenger, &["viber"]),
    app("WeChat", Messenger, &["wechat", "weixin"]),
    app("LINE", Messenger, &["line"]),
    app("Session", Messenger, &["session", "session-desktop"]),
    app("Jami", Messenger, &["jami", "jami-gnome", "jami-qt"]),
    app("Delta Chat", Messenger, &["deltachat", "delta chat", "deltachat-desktop"]),
    app("Nextcloud Talk", Messenger, &["nextcloud talk", "talk-desktop", "nextcloud-talk"]),
    app("Wickr", Messenger, &["wickr", "wickr pro", "wickrme"]),
    app("Gajim", Messenger, &["gajim"]),
    app("Pidgin", Messenger, &["pidgin"]),
    app("Dino", Messenger, &["dino"]),
    app("Psi", Messenger, &["psi", "psi+"]),
    app("Nheko", Messenger, &["nheko"]),
    app("Fractal", Messenger, &["fractal"]),
    app("NeoChat", Messenger, &["neochat"]),
    app("Kopete", Messenger, &["kopete"]),
    app("Empathy", Messenger, &["empathy"]),
    app("Google Chat", Messenger, &["google chat"]),
    app("Chatty", Messenger, &["chatty"]),
    app("Hexchat", Messenger, &["hexchat", "polari", "konversation", "quassel", "quasselclient", "kvirc", "halloy", "srain"]),
    // Matrix, Signal and WhatsApp clients of other makers, and German messengers of the public sector.
    app("SchildiChat", Messenger, &["schildichat", "schildi"]),
    app("FluffyChat", Messenger, &["fluffychat"]),
    app("Cinny", Messenger, &["cinny"]),
    app("Quaternion", Messenger, &["quaternion"]),
    app("Flare", Messenger, &["flare"]),
    app("Paper Plane", Messenger, &["paper plane", "paperplane"]),
    app("WasIstLos", Messenger, &["wasistlos", "whatsie", "whatsapp-desktop-linux"]),
    app("WebCord", Messenger, &["webcord", "armcord", "legcord"]),
    app("Caprine", Messenger, &["caprine"]),
    app("Teamwire", Messenger, &["teamwire"]),
    app("stashcat", Messenger, &["stashcat", "schul.cloud", "schulcloud"]),
    app("Miranda", Messenger, &["miranda", "miranda ng", "miranda32", "miranda64"]),
    app("Adium", Messenger, &["adium"]),
    app("Kaidan", Messenger, &["kaidan"]),
    app("Tox", Messenger, &["qtox", "utox", "toxic"]),
    app("Ferdi", Messenger, &["ferdi", "hamsket", "wavebox"]),
    // --- notification pop-ups ---
    app("Windows notifications", Notification, &["shellexperiencehost", "windows shell experience host", "windows-shell-experience-host"]),
    app(
        "macOS Notification Center",
        Notification,
        &["notification center", "notificationcenter", "mitteilungszentrale", "usernotificationcenter"],
    ),
    app(
        "Notification daemon",
        Notification,
        &[
            "xfce4-notifyd",
            "dunst",
            "notify-osd",
            "mako",
            "swaync",
            "notification-daemon",
            "deadd-notification-center",
            "lxqt-notificationd",
            "mate-notification-daemon",
            "fnott",
            "wired",
            "linux_notification_center",
        ],
    ),
];

/// Applications whose windows are browsers: for them the title's site part decides.
pub(crate) const BROWSERS: &[&str] = &[
    "google chrome",
    "google-chrome",
    "chrome",
    "chromium",
    "chromium-browser",
    "microsoft edge",
    "msedge",
    "microsoft-edge",
    "firefox",
    "mozilla firefox",
    "firefox-esr",
    "navigator",
    "firefox developer edition",
    "firefox nightly",
    "safari",
    "safari technology preview",
    "brave",
    "brave browser",
    "brave-browser",
    "opera",
    "vivaldi",
    "vivaldi-stable",
    "librewolf",
    "waterfox",
    "epiphany",
    "gnome web",
    "falkon",
    "konqueror",
    "yandex",
    "arc",
    "zen",
    "floorp",
    "seamonkey",
    "iexplore",
    "internet explorer",
    "msedgewebview2",
    "min",
    "orion",
    "tor browser",
];

/// A site recognised in a browser title part.
pub(crate) struct Site {
    pub name: &'static str,
    pub category: Category,
    /// Exact title parts that mean this site.
    pub parts: &'static [&'static str],
    /// Title parts that mean this site when they begin with the name ("GMX FreeMail").
    pub prefixes: &'static [&'static str],
}

const fn site(name: &'static str, category: Category, parts: &'static [&'static str], prefixes: &'static [&'static str]) -> Site {
    Site { name, category, parts, prefixes }
}

use Category::{WebMessenger, Webmail};

pub(crate) const SITES: &[Site] = &[
    site("Gmail", Webmail, &["gmail", "google mail"], &["gmail"]),
    site(
        "Outlook on the web",
        Webmail,
        &["outlook", "outlook web app", "outlook web access", "owa", "mail - outlook", "outlook.com", "microsoft outlook"],
        &["outlook web", "outlook.com"],
    ),
    site("GMX", Webmail, &["gmx", "gmx freemail", "gmx mail"], &["gmx "]),
    site("WEB.DE", Webmail, &["web.de", "web.de freemail", "web.de mail"], &["web.de "]),
    // Not "Roundcube" alone: that is the project's own home page; installations call themselves
    // "Roundcube Webmail" (and show a mailbox word).
    site("Roundcube", Webmail, &["roundcube webmail"], &["roundcube webmail "]),
    site("SOGo", Webmail, &["sogo"], &[]),
    site("Zimbra", Webmail, &["zimbra", "zimbra web client"], &["zimbra "]),
    site("OX App Suite", Webmail, &["ox app suite", "open-xchange", "app suite", "ox mail"], &["open-xchange "]),
    site("Proton Mail", Webmail, &["proton mail", "protonmail"], &["proton mail "]),
    site("Yahoo Mail", Webmail, &["yahoo mail", "yahoo! mail"], &["yahoo mail ", "yahoo! mail "]),
    site("iCloud Mail", Webmail, &["icloud mail"], &[]),
    site("Tuta Mail", Webmail, &["tuta mail", "tutanota"], &[]),
    site("Posteo", Webmail, &["posteo", "posteo webmail"], &[]),
    site("mailbox.org", Webmail, &["mailbox.org"], &[]),
    site("Telekom Mail", Webmail, &["t-online e-mail", "telekom mail", "e-mail center", "freenet mail"], &[]),
    site("Fastmail", Webmail, &["fastmail"], &[]),
    site("Horde", Webmail, &["horde", "horde webmail"], &[]),
    site("SnappyMail", Webmail, &["snappymail", "rainloop", "squirrelmail"], &[]),
    site("IONOS Webmail", Webmail, &["ionos webmail", "1&1 webmail", "strato webmail", "webmail"], &["webmail "]),
    site("HCL Verse", Webmail, &["hcl verse", "ibm verse"], &[]),
    site("Nextcloud Mail", Webmail, &["mail - nextcloud"], &[]),
    site("EGroupware", Webmail, &["egroupware"], &["egroupware ", "egroupware:"]),
    site("Kopano WebApp", Webmail, &["kopano webapp", "kopano", "grommunio", "grommunio web"], &["kopano ", "grommunio "]),
    site("GroupWise", Webmail, &["groupwise", "groupwise webaccess"], &["groupwise "]),
    site("Tine", Webmail, &["tine", "tine 2.0", "tine groupware"], &["tine groupware "]),
    site("Kolab", Webmail, &["kolab", "kolab now", "kolab webmail"], &["kolab "]),
    site("De-Mail", Webmail, &["de-mail", "de-mail postfach"], &["de-mail "]),
    site("mail.de", Webmail, &["mail.de"], &[]),
    site("Vodafone Mail", Webmail, &["vodafone mail", "vodafone webmail"], &[]),
    site("WhatsApp Web", WebMessenger, &["whatsapp", "whatsapp web", "whatsapp business"], &["whatsapp web"]),
    site("Telegram Web", WebMessenger, &["telegram", "telegram web", "telegram web k", "telegram web a"], &["telegram web"]),
    site("Threema Web", WebMessenger, &["threema web", "threema"], &["threema web"]),
    site("Element", WebMessenger, &["element", "bundesmessenger", "element web"], &[]),
    site("Slack", WebMessenger, &["slack"], &[]),
    site("Microsoft Teams", WebMessenger, &["microsoft teams", "teams", "microsoft teams (free)"], &[]),
    site("Discord", WebMessenger, &["discord"], &[]),
    site("Facebook Messenger", WebMessenger, &["messenger", "facebook messenger"], &[]),
    site("Google Chat", WebMessenger, &["google chat", "chat - google"], &[]),
    site("Rocket.Chat", WebMessenger, &["rocket.chat"], &[]),
    site("Mattermost", WebMessenger, &["mattermost"], &[]),
    site("Zulip", WebMessenger, &["zulip"], &[]),
    site("Webex", WebMessenger, &["webex", "cisco webex"], &[]),
    site("Skype", WebMessenger, &["skype"], &[]),
    site("Signal", WebMessenger, &["signal messenger"], &[]),
    site("Wire", WebMessenger, &["wire", "wire webapp"], &[]),
    site("Nextcloud Talk", WebMessenger, &["talk - nextcloud"], &[]),
    site("stashcat", WebMessenger, &["stashcat", "schul.cloud"], &["stashcat "]),
    site("Teamwire", WebMessenger, &["teamwire"], &[]),
    site("Element", WebMessenger, &["schildichat", "cinny", "fluffychat", "hydrogen"], &[]),
];

/// Host names that, appearing anywhere in a browser title (Firefox shows the address when a
/// page has no title yet), mean webmail or a web messenger.
pub(crate) const DOMAINS: &[(&str, Category)] = &[
    ("mail.google.com", Webmail),
    ("outlook.office.com", Webmail),
    ("outlook.office365.com", Webmail),
    ("outlook.live.com", Webmail),
    ("/owa/", Webmail),
    ("navigator.gmx.net", Webmail),
    ("navigator.web.de", Webmail),
    ("mail.yahoo.com", Webmail),
    ("mail.proton.me", Webmail),
    ("app.tuta.com", Webmail),
    ("web.whatsapp.com", WebMessenger),
    ("web.telegram.org", WebMessenger),
    ("web.threema.ch", WebMessenger),
    ("app.slack.com", WebMessenger),
    ("teams.microsoft.com", WebMessenger),
    ("teams.live.com", WebMessenger),
    ("discord.com/channels", WebMessenger),
    ("messenger.com", WebMessenger),
    ("chat.google.com", WebMessenger),
    ("app.element.io", WebMessenger),
];

/// Whole titles of notification pop-ups from applications that also own ordinary windows
/// (on Windows, toasts can belong to Explorer).
pub(crate) const NOTIFICATION_TITLES: &[&str] = &[
    "neue benachrichtigung",
    "benachrichtigung",
    "benachrichtigungen",
    "new notification",
    "notification",
    "notifications",
    "mitteilung",
    "neue mitteilung",
    "mitteilungen",
    "notification center",
    "mitteilungszentrale",
    "info-center",
    "action center",
];

/// Keys of [`APPS`] that are common words: they name the product only as the whole identity
/// (filler words aside), never as a word inside a longer name (`gnome-session`, `Polaris
/// Office`, `SignalAnalyzer`). See [`crate::identity`].
pub(crate) const GENERIC_KEYS: &[&str] = &[
    "mail",
    "spark",
    "station",
    "element",
    "wire",
    "session",
    "line",
    "messages",
    "nachrichten",
    "messenger",
    "teams",
    "chatty",
    "psi",
    "dino",
    "fractal",
    "empathy",
    "signal",
    "evolution",
    "franz",
    "polari",
    "riot",
    "slack",
    "postbox",
    "kontact",
    "wired",
    "mako",
    "em client",
    "emclient",
    "mailclient",
    "notes client",
    "airmail",
    "beeper",
    "communicator",
    "talk",
    "shift",
    "hey",
    "newton",
    "notification",
    "quaternion",
];

/// What a mailbox is called, as a whole title part, in the languages of German
/// administrations and their neighbours (German, English, French, Dutch, Polish, Czech,
/// Danish, Italian, Spanish), with and without accents. A browser title with such a part is
/// webmail; so is the title of a program this policy does not know.
pub(crate) const MAILBOX_WORDS: &[&str] = &[
    // German
    "posteingang",
    "postfach",
    "eingang",
    "e-mail-posteingang",
    "alle posteingänge",
    // English
    "inbox",
    "mailbox",
    "all inboxes",
    "unified inbox",
    "primary inbox",
    // French
    "boîte de réception",
    "boite de reception",
    "boîte aux lettres",
    "boite aux lettres",
    "courrier entrant",
    // Dutch
    "postvak in",
    "postvak",
    "alle postvakken",
    // Polish
    "odebrane",
    "skrzynka odbiorcza",
    // Czech
    "doručená pošta",
    "dorucena posta",
    "přijatá pošta",
    "prijata posta",
    // Danish
    "indbakke",
    "indbakken",
    // Italian
    "posta in arrivo",
    "posta in entrata",
    // Spanish
    "bandeja de entrada",
    "recibidos",
];

/// Programs known not to be mail or chat programs, whose titles name files, folders and
/// documents (a file manager's folder "Posteingang" of scanned letters is not a mailbox).
/// Matched like [`APPS`].
pub(crate) const TOOLS: &[&str] = &[
    // file managers
    "explorer",
    "windows explorer",
    "file explorer",
    "datei-explorer",
    "finder",
    "nautilus",
    "org.gnome.nautilus",
    "files",
    "dolphin",
    "thunar",
    "nemo",
    "pcmanfm",
    "pcmanfm-qt",
    "caja",
    "krusader",
    "double commander",
    "total commander",
    "doublecmd",
    "totalcmd",
    "totalcmd64",
    // office and documents
    "libreoffice",
    "soffice",
    "winword",
    "microsoft word",
    "word",
    "excel",
    "microsoft excel",
    "powerpnt",
    "microsoft powerpoint",
    "powerpoint",
    "onenote",
    "microsoft onenote",
    "acrobat",
    "acrord32",
    "adobe acrobat",
    "adobe acrobat reader",
    "evince",
    "okular",
    "preview",
    "vorschau",
    "atril",
    "xreader",
    "zathura",
    "sumatrapdf",
    "foxit",
    "foxit pdf reader",
    "pages",
    "numbers",
    "keynote",
    "onlyoffice",
    "desktopeditors",
    "wps",
    "abiword",
    "gnumeric",
    "calligra",
    "scribus",
    // editors, IDEs, image programs
    "notepad",
    "notepad++",
    "editor",
    "texteditor",
    "textedit",
    "gedit",
    "gnome-text-editor",
    "kate",
    "kwrite",
    "mousepad",
    "pluma",
    "xed",
    "code",
    "visual studio code",
    "vscodium",
    "devenv",
    "idea",
    "pycharm",
    "emacs",
    "gvim",
    "sublime_text",
    "gimp",
    "inkscape",
    "paint",
    "mspaint",
    "krita",
    "eog",
    "gwenview",
    "shotwell",
    "photos",
];

/// Terminal emulators: their title names the program running in them, so a terminal mail or
/// chat program ([`TERMINAL_PROGRAMS`]) named in it makes the window that program's.
pub(crate) const TERMINALS: &[&str] = &[
    "xterm",
    "uxterm",
    "gnome-terminal-server",
    "gnome-terminal",
    "konsole",
    "terminal",
    "windowsterminal",
    "windows terminal",
    "xfce4-terminal",
    "tilix",
    "alacritty",
    "kitty",
    "cmd",
    "conhost",
    "powershell",
    "pwsh",
    "iterm2",
    "mate-terminal",
    "lxterminal",
    "qterminal",
    "terminator",
    "urxvt",
    "rxvt",
    "st",
    "foot",
    "wezterm",
    "wezterm-gui",
    "org.gnome.console",
    "kgx",
    "ptyxis",
    "putty",
];

/// Mail and chat programs that run inside a terminal, as the first word of its title (the
/// command a terminal shows, or `NeoMutt with 3 messages`).
pub(crate) const TERMINAL_PROGRAMS: &[(&str, Category)] = &[
    ("mutt", Mail),
    ("neomutt", Mail),
    ("alpine", Mail),
    ("pine", Mail),
    ("aerc", Mail),
    ("himalaya", Mail),
    ("mailx", Mail),
    ("s-nail", Mail),
    ("notmuch", Mail),
    ("weechat", Messenger),
    ("irssi", Messenger),
    ("profanity", Messenger),
    ("gomuks", Messenger),
    ("iamb", Messenger),
    ("finch", Messenger),
    ("senpai", Messenger),
];

/// Site names that a web app puts at the end of a title part ("Town Square - Kreisverwaltung
/// Mattermost": Mattermost's "{channel} - {team} {site name}").
pub(crate) const SITE_SUFFIXES: &[(&str, &str, Category)] =
    &[(" mattermost", "Mattermost", WebMessenger), (" rocket.chat", "Rocket.Chat", WebMessenger)];

/// Title parts of sites that write *about* products: a page "WhatsApp – Wikipedia" is not the
/// web app, so on such a page a product's name alone does not make it one (its address or an
/// e-mail address still does).
pub(crate) const INFO_SITES: &[&str] =
    &["wikipedia", "wikimedia commons", "wiktionary", "gitlab", "github", "codeberg", "heise online", "golem.de"];

/// Settings programs: their page titles ("Mitteilungen") name settings, not pop-ups.
pub(crate) const SETTINGS_APPS: &[&str] = &[
    "system settings",
    "systemeinstellungen",
    "system preferences",
    "gnome-control-center",
    "systemsettings",
    "settings",
    "einstellungen",
    "control center",
    "xfce4-settings-manager",
    "systemsettings.exe",
];

/// Browsers with a mail program of their own: a mailbox in their title is that program's.
pub(crate) const MAIL_SUITES: &[&str] = &["seamonkey"];
