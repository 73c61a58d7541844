//! The capabilities cache: probes shared, reused from disk, invalidated when
//! the binary changes, and clear errors from binaries that are not QEMU.

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use ironvirt_driver::{Driver, ErrorNumber};
use ironvirt_qemu::probe::QmpProber;
use ironvirt_qemu::{QemuConfig, QemuDriver};

#[test]
fn replayed_probe_gives_machines_and_version() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = replay(Duration::ZERO);
    let drv = replay_driver(tmp.path(), p.clone());
    assert_eq!(drv.get_version().expect("version"), 7_002_022);
    let xml = drv
        .get_domain_capabilities(None, Some("x86_64"), Some("q35"), Some("kvm"), 0)
        .expect("domcaps");
    assert!(xml.contains("<machine>pc-q35-7.2</machine>"), "{xml}");
    assert!(xml.contains("<vcpu max='288'/>"));
    let caps = drv.get_capabilities().expect("caps");
    assert!(
        caps.contains("<machine canonical='pc-i440fx-7.2' maxCpus='255'>pc</machine>"),
        "{caps}"
    );
    assert!(caps.contains("<arch name='i686'>"));
    assert_eq!(p.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn concurrent_lookups_share_one_probe() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = replay(Duration::from_millis(200));
    let drv = replay_driver(tmp.path(), p.clone());
    let bin = tmp.path().join("bin/qemu-system-x86_64");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| drv.qemu_caps(&bin).expect("lookup"));
        }
    });
    assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    assert_eq!(drv.caps_cache().probe_count(), 1);
}

#[test]
fn different_binaries_probe_in_parallel() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = replay(Duration::from_millis(300));
    let drv = replay_driver(tmp.path(), p.clone());
    // Both start probing before either finishes: observed by the counter
    // reaching 2 while the first probe is still sleeping.
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            drv.qemu_caps(&tmp.path().join("bin/qemu-system-x86_64"))
                .map(|_| ())
        });
        let b = s.spawn(|| {
            drv.qemu_caps(&tmp.path().join("bin/qemu-system-i386"))
                .map(|_| ())
        });
        let mut saw_two = false;
        for _ in 0..100 {
            if p.calls.load(Ordering::SeqCst) == 2 {
                saw_two = !a.is_finished() && !b.is_finished();
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        a.join().expect("join").expect("a");
        b.join().expect("join").expect("b");
        assert!(saw_two, "second binary waited for the first one's probe");
    });
}

#[test]
fn touched_binary_is_reprobed_and_domcaps_dropped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = replay(Duration::ZERO);
    let drv = replay_driver(tmp.path(), p.clone());
    let bin = tmp.path().join("bin/qemu-system-x86_64");
    let bin_s = bin.to_str().expect("utf8");
    drv.get_domain_capabilities(Some(bin_s), None, None, Some("qemu"), 0)
        .expect("domcaps");
    let old = drv.qemu_caps(&bin).expect("lookup");
    assert_eq!(old.domcaps_count(), 1);
    assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    // Unchanged: no probe.
    drv.get_domain_capabilities(Some(bin_s), None, None, Some("qemu"), 0)
        .expect("domcaps");
    assert_eq!(p.calls.load(Ordering::SeqCst), 1);
    // Replace the binary (new inode, new size).
    std::fs::remove_file(&bin).expect("rm");
    std::fs::write(&bin, b"#!/bin/sh\n# another build\nexit 1\n").expect("write");
    let new = drv.qemu_caps(&bin).expect("lookup");
    assert_eq!(p.calls.load(Ordering::SeqCst), 2);
    assert!(!Arc::ptr_eq(&old, &new));
    assert_eq!(
        new.domcaps_count(),
        0,
        "domain capabilities did not go with the old binary"
    );
    // The disk file was rewritten for the new binary.
    let drv2 = replay_driver(tmp.path(), p.clone());
    drv2.qemu_caps(&bin).expect("lookup");
    assert_eq!(p.calls.load(Ordering::SeqCst), 2);
}

#[test]
fn new_driver_reuses_disk_cache_and_corrupt_file_reprobes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = replay(Duration::ZERO);
    let drv = replay_driver(tmp.path(), p.clone());
    let bin = tmp.path().join("bin/qemu-system-x86_64");
    let first = drv.qemu_caps(&bin).expect("lookup").caps.clone();
    let file = drv.caps_cache().file_for(&bin);
    assert!(file.exists());
    drop(drv);

    let p2 = replay(Duration::ZERO);
    let drv = replay_driver(tmp.path(), p2.clone());
    assert_eq!(drv.qemu_caps(&bin).expect("lookup").caps, first);
    assert_eq!(p2.calls.load(Ordering::SeqCst), 0);
    drop(drv);

    std::fs::write(&file, b"{ not json").expect("corrupt");
    let p3 = replay(Duration::ZERO);
    let drv = replay_driver(tmp.path(), p3.clone());
    assert_eq!(drv.qemu_caps(&bin).expect("lookup").caps, first);
    assert_eq!(p3.calls.load(Ordering::SeqCst), 1);
}

