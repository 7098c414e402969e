//! The Blende desktop app and its command line.
//!
//! `cli` parses the command line and runs the headless commands; `ui` is the egui app. Both
//! are thin: decisions live in `blende-policy`, desktop access in `blende-windows`.

pub mod call;
pub mod cli;
pub mod config;
pub mod join;
#[cfg(target_os = "linux")]
pub mod preview;
pub mod secrets;
#[cfg(target_os = "linux")]
pub mod share_send;
pub mod ui;
