//! German and English texts with Fluent. German is the default where the system locale is
//! German; the files live in `assets/i18n/` and are compiled in.

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource};
use unic_langid::{LanguageIdentifier, langid};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    German,
    English,
}

impl Language {
    /// From a locale such as `de_DE.UTF-8` or `de-AT`: German for every `de`, else English.
    pub fn from_locale(locale: &str) -> Self {
        if locale.to_ascii_lowercase().starts_with("de") { Language::German } else { Language::English }
    }

    /// The system's language (LC_ALL, LC_MESSAGES, LANG, or the OS setting).
    pub fn from_system() -> Self {
        let env = ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty() && v != "C" && v != "POSIX"));
        env.or_else(sys_locale::get_locale).map_or(Language::English, |l| Self::from_locale(&l))
    }

    pub fn native_name(self) -> &'static str {
        match self {
            Language::German => "Deutsch",
            Language::English => "English",
        }
    }
}

pub struct I18n {
    language: Language,
    bundle: FluentBundle<FluentResource>,
}

impl std::fmt::Debug for I18n {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I18n").field("language", &self.language).finish_non_exhaustive()
    }
}

impl I18n {
    pub fn new(language: Language) -> Self {
        let (id, source): (LanguageIdentifier, &str) = match language {
            Language::German => (langid!("de"), include_str!("../../../../assets/i18n/de.ftl")),
            Language::English => (langid!("en"), include_str!("../../../../assets/i18n/en.ftl")),
        };
        let mut bundle = FluentBundle::new(vec![id]);
        // No Unicode isolation marks around arguments: they would end up in accessible names.
        bundle.set_use_isolating(false);
        // The files are compiled in and checked by a test; a broken one shows keys, not a crash.
        if let Ok(resource) = FluentResource::try_new(source.to_owned()) {
            let _ = bundle.add_resource(resource);
        }
        I18n { language, bundle }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// The text for `key`; the key itself when it is missing.
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The text for `key` with one argument.
    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        self.format(key, Some(&args))
    }

    /// The text for `key` with several arguments.
    pub fn tn(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut args = FluentArgs::new();
        for (name, value) in values {
            args.set((*name).to_owned(), (*value).to_owned());
        }
        self.format(key, Some(&args))
    }

    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        let Some(pattern) = self.bundle.get_message(key).and_then(|m| m.value()) else { return key.to_owned() };
        let mut errors = Vec::new();
        self.bundle.format_pattern(pattern, args, &mut errors).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(src: &str) -> Vec<&str> {
        src.lines().filter_map(|l| l.split_once(" = ").map(|(k, _)| k)).collect()
    }

    #[test]
    fn both_languages_have_the_same_keys_and_parse() {
        let de = include_str!("../../../../assets/i18n/de.ftl");
        let en = include_str!("../../../../assets/i18n/en.ftl");
        assert_eq!(keys(de), keys(en));
        for src in [de, en] {
            assert!(FluentResource::try_new(src.to_owned()).is_ok());
        }
        let de = I18n::new(Language::German);
        assert_eq!(de.t("join-button"), "Beitreten");
        assert_eq!(de.t1("sharing-banner", "window", "Bauantrag"), "Sie teilen: Bauantrag");
        assert_eq!(I18n::new(Language::English).t("switch-all-off"), "Everything off");
    }

    #[test]
    fn german_locales_give_german() {
        assert_eq!(Language::from_locale("de_DE.UTF-8"), Language::German);
        assert_eq!(Language::from_locale("de-AT"), Language::German);
        assert_eq!(Language::from_locale("en_GB.UTF-8"), Language::English);
        assert_eq!(Language::from_locale("fr_FR"), Language::English);
    }
}