fn script_driver(
    tmp: &Path,
    body: &str,
    timeout: Duration,
) -> (Arc<QemuDriver>, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let exe = bin.join("qemu-system-x86_64");
    std::fs::write(&exe, format!("#!/bin/sh\n{body}\n")).expect("write");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cfg = QemuConfig::new(tmp.join("state"), true);
    cfg.emulator_dirs = Some(vec![bin]);
    cfg.prober = Some(Arc::new(QmpProber { timeout }));
    (QemuDriver::new(cfg).expect("driver"), exe)
}

#[test]
fn hanging_binary_times_out() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (drv, exe) = script_driver(tmp.path(), "exec sleep 30", Duration::from_millis(500));
    let t = std::time::Instant::now();
    let e = drv.qemu_caps(&exe).expect_err("must time out");
    assert_eq!(e.code, ErrorNumber::OPERATION_TIMEOUT, "{e}");
    assert!(e.message.contains("did not answer"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn binary_exiting_early_is_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (drv, exe) = script_driver(
        tmp.path(),
        "echo 'qemu: could not load PC BIOS' >&2; exit 1",
        Duration::from_secs(10),
    );
    let e = drv.qemu_caps(&exe).expect_err("must fail");
    assert_eq!(e.code, ErrorNumber::INTERNAL_ERROR);
    assert!(
        e.message.contains("exited") && e.message.contains("could not load PC BIOS"),
        "{e}"
    );
}

#[test]
fn binary_that_is_not_qemu_is_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (drv, exe) = script_driver(
        tmp.path(),
        "echo 'hello, I am a shell script'; sleep 5",
        Duration::from_secs(10),
    );
    let e = drv.qemu_caps(&exe).expect_err("must fail");
    assert!(e.message.contains("is not a QEMU emulator"), "{e}");
    let (drv, exe) = script_driver(
        tmp.path(),
        r#"echo '{"hello": 1}'; sleep 5"#,
        Duration::from_secs(10),
    );
    let e = drv.qemu_caps(&exe).expect_err("must fail");
    assert!(e.message.contains("is not a QEMU emulator"), "{e}");
}

#[test]
fn missing_binary_is_reported() {
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = replay_driver(tmp.path(), replay(Duration::ZERO));
    let e = drv
        .qemu_caps(&tmp.path().join("bin/qemu-system-nowhere"))
        .expect_err("must fail");
    assert_eq!(e.code, ErrorNumber::SYSTEM_ERROR, "{e}");
}

/// With a copy of the real binary: probe, reuse, touch, re-probe.
#[test]
fn real_binary_copy_invalidation() {
    if !Path::new(REAL_QEMU).exists() {
        panic!("{REAL_QEMU} is needed for this test (install qemu-system-x86)");
    }
    // A copy outside /usr/bin looks for its accelerator modules next to
    // itself; point it at the installed ones.
    if std::env::var_os("QEMU_MODULE_DIR").is_none() {
        for d in [
            "/usr/lib/x86_64-linux-gnu/qemu",
            "/usr/lib64/qemu",
            "/usr/lib/qemu",
        ] {
            if Path::new(d).is_dir() {
                std::env::set_var("QEMU_MODULE_DIR", d);
                break;
            }
        }
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let exe = bin.join("qemu-system-x86_64");
    std::fs::copy(REAL_QEMU, &exe).expect("copy");
    let mk = || {
        let mut cfg = QemuConfig::new(tmp.path().join("state"), true);
        cfg.emulator_dirs = Some(vec![bin.clone()]);
        QemuDriver::new(cfg).expect("driver")
    };
    let drv = mk();
    let xml1 = drv
        .get_domain_capabilities(Some(exe.to_str().expect("utf8")), None, None, None, 0)
        .expect("domcaps");
    assert!(xml1.contains("<machine>pc-i440fx-"), "{xml1}");
    assert_eq!(drv.caps_cache().probe_count(), 1);
    drv.get_domain_capabilities(Some(exe.to_str().expect("utf8")), None, None, None, 0)
        .expect("domcaps");
    assert_eq!(drv.caps_cache().probe_count(), 1);

    let drv2 = mk();
    let xml2 = drv2
        .get_domain_capabilities(Some(exe.to_str().expect("utf8")), None, None, None, 0)
        .expect("domcaps");
    assert_eq!(
        drv2.caps_cache().probe_count(),
        0,
        "the on-disk cache was not reused"
    );
    assert_eq!(xml1, xml2);

    // touch: new mtime/ctime
    std::thread::sleep(Duration::from_millis(20));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&exe)
        .expect("open");
    f.set_modified(std::time::SystemTime::now()).expect("touch");
    drop(f);
    let old = drv2.caps_cache().peek(&exe).expect("in memory");
    drv2.get_domain_capabilities(Some(exe.to_str().expect("utf8")), None, None, None, 0)
        .expect("domcaps");
    assert_eq!(drv2.caps_cache().probe_count(), 1);
    let new = drv2.caps_cache().peek(&exe).expect("in memory");
    assert!(!Arc::ptr_eq(&old, &new));
    assert_eq!(new.domcaps_count(), 1);
}
