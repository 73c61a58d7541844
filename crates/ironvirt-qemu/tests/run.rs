//! Real guests under an in-process `QemuDriver`: start, states and
//! reasons, suspend/resume, live XML, destroy, transient domains, a guest
//! that crashes, an ACPI shutdown honoured by the guest, and reconnecting
//! a new driver to guests that outlived the old one.
//!
//! Each test has its own state directory; every QEMU whose command line
//! mentions it is killed when the test ends, pass or fail. Guests run
//! under KVM when /dev/kvm is usable and under TCG otherwise.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironvirt_driver::{
    event, list_flags, reason, xml_flags, DomainRef, DomainState, Driver, ErrorNumber,
    LifecycleEvent,
};
use ironvirt_qemu::{QemuConfig, QemuDriver};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// Kills every QEMU started on a state directory when dropped.
struct Reaper {
    dir: tempfile::TempDir,
}

impl Reaper {
    fn new() -> Reaper {
        assert!(
            Path::new(QEMU).exists(),
            "{QEMU} is not installed; the test command installs qemu-system-x86"
        );
        Reaper {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("s")
    }

    fn driver(&self) -> Arc<QemuDriver> {
        let mut cfg = QemuConfig::new(self.state(), true);
        cfg.nvram_dir = Some(self.state().join("nvram"));
        QemuDriver::new(cfg).unwrap()
    }

    /// Pids of QEMU processes whose command line mentions our directory.
    fn pids(&self) -> Vec<i32> {
        let needle = self.dir.path().to_string_lossy().to_string();
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

/// `kvm` when /dev/kvm is usable, else `qemu` (TCG);
/// `IRONVIRT_TEST_VIRT=qemu` forces TCG.
fn virt() -> &'static str {
    if std::env::var("IRONVIRT_TEST_VIRT").as_deref() == Ok("qemu") {
        return "qemu";
    }
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

fn bios_guest(name: &str) -> String {
    format!(
        "<domain type='{}'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os>\
         <devices><serial type='pty'/><console type='pty'/><graphics type='vnc'/></devices></domain>",
        virt()
    )
}

/// A boot sector that waits for the ACPI power button and then powers the
/// machine off (S5). It reads the PM I/O base from the PIIX4 PM function
/// (00:01.3) or the ICH9 LPC bridge (00:1f.0), sets PWRBTN_EN in PM1a_EN,
/// polls PWRBTN_STS in PM1a_STS, then writes SLP_EN with SLP_TYP 0 to
/// PM1a_CNT. Assembled from:
///
/// ```text
///     cli
///     mov $0x8000,%ax ; shl $16,%eax ; mov $0x0B00,%ax   # 00:01.3 reg 0
///     mov $0xcf8,%dx ; outl %eax,%dx ; mov $0xcfc,%dx ; inl %dx,%eax
///     cmp $0x71138086,%eax ; je piix
///     mov $0x8000,%ax ; shl $16,%eax ; mov $0xF840,%ax ; jmp readbase
/// piix: mov $0x8000,%ax ; shl $16,%eax ; mov $0x0B40,%ax
/// readbase: mov $0xcf8,%dx ; outl %eax,%dx ; mov $0xcfc,%dx ; inl %dx,%eax
///     and $0xffc0,%ax ; mov %ax,%bx
///     lea 2(%bx),%dx ; inw %dx,%ax ; or $0x100,%ax ; outw %ax,%dx
/// poll: mov %bx,%dx ; inw %dx,%ax ; test $0x100,%ax ; jnz off ; pause ; jmp poll
/// off: lea 4(%bx),%dx ; mov $0x2000,%ax ; outw %ax,%dx
/// halt: hlt ; jmp halt
/// ```
const ACPI_BOOT_SECTOR: &[u8] = &[
    0xfa, 0xb8, 0x00, 0x80, 0x66, 0xc1, 0xe0, 0x10, 0xb8, 0x00, 0x0b, 0xba, 0xf8, 0x0c, 0x66, 0xef,
    0xba, 0xfc, 0x0c, 0x66, 0xed, 0x66, 0x3d, 0x86, 0x80, 0x13, 0x71, 0x74, 0x0c, 0xb8, 0x00, 0x80,
    0x66, 0xc1, 0xe0, 0x10, 0xb8, 0x40, 0xf8, 0xeb, 0x0a, 0xb8, 0x00, 0x80, 0x66, 0xc1, 0xe0, 0x10,
    0xb8, 0x40, 0x0b, 0xba, 0xf8, 0x0c, 0x66, 0xef, 0xba, 0xfc, 0x0c, 0x66, 0xed, 0x83, 0xe0, 0xc0,
    0x89, 0xc3, 0x8d, 0x57, 0x02, 0xed, 0x0d, 0x00, 0x01, 0xef, 0x89, 0xda, 0xed, 0xa9, 0x00, 0x01,
    0x75, 0x04, 0xf3, 0x90, 0xeb, 0xf4, 0x8d, 0x57, 0x04, 0xb8, 0x00, 0x20, 0xef, 0xf4, 0xeb, 0xfd,
];

/// Writes a 1 MiB raw disk whose boot sector honours the power button.
fn acpi_disk(path: &Path) {
    let mut img = vec![0u8; 1 << 20];
    img[..ACPI_BOOT_SECTOR.len()].copy_from_slice(ACPI_BOOT_SECTOR);
    img[510] = 0x55;
    img[511] = 0xaa;
    std::fs::write(path, img).unwrap();
}

fn acpi_guest(name: &str, disk: &Path, machine: &str) -> String {
    format!(
        "<domain type='{}'><name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='{machine}'>hvm</type></os><features><acpi/></features>\
         <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>\
         <source file='{}'/><target dev='vda' bus='virtio'/></disk>\
         <memballoon model='none'/></devices></domain>",
        virt(),
        disk.display()
    )
}

fn events(drv: &QemuDriver) -> Arc<Mutex<Vec<LifecycleEvent>>> {
    let evs = Arc::new(Mutex::new(Vec::new()));
    let e2 = evs.clone();
    drv.domain_event_register(Arc::new(move |e: &LifecycleEvent| {
        e2.lock().unwrap().push(e.clone());
    }))
    .unwrap();
    evs
}

fn pairs(evs: &Mutex<Vec<LifecycleEvent>>, name: &str) -> Vec<(i32, i32)> {
    evs.lock()
        .unwrap()
        .iter()
        .filter(|e| e.dom.name == name)
        .map(|e| (e.event, e.detail))
        // The SHUTDOWN event QEMU sends on SIGTERM may or may not be read
        // before a destroy finishes (libvirt shows the same race).
        .filter(|p| !(p.0 == event::SHUTDOWN && p.1 == event::shutdown::HOST))
        .collect()
}

fn state(drv: &QemuDriver, d: &DomainRef) -> (i32, i32) {
    drv.domain_get_state(d, 0).unwrap()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn status_pid(state: &Path, name: &str) -> i32 {
    let s = std::fs::read_to_string(state.join(format!("run/qemu/{name}.xml"))).unwrap();
    let doc = roxmltree::Document::parse(&s).unwrap();
    doc.root_element()
        .attribute("pid")
        .unwrap()
        .parse()
        .unwrap()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        .unwrap_or(false)
}

const RUNNING: i32 = DomainState::Running as i32;
const PAUSED: i32 = DomainState::Paused as i32;
const SHUTOFF: i32 = DomainState::Shutoff as i32;

#[test]
fn start_suspend_resume_destroy() {
    let r = Reaper::new();
    let drv = r.driver();
    let evs = events(&drv);
    let d = drv.domain_define_xml(&bios_guest("g1"), 0).unwrap();
    assert_eq!(state(&drv, &d), (SHUTOFF, reason::shutoff::UNKNOWN));

    let started = drv.domain_create(&d, 0).unwrap();
    assert_eq!(started.id, 1);
    assert_eq!(state(&drv, &d), (RUNNING, reason::running::BOOTED));
    assert!(drv.domain_is_active(&d).unwrap());
    assert_eq!(drv.domain_lookup_by_id(1).unwrap().name, "g1");
    assert_eq!(drv.domain_lookup_by_name("g1").unwrap().id, 1);
    let active: Vec<String> = drv
        .list_all_domains(list_flags::ACTIVE)
        .unwrap()
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(active, vec!["g1"]);
    assert!(drv
        .list_all_domains(list_flags::INACTIVE)
        .unwrap()
        .is_empty());
    let e = drv.domain_create(&d, 0).unwrap_err();
    assert_eq!(e.code, ErrorNumber::OPERATION_INVALID);

    // Live XML: id, aliases, the VNC port chosen, the pty QEMU opened.
    let live = drv.domain_get_xml_desc(&d, 0).unwrap();
    assert!(
        live.starts_with("<domain type='") && live.contains(" id='1'>"),
        "{live}"
    );
    assert!(live.contains("<alias name='serial0'/>"), "{live}");
    assert!(live.contains("<source path='/dev/pts/"), "{live}");
    let port = live
        .split("<graphics type='vnc' port='")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap();
    assert!(port >= 5900, "{live}");
    let inactive = drv.domain_get_xml_desc(&d, xml_flags::INACTIVE).unwrap();
    assert!(
        !inactive.lines().next().unwrap().contains(" id="),
        "{inactive}"
    );
    assert!(!inactive.contains("<alias"), "{inactive}");

    let pid = status_pid(&r.state(), "g1");
    assert!(alive(pid));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains(&d.uuid.to_string()));
    let log = std::fs::read_to_string(r.state().join("log/qemu/g1.log")).unwrap();
    assert!(log.contains("-name guest=g1,debug-threads=on"), "{log}");

    let info = drv.domain_get_info(&d).unwrap();
    assert_eq!(info.state, DomainState::Running as u8);
    assert_eq!(info.max_mem, 65536);

    drv.domain_suspend(&d).unwrap();
    assert_eq!(state(&drv, &d), (PAUSED, reason::paused::USER));
    let st = std::fs::read_to_string(r.state().join("run/qemu/g1.xml")).unwrap();
    assert!(st.contains("state='paused'"), "{st}");
    drv.domain_resume(&d).unwrap();
    assert_eq!(state(&drv, &d), (RUNNING, reason::running::UNPAUSED));
    drv.domain_reset(&d, 0).unwrap();
    assert_eq!(state(&drv, &d), (RUNNING, reason::running::UNPAUSED));

    drv.domain_destroy(&d, 0).unwrap();
    assert_eq!(state(&drv, &d), (SHUTOFF, reason::shutoff::DESTROYED));
    assert!(!alive(pid));
    assert!(!r.state().join("run/qemu/g1.xml").exists());
    assert!(!r.state().join("run/qemu/domain-1-g1").exists());
    assert_eq!(
        drv.domain_destroy(&d, 0).unwrap_err().code,
        ErrorNumber::OPERATION_INVALID
    );
    assert_eq!(
        drv.domain_suspend(&d).unwrap_err().code,
        ErrorNumber::OPERATION_INVALID
    );
    assert_eq!(
        pairs(&evs, "g1"),
        vec![
            (event::DEFINED, event::defined::ADDED),
            (event::RESUMED, event::resumed::UNPAUSED),
            (event::STARTED, event::started::BOOTED),
            (event::SUSPENDED, event::suspended::PAUSED),
            (event::RESUMED, event::resumed::UNPAUSED),
            (event::STOPPED, event::stopped::DESTROYED),
        ]
    );

    // Ids go on counting; a paused start stays paused.
    let again = drv.domain_create(&d, 1).unwrap();
    assert_eq!(again.id, 2);
    assert_eq!(state(&drv, &d), (PAUSED, reason::paused::USER));
    drv.domain_destroy(&again, 0).unwrap();
}

#[test]
fn transient_and_undefine_while_running() {
    let r = Reaper::new();
    let drv = r.driver();
    let t = drv.domain_create_xml(&bios_guest("tr"), 0).unwrap();
    assert_eq!(t.id, 1);
    assert!(!drv.domain_is_persistent(&t).unwrap());
    assert_eq!(
        drv.list_all_domains(list_flags::TRANSIENT).unwrap().len(),
        1
    );
    let e = drv.domain_create_xml(&bios_guest("tr"), 0).unwrap_err();
    assert!(e.message.contains("already"), "{e}");
    drv.domain_destroy(&t, 0).unwrap();
    assert_eq!(
        drv.domain_lookup_by_name("tr").unwrap_err().code,
        ErrorNumber::NO_DOMAIN
    );

    // Undefining a running domain makes it transient; it goes when it stops.
    let p = drv.domain_define_xml(&bios_guest("pers"), 0).unwrap();
    let p = drv.domain_create(&p, 0).unwrap();
    drv.domain_undefine(&p, 0).unwrap();
    assert!(drv.domain_is_active(&p).unwrap());
    assert!(!drv.domain_is_persistent(&p).unwrap());
    assert!(!r.state().join("qemu/pers.xml").exists());
    drv.domain_destroy(&p, 0).unwrap();
    assert!(drv.domain_lookup_by_name("pers").is_err());
}

#[test]
fn guest_that_dies_is_crashed_and_acpi_shutdown_is_shutdown() {
    let r = Reaper::new();
    let drv = r.driver();
    let evs = events(&drv);

    // Killed behind the driver's back: shutoff (crashed), stopped (failed).
    let d = drv.domain_define_xml(&bios_guest("dies"), 0).unwrap();
    drv.domain_create(&d, 0).unwrap();
    let pid = status_pid(&r.state(), "dies");
    // SAFETY: kill by the pid of our guest.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the crash to be noticed", Duration::from_secs(15), || {
        pairs(&evs, "dies").contains(&(event::STOPPED, event::stopped::FAILED))
    });
    assert_eq!(state(&drv, &d), (SHUTOFF, reason::shutoff::CRASHED));
    assert!(!r.state().join("run/qemu/dies.xml").exists());

    // A guest that honours the power button, on both machine types.
    for machine in ["pc", "q35"] {
        let name = format!("acpi-{machine}");
        let disk = r.dir.path().join(format!("{name}.img"));
        acpi_disk(&disk);
        let d = drv
            .domain_define_xml(&acpi_guest(&name, &disk, machine), 0)
            .unwrap();
        drv.domain_create(&d, 0).unwrap();
        // The button only counts once the boot sector listens for it:
        // ask again until the guest is off, as a management tool would.
        wait_for("the guest to power off", Duration::from_secs(60), || {
            if pairs(&evs, &name).contains(&(event::STOPPED, event::stopped::SHUTDOWN)) {
                return true;
            }
            let _ = drv.domain_shutdown(&d, 0);
            std::thread::sleep(Duration::from_millis(300));
            false
        });
        assert_eq!(state(&drv, &d), (SHUTOFF, reason::shutoff::SHUTDOWN));
        let p = pairs(&evs, &name);
        assert!(
            p.contains(&(event::SHUTDOWN, event::shutdown::GUEST)),
            "{p:?}"
        );
        assert_eq!(
            p.last(),
            Some(&(event::STOPPED, event::stopped::SHUTDOWN)),
            "{p:?}"
        );
    }
}

#[test]
fn a_new_driver_reconnects_to_running_guests() {
    let r = Reaper::new();
    let drv = r.driver();
    let a = drv.domain_define_xml(&bios_guest("keep"), 0).unwrap();
    let a = drv.domain_create(&a, 0).unwrap();
    let b = drv.domain_create_xml(&bios_guest("temp"), 0).unwrap();
    let c = drv.domain_define_xml(&bios_guest("gone"), 0).unwrap();
    drv.domain_create(&c, 0).unwrap();
    drv.domain_suspend(&b).unwrap();
    let keep_pid = status_pid(&r.state(), "keep");
    let gone_pid = status_pid(&r.state(), "gone");
    drop(drv);
    assert!(alive(keep_pid), "guests outlive the driver");
    // SAFETY: kill by the pid of our guest.
    unsafe { libc::kill(gone_pid, libc::SIGKILL) };
    wait_for("the guest to die", Duration::from_secs(10), || {
        !alive(gone_pid)
    });

    let drv = r.driver();
    let keep = drv.domain_lookup_by_name("keep").unwrap();
    assert_eq!(keep.id, a.id);
    assert_eq!(state(&drv, &keep), (RUNNING, reason::running::BOOTED));
    let temp = drv.domain_lookup_by_name("temp").unwrap();
    assert_eq!(temp.id, b.id);
    assert!(!drv.domain_is_persistent(&temp).unwrap());
    assert_eq!(state(&drv, &temp), (PAUSED, reason::paused::USER));
    let gone = drv.domain_lookup_by_name("gone").unwrap();
    assert_eq!(gone.id, -1);
    assert_eq!(state(&drv, &gone), (SHUTOFF, reason::shutoff::CRASHED));
    assert!(!r.state().join("run/qemu/gone.xml").exists());
    // Monitors work again, and new ids do not collide.
    drv.domain_resume(&temp).unwrap();
    let n = drv.domain_create(&gone, 0).unwrap();
    assert!(n.id > b.id, "{} > {}", n.id, b.id);
    drv.domain_destroy(&keep, 0).unwrap();
    assert!(!alive(keep_pid));
    drv.domain_destroy(&temp, 0).unwrap();
    drv.domain_destroy(&n, 0).unwrap();
    assert!(drv.list_all_domains(list_flags::ACTIVE).unwrap().is_empty());
}
