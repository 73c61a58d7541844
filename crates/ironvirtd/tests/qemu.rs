//! The QEMU driver served by ironvirtd to the real virsh: capabilities and
//! domain capabilities come through the daemon unchanged, the capabilities
//! cache survives a daemon restart without starting QEMU again, and
//! definitions persist across restarts.
//!
//! How our capabilities compare with the reference libvirtd's is checked
//! in ironvirt-qemu's own tests (tests/reference.rs); here the daemon path.
#![allow(clippy::unwrap_used)]

mod common;

use common::{unique, virsh, Daemon};
use ironvirt_driver::Driver;
use std::time::Duration;

fn qemu_uri(d: &Daemon) -> String {
    format!("qemu+unix:///system?socket={}", d.rw().display())
}

fn out(o: &std::process::Output) -> String {
    assert!(
        o.status.success(),
        "virsh failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stop(d: &mut Daemon) {
    d.signal(libc::SIGTERM);
    assert!(
        d.wait(Duration::from_secs(20)).is_some(),
        "daemon did not stop"
    );
}

#[test]
fn qemu_capabilities_cache_and_definitions_through_the_daemon() {
    if !std::path::Path::new("/usr/bin/qemu-system-x86_64").exists() {
        panic!("qemu-system-x86_64 is not installed; the test command installs qemu-system-x86");
    }
    let mut d = Daemon::start();
    let uri = qemu_uri(&d);
    let virt = if std::path::Path::new("/dev/kvm").exists() {
        "kvm"
    } else {
        "qemu"
    };

    // The first call probes QEMU; what virsh prints is what the driver formats.
    let caps = out(&virsh(&uri, &["capabilities"]));
    let dc_default = out(&virsh(&uri, &["domcapabilities", "--virttype", virt]));
    let dc_q35 = out(&virsh(
        &uri,
        &["domcapabilities", "--machine", "q35", "--virttype", virt],
    ));
    let dc_tcg = out(&virsh(&uri, &["domcapabilities", "--virttype", "qemu"]));
    assert!(
        caps.contains("<capabilities>") && caps.contains("/usr/bin/qemu-system-x86_64"),
        "{caps}"
    );
    for dc in [&dc_default, &dc_q35, &dc_tcg] {
        assert!(dc.contains("<domainCapabilities>"), "{dc}");
        assert!(
            dc.contains("<path>/usr/bin/qemu-system-x86_64</path>"),
            "{dc}"
        );
    }
    assert!(dc_q35.contains("<machine>pc-q35-"), "{dc_q35}");
    assert!(dc_tcg.contains("<domain>qemu</domain>"), "{dc_tcg}");

    // Same text as the driver gives in-process over the same state dir.
    let local =
        ironvirt_qemu::QemuDriver::new(ironvirt_qemu::QemuConfig::new(d.state_dir.clone(), true))
            .unwrap();
    let direct = local
        .get_domain_capabilities(None, None, Some("q35"), Some(virt), 0)
        .unwrap();
    assert_eq!(dc_q35.trim_end(), direct.trim_end());
    assert_eq!(
        local.caps_cache().probe_count(),
        0,
        "the in-process driver reused the daemon's cache file"
    );

    // domxml-to-native reaches the driver and prints its command line.
    let argv_xml = d.dir.path().join("argv.xml");
    std::fs::write(
        &argv_xml,
        format!(
            "<domain type='{virt}'><name>argv</name><uuid>51111111-2222-3333-4444-555555555555</uuid>\
             <memory unit='MiB'>128</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>\
             <devices/></domain>"
        ),
    )
    .unwrap();
    let native = out(&virsh(
        &uri,
        &["domxml-to-native", "qemu-argv", argv_xml.to_str().unwrap()],
    ));
    let direct = Driver::domain_xml_to_native(
        &*local,
        "qemu-argv",
        &std::fs::read_to_string(&argv_xml).unwrap(),
        0,
    )
    .unwrap();
    assert_eq!(native, format!("{direct}\n"));
    assert!(
        native.contains("-name guest=argv,debug-threads=on"),
        "{native}"
    );
    let o = virsh(
        &uri,
        &["domxml-to-native", "vmx", argv_xml.to_str().unwrap()],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim_end(),
        "error: invalid argument: unsupported config type vmx"
    );
    drop(local);

    let log = d.log();
    assert_eq!(
        log.matches("probing QEMU binary binary=/usr/bin/qemu-system-x86_64 ")
            .count(),
        1,
        "one probe of a binary, however many calls:\n{log}"
    );

    // A definition made through the daemon.
    let name = unique("qd");
    let xml = format!(
        "<domain type='{virt}'><name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>\
         <os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>"
    );
    let file = d.dir.path().join("dom.xml");
    std::fs::write(&file, &xml).unwrap();
    out(&virsh(&uri, &["define", file.to_str().unwrap()]));
    let before = out(&virsh(&uri, &["dumpxml", "--inactive", &name]));
    assert!(
        before.contains("<emulator>/usr/bin/qemu-system-x86_64</emulator>"),
        "{before}"
    );
    assert!(
        !before.contains("machine='pc'"),
        "machine made canonical: {before}"
    );

    // An unsupported configuration is refused on define, from the cached domcaps.
    let bad = xml.replace(&name, &format!("{name}-bad")).replace(
        "<devices/>",
        "<devices><video><model type='vbox'/></video></devices>",
    );
    std::fs::write(&file, &bad).unwrap();
    let o = virsh(&uri, &["define", file.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("unsupported configuration"), "{err}");

    // Restart: the cache file is reused (no QEMU started), the definition is back.
    stop(&mut d);
    d.spawn(&[]);
    let after = out(&virsh(&uri, &["dumpxml", "--inactive", &name]));
    assert_eq!(before, after);
    let dc_again = out(&virsh(
        &uri,
        &["domcapabilities", "--machine", "q35", "--virttype", virt],
    ));
    assert_eq!(dc_q35, dc_again);
    let log = d.log();
    let second_run = log.rsplit("ironvirtd ready").next().unwrap_or("");
    assert!(
        !second_run.contains("probing QEMU binary"),
        "restart probed again:\n{log}"
    );
    assert!(
        second_run.contains("QEMU capabilities loaded from cache"),
        "{log}"
    );
    let list = out(&virsh(&uri, &["list", "--all", "--name"]));
    assert!(list.lines().any(|l| l == name), "{list}");
    out(&virsh(&uri, &["undefine", &name]));
    let list = out(&virsh(&uri, &["list", "--all", "--name"]));
    assert!(!list.lines().any(|l| l == name), "{list}");
}
