//! The IO half of chat and documents: data-channel writers, file streams and the writers of
//! received documents. The [`blende_call::Call`] machine decides; this only carries out.
//!
//! - Control messages for one link go through that link's writer task, in order.
//! - An outgoing document is read by a task of its own, 1 MiB at a time on the blocking pool,
//!   and sent in chunks on the link, waiting whenever the channel's send buffer is full; the
//!   file's bytes are never all in memory.
//! - A received document is written by a thread of its own into a temporary file in the folder
//!   the user chose; only a verified one gets a name, and never one that exists (the name is
//!   reserved with "create new", then the temporary file renamed onto it).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

use blende_call::{DocId, PeerId, TransferId, TransferReport};
use blende_p2p::names::candidates;
use blende_p2p::wire;
use blende_rtc::DataLink;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Control messages waiting for one link.
const LINK_QUEUE: usize = 64;
/// Chunks waiting for one document's writer thread (× 64 KiB).
const WRITE_QUEUE: usize = 32;
/// Bytes read from disk at a time.
const READ_BLOCK: usize = 16 * wire::MAX_CHUNK_BYTES;

/// Reports waiting for the driver.
const REPORT_QUEUE: usize = 64;

/// Where reports go: the driver's loop reads the other end.
type Report = mpsc::Sender<TransferReport>;

struct Link {
    link: DataLink,
    queue: mpsc::Sender<Vec<u8>>,
}

enum WriteCmd {
    Chunk { offset: u64, data: Bytes },
    Save,
    Discard,
}

struct Writer {
    queue: mpsc::Sender<WriteCmd>,
    thread: std::thread::JoinHandle<()>,
}

/// See the module documentation.
pub struct DirectIo {
    links: HashMap<PeerId, Link>,
    docs: HashMap<DocId, PathBuf>,
    streams: HashMap<TransferId, tokio::task::AbortHandle>,
    writers: HashMap<TransferId, Writer>,
    report: Report,
}

impl std::fmt::Debug for DirectIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectIo").field("links", &self.links.len()).field("writers", &self.writers.len()).finish_non_exhaustive()
    }
}

impl DirectIo {
    /// The IO and the receiving end of its reports.
    #[must_use]
    pub fn new() -> (Self, mpsc::Receiver<TransferReport>) {
        let (report, rx) = mpsc::channel(REPORT_QUEUE);
        (Self { links: HashMap::new(), docs: HashMap::new(), streams: HashMap::new(), writers: HashMap::new(), report }, rx)
    }

