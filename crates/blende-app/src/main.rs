//! `blende`: the app, or one of its commands. Everything lives in the library.

fn main() -> std::process::ExitCode {
    blende_app::cli::main()
}
