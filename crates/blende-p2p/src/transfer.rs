//! One document from one participant to another, as two sans-IO machines.
//!
//! ```text
//! sender                                  receiver
//! Offer{id,name,size,sha256}  ───────▶    Incoming::new (size limit, safe name)
//!                             ◀───────    Accept{id,from}  (the user said yes; or Decline)
//! Chunk{id,offset,data} …     ───────▶    Incoming::chunk  (order, size; hash updated)
//! Done{id}                    ───────▶    Incoming::done   (size and SHA-256 checked)
//!                             ◀───────    Verified{id}  or  Failed{id,reason}
//! ```
//!
//! The receiving driver writes each accepted chunk into a temporary file and gives the file its
//! final name only after [`Incoming::done`] said so; on any error it removes the temporary
//! file. A connection that drops mid-way leaves [`Incoming`] as it was: on the next channel to
//! the same participant [`Incoming::resume`] asks for the rest from the last byte written, and
//! the running SHA-256 goes on where it stopped.

use sha2::{Digest, Sha256};

use crate::names::safe_file_name;
use crate::wire::{self, Control};

/// What the administrator allows (`[documents]` in the policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub enabled: bool,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { enabled: true, max_bytes: 2 * 1024 * 1024 * 1024 }
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    #[error("documents are switched off by the administrator")]
    Disabled,
    #[error("the document has {size} bytes; at most {limit} are allowed")]
    TooLarge { size: u64, limit: u64 },
    #[error("the offer is malformed: {0}")]
    BadOffer(String),
    #[error("a chunk came before the transfer was accepted or after it ended")]
    NotReceiving,
    #[error("a chunk for byte {got} came where byte {expected} was due")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("the sender sent more than the {announced} bytes it announced")]
    PastEnd { announced: u64 },
    #[error("the transfer ended after {received} of {announced} bytes")]
    Truncated { announced: u64, received: u64 },
    #[error("the content does not match the SHA-256 announced with the offer")]
    Mismatch,
    #[error("the receiver refused the data: {0}")]
    Refused(String),
    #[error("{0}")]
    Local(String),
}

/// A document on offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub id: u32,
    /// The name as the sender wrote it: shown, never used as a path (see [`Incoming::safe_name`]).
    pub name: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

impl Offer {
    /// From the sender's control message.
    ///
    /// # Errors
    /// A malformed SHA-256.
    pub fn parse(id: u32, name: &str, size: u64, sha256: &str) -> Result<Self, TransferError> {
        let sha256 = wire::parse_hex(sha256).map_err(|e| TransferError::BadOffer(e.to_string()))?;
        Ok(Self { id, name: name.to_owned(), size, sha256 })
    }

    #[must_use]
    pub fn to_control(&self) -> Control {
        Control::Offer { id: self.id, name: self.name.clone(), size: self.size, sha256: wire::hex(&self.sha256), to_all: None }
    }
}

/// Where a transfer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for the receiver's answer.
    Offered,
    /// Bytes are moving.
    Moving,
    /// Sender: every byte sent, waiting for the receiver's verdict.
    Checking,
    /// Size and SHA-256 matched.
    Verified,
    Declined(Option<String>),
    /// Stopped by us (`true`) or by the other side.
    Cancelled {
        by_us: bool,
    },
    Failed(TransferError),
}

impl Stage {
    #[must_use]
    pub fn is_over(&self) -> bool {
        matches!(self, Self::Verified | Self::Declined(_) | Self::Cancelled { .. } | Self::Failed(_))
    }
}

/// What the receiver's check of a finished transfer says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    Failed(TransferError),
}

// ---------------------------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------------------------

/// A document coming to us.
#[derive(Debug)]
pub struct Incoming {
    offer: Offer,
    safe_name: String,
    stage: Stage,
    received: u64,
    hasher: Sha256,
}

impl Incoming {
    /// An offer arrived. The caller shows name, size and sender and waits for the user.
    ///
    /// # Errors
    /// The administrator's limits forbid it (answer with [`Incoming::refusal`]).
    pub fn new(offer: Offer, limits: &Limits) -> Result<Self, TransferError> {
        if !limits.enabled {
            return Err(TransferError::Disabled);
        }
        if offer.size > limits.max_bytes {
            return Err(TransferError::TooLarge { size: offer.size, limit: limits.max_bytes });
        }
        let safe_name = safe_file_name(&offer.name);
        Ok(Self { offer, safe_name, stage: Stage::Offered, received: 0, hasher: Sha256::new() })
    }

