//! The capabilities cache: one [`QemuCaps`] per emulator binary, in memory
//! and on disk, valid while the binary, `/dev/kvm` and ironvirt itself are
//! unchanged. Domain capabilities are cached inside each entry, so they are
//! thrown away with the binary's capabilities.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use serde::{Deserialize, Serialize};

use crate::domcaps::DomainCaps;
use crate::probe::Prober;
use crate::qemucaps::QemuCaps;

/// Bumped whenever the layout of a cache file or the meaning of its data
/// changes, so that files written by another ironvirt are re-probed.
pub const CACHE_FORMAT_VERSION: u32 = 1;

/// What a cache entry is valid for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The binary's path.
    pub binary: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time (ns since the epoch).
    pub mtime_ns: i128,
    /// Its status-change time (ns since the epoch).
    pub ctime_ns: i128,
    /// Its inode, so that a replacement with equal times is noticed.
    pub ino: u64,
    /// Whether the KVM device exists.
    pub kvm_present: bool,
    /// Whether it can be opened for reading and writing.
    pub kvm_usable: bool,
    /// ironvirt's version.
    pub ironvirt_version: String,
    /// [`CACHE_FORMAT_VERSION`].
    pub format: u32,
}

impl Stamp {
    /// The current stamp of `binary`; an error when it is gone.
    pub fn current(binary: &Path, kvm_device: &Path) -> Result<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(binary).map_err(|e| {
            Error::system(
                ErrorDomain::QEMU,
                format_args!("Cannot check QEMU binary {}", binary.display()),
                &e,
            )
        })?;
        if !md.is_file() {
            return Err(Error::new(
                ErrorDomain::QEMU,
                ErrorNumber::INTERNAL_ERROR,
                format!("QEMU binary {} is not a regular file", binary.display()),
            ));
        }
        let (kvm_present, kvm_usable) = kvm_state(kvm_device);
        Ok(Stamp {
            binary: binary.to_path_buf(),
            size: md.len(),
            mtime_ns: md.mtime() as i128 * 1_000_000_000 + md.mtime_nsec() as i128,
            ctime_ns: md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128,
            ino: md.ino(),
            kvm_present,
            kvm_usable,
            ironvirt_version: env!("CARGO_PKG_VERSION").to_string(),
            format: CACHE_FORMAT_VERSION,
        })
    }
}

/// Whether the KVM device exists and whether this process may use it.
pub fn kvm_state(kvm_device: &Path) -> (bool, bool) {
    if std::fs::metadata(kvm_device).is_err() {
        return (false, false);
    }
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(kvm_device)
        .is_ok();
    (true, usable)
}

/// Key of a domain capabilities entry inside a binary's entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DomCapsKey {
    /// Canonical machine type.
    pub machine: String,
    /// Guest architecture.
    pub arch: String,
    /// `kvm` or `qemu`.
    pub virttype: String,
}

/// Domain capabilities with their formatted XML.
#[derive(Debug)]
pub struct CachedDomCaps {
    /// The model.
    pub caps: DomainCaps,
    /// `virsh domcapabilities` output.
    pub xml: String,
}

