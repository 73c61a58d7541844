//! Differential test: QEMU's command line as we build it against the one
//! the reference libvirtd prints for the same XML
//! (`virsh domxml-to-native qemu-argv`), argument by argument.
//!
//! Normalised, because they must differ:
//! - the per-guest directory: ours is `<state_dir>/run/qemu/domain--1-NAME`,
//!   libvirt's `/var/lib/libvirt/qemu/domain--1-NAME` (HOME, XDG_*, the
//!   master key file, the monitor socket); the channel directory likewise;
//! - `PATH`, inherited from each daemon's environment;
//! - networks: `domxml-to-native` turns every interface into a tap device
//!   passed as an fd (`{"type":"tap","fd":"N",...}`), whereas a real start
//!   of a `type='user'` interface runs `{"type":"user",...}` (what we print).
//!
//! Needs the reference daemon on /run/libvirt-ref/libvirt-sock (the
//! project's test command starts it); set IRONVIRT_NO_REFERENCE=1 to skip.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use ironvirt_qemu::{QemuConfig, QemuDriver};

const SOCK: &str = "/run/libvirt-ref/libvirt-sock";

fn reference_available() -> bool {
    if std::env::var_os("IRONVIRT_NO_REFERENCE").is_some_and(|v| v == "1") {
        eprintln!("IRONVIRT_NO_REFERENCE=1: skipping the comparison with libvirtd");
        return false;
    }
    assert!(
        Path::new(SOCK).exists(),
        "reference libvirtd socket {SOCK} is missing: start the reference daemon, or set IRONVIRT_NO_REFERENCE=1"
    );
    true
}

