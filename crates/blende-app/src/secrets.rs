//! Meeting passwords remembered in the OS keychain (Secret Service on Linux, Keychain on
//! macOS, Credential Manager on Windows, through `keyring`), never in a plain file.
//!
//! The app talks to a [`SecretStore`]; [`OsKeychain`] is the real one. [`MemoryStore`] is the
//! fake for UI tests at this boundary, behind the `test-support` feature.

/// Where remembered passwords live.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The password stored for `key`, if any.
    ///
    /// # Errors
    /// The keychain is unavailable or refused access.
    fn get(&self, key: &str) -> Result<Option<String>, String>;
    /// # Errors
    /// The keychain is unavailable or refused access.
    fn set(&self, key: &str, secret: &str) -> Result<(), String>;
    /// # Errors
    /// The keychain is unavailable or refused access.
    fn delete(&self, key: &str) -> Result<(), String>;
}

/// The name an entry is stored under: one per server and meeting.
#[must_use]
pub fn meeting_key(server: &str, meeting_id: &str) -> String {
    // Meeting IDs are read case-insensitively and with or without dashes.
    let id: String = meeting_id.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect();
    format!("{}#{id}", server.trim())
}

/// The operating system's keychain.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsKeychain;

const SERVICE: &str = "Blende meeting password";

impl SecretStore for OsKeychain {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        let entry = keyring::Entry::new(SERVICE, key).map_err(|e| e.to_string())?;
        match entry.get_password() {
            Ok(p) => Ok(Some(p)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn set(&self, key: &str, secret: &str) -> Result<(), String> {
        keyring::Entry::new(SERVICE, key).and_then(|e| e.set_password(secret)).map_err(|e| e.to_string())
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        match keyring::Entry::new(SERVICE, key).and_then(|e| e.delete_credential()) {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// An in-memory store for tests.
#[cfg(any(test, feature = "test-support"))]
#[derive(Debug, Default)]
pub struct MemoryStore(std::sync::Mutex<std::collections::HashMap<String, String>>);

#[cfg(any(test, feature = "test-support"))]
impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<String>, String> {
        Ok(self.0.lock().map_err(|e| e.to_string())?.get(key).cloned())
    }

    fn set(&self, key: &str, secret: &str) -> Result<(), String> {
        self.0.lock().map_err(|e| e.to_string())?.insert(key.to_owned(), secret.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), String> {
        self.0.lock().map_err(|e| e.to_string())?.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_ignore_case_dashes_and_spaces_of_the_meeting_id() {
        assert_eq!(meeting_key("blende+wss://meet.example.org", "K7DM-3xqa 9fhp"), "blende+wss://meet.example.org#k7dm3xqa9fhp");
    }

    #[test]
    fn memory_store_round_trip() {
        let s = MemoryStore::default();
        assert_eq!(s.get("a").expect("get"), None);
        s.set("a", "pw").expect("set");
        assert_eq!(s.get("a").expect("get").as_deref(), Some("pw"));
        s.delete("a").expect("delete");
        assert_eq!(s.get("a").expect("get"), None);
    }
}

/// Decides the password for a join: the typed one (remembered when asked), or else the one
/// remembered for this server and meeting. A keychain failure never blocks the join; it is
/// returned as a warning to show.
pub fn password_for_join(store: &dyn SecretStore, key: &str, typed: &str, remember: bool) -> (Option<String>, Option<String>) {
    if !typed.is_empty() {
        let warning = if remember { store.set(key, typed).err() } else { None };
        return (Some(typed.to_owned()), warning);
    }
    match store.get(key) {
        Ok(found) => (found, None),
        Err(e) => (None, Some(e)),
    }
}

#[cfg(test)]
mod join_tests {
    use super::*;

    #[test]
    fn typed_passwords_are_remembered_only_when_asked_and_found_later() {
        let store = MemoryStore::default();
        assert_eq!(password_for_join(&store, "k", "geheim", false), (Some("geheim".into()), None));
        assert_eq!(store.get("k").expect("get"), None, "not asked to remember");
        assert_eq!(password_for_join(&store, "k", "geheim", true), (Some("geheim".into()), None));
        assert_eq!(password_for_join(&store, "k", "", false), (Some("geheim".into()), None), "found for an empty field");
        assert_eq!(password_for_join(&store, "other", "", false), (None, None));
    }
}