/// One binary's capabilities and the domain capabilities built from them.
#[derive(Debug)]
pub struct CapsEntry {
    /// What the binary can do.
    pub caps: QemuCaps,
    /// What the entry is valid for.
    pub stamp: Stamp,
    domcaps: Mutex<HashMap<DomCapsKey, Arc<CachedDomCaps>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CapsEntry {
    fn new(caps: QemuCaps, stamp: Stamp) -> CapsEntry {
        CapsEntry {
            caps,
            stamp,
            domcaps: Mutex::new(HashMap::new()),
        }
    }

    /// The domain capabilities for `key`, built by `build` on a miss.
    pub fn domcaps(
        &self,
        key: DomCapsKey,
        build: impl FnOnce(&QemuCaps) -> Result<DomainCaps>,
    ) -> Result<Arc<CachedDomCaps>> {
        if let Some(d) = lock(&self.domcaps).get(&key) {
            return Ok(d.clone());
        }
        let caps = build(&self.caps)?;
        let xml = caps.format();
        let d = Arc::new(CachedDomCaps { caps, xml });
        Ok(lock(&self.domcaps).entry(key).or_insert(d).clone())
    }

    /// How many domain capabilities are cached (for tests).
    pub fn domcaps_count(&self) -> usize {
        lock(&self.domcaps).len()
    }
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    stamp: Stamp,
    caps: QemuCaps,
}

enum SlotState {
    Empty,
    Probing(u64),
    Ready(Arc<CapsEntry>),
    Failed(u64, Error),
}

struct Slot {
    state: Mutex<SlotState>,
    cond: Condvar,
}

/// The cache of all binaries.
pub struct CapsCache {
    dir: PathBuf,
    kvm_device: PathBuf,
    prober: Arc<dyn Prober>,
    slots: Mutex<HashMap<PathBuf, Arc<Slot>>>,
    probes: AtomicU64,
    generation: AtomicU64,
}

impl std::fmt::Debug for CapsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapsCache")
            .field("dir", &self.dir)
            .field("probes", &self.probe_count())
            .finish()
    }
}

