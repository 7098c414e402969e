//! Markdown and HTML output of a [`Notice`].

use std::fmt::Write as _;

use crate::{Block, Inline, Lang, Notice};

fn fill_text(lang: Lang, label: &str) -> String {
    match lang {
        Lang::De => format!("[Von der Behörde auszufüllen: {label}]"),
        Lang::En => format!("[To be filled in by the authority: {label}]"),
    }
}

/// Characters that would start Markdown syntax in running text.
fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code span whose fence is longer than any backtick run inside it.
fn md_code(s: &str) -> String {
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{s}{pad}{fence}")
}

fn md_line(lang: Lang, line: &[Inline]) -> String {
    line.iter()
        .map(|i| match i {
            Inline::Text(t) => md_escape(t),
            Inline::Code(c) => md_code(c),
            Inline::Fill(f) => format!("**{}**", md_escape(&fill_text(lang, f.label(lang)))),
        })
        .collect()
}

pub(crate) fn markdown(n: &Notice) -> String {
    let mut out = format!("# {}\n", md_escape(&n.title));
    for b in &n.blocks {
        out.push('\n');
        match b {
            Block::Heading(h) => {
                let _ = writeln!(out, "## {}", md_escape(h));
            }
            Block::Para(line) => {
                let _ = writeln!(out, "{}", md_line(n.lang, line));
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {}", md_line(n.lang, item));
                }
            }
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_line(lang: Lang, line: &[Inline]) -> String {
    line.iter()
        .map(|i| match i {
            Inline::Text(t) => html_escape(t),
            Inline::Code(c) => format!("<code>{}</code>", html_escape(c)),
            Inline::Fill(f) => format!("<mark data-fill=\"{}\">{}</mark>", f.key(), html_escape(&fill_text(lang, f.label(lang)))),
        })
        .collect()
}

pub(crate) fn html(n: &Notice) -> String {
    let mut out = format!("<section lang=\"{}\">\n<h1>{}</h1>\n", n.lang.code(), html_escape(&n.title));
    for b in &n.blocks {
        match b {
            Block::Heading(h) => {
                let _ = writeln!(out, "<h2>{}</h2>", html_escape(h));
            }
            Block::Para(line) => {
                let _ = writeln!(out, "<p>{}</p>", html_line(n.lang, line));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", html_line(n.lang, item));
                }
                out.push_str("</ul>\n");
            }
        }
    }
    out.push_str("</section>\n");
    out
}