    pub fn link_open(&mut self, peer: PeerId, link: DataLink) {
        let (queue, mut rx) = mpsc::channel::<Vec<u8>>(LINK_QUEUE);
        let writer = link.clone();
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if writer.send(&message).await.is_err() {
                    break;
                }
            }
        });
        self.links.insert(peer, Link { link, queue });
    }

    pub fn link_closed(&mut self, peer: PeerId) {
        self.links.remove(&peer);
    }

    /// # Errors
    /// No open link, or its queue is full (the message is dropped, the caller reports it).
    pub fn send(&self, peer: PeerId, message: Vec<u8>) -> Result<(), String> {
        let link = self.links.get(&peer).ok_or("the direct connection closed")?;
        link.queue.try_send(message).map_err(|_| "the direct connection is congested: a message was dropped".to_owned())
    }

    // ---- sending ----

    /// Opens, measures and hashes `path` on the blocking pool; reports `Opened`/`OpenFailed`.
    pub fn open(&mut self, doc: DocId, path: String) {
        let path = PathBuf::from(path);
        self.docs.insert(doc, path.clone());
        let report = self.report.clone();
        tokio::task::spawn_blocking(move || {
            let result = hash_file(&path);
            let _ = report.blocking_send(match result {
                Ok((name, size, sha256)) => TransferReport::Opened { doc, name, size, sha256 },
                Err(reason) => TransferReport::OpenFailed { doc, reason },
            });
        });
    }

    pub fn forget(&mut self, doc: DocId) {
        self.docs.remove(&doc);
    }

    /// Streams `doc` from `from` on `peer`'s link as chunks of wire id `id`.
    pub fn stream(&mut self, transfer: TransferId, doc: DocId, peer: PeerId, id: u32, from: u64, size: u64) {
        self.stop_stream(transfer);
        let (Some(path), Some(link)) = (self.docs.get(&doc).cloned(), self.links.get(&peer).map(|l| l.link.clone())) else {
            // No link: the receiver's next link asks again (resume).
            return;
        };
        let report = self.report.clone();
        let progress = self.report.clone();
        let task = tokio::spawn(async move {
            let sent = |bytes| {
                // Progress is news, not state: dropped when the driver is busy.
                let _ = progress.try_send(TransferReport::Sent { transfer, bytes });
            };
            let out = match stream_file(path, &link, id, from, size, sent).await {
                Ok(true) => TransferReport::Streamed(transfer),
                // The link closed: the receiver asks for the rest on the next one.
                Ok(false) => return,
                Err(reason) => TransferReport::Failed { transfer, reason },
            };
            let _ = report.send(out).await;
        });
        self.streams.insert(transfer, task.abort_handle());
    }

    pub fn stop_stream(&mut self, transfer: TransferId) {
        if let Some(task) = self.streams.remove(&transfer) {
            task.abort();
        }
    }

    // ---- receiving ----

    /// Makes the temporary file in `folder` and the thread that writes it.
    ///
    /// # Errors
    /// The folder is not one, or the file cannot be made (the reason for the user).
    pub fn prepare(&mut self, transfer: TransferId, folder: &str, name: &str) -> Result<(), String> {
        let folder = PathBuf::from(folder);
        if !folder.is_dir() {
            return Err(format!("{} is not a folder", folder.display()));
        }
        if !is_one_component(name) {
            return Err("the file name is not a plain name".into());
        }
        let (temp_path, file) = create_temp(&folder, transfer)?;
        let (queue, rx) = mpsc::channel(WRITE_QUEUE);
        let report = self.report.clone();
        let name = name.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("blende-doc-{transfer}"))
            .spawn(move || write_document(rx, file, &temp_path, &folder, &name, transfer, &report))
            .map_err(|e| format!("no writer thread: {e}"))?;
        self.writers.insert(transfer, Writer { queue, thread });
        Ok(())
    }

    /// Queues a chunk for its writer; waits while the writer is 2 MiB behind (a slow disk
    /// slows the sender down through the data channel, it never fills memory).
    pub async fn write(&mut self, transfer: TransferId, offset: u64, data: Bytes) {
        if let Some(w) = self.writers.get(&transfer) {
            let _ = w.queue.send(WriteCmd::Chunk { offset, data }).await;
        }
    }

    pub async fn save(&mut self, transfer: TransferId) {
        if let Some(w) = self.writers.remove(&transfer) {
            let _ = w.queue.send(WriteCmd::Save).await;
            // The thread ends after saving; it reports itself.
            drop(w.thread);
        }
    }

    pub async fn discard(&mut self, transfer: TransferId) {
        if let Some(w) = self.writers.remove(&transfer) {
            let _ = w.queue.send(WriteCmd::Discard).await;
            let _ = tokio::task::spawn_blocking(move || w.thread.join()).await;
        }
    }

    /// The call ends: streams stop, and every document still being received is removed.
    pub async fn shut_down(&mut self) {
        for (_, task) in self.streams.drain() {
            task.abort();
        }
        let pending: Vec<TransferId> = self.writers.keys().copied().collect();
        for t in pending {
            self.discard(t).await;
        }
        self.links.clear();
    }
}

fn is_one_component(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none()
}

