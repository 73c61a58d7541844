//! Domain definitions through the QEMU driver (replayed capabilities) and
//! validation against domain capabilities.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ironvirt_driver::{event, list_flags, Driver, ErrorNumber};

fn xml(extra_devices: &str, virt: &str, os_extra: &str, cpu: &str) -> String {
    format!(
        "<domain type='{virt}'><name>vm1</name><memory>131072</memory>\
         <os><type {os_extra}>hvm</type></os>{cpu}<devices>{extra_devices}</devices></domain>"
    )
}

#[test]
fn define_fills_qemu_defaults_and_persists() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = replay(Duration::ZERO);
    let drv = replay_driver(tmp.path(), p.clone());
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev2 = events.clone();
    let id = drv
        .domain_event_register(Arc::new(move |e: &ironvirt_driver::LifecycleEvent| {
            ev2.lock()
                .expect("lock")
                .push((e.dom.name.clone(), e.event, e.detail))
        }))
        .expect("register");
    let d = drv
        .domain_define_xml(&xml("", "kvm", "machine='pc'", ""), 0)
        .expect("define");
    let out = drv.domain_get_xml_desc(&d, 0).expect("dumpxml");
    assert!(
        out.contains("<type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>"),
        "{out}"
    );
    assert!(out.contains("/bin/qemu-system-x86_64</emulator>"), "{out}");
    assert!(
        out.contains("<model fallback='forbid'>qemu64</model>"),
        "{out}"
    );
    assert!(out.contains("model='piix3-uhci'"), "{out}");
    assert!(out.contains("<memballoon model='virtio'>"), "{out}");
    assert!(!drv.domain_is_active(&d).expect("active"));
    assert!(drv.domain_is_persistent(&d).expect("persistent"));
    // The stand-in emulator is a script that exits: the start fails
    // cleanly and the domain stays shut off.
    let e = drv.domain_create(&d, 0).expect_err("no start");
    assert_ne!(e.code, ErrorNumber::NO_SUPPORT, "{e}");
    assert!(!drv.domain_is_active(&d).expect("active"));

    // redefine -> UPDATED
    drv.domain_define_xml(&out, 0).expect("redefine");
    drv.domain_set_autostart(&d, true).expect("autostart");
    assert!(drv.domain_get_autostart(&d).expect("get"));
    assert_eq!(
        drv.list_all_domains(list_flags::AUTOSTART)
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        drv.list_all_domains(list_flags::ACTIVE)
            .expect("list")
            .len(),
        0
    );

    // a second driver over the same state dir loads it back, without probing
    let p2 = replay(Duration::ZERO);
    let drv2 = replay_driver(tmp.path(), p2.clone());
    let d2 = drv2.domain_lookup_by_name("vm1").expect("lookup");
    assert_eq!(d2.uuid, d.uuid);
    assert!(drv2.domain_get_autostart(&d2).expect("autostart"));
    assert_eq!(drv2.domain_get_xml_desc(&d2, 0).expect("dumpxml"), out);
    assert_eq!(p2.calls.load(std::sync::atomic::Ordering::SeqCst), 0);

    drv.domain_undefine(&d, 0).expect("undefine");
    assert_eq!(
        drv.domain_lookup_by_name("vm1").expect_err("gone").code,
        ErrorNumber::NO_DOMAIN
    );
    assert!(!tmp.path().join("state/qemu/vm1.xml").exists());
    assert!(!tmp.path().join("state/qemu/autostart/vm1.xml").exists());
    drv.domain_event_deregister(id).expect("deregister");
    let ev = events.lock().expect("lock").clone();
    assert_eq!(
        ev,
        vec![
            ("vm1".to_string(), event::DEFINED, event::defined::ADDED),
            ("vm1".to_string(), event::DEFINED, event::defined::UPDATED),
            (
                "vm1".to_string(),
                event::UNDEFINED,
                event::undefined::REMOVED
            ),
        ]
    );
}

fn refused(devices: &str, virt: &str, os_extra: &str, cpu: &str) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = replay_driver(tmp.path(), replay(Duration::ZERO));
    let e = drv
        .domain_define_xml(&xml(devices, virt, os_extra, cpu), 0)
        .expect_err("must be refused");
    assert_eq!(e.code, ErrorNumber::CONFIG_UNSUPPORTED, "{e}");
    e.message
}

#[test]
fn validation_refuses_what_domcaps_lack() {
    let m = refused(
        "<disk type='file' device='disk'><source file='/x.img'/><target dev='hda' bus='ide'/></disk>",
        "kvm",
        "machine='q35'",
        "",
    );
    assert!(
        m.contains("disk bus 'ide'") && m.contains("pc-q35-7.2"),
        "{m}"
    );
    let m = refused(
        "<disk type='file' device='disk'><source file='/x.img'/><target dev='xvda' bus='xen'/></disk>",
        "kvm",
        "",
        "",
    );
    assert!(m.contains("disk bus 'xen'"), "{m}");
    let m = refused("<video><model type='vbox'/></video>", "kvm", "", "");
    assert!(m.contains("video model 'vbox'"), "{m}");
    let m = refused("<graphics type='rdp'/>", "kvm", "", "");
    assert!(m.contains("graphics type 'rdp'"), "{m}");
    let m = refused("", "qemu", "", "<cpu mode='host-passthrough'/>");
    assert!(m.contains("CPU mode 'host-passthrough'"), "{m}");
    let m = refused(
        "",
        "kvm",
        "",
        "<cpu mode='custom'><model>NoSuchCPU</model></cpu>",
    );
    assert!(m.contains("CPU model 'NoSuchCPU'"), "{m}");
    let m = refused("", "xen", "", "");
    assert!(m.contains("virt type 'xen'"), "{m}");
    let m = refused("", "kvm", "machine='no-such-machine'", "");
    assert!(m.contains("no-such-machine"), "{m}");
}