    /// The answer to an offer [`Incoming::new`] refused.
    #[must_use]
    pub fn refusal(id: u32, error: &TransferError) -> Control {
        Control::Decline { id, reason: Some(error.to_string()) }
    }

    #[must_use]
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// The name to save under (one plain component; the driver still never overwrites).
    #[must_use]
    pub fn safe_name(&self) -> &str {
        &self.safe_name
    }

    #[must_use]
    pub fn received(&self) -> u64 {
        self.received
    }

    #[must_use]
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// The user accepted: the message to send, or `None` if it is no longer on offer.
    pub fn accept(&mut self) -> Option<Control> {
        if self.stage != Stage::Offered {
            return None;
        }
        self.stage = Stage::Moving;
        Some(Control::Accept { id: self.offer.id, from: 0 })
    }

    /// The user declined.
    pub fn decline(&mut self) -> Option<Control> {
        if self.stage != Stage::Offered {
            return None;
        }
        self.stage = Stage::Declined(None);
        Some(Control::Decline { id: self.offer.id, reason: None })
    }

    /// A new channel to the sender is open while bytes were moving: ask for the rest.
    #[must_use]
    pub fn resume(&self) -> Option<Control> {
        (self.stage == Stage::Moving).then_some(Control::Accept { id: self.offer.id, from: self.received })
    }

    /// A chunk arrived. `Ok`: the driver writes `data` at `offset` of the temporary file.
    /// `Err`: the transfer is over; send [`Incoming::failure`] and remove the temporary file.
    ///
    /// # Errors
    /// A chunk out of order, past the announced size, or when no transfer is running.
    pub fn chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), TransferError> {
        if self.stage != Stage::Moving {
            // After a failure or cancel, late chunks are no news: the error stays the first one.
            return Err(TransferError::NotReceiving);
        }
        let error = if offset != self.received {
            Some(TransferError::OutOfOrder { expected: self.received, got: offset })
        } else if self.received + data.len() as u64 > self.offer.size {
            Some(TransferError::PastEnd { announced: self.offer.size })
        } else {
            None
        };
        if let Some(e) = error {
            return Err(self.fail(e));
        }
        self.hasher.update(data);
        self.received += data.len() as u64;
        Ok(())
    }

    /// The sender says every byte is sent: check size and SHA-256. The message to send back is
    /// [`Incoming::verdict_control`].
    pub fn done(&mut self) -> Verdict {
        if self.stage != Stage::Moving {
            return Verdict::Failed(TransferError::NotReceiving);
        }
        if self.received != self.offer.size {
            return Verdict::Failed(self.fail(TransferError::Truncated { announced: self.offer.size, received: self.received }));
        }
        let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        if digest != self.offer.sha256 {
            return Verdict::Failed(self.fail(TransferError::Mismatch));
        }
        self.stage = Stage::Verified;
        Verdict::Verified
    }

    /// The driver could not store the data (disk full, folder gone): the transfer is over.
    pub fn local_failure(&mut self, reason: String) -> Control {
        let e = self.fail(TransferError::Local(reason));
        self.failure(&e)
    }

    /// What to tell the sender about `verdict`.
    #[must_use]
    pub fn verdict_control(&self, verdict: &Verdict) -> Control {
        match verdict {
            Verdict::Verified => Control::Verified { id: self.offer.id },
            Verdict::Failed(e) => self.failure(e),
        }
    }

    #[must_use]
    pub fn failure(&self, error: &TransferError) -> Control {
        Control::Failed { id: self.offer.id, reason: error.to_string() }
    }

    /// We stop it (the user, or leaving the call). `None` if it was over already.
    pub fn cancel(&mut self) -> Option<Control> {
        if self.stage.is_over() {
            return None;
        }
        self.stage = Stage::Cancelled { by_us: true };
        Some(Control::Cancel { id: self.offer.id })
    }

    /// The sender stopped it (or left the call).
    pub fn cancelled_by_peer(&mut self) {
        if !self.stage.is_over() {
            self.stage = Stage::Cancelled { by_us: false };
        }
    }

    fn fail(&mut self, error: TransferError) -> TransferError {
        self.stage = Stage::Failed(error.clone());
        error
    }
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