fn hash_file(path: &Path) -> Result<(String, u64, [u8; 32]), String> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).ok_or_else(|| format!("{shown} has no file name"))?;
    let mut hasher = blende_p2p::transfer::hasher();
    let mut buf = vec![0u8; READ_BLOCK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| format!("{shown}: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((name, size, hasher.finish()))
}

/// Sends `path` from `from` to `size`. `Ok(false)`: the link closed.
async fn stream_file(path: PathBuf, link: &DataLink, id: u32, from: u64, size: u64, sent: impl Fn(u64)) -> Result<bool, String> {
    let open = tokio::task::spawn_blocking(move || -> Result<File, String> {
        let mut file = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        file.seek(SeekFrom::Start(from)).map_err(|e| e.to_string())?;
        Ok(file)
    });
    let mut file = open.await.map_err(|e| e.to_string())??;
    let mut block = vec![0u8; READ_BLOCK];
    let mut frame = Vec::with_capacity(wire::MAX_FRAME_BYTES);
    let mut offset = from;
    while offset < size {
        let want = usize::try_from((size - offset).min(READ_BLOCK as u64)).unwrap_or(READ_BLOCK);
        let (f, b, n) = tokio::task::spawn_blocking(move || {
            let mut n = 0;
            while n < want {
                match file.read(&mut block[n..want]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok((file, block, n))
        })
        .await
        .map_err(|e| e.to_string())??;
        (file, block) = (f, b);
        if n < want {
            return Err("the file got shorter while it was being sent".into());
        }
        for piece in block[..n].chunks(wire::MAX_CHUNK_BYTES) {
            wire::encode_chunk(id, offset, piece, &mut frame);
            if link.send(&frame).await.is_err() {
                return Ok(false);
            }
            offset += piece.len() as u64;
        }
        sent(offset);
    }
    Ok(true)
}

fn create_temp(folder: &Path, transfer: TransferId) -> Result<(PathBuf, File), String> {
    use std::hash::{BuildHasher, RandomState};
    for attempt in 0u32..8 {
        let tag = RandomState::new().hash_one((transfer.0, attempt, std::process::id()));
        let path = folder.join(format!(".blende-{tag:016x}.part"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", folder.display())),
        }
    }
    Err(format!("{}: no temporary file could be made", folder.display()))
}

/// The writer thread of one received document.
fn write_document(
    mut rx: mpsc::Receiver<WriteCmd>,
    mut file: File,
    temp: &Path,
    folder: &Path,
    name: &str,
    transfer: TransferId,
    report: &Report,
) {
    let mut failed = false;
    while let Some(cmd) = rx.blocking_recv() {
        match cmd {
            WriteCmd::Chunk { offset, data } => {
                if failed {
                    continue;
                }
                let written = file.seek(SeekFrom::Start(offset)).and_then(|_| file.write_all(&data));
                if let Err(e) = written {
                    failed = true;
                    let reason = format!("writing into {}: {e}", folder.display());
                    let _ = report.blocking_send(TransferReport::Failed { transfer, reason });
                }
            }
            WriteCmd::Save => {
                let result = file.sync_all().map_err(|e| e.to_string()).and_then(|()| give_name(temp, folder, name));
                match result {
                    Ok(path) => {
                        let _ = report.blocking_send(TransferReport::Saved { transfer, path: path.display().to_string() });
                        return;
                    }
                    Err(reason) => {
                        let _ = report.blocking_send(TransferReport::Failed { transfer, reason });
                    }
                }
            }
            WriteCmd::Discard => break,
        }
    }
    drop(file);
    let _ = std::fs::remove_file(temp);
}

/// Reserves the first free name (create new: never an existing file), then moves the
/// temporary file onto it.
fn give_name(temp: &Path, folder: &Path, name: &str) -> Result<PathBuf, String> {
    for candidate in candidates(name) {
        let path = folder.join(&candidate);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(placeholder) => {
                drop(placeholder);
                return match std::fs::rename(temp, &path) {
                    Ok(()) => Ok(path),
                    Err(e) => {
                        let _ = std::fs::remove_file(&path);
                        Err(format!("{}: {e}", path.display()))
                    }
                };
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!("every name like {name} is taken in {}", folder.display()))
}