#[test]
fn validation_accepts_supported_config_and_hits_cache() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = replay(Duration::ZERO);
    let drv = replay_driver(tmp.path(), p.clone());
    let devs = "<disk type='file' device='disk'><source file='/x.img'/><target dev='vda' bus='virtio'/></disk>\
                <graphics type='vnc'/><video><model type='virtio'/></video>";
    drv.domain_define_xml(
        &xml(
            devs,
            "kvm",
            "machine='q35'",
            "<cpu mode='host-passthrough'/>",
        ),
        0,
    )
    .expect("define");
    let entry = drv
        .qemu_caps(&tmp.path().join("bin/qemu-system-x86_64"))
        .expect("caps");
    assert_eq!(entry.domcaps_count(), 1);
    // A second define of the same kind is a domcaps cache hit (count unchanged, no probe).
    let other = xml(devs, "kvm", "machine='pc-q35-7.2'", "").replace("vm1", "vm2");
    drv.domain_define_xml(&other, 0).expect("define");
    assert_eq!(entry.domcaps_count(), 1);
    assert_eq!(p.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Definitions made and removed from many threads at once, with readers
/// listing and looking up all the while: names and UUIDs stay one to one,
/// one of two rival definitions of a name wins, and what is on disk is
/// what the driver holds, also for a new driver over the same directory.
#[test]
fn concurrent_defines_undefines_and_lookups_stay_consistent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = replay_driver(tmp.path(), replay(Duration::ZERO));
    let named = |name: &str, uuid: &str| {
        format!(
            "<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid><memory>131072</memory>\
             <os><type machine='pc'>hvm</type></os><devices/></domain>"
        )
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let drv = drv.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut seen = 0usize;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for d in drv.list_all_domains(0).expect("list") {
                        // A listed domain may go before we look; if found, it is itself.
                        if let Ok(l) = drv.domain_lookup_by_name(&d.name) {
                            if l.uuid == d.uuid {
                                seen += 1;
                            }
                        }
                    }
                }
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..4u8)
        .map(|t| {
            let drv = drv.clone();
            std::thread::spawn(move || {
                for i in 0..25u8 {
                    let uuid = format!("{t:02x}{i:02x}0000-0000-4000-8000-000000000000");
                    let d = drv
                        .domain_define_xml(&named(&format!("w{t}-{i}"), &uuid), 0)
                        .expect("define");
                    if i % 2 == 0 {
                        drv.domain_undefine(&d, 0).expect("undefine");
                    }
                }
            })
        })
        .collect();
    // Two rivals for one name, with different UUIDs: exactly one wins.
    let rivals: Vec<_> = ["aa", "bb"]
        .into_iter()
        .map(|u| {
            let drv = drv.clone();
            let xml = named("rival", &format!("{u}000000-0000-4000-8000-000000000000"));
            std::thread::spawn(move || drv.domain_define_xml(&xml, 0).is_ok())
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let wins = rivals
        .into_iter()
        .map(|r| r.join().expect("rival"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(wins, 1, "one definition of 'rival' wins");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen: usize = readers.into_iter().map(|r| r.join().expect("reader")).sum();
    assert!(seen > 0, "readers saw domains while writers ran");

    let mut names: Vec<String> = drv
        .list_all_domains(0)
        .expect("list")
        .into_iter()
        .map(|d| d.name)
        .collect();
    names.sort();
    let mut expected: Vec<String> = (0..4u8)
        .flat_map(|t| {
            (0..25u8)
                .filter(|i| i % 2 == 1)
                .map(move |i| format!("w{t}-{i}"))
        })
        .chain(["rival".to_string()])
        .collect();
    expected.sort();
    assert_eq!(names, expected);
    let mut on_disk: Vec<String> = std::fs::read_dir(drv.config_dir())
        .expect("config dir")
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".xml")
                .map(str::to_string)
        })
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, expected,
        "the files on disk are the definitions held"
    );
    drop(drv);
    let again = replay_driver(tmp.path(), replay(Duration::ZERO));
    let mut reloaded: Vec<String> = again
        .list_all_domains(0)
        .expect("list")
        .into_iter()
        .map(|d| d.name)
        .collect();
    reloaded.sort();
    assert_eq!(reloaded, expected);
}

/// Unknown flags are refused as libvirt's flag check words it (measured on
/// the reference: only the unknown bits, no message prefix).
#[test]
fn unknown_flags_name_only_the_unknown_bits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = replay_driver(tmp.path(), replay(Duration::ZERO));
    let e = drv
        .domain_define_xml(&xml("", "kvm", "machine='pc'", ""), 0x5)
        .expect_err("flag 0x4 is unknown");
    assert_eq!(
        (e.code, e.domain, e.message.as_str()),
        (
            ErrorNumber::INVALID_ARG,
            ironvirt_driver::ErrorDomain::QEMU,
            "unsupported flags (0x4) in function qemuDomainDefineXMLFlags"
        )
    );
}
