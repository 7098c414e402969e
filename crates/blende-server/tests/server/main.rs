//! Integration tests against the real `blende-server` binary: TLS on loopback with a test
//! certificate made by rcgen at test time, several WebSocket clients.

mod brute;
mod flood;
mod flows;
mod janus;
mod load;
mod matrix;
mod notice;
mod persistence;
mod sockets;
mod support;
