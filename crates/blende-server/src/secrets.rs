//! argon2id hashing of meeting passwords and moderator tokens, and the token format.
//!
//! Hashing and verifying cost tens of milliseconds on purpose: the server runs them on the
//! [`Pool`]'s own threads, never on the hub's task.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow};
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use blende_meeting::{EntropySource, OsEntropy};
use tokio::sync::{mpsc, oneshot};

/// argon2id cost. The default is the OWASP/RFC 9106 second recommendation (19 MiB, t=2).
#[derive(Clone, Copy, Debug)]
pub struct Cost {
    pub m_kib: u32,
    pub t: u32,
}

impl Default for Cost {
    fn default() -> Self {
        Cost { m_kib: 19 * 1024, t: 2 }
    }
}

pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    OsEntropy.fill(&mut b).map_err(|e| anyhow!("{e}"))?;
    Ok(b)
}

/// Hashes with a one-off allocation (admin CLI, start-up). The server uses [`Pool`].
pub fn hash(secret: &str, cost: Cost) -> Result<String> {
    Worker::default().hash(secret, cost)
}

/// Verifies with the parameters stored in the PHC string. A malformed hash never verifies.
#[cfg(test)]
pub fn verify(secret: &str, phc: &str) -> bool {
    Worker::default().verify(secret, phc)
}

/// Largest memory cost accepted from a stored hash (1 GiB).
const MAX_M_KIB: u32 = 1024 * 1024;

/// One argon2id worker's reusable memory. Allocating 19 MiB per check from many threads
/// made glibc keep hundreds of MiB in per-thread arenas; a fixed set of workers, each with
/// its own blocks, keeps the server's memory at `workers × m_kib`.
#[derive(Debug, Default)]
struct Worker {
    blocks: Vec<argon2::Block>,
}

impl Worker {
    fn compute(&mut self, secret: &[u8], salt: &[u8], params: Params, out: &mut [u8]) -> Result<()> {
        let need = params.block_count();
        if self.blocks.len() < need {
            self.blocks.resize(need, argon2::Block::default());
        }
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into_with_memory(secret, salt, out, &mut self.blocks[..need])
            .map_err(|e| anyhow!("argon2: {e}"))
    }

    fn hash(&mut self, secret: &str, cost: Cost) -> Result<String> {
        let params = Params::new(cost.m_kib, cost.t, 1, Some(32)).map_err(|e| anyhow!("argon2 parameters: {e}"))?;
        let salt = random_bytes::<16>()?;
        let mut out = [0u8; 32];
        self.compute(secret.as_bytes(), &salt, params, &mut out)?;
        // PHC string format; its "B64" is standard base64 without padding.
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
        Ok(format!("$argon2id$v=19$m={},t={},p=1${}${}", cost.m_kib, cost.t, b64.encode(salt), b64.encode(out)))
    }

    fn verify(&mut self, secret: &str, phc: &str) -> bool {
        let Ok(h) = PasswordHash::new(phc) else { return false };
        if h.algorithm != argon2::ARGON2ID_IDENT || h.version.is_some_and(|v| v != 19) {
            return false;
        }
        let Ok(params) = Params::try_from(&h) else { return false };
        let (Some(salt), Some(expected)) = (h.salt, h.hash) else { return false };
        if params.m_cost() > MAX_M_KIB {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else { return false };
        let mut out = vec![0u8; expected.len()];
        if self.compute(secret.as_bytes(), salt, params, &mut out).is_err() {
            return false;
        }
        // Constant time: the comparison must not reveal how many bytes matched.
        out.iter().zip(expected.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

enum Job {
    Verify { secret: String, phc: String, reply: oneshot::Sender<bool> },
    Hash { secret: String, cost: Cost, reply: oneshot::Sender<Result<String>> },
}

/// A fixed number of named argon2id threads. Also the bound on concurrent checks: a flood
/// of attempts queues here instead of exhausting CPU and memory.
#[derive(Clone, Debug)]
pub struct Pool {
    workers: Arc<[mpsc::Sender<Job>]>,
    next: Arc<AtomicUsize>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Verify { .. } => "Job::Verify",
            Job::Hash { .. } => "Job::Hash",
        })
    }
}

impl Pool {
    pub fn new(workers: usize) -> Result<Self> {
        let mut senders = Vec::new();
        for i in 0..workers.max(1) {
            let (tx, mut rx) = mpsc::channel::<Job>(64);
            std::thread::Builder::new().name(format!("blende-argon2-{i}")).spawn(move || {
                let mut worker = Worker::default();
                while let Some(job) = rx.blocking_recv() {
                    match job {
                        Job::Verify { secret, phc, reply } => {
                            let _ = reply.send(worker.verify(&secret, &phc));
                        }
                        Job::Hash { secret, cost, reply } => {
                            let _ = reply.send(worker.hash(&secret, cost));
                        }
                    }
                }
            })?;
            senders.push(tx);
        }
        Ok(Pool { workers: senders.into(), next: Arc::new(AtomicUsize::new(0)) })
    }

    async fn submit(&self, job: Job) -> Result<()> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        self.workers[i].send(job).await.map_err(|_| anyhow!("argon2 worker stopped"))
    }

    pub async fn verify(&self, secret: String, phc: String) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.submit(Job::Verify { secret, phc, reply }).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    pub async fn hash(&self, secret: String, cost: Cost) -> Result<String> {
        let (reply, rx) = oneshot::channel();
        self.submit(Job::Hash { secret, cost, reply }).await?;
        rx.await.map_err(|_| anyhow!("argon2 worker stopped"))?
    }
}

/// A moderator token: `bm1.<moderator id>.<secret>`. Only the argon2id hash of the secret is
/// stored; the id part lets the server find the hash without a per-token index.
pub struct NewToken {
    pub moderator_id: String,
    pub token: String,
    pub secret: String,
}

pub fn new_moderator_token() -> Result<NewToken> {
    let id = format!("m{}", hex(&random_bytes::<5>()?));
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
    Ok(NewToken { token: format!("bm1.{id}.{secret}"), moderator_id: id, secret })
}

/// Splits a presented token into (moderator id, secret).
pub fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("bm1.")?;
    let (id, secret) = rest.split_once('.')?;
    (!id.is_empty() && id.len() <= 32 && !secret.is_empty() && secret.len() <= 128).then_some((id, secret))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_tokens_split() {
        let cost = Cost { m_kib: 1024, t: 1 };
        let h = hash("abcd", cost).expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        // Interoperable: the argon2 crate's own verifier accepts it.
        use argon2::password_hash::PasswordVerifier as _;
        let parsed = PasswordHash::new(&h).expect("phc");
        assert!(Argon2::default().verify_password(b"abcd", &parsed).is_ok());
        assert!(verify("abcd", &h));
        assert!(!verify("abce", &h));
        assert!(!verify("abcd", "not a hash"));
        let t = new_moderator_token().expect("token");
        assert_eq!(split_token(&t.token), Some((t.moderator_id.as_str(), t.secret.as_str())));
        assert_eq!(split_token("bm1.x"), None);
    }
}