/// Splits a printed command line into words (single quotes only, as
/// libvirt quotes).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut any = false;
    for c in s.trim().chars() {
        match c {
            '\'' => {
                in_q = !in_q;
                any = true;
            }
            ' ' | '\n' if !in_q => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn normalise(ws: Vec<String>, our_run: &str) -> Vec<String> {
    ws.into_iter()
        .map(|w| {
            let w = w
                .replace(
                    &format!("{our_run}/channel/"),
                    "/var/lib/libvirt/qemu/channel/target/",
                )
                .replace(our_run, "/var/lib/libvirt/qemu");
            if w.starts_with("PATH=") {
                return "PATH=*".to_string();
            }
            if w.starts_with("{\"type\":\"tap\",\"fd\":\"") {
                let id = w.split("\"id\":").nth(1).unwrap_or("").to_string();
                return format!("{{\"type\":\"user\",\"id\":{id}");
            }
            w
        })
        .collect()
}

const MIN: &str = "<domain type='kvm'><name>min1</name>\
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory unit='MiB'>128</memory><vcpu>1</vcpu>\
  <os><type arch='x86_64' machine='pc'>hvm</type></os></domain>";

const Q35: &str = "<domain type='kvm'><name>q35full</name>\
  <uuid>11111111-2222-3333-4444-555555555555</uuid><memory unit='MiB'>256</memory><vcpu>2</vcpu>\
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>\
  <features><acpi/><apic/></features><devices>\
  <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
  <source file='/var/tmp/ironvirt-test-disk.qcow2'/><target dev='vda' bus='virtio'/></disk>\
  <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>\
  <source file='/var/tmp/ironvirt-test.iso'/><target dev='sda' bus='sata'/><readonly/></disk>\
  <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>\
  <serial type='pty'/><console type='pty'/><graphics type='vnc' autoport='yes'/>\
  <video><model type='virtio'/></video>\
  <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>\
  <input type='tablet' bus='usb'/></devices></domain>";

const PC_DISKS: &str = "<domain type='qemu'><name>pcdisks</name>\
  <uuid>22222222-2222-3333-4444-555555555555</uuid><memory unit='MiB'>128</memory><vcpu>1</vcpu>\
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='cdrom'/><boot dev='hd'/><boot dev='network'/></os>\
  <features><acpi/><apic/></features><devices>\
  <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/var/tmp/a.img'/>\
  <target dev='hda' bus='ide'/></disk>\
  <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>\
  <disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>\
  <source file='/var/tmp/b.qcow2'/><target dev='sda' bus='scsi'/></disk>\
  <disk type='file' device='disk'><source file='/var/tmp/c.img'/><target dev='sdb' bus='sata'/></disk>\
  <interface type='user'><mac address='52:54:00:12:34:57'/></interface>\
  <serial type='pty'><target port='0'/></serial><console type='pty'><target type='serial' port='0'/></console>\
  <input type='tablet' bus='usb'/><graphics type='vnc' port='5905' autoport='no' listen='0.0.0.0'/>\
  <video><model type='vga'/></video><memballoon model='none'/></devices></domain>";

const VIRT_INSTALL_LIKE: &str = "<domain type='kvm'><name>vi</name>\
  <uuid>33333333-2222-3333-4444-555555555555</uuid><memory unit='MiB'>512</memory>\
  <currentMemory unit='MiB'>256</currentMemory><vcpu current='1'>4</vcpu>\
  <os><type arch='x86_64' machine='q35'>hvm</type></os><features><acpi/><apic/></features>\
  <cpu mode='host-passthrough'/>\
  <clock offset='utc'><timer name='rtc' tickpolicy='catchup'/><timer name='pit' tickpolicy='delay'/>\
  <timer name='hpet' present='no'/></clock>\
  <pm><suspend-to-mem enabled='no'/><suspend-to-disk enabled='no'/></pm><devices>\
  <controller type='scsi' model='virtio-scsi'/>\
  <disk type='file' device='disk'><driver name='qemu' type='qcow2' discard='unmap'/>\
  <source file='/var/tmp/d.qcow2'/><target dev='sda' bus='scsi'/><serial>abc</serial></disk>\
  <disk type='block' device='disk'><driver name='qemu' type='raw' cache='writethrough'/>\
  <source dev='/dev/loop9'/><target dev='vdb' bus='virtio'/></disk>\
  <interface type='user'><mac address='52:54:00:12:34:58'/><model type='e1000e'/></interface>\
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>\
  <serial type='file'><source path='/var/tmp/serial.log'/></serial>\
  <input type='keyboard' bus='virtio'/>\
  <graphics type='vnc' autoport='yes'><listen type='address' address='0.0.0.0'/></graphics>\
  <video><model type='cirrus'/></video><video><model type='qxl'/></video>\
  <memballoon model='virtio'><stats period='10'/></memballoon>\
  <rng model='virtio'><backend model='builtin'/></rng></devices></domain>";

const CPU_MODEL: &str = "<domain type='kvm'><name>cpu1</name>\
  <uuid>44444444-2222-3333-4444-555555555555</uuid><memory unit='MiB'>128</memory><vcpu>2</vcpu>\
  <os><type arch='x86_64' machine='pc'>hvm</type></os>\
  <cpu mode='custom' match='exact'><model>Haswell-noTSX</model>\
  <feature policy='disable' name='avx2'/><feature policy='require' name='sse4.2'/>\
  <topology sockets='1' cores='2' threads='1'/></cpu>\
  <clock offset='localtime'/><devices><graphics type='vnc' autoport='yes'/></devices></domain>";

const TCG_VIRTIO: &str = "<domain type='qemu'><name>tcg1</name>\
  <uuid>55555555-2222-3333-4444-555555555555</uuid><memory unit='GiB'>1</memory><vcpu>1</vcpu>\
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type><boot dev='network'/></os>\
  <devices><interface type='user'><mac address='52:54:00:00:00:01'/><model type='e1000'/></interface>\
  <controller type='virtio-serial' index='0'/>\
  <rng model='virtio'><rate bytes='1024' period='2000'/><backend model='random'>/dev/random</backend></rng>\
  </devices></domain>";

#[test]
fn command_lines_match_libvirt() {
    if !reference_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let mut cfg = QemuConfig::new(&state, true);
    cfg.nvram_dir = Some(state.join("nvram"));
    let drv = QemuDriver::new(cfg).unwrap();
    let our_run = state.join("run/qemu").to_string_lossy().to_string();
    let kvm = ironvirt_qemu::cache::kvm_state(Path::new("/dev/kvm")).1;
    let mut failures = Vec::new();
    for (label, xml) in [
        ("minimal i440fx", MIN),
        (
            "q35, virtio disk, sata cdrom, user net, pty serial, vnc, virtio video, rng",
            Q35,
        ),
        (
            "i440fx ide/scsi/sata disks, empty cdrom, boot order, fixed vnc",
            PC_DISKS,
        ),
        ("virt-install-like q35", VIRT_INSTALL_LIKE),
        ("named CPU model with features and topology", CPU_MODEL),
        ("TCG with network boot", TCG_VIRTIO),
    ] {
        if !kvm && xml.starts_with("<domain type='kvm'") {
            eprintln!("{label}: /dev/kvm unusable, skipped");
            continue;
        }
        let f = dir.path().join("in.xml");
        std::fs::write(&f, xml).unwrap();
        let out = Command::new("virsh")
            .args(["-c", &format!("qemu+unix:///system?socket={SOCK}")])
            .args(["domxml-to-native", "qemu-argv"])
            .arg(&f)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{label}: reference failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = normalise(words(&String::from_utf8_lossy(&out.stdout)), &our_run);
        let ours = match drv.domain_xml_to_native(xml) {
            Ok(o) => normalise(words(&o), &our_run),
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        assert!(
            ours.len() > 30 && ours.iter().any(|w| w == "-machine"),
            "{label}: {ours:?}"
        );
        if ours != theirs {
            let mut msg = format!("{label}:\n");
            let n = ours.len().max(theirs.len());
            for i in 0..n {
                let (a, b) = (ours.get(i), theirs.get(i));
                if a != b {
                    msg.push_str(&format!("  [{i}] ours:   {a:?}\n       libvirt: {b:?}\n"));
                }
            }
            failures.push(msg);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unsupported_devices_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s");
    let mut cfg = QemuConfig::new(&state, true);
    cfg.nvram_dir = Some(state.join("nvram"));
    let drv = QemuDriver::new(cfg).unwrap();
    let xml = "<domain type='qemu'><name>br</name><memory unit='MiB'>64</memory>\
      <os><type arch='x86_64' machine='pc'>hvm</type></os><devices>\
      <interface type='bridge'><source bridge='br0'/></interface></devices></domain>";
    let e = drv.domain_xml_to_native(xml).unwrap_err();
    assert_eq!(
        e.code,
        ironvirt_driver::ErrorNumber::CONFIG_UNSUPPORTED,
        "{e}"
    );
    assert!(e.message.contains("interface type 'bridge'"), "{e}");
}
