//! The text an authority publishes in its privacy notice (Datenschutzhinweise, Art. 13 GDPR)
//! and its record of processing activities (Art. 30 GDPR), written from what the client or
//! the server is actually configured to do.
//!
//! Pure: callers gather the facts ([`ClientFacts`] from the effective policy,
//! [`ServerFacts`] from the server's settings and certificate) and get a [`Notice`], rendered
//! as Markdown or an HTML fragment. What only the authority can know (controller,
//! data-protection officer, legal basis, …) is a [`Inline::Fill`] placeholder, rendered
//! visibly as such, and never invented.

mod client;
mod render;
mod server;

pub use client::{ClientFacts, client_notice};
pub use server::{JanusFacts, ServerFacts, TlsFacts, TurnFacts, server_notice};

/// The notice's language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    De,
    En,
}

impl Lang {
    /// `de` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    fn pick<'a>(self, de: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::De => de,
            Lang::En => en,
        }
    }
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Markdown,
    /// A fragment (`<section>…</section>`) to paste into the authority's web page.
    Html,
}

/// A part only the authority can fill in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fill {
    /// Name and address of the controller (the authority).
    Controller,
    /// Contact of the data-protection officer.
    DataProtectionOfficer,
    /// The legal basis of the processing.
    LegalBasis,
    /// Who else receives the data (processors, e.g. a hosting provider).
    Recipients,
    /// The data subjects' rights and the supervisory authority.
    RightsAndAuthority,
}

impl Fill {
    /// Every placeholder a notice carries.
    pub const ALL: [Fill; 5] =
        [Fill::Controller, Fill::DataProtectionOfficer, Fill::LegalBasis, Fill::Recipients, Fill::RightsAndAuthority];

    fn label(self, lang: Lang) -> &'static str {
        match self {
            Fill::Controller => {
                lang.pick("Name und Anschrift der verantwortlichen Behörde", "name and address of the authority (controller)")
            }
            Fill::DataProtectionOfficer => {
                lang.pick("Kontakt der oder des Datenschutzbeauftragten", "contact of the data-protection officer")
            }
            Fill::LegalBasis => lang.pick(
                "Rechtsgrundlage der Verarbeitung (Art. 6 Abs. 1 DSGVO mit der einschlägigen Vorschrift)",
                "legal basis of the processing (Art. 6(1) GDPR and the applicable provision)",
            ),
            Fill::Recipients => lang.pick(
                "weitere Empfänger, z. B. ein Auftragsverarbeiter, der die Server betreibt, oder „keine“",
                "further recipients, e.g. a processor that runs the servers, or \"none\"",
            ),
            Fill::RightsAndAuthority => lang.pick(
                "Hinweis auf die Rechte der Betroffenen (Art. 15–21 DSGVO) und die zuständige Aufsichtsbehörde",
                "the data subjects' rights (Art. 15–21 GDPR) and the competent supervisory authority",
            ),
        }
    }

    /// Stable name, used in the HTML fragment's `data-fill` attribute.
    pub fn key(self) -> &'static str {
        match self {
            Fill::Controller => "controller",
            Fill::DataProtectionOfficer => "data-protection-officer",
            Fill::LegalBasis => "legal-basis",
            Fill::Recipients => "recipients",
            Fill::RightsAndAuthority => "rights-and-authority",
        }
    }
}

/// A piece of running text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    /// A literal: a server address, a path, a command.
    Code(String),
    Fill(Fill),
}

/// One block of the notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    Heading(String),
    Para(Vec<Inline>),
    List(Vec<Vec<Inline>>),
}

/// The notice as a document, before rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub lang: Lang,
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Notice {
    /// The notice in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Markdown => render::markdown(self),
            Format::Html => render::html(self),
        }
    }

    /// The placeholders in the order they appear.
    pub fn fills(&self) -> Vec<Fill> {
        let mut out = Vec::new();
        let mut visit = |line: &[Inline]| {
            out.extend(line.iter().filter_map(|i| match i {
                Inline::Fill(f) => Some(*f),
                _ => None,
            }))
        };
        for b in &self.blocks {
            match b {
                Block::Heading(_) => {}
                Block::Para(line) => visit(line),
                Block::List(items) => items.iter().for_each(|i| visit(i)),
            }
        }
        out
    }

    /// The blocks under the heading `heading`, up to the next heading.
    pub fn section(&self, heading: &str) -> &[Block] {
        let Some(start) = self.blocks.iter().position(|b| matches!(b, Block::Heading(h) if h == heading)) else {
            return &[];
        };
        let rest = &self.blocks[start + 1..];
        let end = rest.iter().position(|b| matches!(b, Block::Heading(_))).unwrap_or(rest.len());
        &rest[..end]
    }
}

/// Builds a notice block by block.
struct Writer {
    lang: Lang,
    blocks: Vec<Block>,
}

impl Writer {
    fn new(lang: Lang) -> Self {
        Writer { lang, blocks: Vec::new() }
    }

    fn t(&self, de: &str, en: &str) -> Inline {
        Inline::Text(self.lang.pick(de, en).to_owned())
    }

    fn heading(&mut self, de: &str, en: &str) {
        self.blocks.push(Block::Heading(self.lang.pick(de, en).to_owned()));
    }

    fn para(&mut self, line: Vec<Inline>) {
        self.blocks.push(Block::Para(line));
    }

    fn text(&mut self, de: &str, en: &str) {
        let t = self.t(de, en);
        self.para(vec![t]);
    }

    fn list(&mut self, items: Vec<Vec<Inline>>) {
        if !items.is_empty() {
            self.blocks.push(Block::List(items));
        }
    }

    /// The parts every notice opens with: who is responsible, and on what basis.
    fn authority_parts(&mut self) {
        self.heading("Verantwortliche Stelle", "Controller");
        self.para(vec![Inline::Fill(Fill::Controller)]);
        self.heading("Datenschutzbeauftragte", "Data-protection officer");
        self.para(vec![Inline::Fill(Fill::DataProtectionOfficer)]);
        self.heading("Zweck und Rechtsgrundlage", "Purpose and legal basis");
        let purpose = self.t(
            "Zweck: Durchführung von Videokonferenzen der Behörde mit Beschäftigten, Bürgerinnen und Bürgern. Rechtsgrundlage: ",
            "Purpose: holding the authority's video conferences with staff and citizens. Legal basis: ",
        );
        self.para(vec![purpose, Inline::Fill(Fill::LegalBasis)]);
    }

    /// The parts every notice closes with.
    fn closing_parts(&mut self) {
        self.heading("Empfänger", "Recipients");
        let own = self.t(
            "Blende übermittelt keine Daten an Dritte: kein fremder STUN- oder TURN-Server, keine Telemetrie, keine Absturzberichte, keine Update-Abfrage (Updates kommen über die Paketverwaltung der IT). Weitere Empfänger: ",
            "Blende sends no data to third parties: no foreign STUN or TURN server, no telemetry, no crash reports, no update check (updates come through IT's package management). Further recipients: ",
        );
        self.para(vec![own, Inline::Fill(Fill::Recipients)]);
        self.heading("Ihre Rechte", "Your rights");
        self.para(vec![Inline::Fill(Fill::RightsAndAuthority)]);
    }

    fn finish(self, title: &str) -> Notice {
        Notice { lang: self.lang, title: title.to_owned(), blocks: self.blocks }
    }
}

#[cfg(test)]
mod tests;