/// A document going from us to one participant.
#[derive(Debug)]
pub struct Outgoing {
    offer: Offer,
    stage: Stage,
    next: u64,
}

/// What a message from the receiver means for the sending driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sending {
    /// (Re)start reading at byte `from`.
    StartAt(u64),
    /// The transfer is over: see [`Outgoing::stage`].
    Over,
    /// Nothing to do.
    Nothing,
}

impl Outgoing {
    #[must_use]
    pub fn new(offer: Offer) -> Self {
        Self { offer, stage: Stage::Offered, next: 0 }
    }

    #[must_use]
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    #[must_use]
    pub fn stage(&self) -> &Stage {
        &self.stage
    }

    /// Bytes handed to the channel so far.
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.next
    }

    /// A control message from the receiver about this transfer.
    pub fn handle(&mut self, control: &Control) -> Sending {
        if self.stage.is_over() {
            return Sending::Nothing;
        }
        match *control {
            // A first accept, or a resume on a new channel (also after every byte went out:
            // whatever did not arrive is sent again, then `Done`).
            Control::Accept { from, .. } if from <= self.offer.size => {
                self.stage = Stage::Moving;
                self.next = from;
                Sending::StartAt(from)
            }
            Control::Accept { from, .. } => {
                self.stage = Stage::Failed(TransferError::Refused(format!("asked for byte {from} of {}", self.offer.size)));
                Sending::Over
            }
            Control::Decline { ref reason, .. } => {
                self.stage = Stage::Declined(reason.clone());
                Sending::Over
            }
            Control::Verified { .. } if self.stage == Stage::Checking => {
                self.stage = Stage::Verified;
                Sending::Over
            }
            Control::Failed { ref reason, .. } => {
                self.stage = Stage::Failed(TransferError::Refused(reason.clone()));
                Sending::Over
            }
            Control::Cancel { .. } => {
                self.stage = Stage::Cancelled { by_us: false };
                Sending::Over
            }
            _ => Sending::Nothing,
        }
    }

    /// The next piece to read and send: (offset, length), while bytes are moving.
    #[must_use]
    pub fn next_chunk(&self) -> Option<(u64, usize)> {
        if self.stage != Stage::Moving || self.next >= self.offer.size {
            return None;
        }
        let len = (self.offer.size - self.next).min(wire::MAX_CHUNK_BYTES as u64);
        Some((self.next, usize::try_from(len).unwrap_or(wire::MAX_CHUNK_BYTES)))
    }

    /// `len` bytes from [`Outgoing::next_chunk`] went out. Returns `Done` to send once the last
    /// byte went (also at once for an empty document).
    pub fn chunk_sent(&mut self, len: usize) -> Option<Control> {
        if self.stage != Stage::Moving {
            return None;
        }
        self.next += len as u64;
        self.finished()
    }

    /// The driver streamed everything from where it started: `Done` to send.
    pub fn all_sent(&mut self) -> Option<Control> {
        if self.stage != Stage::Moving {
            return None;
        }
        self.next = self.offer.size;
        self.finished()
    }

    /// `Done` for an accepted document whose bytes are all out (an empty one at once).
    pub fn finished(&mut self) -> Option<Control> {
        if self.stage == Stage::Moving && self.next >= self.offer.size {
            self.stage = Stage::Checking;
            return Some(Control::Done { id: self.offer.id });
        }
        None
    }

    /// We stop it. `None` if it was over already.
    pub fn cancel(&mut self) -> Option<Control> {
        if self.stage.is_over() {
            return None;
        }
        self.stage = Stage::Cancelled { by_us: true };
        Some(Control::Cancel { id: self.offer.id })
    }

    /// The file could not be read: the transfer is over.
    pub fn local_failure(&mut self, reason: String) -> Option<Control> {
        if self.stage.is_over() {
            return None;
        }
        self.stage = Stage::Failed(TransferError::Local(reason));
        Some(Control::Cancel { id: self.offer.id })
    }
}

/// The SHA-256 of a document's bytes, for the offer. Feed it in pieces with
/// [`Digest::update`] through [`hasher`], or all at once here.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A running SHA-256 for a document read in pieces.
#[must_use]
pub fn hasher() -> Hasher {
    Hasher(Sha256::new())
}

/// See [`hasher`].
#[derive(Debug, Clone, Default)]
pub struct Hasher(Sha256);

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    #[must_use]
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

#[cfg(test)]
mod tests;
