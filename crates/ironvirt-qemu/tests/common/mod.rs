#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ironvirt_driver::Result;
use ironvirt_qemu::probe::{Prober, RawProbe, ReplayProber};
use ironvirt_qemu::{QemuConfig, QemuDriver};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qmp")
}

/// A replaying prober that counts calls and can be slowed down.
pub struct CountingReplay {
    pub inner: ReplayProber,
    pub calls: AtomicU64,
    pub delay: Duration,
}

impl Prober for CountingReplay {
    fn probe(&self, binary: &Path, kvm: bool) -> Result<RawProbe> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        self.inner.probe(binary, kvm)
    }
}

pub fn replay(delay: Duration) -> Arc<CountingReplay> {
    Arc::new(CountingReplay {
        inner: ReplayProber { dir: fixtures() },
        calls: AtomicU64::new(0),
        delay,
    })
}

/// A directory with stand-in emulator files (their content does not matter
/// to the replaying prober; their stat data is the cache key).
pub fn fake_bin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for n in ["qemu-system-x86_64", "qemu-system-i386"] {
        if !bin.join(n).exists() {
            std::fs::write(bin.join(n), b"#!/bin/sh\nexit 1\n").expect("write");
        }
    }
    bin
}

/// A driver over `state` replaying the recorded replies.
pub fn replay_driver(state: &Path, prober: Arc<CountingReplay>) -> Arc<QemuDriver> {
    let bin = fake_bin_dir(state);
    let mut cfg = QemuConfig::new(state.join("state"), true);
    cfg.emulator_dirs = Some(vec![bin]);
    cfg.firmware_dirs = Some(vec![]);
    cfg.prober = Some(prober);
    QemuDriver::new(cfg).expect("driver")
}

pub const REAL_QEMU: &str = "/usr/bin/qemu-system-x86_64";
