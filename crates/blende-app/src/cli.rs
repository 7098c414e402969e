//! The command line: the app by default, and commands for IT and for tests.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use blende_meeting::{MeetingId, OsEntropy, Password};
use blende_policy::{Os, Policy, Verdict, WindowInfo};
use clap::{Parser, Subcommand};

use crate::config::load_policy;

#[derive(Parser, Debug)]
#[command(name = "blende", version, about = "Video conferences that never show more than you meant to.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect the screen-sharing policy.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// List this desktop's windows with their sharing verdicts.
    Windows {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// Use this file as the administrator's policy instead of the system one.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Share a window without a call: write exactly the frames the encoder would get (after
    /// the share guard) as PNG files, and the guard's decisions as JSON lines on stdout.
    #[cfg(target_os = "linux")]
    SharePreview {
        /// X window id, decimal or 0x-hex, as `blende windows` shows it.
        #[arg(long, value_parser = crate::preview::parse_window_id, required_unless_present = "screen", conflicts_with = "screen")]
        window: Option<u32>,
        /// The whole screen instead of one window (only if the administrator allows it;
        /// blocked windows are masked).
        #[arg(long)]
        screen: bool,
        #[arg(long, default_value_t = 30)]
        frames: u32,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[arg(long, default_value_t = 10.0)]
        fps: f64,
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Join a call: in the app window, or with `--headless` as a participant without a window
    /// (JSON-lines events on stdout, commands on stdin; see crates/blende-app/JOIN.md).
    Join(crate::join::JoinArgs),
    /// List cameras, microphones and speakers with the ids `join --camera/--mic` take.
    Devices {
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Meetings on a Blende room server (as a moderator).
    Meeting {
        #[command(subcommand)]
        command: MeetingCommand,
    },
    /// Print a new meeting ID (from the OS random source).
    MeetingId {
        /// Also print its entropy in bits.
        #[arg(long)]
        entropy: bool,
    },
    /// Print a new meeting password, to be passed on by a second channel.
    Password {
        #[arg(long)]
        entropy: bool,
    },
    /// Print the text for the authority's privacy notice and record of processing (Art. 13 and
    /// 30 GDPR), written from the effective policy; the parts only the authority knows are
    /// marked for it to fill in.
    PrivacyNotice {
        /// Language; the system's by default.
        #[arg(long, value_enum)]
        lang: Option<NoticeLang>,
        #[arg(long, value_enum, default_value = "md")]
        format: NoticeFormat,
        /// Describe this file as the administrator's policy instead of the system one.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Write the man pages and shell completions into DIR (used when packaging).
    #[command(hide = true)]
    PackageFiles {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum NoticeLang {
    De,
    En,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum NoticeFormat {
    Md,
    Html,
}

#[derive(Subcommand, Debug)]
enum MeetingCommand {
    /// Schedule a meeting; prints the server's answer as JSON: `meeting` (ID, title, time),
    /// `invitation` (`link`, `text` and `ics` without the password; `password_text` for the
    /// second channel) and `password`.
    Create {
        /// `blende+wss://host[:port]` (`blende+ws://` on loopback only).
        #[arg(long)]
        server: String,
        /// File whose first line is the moderator token.
        #[arg(long, value_name = "FILE")]
        moderator_token_file: PathBuf,
        #[arg(long)]
        title: String,
        /// Start time, seconds since 1970 (UTC).
        #[arg(long)]
        starts_at_unix: Option<i64>,
        #[arg(long)]
        duration_min: Option<u32>,
        /// Let participants in without the lobby.
        #[arg(long)]
        no_lobby: bool,
    },
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Read `app<TAB>title` (or `os<TAB>app<TAB>title[<TAB>categories<TAB>names]`) lines on
    /// stdin; print `allow` or `block<TAB>category<TAB>reason` for each.
    Classify {
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Like `classify`, but say for each line what decided: the layer's rule and the part of
    /// the application name, platform facts or title that matched.
    Explain {
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
    /// Print the effective policy and where each part came from.
    Show {
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
    },
}

/// Exit code when the policy is broken (it then blocks everything).
const EXIT_POLICY_BROKEN: u8 = 3;

/// Blende's warnings and every crate's errors (the WebRTC stack's included, whose warnings are
/// chatter) to stderr; `BLENDE_LOG` takes an `EnvFilter` instead (`BLENDE_LOG=debug`,
/// `BLENDE_LOG=blende_rtc=debug,warn`). Nothing is written to a file.
const DEFAULT_LOG: &str =
    "error,blende_app=warn,blende_rtc=warn,blende_signal=warn,blende_call=warn,blende_devices=warn,blende_windows=warn";

fn init_logs() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("BLENDE_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // A second initialisation (tests running `main` twice) keeps the first.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    let result = match cli.command {
        None => crate::ui::run(),
        Some(Command::Policy { command: PolicyCommand::Classify { policy } }) => classify(&load_policy(policy.as_deref()), false),
        Some(Command::Policy { command: PolicyCommand::Explain { policy } }) => classify(&load_policy(policy.as_deref()), true),
        Some(Command::Policy { command: PolicyCommand::Show { policy } }) => {
            let p = load_policy(policy.as_deref());
            print!("{}", p.report());
            Ok(policy_exit(&p))
        }
        Some(Command::Windows { json, policy }) => windows(&load_policy(policy.as_deref()), json),
        #[cfg(target_os = "linux")]
        Some(Command::SharePreview { window, screen: _, frames, out, fps, policy }) => {
            let source = window.map_or(crate::preview::Source::Screen, crate::preview::Source::Window);
            crate::preview::run(load_policy(policy.as_deref()), source, frames, &out, fps)
        }
        Some(Command::Join(args)) => crate::join::run(args),
        Some(Command::Devices { json }) => {
            devices(json);
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Meeting {
            command: MeetingCommand::Create { server, moderator_token_file, title, starts_at_unix, duration_min, no_lobby },
        }) => create_meeting(
            &server,
            &moderator_token_file,
            blende_signal::blende::NewMeeting { title, starts_at_unix, duration_min, lobby: no_lobby.then_some(false) },
        ),
        Some(Command::MeetingId { entropy }) => MeetingId::generate(&mut OsEntropy).map_err(Into::into).map(|id| {
            println!("{id}");
            if entropy {
                eprintln!("{:.1} bits", id.entropy_bits());
            }
            ExitCode::SUCCESS
        }),
        Some(Command::Password { entropy }) => Password::generate(&mut OsEntropy).map_err(Into::into).map(|pw| {
            println!("{}", pw.reveal());
            if entropy {
                eprintln!("{:.1} bits", pw.entropy_bits());
            }
            ExitCode::SUCCESS
        }),
        Some(Command::PrivacyNotice { lang, format, policy }) => privacy_notice(lang, format, policy.as_deref()),
        Some(Command::PackageFiles { out }) => package_files(&out),
    };
    result.unwrap_or_else(|e| {
        eprintln!("blende: {e:#}");
        ExitCode::FAILURE
    })
}

/// The privacy notice for the effective policy. A broken policy writes none (exit 3): the text
/// would describe a configuration that is not in force.
fn privacy_notice(lang: Option<NoticeLang>, format: NoticeFormat, policy_file: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let policy = load_policy(policy_file);
    if policy.failure().is_some() {
        return Ok(policy_exit(&policy));
    }
    let admin = policy_file.map_or_else(|| PathBuf::from(blende_policy::system_policy_path()), std::path::Path::to_path_buf);
    let facts = crate::notice::client_facts(&policy, admin.exists().then_some(admin.as_path()));
    let lang = match lang {
        Some(NoticeLang::De) => blende_notice::Lang::De,
        Some(NoticeLang::En) => blende_notice::Lang::En,
        None => crate::notice::system_lang(),
    };
    let format = match format {
        NoticeFormat::Md => blende_notice::Format::Markdown,
        NoticeFormat::Html => blende_notice::Format::Html,
    };
    print!("{}", blende_notice::client_notice(&facts, lang).render(format));
    Ok(ExitCode::SUCCESS)
}

/// Man pages (`blende.1`, one per subcommand) and bash, zsh and fish completions, from the
/// same definitions the parser uses.
fn package_files(out: &std::path::Path) -> anyhow::Result<ExitCode> {
    use clap::CommandFactory as _;
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    clap_mangen::generate_to(Cli::command(), &man)?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        clap_complete::generate_to(shell, &mut Cli::command(), "blende", &completions)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The devices this machine has, and the test devices.
fn devices(json: bool) {
    let all = blende_devices::enumerate();
    let kind = |k: blende_devices::MediaKind| match k {
        blende_devices::MediaKind::Camera => "camera",
        blende_devices::MediaKind::Microphone => "microphone",
        _ => "speaker",
    };
    if json {
        let list: Vec<serde_json::Value> =
            all.iter().map(|d| serde_json::json!({"id": d.id, "name": d.name, "kind": kind(d.kind), "synthetic": d.synthetic})).collect();
        println!("{}", serde_json::Value::Array(list));
    } else {
        for d in &all {
            println!("{:<10}  {:<40}  {}", kind(d.kind), d.id, d.name);
        }
    }
}

fn policy_exit(policy: &Policy) -> ExitCode {
    match policy.failure() {
        Some(e) => {
            eprintln!("blende: policy broken, nothing is shareable: {e}");
            ExitCode::from(EXIT_POLICY_BROKEN)
        }
        None => ExitCode::SUCCESS,
    }
}

/// Parses one input line of `policy classify`: `[os<TAB>]app<TAB>title`, and after an os
/// column optionally `<TAB>categories<TAB>names` (the platform's facts: `Network;Email;`,
/// `org.example.Mail.desktop|Example Mail`).
fn parse_line(line: &str) -> WindowInfo {
    let cols: Vec<&str> = line.split('\t').collect();
    match cols.as_slice() {
        [os, app, title, rest @ ..] if Os::parse(os).is_some() => {
            let facts = blende_policy::AppFacts::from_columns(rest.first().copied().unwrap_or(""), rest.get(1).copied().unwrap_or(""));
            WindowInfo::new(Os::parse(os).unwrap_or(Os::current()), *app, *title).with_facts(facts)
        }
        [app, title, ..] => WindowInfo::new(Os::current(), *app, *title),
        [app] => WindowInfo::new(Os::current(), *app, ""),
        [] => WindowInfo::new(Os::current(), "", ""),
    }
}

fn verdict_line(v: &Verdict) -> String {
    match v {
        Verdict::Allow => "allow".to_owned(),
        Verdict::Block { category, reason, .. } => format!("block\t{category}\t{reason}"),
    }
}

/// `policy explain`'s answer for one window: the verdict line, then the rule and the evidence.
fn explanation(policy: &Policy, w: &WindowInfo) -> String {
    let e = policy.explain(w);
    let rule = match &e.verdict {
        Verdict::Allow => "-",
        Verdict::Block { rule, .. } => rule.as_str(),
    };
    format!("{}\n  rule: {rule}\n  because: {}", verdict_line(&e.verdict), e.evidence)
}

fn classify(policy: &Policy, explain: bool) -> anyhow::Result<ExitCode> {
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.split(b'\n') {
        // Undecodable bytes are replaced, not fatal: one bad line must not stop the rest.
        let line = String::from_utf8_lossy(&line?).trim_end_matches('\r').to_owned();
        let w = parse_line(&line);
        if explain {
            writeln!(out, "{}", explanation(policy, &w))?;
        } else {
            writeln!(out, "{}", verdict_line(&policy.classify(&w)))?;
        }
    }
    out.flush()?;
    Ok(policy_exit(policy))
}

fn windows(policy: &Policy, json: bool) -> anyhow::Result<ExitCode> {
    let judged = blende_windows::judge_windows(policy)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&judged)?);
    } else {
        println!("{:<10} {:<7} {:<14} {:<22} TITLE", "ID", "VERDICT", "CATEGORY", "APPLICATION");
        for j in &judged {
            let w = &j.window;
            println!("{:<10} {:<7} {:<14} {:<22} {}", format!("{:#x}", w.id), j.verdict, j.category.unwrap_or("-"), w.app_name, w.title);
        }
    }
    Ok(policy_exit(policy))
}

fn create_meeting(server: &str, token_file: &std::path::Path, meeting: blende_signal::blende::NewMeeting) -> anyhow::Result<ExitCode> {
    let url = blende_policy::ServerUrl::parse(server).map_err(|e| anyhow::anyhow!("{e}"))?;
    if url.kind != blende_policy::ServerKind::Blende {
        anyhow::bail!("{url}: meetings are created on a Blende room server (blende+wss://)");
    }
    load_policy(None).servers().check(&url).map_err(|e| anyhow::anyhow!(e))?;
    let token = crate::join::read_password_file(token_file)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let created = runtime.block_on(blende_signal::blende::create_meeting(&url, &token, meeting))?;
    println!("{created}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_lines_with_and_without_os_column() {
        let w = parse_line("windows\tOUTLOOK.EXE\tInbox");
        assert_eq!((w.os, w.app_name.as_str(), w.title.as_str()), (Os::Windows, "OUTLOOK.EXE", "Inbox"));
        let w = parse_line("XTerm\txterm");
        assert_eq!((w.app_name.as_str(), w.title.as_str()), ("XTerm", "xterm"));
        let w = parse_line("Thunderbird");
        assert_eq!((w.app_name.as_str(), w.title.as_str()), ("Thunderbird", ""));
    }

    #[test]
    fn verdict_lines_are_tab_separated() {
        let p = Policy::builtin();
        assert_eq!(verdict_line(&p.classify(&parse_line("XTerm\txterm"))), "allow");
        assert!(verdict_line(&p.classify(&parse_line("linux\tSignal\tSignal"))).starts_with("block\tmessenger\t"));
    }
}
