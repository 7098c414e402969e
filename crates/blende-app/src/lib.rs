//! The Blende desktop app and its command line.
//!
//! `cli` parses the command line and runs the headless commands; `ui` is the egui app;
//! `engine` drives a call (the `blende-call` machine) for both. All are thin: decisions live in
//! `blende-policy` and `blende-call`, desktop access in `blende-windows`.

pub mod cli;
pub mod config;
pub mod engine;
pub mod join;
pub mod notice;
#[cfg(target_os = "linux")]
pub mod preview;
pub mod secrets;
pub mod ui;