/// The cache file name for a binary: a hash of its path (the file also
/// records the path, which is checked on load).
fn file_name(binary: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    // FNV-1a, 64 bits, twice with different seeds for 128 bits.
    let mut out = String::new();
    for seed in [0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64] {
        let mut h = seed;
        for b in binary.as_os_str().as_bytes() {
            h ^= *b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out.push_str(".json");
    out
}

/// Writes a file atomically: temporary file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

impl CapsCache {
    /// A cache keeping its files in `dir`, probing with `prober`.
    pub fn new(dir: PathBuf, kvm_device: PathBuf, prober: Arc<dyn Prober>) -> CapsCache {
        CapsCache {
            dir,
            kvm_device,
            prober,
            slots: Mutex::new(HashMap::new()),
            probes: AtomicU64::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// How many times a binary was actually probed (not loaded from disk or memory).
    pub fn probe_count(&self) -> u64 {
        self.probes.load(Ordering::SeqCst)
    }

    /// The directory of the cache files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache file of a binary.
    pub fn file_for(&self, binary: &Path) -> PathBuf {
        self.dir.join(file_name(binary))
    }

    /// The KVM device whose state is part of the stamp.
    pub fn kvm_device(&self) -> &Path {
        &self.kvm_device
    }

    /// The capabilities of `binary`: from memory, else from disk, else by
    /// probing it. A changed binary is re-probed and its old entry (with its
    /// domain capabilities) dropped. Concurrent lookups of one binary share
    /// one probe.
    pub fn lookup(&self, binary: &Path) -> Result<Arc<CapsEntry>> {
        let stamp = match Stamp::current(binary, &self.kvm_device) {
            Ok(s) => s,
            Err(e) => {
                // The binary is gone: forget it.
                lock(&self.slots).remove(binary);
                let _ = std::fs::remove_file(self.file_for(binary));
                return Err(e);
            }
        };
        let slot = lock(&self.slots)
            .entry(binary.to_path_buf())
            .or_insert_with(|| {
                Arc::new(Slot {
                    state: Mutex::new(SlotState::Empty),
                    cond: Condvar::new(),
                })
            })
            .clone();
        let mut st = lock(&slot.state);
        loop {
            match &*st {
                SlotState::Ready(e) if e.stamp == stamp => return Ok(e.clone()),
                SlotState::Ready(_) => {
                    tracing::info!(binary = %binary.display(), "QEMU binary changed; discarding its capabilities");
                    *st = SlotState::Empty;
                }
                SlotState::Probing(gen) => {
                    let gen = *gen;
                    st = slot.cond.wait(st).unwrap_or_else(|p| p.into_inner());
                    if let SlotState::Failed(g, err) = &*st {
                        if *g == gen {
                            return Err(err.clone());
                        }
                    }
                }
                SlotState::Empty | SlotState::Failed(..) => {
                    let gen = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
                    *st = SlotState::Probing(gen);
                    drop(st);
                    let res = self.load_or_probe(binary, &stamp);
                    st = lock(&slot.state);
                    let out = match res {
                        Ok(caps) => {
                            let e = Arc::new(CapsEntry::new(caps, stamp));
                            *st = SlotState::Ready(e.clone());
                            Ok(e)
                        }
                        Err(err) => {
                            *st = SlotState::Failed(gen, err.clone());
                            Err(err)
                        }
                    };
                    slot.cond.notify_all();
                    return out;
                }
            }
        }
    }

    fn load_or_probe(&self, binary: &Path, stamp: &Stamp) -> Result<QemuCaps> {
        let file = self.file_for(binary);
        match std::fs::read(&file) {
            Ok(data) => match serde_json::from_slice::<CacheFile>(&data) {
                Ok(cf) if cf.stamp == *stamp && cf.caps.binary == binary => {
                    tracing::info!(binary = %binary.display(), "QEMU capabilities loaded from cache");
                    return Ok(cf.caps);
                }
                Ok(_) => {
                    tracing::debug!(file = %file.display(), "outdated QEMU capabilities cache file");
                    let _ = std::fs::remove_file(&file);
                }
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "corrupt QEMU capabilities cache file; probing again");
                    let _ = std::fs::remove_file(&file);
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read QEMU capabilities cache file")
            }
        }
        self.probes.fetch_add(1, Ordering::SeqCst);
        let started = std::time::Instant::now();
        tracing::info!(binary = %binary.display(), kvm = stamp.kvm_usable, "probing QEMU binary");
        let raw = self.prober.probe(binary, stamp.kvm_usable)?;
        let caps = QemuCaps::from_raw(&raw)?;
        tracing::info!(binary = %binary.display(), ms = started.elapsed().as_millis() as u64, "probed QEMU binary");
        let cf = CacheFile {
            stamp: stamp.clone(),
            caps,
        };
        match serde_json::to_vec(&cf) {
            Ok(data) => {
                if let Err(e) =
                    std::fs::create_dir_all(&self.dir).and_then(|_| write_atomic(&file, &data))
                {
                    tracing::warn!(file = %file.display(), error = %e, "cannot write QEMU capabilities cache file");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialise QEMU capabilities"),
        }
        Ok(cf.caps)
    }

    /// The entry of `binary` if it is in memory (whatever its validity; for tests).
    pub fn peek(&self, binary: &Path) -> Option<Arc<CapsEntry>> {
        let slot = lock(&self.slots).get(binary)?.clone();
        let st = lock(&slot.state);
        match &*st {
            SlotState::Ready(e) => Some(e.clone()),
            _ => None,
        }
    }
}

/// The QEMU targets ironvirt looks for (`qemu-system-<target>`).
pub const KNOWN_TARGETS: &[&str] = &[
    "x86_64",
    "i386",
    "aarch64",
    "arm",
    "ppc64",
    "ppc",
    "s390x",
    "riscv64",
    "riscv32",
    "mips64el",
    "mips64",
    "mipsel",
    "mips",
    "sparc64",
    "sparc",
    "alpha",
    "m68k",
    "loongarch64",
];

/// Emulator binaries found in `dirs`: (target, path), first found per target,
/// in the order of [`KNOWN_TARGETS`].
pub fn find_binaries(dirs: &[PathBuf]) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for target in KNOWN_TARGETS {
        for d in dirs {
            let p = d.join(format!("qemu-system-{target}"));
            if p.is_file() {
                out.push((target.to_string(), p));
                break;
            }
        }
    }
    out
}

/// The usual places to look for emulators: /usr/bin, /usr/local/bin,
/// /usr/libexec and `$PATH`, without duplicates.
pub fn default_search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/usr/bin", "/usr/local/bin", "/usr/libexec"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_differ_per_path() {
        let a = file_name(Path::new("/usr/bin/qemu-system-x86_64"));
        let b = file_name(Path::new("/usr/bin/qemu-system-i386"));
        assert_ne!(a, b);
        assert_eq!(a.len(), 32 + 5);
    }
}
