//! The policy layers: an administrator file and a user file (split at the first NUL byte).
//! Any input gives a policy or an error, never a panic, and the user layer only ever adds
//! blocks: a window the user's file lets through, the administrator's alone lets through too.
#![no_main]

use blende_policy::{Os, Policy, Source, WindowInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (admin, user) = text.split_once('\0').unwrap_or((text, ""));
    let admin = Source { name: "policy.toml", text: admin };
    let both = Policy::from_sources(Some(admin), Some(Source { name: "settings.toml", text: user }));
    let admin_only = Policy::from_sources(Some(admin), None);
    for (app, title) in [("thunderbird", "Posteingang - Mozilla Thunderbird"), ("firefox", "Outlook – Mail - Firefox"), ("libreoffice", "Bescheid.odt")] {
        let w = WindowInfo::new(Os::Linux, app, title);
        if both.classify(&w).is_allowed() {
            assert!(admin_only.classify(&w).is_allowed(), "the user layer let through {title:?}");
        }
    }
    let _ = both.report();
});
