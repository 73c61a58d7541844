//! The real Debian virsh against ironvirtd, compared with what it prints
//! against the reference libvirtd.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Output with the parts that differ between runs removed: UUIDs
/// (random per definition) and CPU time (a clock).
fn normalize(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.starts_with("UUID:")
                || l.trim_start().starts_with("<uuid>")
                || l.starts_with("CPU time:")
            {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn domain_xml(name: &str) -> String {
    format!(
        "<domain type='test'><name>{name}</name><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>"
    )
}

/// One virsh session that defines, inspects, starts, suspends, resumes,
/// shuts down, destroys and undefines a domain, with the error cases
/// between; the transcript must match the reference's line for line.
#[test]
fn lifecycle_transcript_matches_reference() {
    let d = Daemon::start();
    let name = unique("vt");
    let xml = d.dir.path().join("dom.xml");
    std::fs::write(&xml, domain_xml(&name)).unwrap();
    let x = xml.display();
    let script = format!(
        "define {x}; list --all --name; dominfo {name}; domstate {name}; start {name}; domstate --reason {name}; \
         domid {name}; suspend {name}; domstate --reason {name}; suspend {name}; resume {name}; resume {name}; \
         shutdown {name}; domstate --reason {name}; start {name}; destroy {name}; destroy {name}; \
         dumpxml {name}; dumpxml --inactive {name}; autostart {name}; dominfo {name}; autostart --disable {name}; \
         undefine {name}; undefine {name}; dominfo {name}; domstate nosuch-{name}; start nosuch-{name}; \
         create {x}; list; domstate {name}; destroy {name}; list --all; \
         nodeinfo; domuuid test; domname 1; domid test; dumpxml test; list --inactive; list --transient; \
         list --persistent --name; list --autostart; list --no-autostart --name; \
         reboot test; reset test; destroy test; reboot test; start test; list"
    );
    let ours = normalize(&virsh_script(&d.test_uri(), &script));
    assert!(
        ours.contains(&format!("Domain '{name}' defined")),
        "{ours}\n{}",
        d.log()
    );
    assert!(ours.contains(&format!("Domain '{name}' started")), "{ours}");
    assert!(ours.contains("paused (user)"), "{ours}");
    assert!(
        ours.contains(&format!("Domain '{name}' destroyed")),
        "{ours}"
    );
    assert!(
        ours.contains(&format!("Domain '{name}' has been undefined")),
        "{ours}"
    );
    if reference() {
        let theirs = normalize(&virsh_script(
            &format!("test+unix:///default?socket={REF_SOCK}"),
            &script,
        ));
        assert_eq!(ours, theirs);
    }
}

#[test]
fn capabilities_nodeinfo_and_errors_match_reference() {
    let d = Daemon::start();
    let cmds: &[&[&str]] = &[
        &["capabilities"],
        &["nodeinfo"],
        &["uri"],
        &["version"],
        &["hostname"],
        &["dominfo", "no-such-domain"],
        &["start", "no-such-domain"],
        &["domstate", "42"],
        &["destroy", "00000000-0000-0000-0000-000000000000"],
        &["define", "/nonexistent/file.xml"],
        &["domcapabilities"],
        &["list", "--all"],
    ];
    for c in cmds {
        let ours = virsh(&d.test_uri(), c);
        if reference() {
            let theirs = virsh(&format!("test+unix:///default?socket={REF_SOCK}"), c);
            let norm = |o: &std::process::Output| {
                let s = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                s.replace(&d.rw().display().to_string(), "SOCK")
                    .replace(REF_SOCK, "SOCK")
            };
            assert_eq!(norm(&ours), norm(&theirs), "virsh {c:?}");
            assert_eq!(ours.status.code(), theirs.status.code(), "virsh {c:?}");
        }
    }
    let caps = virsh(&d.test_uri(), &["capabilities"]);
    assert!(String::from_utf8_lossy(&caps.stdout).contains("<capabilities>"));
}

/// The unknown-driver error, printed by virsh as against libvirtd.
#[test]
fn unknown_driver_error_matches_reference() {
    let d = Daemon::start();
    let ours = virsh(
        &format!("foo+unix:///x?socket={}", d.rw().display()),
        &["list"],
    );
    let text = String::from_utf8_lossy(&ours.stderr).to_string();
    assert!(
        text.contains("no connection driver available for foo:///x"),
        "{text}"
    );
    if reference() {
        let theirs = virsh(&format!("foo+unix:///x?socket={REF_SOCK}"), &["list"]);
        assert_eq!(text, String::from_utf8_lossy(&theirs.stderr));
        assert_eq!(ours.status.code(), theirs.status.code());
    }
}

/// `virsh -r` and the read-only socket read everything and change nothing.
#[test]
fn read_only_socket_reads_and_refuses_writes() {
    let d = Daemon::start();
    let name = unique("ro");
    let xml = d.dir.path().join("dom.xml");
    std::fs::write(&xml, domain_xml(&name)).unwrap();
    let script = format!(
        "list --all; dominfo test; domstate test; dumpxml test; dumpxml --security-info test; nodeinfo; \
         destroy test; suspend test; define {}; undefine test; autostart test; list --all",
        xml.display()
    );
    let ours = normalize(&virsh_script(&d.test_uri_ro(), &script));
    assert!(
        ours.contains("operation forbidden: read only access prevents virDomainDestroy"),
        "{ours}"
    );
    assert!(
        ours.contains("operation forbidden: read only access prevents virDomainDefineXML"),
        "{ours}"
    );
    assert!(
        ours.contains("operation forbidden: virDomainGetXMLDesc with secure flag"),
        "{ours}"
    );
    assert!(ours.contains(" 1    test   running"), "{ours}");
    // virsh -r on the read-write socket opens read-only as well.
    let o = Command::new("virsh")
        .args(["-r", "-c", &d.test_uri(), "destroy", "test"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("read only access prevents virDomainDestroy")
    );
    if reference() {
        let theirs = normalize(&virsh_script(
            &format!("test+unix:///default?socket={REF_SOCK_RO}"),
            &script,
        ));
        assert_eq!(ours, theirs);
    }
}

/// `virsh event --all --loop` sees every lifecycle event another client causes.
#[test]
fn virsh_event_loop_sees_lifecycle_events() {
    let d = Daemon::start();
    let name = unique("ev");
    let xml = d.dir.path().join("dom.xml");
    std::fs::write(&xml, domain_xml(&name)).unwrap();
    let uri = d.test_uri();
    let watcher = Command::new("virsh")
        .args(["-c", &uri, "event", "--all", "--loop", "--timeout", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the watcher registered (its connection keeps the default
    // state alive, so the domain below is seen by it).
    std::thread::sleep(Duration::from_millis(1500));
    let out = virsh_script(
        &uri,
        &format!(
            "define {}; start {name}; suspend {name}; resume {name}; destroy {name}; undefine {name}",
            xml.display()
        ),
    );
    assert!(out.contains("has been undefined"), "{out}");
    let o = watcher.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let expect = [
        "Defined Added",
        "Started Booted",
        "Suspended Paused",
        "Resumed Unpaused",
        "Stopped Destroyed",
        "Undefined Removed",
    ];
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&name)).collect();
    assert_eq!(
        lines.len(),
        expect.len(),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for (l, e) in lines.iter().zip(expect) {
        assert_eq!(*l, format!("event 'lifecycle' for domain '{name}': {e}"));
    }
    assert!(text.contains("events received: 6"), "{text}");
}
