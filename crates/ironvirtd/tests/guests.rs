//! Real QEMU guests through ironvirtd and the real virsh: start, list,
//! dominfo, domstate --reason, suspend/resume, live dumpxml, destroy,
//! ACPI shutdown, lifecycle events seen by `virsh event`, and a daemon
//! killed with SIGKILL that finds its guests again when it restarts.
//!
//! Every QEMU whose command line mentions the test's directory is killed
//! when the test ends, pass or fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::ops::Add;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{virsh, Daemon};

fn qemu_uri(d: &Daemon) -> String {
    format!("qemu+unix:///system?socket={}", d.rw().display())
}

fn ok(args: &[&str], uri: &str) -> String {
    let o = virsh(uri, args);
    assert!(
        o.status.success(),
        "virsh {args:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Kills the QEMU processes started under `dir` when dropped.
struct Reaper(PathBuf);

impl Reaper {
    fn pids(&self) -> Vec<i32> {
        let needle = self.0.to_string_lossy().to_string();
        let mut v = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(c) = std::fs::read(format!("/proc/{pid}/cmdline")) {
                let c = String::from_utf8_lossy(&c);
                if c.contains("qemu-system") && c.contains(&needle) {
                    v.push(pid);
                }
            }
        }
        v
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in self.pids() {
            // SAFETY: kill by pid of a process found above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// `virsh event --loop` in the background; killed on drop.
struct Events(Option<Child>, PathBuf);

impl Events {
    fn start(uri: &str, out: PathBuf) -> Events {
        let f = std::fs::File::create(&out).unwrap();
        let c = Command::new("virsh")
            .args(["-c", uri, "event", "--all", "--loop", "--timeout", "120"])
            .env("LC_ALL", "C")
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Events(Some(c), out)
    }
    fn text(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
    fn wait_for(&self, line: &str) {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if self.text().contains(line) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no event '{line}' in:\n{}", self.text());
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn virt() -> &'static str {
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if usable {
        "kvm"
    } else {
        "qemu"
    }
}

fn write_guest(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(format!("{name}.xml"));
    std::fs::write(
        &p,
        format!(
            "<domain type='{}'><name>{name}</name><uuid>{}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices><serial type='pty'/><graphics type='vnc'/></devices></domain>",
            virt(),
            // A UUID of its own, so that defining the file again updates
            // the same domain.
            ironvirt_driver::Uuid::random()
        ),
    )
    .unwrap();
    p
}

/// A boot sector that powers the machine off when the ACPI power button
/// is pressed (see ironvirt-qemu's tests/run.rs for its source).
const ACPI_BOOT_SECTOR: &[u8] = &[
    0xfa, 0xb8, 0x00, 0x80, 0x66, 0xc1, 0xe0, 0x10, 0xb8, 0x00, 0x0b, 0xba, 0xf8, 0x0c, 0x66, 0xef,
    0xba, 0xfc, 0x0c, 0x66, 0xed, 0x66, 0x3d, 0x86, 0x80, 0x13, 0x71, 0x74, 0x0c, 0xb8, 0x00, 0x80,
    0x66, 0xc1, 0xe0, 0x10, 0xb8, 0x40, 0xf8, 0xeb, 0x0a, 0xb8, 0x00, 0x80, 0x66, 0xc1, 0xe0, 0x10,
    0xb8, 0x40, 0x0b, 0xba, 0xf8, 0x0c, 0x66, 0xef, 0xba, 0xfc, 0x0c, 0x66, 0xed, 0x83, 0xe0, 0xc0,
    0x89, 0xc3, 0x8d, 0x57, 0x02, 0xed, 0x0d, 0x00, 0x01, 0xef, 0x89, 0xda, 0xed, 0xa9, 0x00, 0x01,
    0x75, 0x04, 0xf3, 0x90, 0xeb, 0xf4, 0x8d, 0x57, 0x04, 0xb8, 0x00, 0x20, 0xef, 0xf4, 0xeb, 0xfd,
];

fn state_reason(uri: &str, name: &str) -> String {
    ok(&["domstate", "--reason", name], uri).trim().to_string()
}

#[test]
fn guests_through_virsh_and_a_daemon_restart() {
    assert!(
        Path::new("/usr/bin/qemu-system-x86_64").exists(),
        "qemu-system-x86_64 is not installed; the test command installs qemu-system-x86"
    );
    let mut d = Daemon::start();
    let _reaper = Reaper(d.dir.path().to_path_buf());
    let uri = qemu_uri(&d);
    let dir = d.dir.path().to_path_buf();

    let g = write_guest(&dir, "vm1");
    ok(&["define", g.to_str().unwrap()], &uri);
    let ev = Events::start(&uri, dir.join("events.txt"));
    // virsh event prints nothing until it is registered; give it a moment
    // by waiting for the definition event of a second domain.
    let g2 = write_guest(&dir, "vm2");
    let t = Instant::now();
    while !ev.text().contains("'vm2': Defined") && t.elapsed() < Duration::from_secs(20) {
        ok(&["define", g2.to_str().unwrap()], &uri);
        std::thread::sleep(Duration::from_millis(200));
    }

    let out = ok(&["start", "vm1"], &uri);
    assert!(out.contains("Domain 'vm1' started"), "{out}");
    let list = ok(&["list"], &uri);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "vm1", "running"]),
        "{list}"
    );
    assert_eq!(state_reason(&uri, "vm1"), "running (booted)");
    let info = ok(&["dominfo", "vm1"], &uri);
    assert!(info.contains("Id:             1"), "{info}");
    assert!(info.contains("State:          running"), "{info}");
    assert!(info.contains("Max memory:     65536 KiB"), "{info}");
    let xml = ok(&["dumpxml", "vm1"], &uri);
    assert!(
        xml.contains("<domain type='") && xml.contains(" id='1'>"),
        "{xml}"
    );
    assert!(xml.contains("<graphics type='vnc' port='59"), "{xml}");
    let inactive = ok(&["dumpxml", "--inactive", "vm1"], &uri);
    assert!(
        !inactive.lines().next().unwrap().contains("id="),
        "{inactive}"
    );
    assert_eq!(ok(&["domid", "vm1"], &uri).trim(), "1");

    ok(&["suspend", "vm1"], &uri);
    assert_eq!(state_reason(&uri, "vm1"), "paused (user)");
    ok(&["resume", "vm1"], &uri);
    assert_eq!(state_reason(&uri, "vm1"), "running (unpaused)");

    // A guest without an OS ignores the power button: shutdown is only a
    // request, the guest goes on running, destroy ends it.
    let out = ok(&["shutdown", "vm1"], &uri);
    assert!(out.contains("is being shutdown"), "{out}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(state_reason(&uri, "vm1").starts_with("running"));
    let out = ok(&["destroy", "vm1"], &uri);
    assert!(out.contains("Domain 'vm1' destroyed"), "{out}");
    assert_eq!(state_reason(&uri, "vm1"), "shut off (destroyed)");
    ev.wait_for("event 'lifecycle' for domain 'vm1': Started Booted");
    ev.wait_for("event 'lifecycle' for domain 'vm1': Suspended Paused");
    ev.wait_for("event 'lifecycle' for domain 'vm1': Resumed Unpaused");
    ev.wait_for("event 'lifecycle' for domain 'vm1': Stopped Destroyed");

    // A guest that honours ACPI: shut off (shutdown).
    let disk = dir.join("acpi.img");
    let mut img = vec![0u8; 1 << 20];
    img[..ACPI_BOOT_SECTOR.len()].copy_from_slice(ACPI_BOOT_SECTOR);
    img[510] = 0x55;
    img[511] = 0xaa;
    std::fs::write(&disk, img).unwrap();
    let ax = dir.join("acpi.xml");
    std::fs::write(
        &ax,
        format!(
            "<domain type='{}'><name>acpi</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
             <os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/></features>\
             <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>\
             <source file='{}'/><target dev='vda' bus='virtio'/></disk></devices></domain>",
            virt(),
            disk.display()
        ),
    )
    .unwrap();
    let out = ok(&["create", ax.to_str().unwrap()], &uri);
    assert!(out.contains("Domain 'acpi' created"), "{out}");
    let t = Instant::now();
    while !ev.text().contains("'acpi': Stopped Shutdown") {
        assert!(t.elapsed() < Duration::from_secs(60), "{}", ev.text());
        let _ = virsh(&uri, &["shutdown", "acpi"]);
        std::thread::sleep(Duration::from_millis(300));
    }
    ev.wait_for("event 'lifecycle' for domain 'acpi': Shutdown Finished after guest request");
    // Transient: gone once stopped.
    assert!(!virsh(&uri, &["domstate", "acpi"]).status.success());

    // The daemon dies hard; its guest does not.
    let out = ok(&["start", "vm2"], &uri);
    assert!(out.contains("started"), "{out}");
    let id = ok(&["domid", "vm2"], &uri).trim().to_string();
    drop(ev);
    d.signal(libc::SIGKILL);
    assert!(
        d.wait(Duration::from_secs(10)).is_some(),
        "daemon did not die"
    );
    let pids = _reaper.pids();
    assert_eq!(pids.len(), 1, "the guest survives the daemon");
    d.spawn(&[]);
    // Guests were left running: the driver reconnects at start-up, before
    // any client asks (the first client is served once that is done).
    ok(
        &["uri"],
        "test+unix:///default?socket="
            .to_string()
            .add(&d.rw().display().to_string())
            .as_str(),
    );
    let log = d.log();
    assert!(log.contains("QEMU driver loaded"), "{log}");
    let list = ok(&["list"], &uri);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == [id.as_str(), "vm2", "running"]),
        "{list}"
    );
    assert_eq!(ok(&["domid", "vm2"], &uri).trim(), id);
    ok(&["suspend", "vm2"], &uri);
    assert_eq!(state_reason(&uri, "vm2"), "paused (user)");
    let ev = Events::start(&uri, dir.join("events2.txt"));
    std::thread::sleep(Duration::from_millis(500));
    ok(&["destroy", "vm2"], &uri);
    assert_eq!(state_reason(&uri, "vm2"), "shut off (destroyed)");
    assert!(_reaper.pids().is_empty(), "destroy ended QEMU");
    ev.wait_for("event 'lifecycle' for domain 'vm2': Stopped Destroyed");
}

/// Autostart domains start with the daemon, once per host boot: a restart
/// does not start again a guest the user stopped.
#[test]
fn autostart_once_per_boot() {
    assert!(
        Path::new("/usr/bin/qemu-system-x86_64").exists(),
        "qemu-system-x86_64 is not installed; the test command installs qemu-system-x86"
    );
    let mut d = Daemon::start();
    let _reaper = Reaper(d.dir.path().to_path_buf());
    let uri = qemu_uri(&d);
    let xml = write_guest(d.dir.path(), "auto");
    ok(&["define", xml.to_str().unwrap()], &uri);
    ok(&["autostart", "auto"], &uri);
    assert_eq!(state_reason(&uri, "auto"), "shut off (unknown)");

    d.signal(libc::SIGTERM);
    assert!(
        d.wait(Duration::from_secs(20)).is_some(),
        "daemon did not stop"
    );
    d.spawn(&[]);
    // Clients are served once start-up (autostart included) is done.
    assert_eq!(state_reason(&uri, "auto"), "running (booted)");
    let log = d.log();
    assert!(log.contains("autostarted"), "{log}");
    ok(&["destroy", "auto"], &uri);

    d.signal(libc::SIGTERM);
    assert!(
        d.wait(Duration::from_secs(20)).is_some(),
        "daemon did not stop"
    );
    d.spawn(&[]);
    // Not started again (a domain loaded at start-up has no recorded
    // shutoff reason, as in libvirt).
    assert_eq!(state_reason(&uri, "auto"), "shut off (unknown)");
    assert!(!d.log().contains("autostarted"), "{}", d.log());
    ok(&["undefine", "auto"], &uri);
}
