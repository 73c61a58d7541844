//! python3-libvirt (the real binding over libvirt's client library)
//! against ironvirtd, compared with the reference libvirtd.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;

const SCRIPT: &str = r#"
import libvirt, sys, threading, time
libvirt.registerErrorHandler(lambda *a: None, None)
uri, name = sys.argv[1], sys.argv[2]
libvirt.virEventRegisterDefaultImpl()
def loop():
    while True:
        libvirt.virEventRunDefaultImpl()
threading.Thread(target=loop, daemon=True).start()
c = libvirt.open(uri)
got = []
legacy = []
cid = c.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                               lambda conn, dom, ev, det, op: got.append((dom.name(), ev, det)), None)
c.domainEventRegister(lambda conn, dom, ev, det, op: legacy.append((dom.name(), ev, det)), None)
c2 = libvirt.open(uri)
xml = "<domain type='test'><name>%s</name><memory>65536</memory><os><type>hvm</type></os></domain>" % name
d = c2.defineXML(xml)
print("defined", d.name(), d.ID(), d.isActive(), d.isPersistent(), d.info()[0])
d.create()
print("started", d.ID() > 0, d.state(), d.isActive())
d.suspend(); print("suspended", d.state())
d.resume(); print("resumed", d.state())
d.shutdown(); print("shutdown", d.state())
d.createWithFlags(0); d.destroy(); print("destroyed", d.state())
print("autostart", d.autostart()); d.setAutostart(1); print("autostart", d.autostart())
print("ostype", d.OSType(), "maxmem", d.maxMemory(), "updated", d.isUpdated(), "managed", d.hasManagedSaveImage())
print("label", d.securityLabel())
print("xml has name", ("<name>%s</name>" % name) in d.XMLDesc(0))
print("byuuid", c2.lookupByUUIDString(d.UUIDString()).name())
d.undefine()
t = c2.createXML(xml, 0)
print("transient", t.isPersistent(), t.isActive())
print("byid", c2.lookupByID(t.ID()).name() == name)
t.destroy()
for f in (lambda: c2.lookupByName(name), lambda: c2.lookupByID(99999)):
    try:
        f()
    except libvirt.libvirtError as e:
        print("error", e.get_error_code(), e.get_error_domain(), e.get_error_message())
time.sleep(0.5)
mine = [g for g in got if g[0] == name]
print("events", mine)
print("legacy", [g for g in legacy if g[0] == name])
c.domainEventDeregisterAny(cid)
c.domainEventDeregister(None) if False else None
print("type", c.getType(), "lib", c.getLibVersion(), "ver", c.getVersion(), "secure", c.isSecure(), "alive", c.isAlive())
print("node", c.getInfo(), c.getSecurityModel())
print("caps", c.getCapabilities().startswith("<capabilities>"))
print("domains", sorted((x.name(), x.ID()) for x in c.listAllDomains()), c.listDomainsID(), c.numOfDomains(), c.numOfDefinedDomains())
c2.close()
c.close()
"#;

fn run(uri: &str, name: &str) -> String {
    let o = Command::new("/usr/bin/python3")
        .args(["-c", SCRIPT, uri, name])
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn python_binding_drives_lifecycle_and_events() {
    let d = Daemon::start();
    let name = unique("py");
    let ours = run(&d.test_uri(), &name);
    assert!(ours.contains("started True [1, 1] 1"), "{ours}");
    // define, start, suspend, resume, shutdown, start, destroy, undefine,
    // then start and stop of the transient domain.
    assert!(
        ours.contains("events [('NAME', 0, 0), ('NAME', 2, 0), ('NAME', 3, 0), ('NAME', 4, 0), ('NAME', 5, 0), ('NAME', 2, 0), ('NAME', 5, 1), ('NAME', 1, 0), ('NAME', 2, 0), ('NAME', 5, 1)]".replace("NAME", &name).as_str()),
        "{ours}"
    );
    assert!(
        ours.contains(&format!("legacy [('{name}', 0, 0)")),
        "{ours}"
    );
    if reference() {
        let theirs = run(&format!("test+unix:///default?socket={REF_SOCK}"), &name);
        assert_eq!(
            ours,
            theirs.replace(REF_SOCK, &d.rw().display().to_string())
        );
    }
}
