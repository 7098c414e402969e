//! The call engine's driver: the one loop that owns the call's PeerConnections, signalling
//! sessions, media threads and share capture, and carries out what the sans-IO
//! [`blende_call::Call`] machine decides.
//!
//! - [`run`] is the driver: the only `select!`, over the signalling sessions, the engine's
//!   inputs (commands, PeerConnection events, device events, share reports, the statistics
//!   tick) and the machine's next deadline. Each input goes to the machine; each action it
//!   polls out is carried out in order, its result fed back before the next input.
//! - [`Control`] is the caller's end (the UI, the global shortcuts, `blende join`'s stdin):
//!   [`Control::send`] closes a switch's gate in the caller's thread first, then queues the
//!   command on a bounded channel. Typed [`CallEvent`]s and latest-frame hooks come out.
//! - Decoded media never enters the machine: pictures and sound go to the hooks, counters to
//!   the statistics.

mod direct;
mod driver;
pub mod json;
mod media;
pub mod share;
mod switches;

use std::net::IpAddr;
use std::sync::Arc;

pub use blende_call::{CallCommand, CallEvent, ShareSource};
use blende_media::DeviceKind;
use blende_media::frame::{AudioFrame, VideoFrame};
use blende_policy::ServerUrl;
use blende_signal::JoinOptions;
pub use driver::{run, unix_us};
pub use media::{AudioHook, FrameHook};
pub use switches::{ShareGate, Switches};
use tokio::sync::mpsc;

/// What to join and what to send.
#[derive(Clone, Debug)]
pub struct CallSpec {
    pub url: ServerUrl,
    pub join: JoinOptions,
    /// Publish a camera track (the driver's camera, switched on at start).
    pub camera: bool,
    /// Publish a microphone track.
    pub mic: bool,
    pub ice_servers: Vec<String>,
    pub ice_ip: Option<IpAddr>,
    pub width: u32,
    pub height: u32,
    pub bitrate_bps: u32,
    pub congestion_control: bool,
    pub stats_interval_ms: u64,
    /// The policy a share is checked against (the guard re-checks every frame).
    pub policy: blende_policy::Policy,
    /// Start sharing this at once (`--share-window`).
    pub share: Option<ShareSource>,
}

type EventHook = Box<dyn FnMut(&CallEvent) + Send>;
type FeedFrameHook = Arc<dyn Fn(&str, &VideoFrame) + Send + Sync>;
type FeedAudioHook = Arc<dyn Fn(&str, &AudioFrame) + Send + Sync>;

/// Where the call's output goes. Hooks run on the engine's threads: keep them short (store a
/// latest frame, push into a ring) and never block.
#[derive(Default)]
pub struct Hooks {
    /// Every event, in order.
    pub event: Option<EventHook>,
    /// Each camera picture we are about to send (the self view), on the video send thread.
    pub local_video: Option<FrameHook>,
    /// Each microphone block we are about to send (for a level meter), on the audio send thread.
    pub local_audio: Option<AudioHook>,
    /// Each picture of our share as it goes to the encoder (after the guard), for the banner.
    pub share_preview: Option<share::PictureHook>,
    /// Each decoded remote picture, by feed id.
    pub remote_video: Option<FeedFrameHook>,
    /// Each decoded remote 20 ms audio block, by feed id.
    pub remote_audio: Option<FeedAudioHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").finish_non_exhaustive()
    }
}

/// A command as the caller queued it, with when (media clock, µs).
#[derive(Debug)]
pub struct Queued {
    pub command: CallCommand,
    pub at_us: u64,
}

/// The caller's end of a running call: cloneable into every thread that may flip a switch.
#[derive(Clone, Debug)]
pub struct Control {
    commands: mpsc::Sender<Queued>,
    pub switches: Switches,
}

/// How many commands may wait for the engine.
pub const COMMAND_QUEUE: usize = 32;

impl Control {
    /// A control and the engine's end of its command queue.
    #[must_use]
    pub fn new(switches: Switches) -> (Self, mpsc::Receiver<Queued>) {
        let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
        (Control { commands, switches }, rx)
    }

    /// The synchronous part first (a switch-off closes its gate here, before this returns;
    /// a share request is recorded so that a later switch-off wins), then the command is
    /// queued without waiting.
    ///
    /// # Errors
    /// The engine is gone or its queue is full. A switch-off has taken effect all the same.
    pub fn send(&self, command: CallCommand) -> Result<(), String> {
        let gate = match &command {
            CallCommand::AllOff => self.switches.all_off(),
            CallCommand::Switch { kind, on: false } => self.switches.set(*kind, false),
            CallCommand::ShareStop | CallCommand::Leave | CallCommand::InputClosed => {
                self.switches.share.close();
                Ok(())
            }
            CallCommand::ShareStart(_) => {
                self.switches.share.requested();
                Ok(())
            }
            _ => Ok(()),
        };
        let at_us = blende_devices::clock::now_us();
        let queued =
            self.commands.try_send(Queued { command, at_us }).map_err(|e| format!("the call engine did not take the command: {e}"));
        gate.and(queued)
    }

    /// Ctrl+Alt+S and the share button: stops a running share; `false` when nothing was
    /// shared (the caller then opens the picker).
    pub fn toggle_share_off(&self) -> bool {
        if !self.switches.share.is_open() {
            return false;
        }
        let _ = self.send(CallCommand::Switch { kind: DeviceKind::ScreenShare, on: false });
        true
    }

    /// Whether the engine has stopped taking commands.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}
