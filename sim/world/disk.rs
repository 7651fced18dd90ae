//! A host's simulated disk: files that survive a power loss, minus what was never synced.
//!
//! Why: Fluent Bit's filesystem storage and Redis's AOF are only as durable as their
//! fsyncs. The disk lives outside the host's software (turmoil drops the software on a
//! crash, not the world), so a restarted part finds its files. A killed process loses
//! nothing here (its writes are in the kernel's page cache); the world calls
//! [`Disk::power_loss`] when the power goes, which throws away every write since the last sync — exactly
//! the loss `appendfsync everysec` or an unsynced chunk has in reality.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// Default capacity of a host's disk: large enough never to matter unless a scenario
/// shrinks it (a full disk is a backpressure fault).
pub const DISK_BYTES_LIMIT_DEFAULT: u64 = 64 * 1024 * 1024 * 1024;

/// One file: its bytes, how many of them are synced, and the synced content a replace
/// superseded (restored on crash).
#[derive(Clone, Debug, Default)]
struct File {
    data: Vec<u8>,
    synced_len: usize,
    /// Set by `replace` until the next sync: the synced content before the replace.
    synced_before_replace: Option<Vec<u8>>,
}

#[derive(Debug)]
struct DiskInner {
    files: BTreeMap<String, File>,
    bytes_used: u64,
    bytes_limit: u64,
}

/// A host's disk. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Disk {
    host: Arc<str>,
    inner: Arc<Mutex<DiskInner>>,
}

/// A write the disk refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFull {
    pub host: Arc<str>,
    pub path: String,
    pub(crate) bytes_needed: u64,
    pub(crate) bytes_free: u64,
}

impl fmt::Display for DiskFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "disk full on {}: writing {} bytes to {} with {} bytes free",
            self.host, self.bytes_needed, self.path, self.bytes_free
        )
    }
}

impl std::error::Error for DiskFull {}

impl Disk {
    /// An empty disk of `bytes_limit` bytes for `host`.
    pub fn new(host: Arc<str>, bytes_limit: u64) -> Self {
        Disk { host, inner: Arc::new(Mutex::new(DiskInner { files: BTreeMap::new(), bytes_used: 0, bytes_limit })) }
    }

    /// Appends `bytes` to `path` (created if absent). Not durable until [`Disk::sync`].
    pub fn append(&self, path: &str, bytes: &[u8]) -> Result<(), DiskFull> {
        let mut inner = self.lock();
        self.reserve(&mut inner, path, bytes.len() as u64)?;
        inner.files.entry(path.to_string()).or_default().data.extend_from_slice(bytes);
        Ok(())
    }

    /// Replaces the content of `path`. Until synced, a crash restores the synced content.
    pub fn replace(&self, path: &str, bytes: &[u8]) -> Result<(), DiskFull> {
        let mut inner = self.lock();
        let old_len = inner.files.get(path).map_or(0, |file| file.data.len() as u64);
        let growth = (bytes.len() as u64).saturating_sub(old_len);
        self.reserve(&mut inner, path, growth)?;
        inner.bytes_used -= old_len.saturating_sub(bytes.len() as u64);
        let file = inner.files.entry(path.to_string()).or_default();
        if file.synced_before_replace.is_none() {
            file.synced_before_replace = Some(file.data[..file.synced_len].to_vec());
        }
        file.data.clear();
        file.data.extend_from_slice(bytes);
        file.synced_len = 0;
        Ok(())
    }

    /// Makes everything written to `path` so far durable (fsync).
    pub fn sync(&self, path: &str) {
        let mut inner = self.lock();
        if let Some(file) = inner.files.get_mut(path) {
            file.synced_len = file.data.len();
            file.synced_before_replace = None;
        }
    }

    /// Removes `path` (durable at once, as an unlink followed by a directory sync).
    pub fn remove(&self, path: &str) {
        let mut inner = self.lock();
        if let Some(file) = inner.files.remove(path) {
            inner.bytes_used -= file.data.len() as u64;
        }
    }

    /// The current content of `path`, synced or not.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.lock().files.get(path).map(|file| file.data.clone())
    }

    /// Paths starting with `prefix`, in order.
    pub fn paths(&self, prefix: &str) -> Vec<String> {
        self.lock().files.keys().filter(|path| path.starts_with(prefix)).cloned().collect()
    }

    /// Bytes held, synced or not.
    pub fn bytes_used(&self) -> u64 {
        self.lock().bytes_used
    }

    /// The power went: every write since the last sync of each file is lost; files never
    /// synced at all disappear.
    pub fn power_loss(&self) {
        let mut inner = self.lock();
        let mut bytes_used = 0;
        inner.files.retain(|_, file| {
            if let Some(synced) = file.synced_before_replace.take() {
                file.data = synced;
            } else {
                file.data.truncate(file.synced_len);
            }
            file.synced_len = file.data.len();
            bytes_used += file.data.len() as u64;
            !file.data.is_empty()
        });
        inner.bytes_used = bytes_used;
    }

    fn reserve(&self, inner: &mut DiskInner, path: &str, bytes: u64) -> Result<(), DiskFull> {
        let bytes_free = inner.bytes_limit.saturating_sub(inner.bytes_used);
        if bytes > bytes_free {
            return Err(DiskFull {
                host: Arc::clone(&self.host),
                path: path.to_string(),
                bytes_needed: bytes,
                bytes_free,
            });
        }
        inner.bytes_used += bytes;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DiskInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(limit: u64) -> Disk {
        Disk::new(Arc::from("comfyui-1"), limit)
    }

    #[test]
    fn a_power_loss_loses_exactly_the_unsynced_tail() {
        let disk = disk(1024);
        disk.append("aof", b"SET a 1\n").unwrap();
        disk.sync("aof");
        disk.append("aof", b"SET b 2\n").unwrap();
        disk.append("never-synced", b"chunk").unwrap();
        disk.power_loss();
        assert_eq!(disk.read("aof").unwrap(), b"SET a 1\n");
        assert_eq!(disk.read("never-synced"), None);
        assert_eq!(disk.bytes_used(), 8);
    }

    #[test]
    fn an_unsynced_replace_rolls_back_on_power_loss() {
        let disk = disk(1024);
        disk.replace("chunk-1", b"old").unwrap();
        disk.sync("chunk-1");
        disk.replace("chunk-1", b"newer content").unwrap();
        assert_eq!(disk.read("chunk-1").unwrap(), b"newer content");
        disk.power_loss();
        assert_eq!(disk.read("chunk-1").unwrap(), b"old");
        assert_eq!(disk.bytes_used(), 3);
    }

    #[test]
    fn the_limit_refuses_writes_with_a_reason() {
        let disk = disk(10);
        disk.append("a", b"12345678").unwrap();
        let full = disk.append("a", b"123").unwrap_err();
        assert_eq!(full.to_string(), "disk full on comfyui-1: writing 3 bytes to a with 2 bytes free");
        disk.remove("a");
        assert_eq!(disk.bytes_used(), 0);
        disk.append("b", b"0123456789").unwrap();
    }

    #[test]
    fn paths_list_in_order() {
        let disk = disk(1024);
        for name in ["chunks/2", "chunks/1", "aof"] {
            disk.append(name, b"x").unwrap();
        }
        assert_eq!(disk.paths("chunks/"), vec!["chunks/1".to_string(), "chunks/2".to_string()]);
    }
}
