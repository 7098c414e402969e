//! A fast hasher for the policy's small lookup tables of short strings, which are hashed on
//! every frame; their keys are built-in (not chosen by whoever names a window), so FNV-1a's lack
//! of flooding resistance does not matter, and lookups of attacker-named windows only hash them.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;
pub(crate) type FastSet<K> = HashSet<K, BuildHasherDefault<Fnv>>;

/// The first three bytes of `s` as one number, if it has three.
pub(crate) fn trigram(s: &[u8]) -> Option<u32> {
    match s {
        [a, b, c, ..] => Some(u32::from(*a) << 16 | u32::from(*b) << 8 | u32::from(*c)),
        _ => None,
    }
}
