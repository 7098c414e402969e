//! Reading the policy layers from where IT and the user put them.

use std::path::{Path, PathBuf};

use blende_policy::{Policy, PolicyError, Source};

/// The user's own settings file: `$XDG_CONFIG_HOME/blende/settings.toml` (Linux),
/// `%APPDATA%\Blende\settings.toml` (Windows), `~/Library/Application Support/Blende/settings.toml`.
pub fn user_settings_path() -> Option<PathBuf> {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if cfg!(target_os = "windows") {
        env("APPDATA").map(|d| d.join("Blende").join("settings.toml"))
    } else if cfg!(target_os = "macos") {
        env("HOME").map(|h| h.join("Library/Application Support/Blende/settings.toml"))
    } else {
        env("XDG_CONFIG_HOME").or_else(|| env("HOME").map(|h| h.join(".config"))).map(|d| d.join("blende").join("settings.toml"))
    }
}

/// A layer file's text: `Ok(None)` when it does not exist, an error when it exists but cannot
/// be read (that must fail closed, not be skipped).
fn read_layer(path: &Path) -> Result<Option<String>, PolicyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PolicyError::Read { file: path.display().to_string(), message: e.to_string() }),
    }
}

/// The effective policy. `admin_override` replaces the system policy path (for IT checking a
/// file before rolling it out); it is only offered by read-only commands.
pub fn load_policy(admin_override: Option<&Path>) -> Policy {
    load_policy_with(admin_override, user_settings_path().as_deref())
}

/// As [`load_policy`], with the user's settings file given (the app's settings screen, tests).
pub fn load_policy_with(admin_override: Option<&Path>, user_path: Option<&Path>) -> Policy {
    let admin_path = admin_override.map_or_else(|| PathBuf::from(blende_policy::system_policy_path()), Path::to_path_buf);
    let user_path = user_path.map(Path::to_path_buf);
    let load = || -> Result<Policy, PolicyError> {
        let admin_text = match read_layer(&admin_path)? {
            None if admin_override.is_some() => {
                return Err(PolicyError::Read { file: admin_path.display().to_string(), message: "no such file".into() });
            }
            other => other,
        };
        let user_text = match &user_path {
            Some(p) => read_layer(p)?,
            None => None,
        };
        let admin_name = admin_path.display().to_string();
        let user_name = user_path.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        Policy::try_from_sources(
            admin_text.as_deref().map(|text| Source { name: &admin_name, text }),
            user_text.as_deref().map(|text| Source { name: &user_name, text }),
        )
    };
    load().unwrap_or_else(|error| {
        // A broken user layer must not lift the administrator's rules (allowed servers, TLS):
        // those stand as read, and sharing fails closed. A broken admin layer closes all.
        let admin_alone = read_layer(&admin_path).ok().map(|text| {
            let name = admin_path.display().to_string();
            Policy::try_from_sources(text.as_deref().map(|text| Source { name: &name, text }), None)
        });
        match admin_alone {
            Some(Ok(admin)) if admin_override.is_none() || admin_path.exists() => admin.with_failure(error),
            _ => Policy::fail_closed(error),
        }
    })
}

/// Adds a personal block rule to the user's settings file (created if missing). The new text
/// is checked before it is written, and written whole (temporary file, then rename), so a
/// crash never leaves a half-written file that would block every share.
///
/// # Errors
/// The rule is refused ([`blende_policy::AddRuleError`]) or the file cannot be read or written.
pub fn add_user_block(path: &Path, rule: &blende_policy::NewBlock, reason: Option<&str>) -> Result<(), String> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let text = blende_policy::add_user_block(&existing, rule, reason).map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // A name of this process's own (two windows adding rules never share a temporary file),
    // on disk before the rename, and the rename on disk before we report success.
    let tmp = path.with_extension(format!("toml.{}.new", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("{}: {e}", tmp.display()));
    }
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::load_policy_with;

    #[test]
    fn a_broken_user_layer_keeps_the_administrators_servers() {
        let dir = std::env::temp_dir().join(format!("blende-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (admin, user) = (dir.join("policy.toml"), dir.join("settings.toml"));
        std::fs::write(&admin, "[servers]\nallowed = [\"janus+wss://konferenz.example.org/janus\"]\n").expect("admin");
        std::fs::write(&user, "[share\nmode = ").expect("user");
        let p = load_policy_with(Some(&admin), Some(&user));
        assert!(p.failure().is_some(), "sharing fails closed");
        let allowed = blende_policy::ServerUrl::parse("janus+wss://konferenz.example.org/janus").expect("url");
        let other = blende_policy::ServerUrl::parse("janus+wss://elsewhere.example.net/janus").expect("url");
        assert!(p.servers().check(&allowed).is_ok(), "the admin's server stays usable");
        assert!(p.servers().check(&other).is_err(), "a broken user file must not open other servers");
        // A broken admin layer allows no server at all.
        std::fs::write(&admin, "[servers\n").expect("admin");
        let p = load_policy_with(Some(&admin), Some(&user));
        assert!(p.servers().check(&allowed).is_err() && p.failure().is_some());
        let _ = std::fs::remove_dir_all(dir);
    }
}
