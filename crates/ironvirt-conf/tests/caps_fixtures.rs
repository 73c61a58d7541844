//! Capabilities XML against libvirt's own output
//! (`tests/fixtures/caps/*.xml`, stored by `tests/fixtures/regen.sh` from
//! `virsh capabilities` on libvirt 9.0's test driver and QEMU driver).

use ironvirt_conf::Capabilities;

#[test]
fn capabilities_round_trip_byte_for_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/caps");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("caps fixtures") {
        let p = e.expect("dir entry").path();
        let text = std::fs::read_to_string(&p).expect("readable");
        let caps = Capabilities::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(caps.format(), text, "{}", p.display());
        assert_eq!(Capabilities::parse(&caps.format()).expect("reparse"), caps);
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn test_driver_capabilities_content() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/caps/test.xml");
    let caps = Capabilities::parse(&std::fs::read_to_string(p).expect("readable")).expect("parses");
    assert_eq!(caps.host.cpu.arch, "i686");
    assert_eq!(caps.host.cells.len(), 2);
    assert_eq!(caps.host.cells[1].cpus.len(), 8);
    assert_eq!(caps.guests.len(), 2);
    assert_eq!(caps.guests[0].os_type, "hvm");
    assert_eq!(caps.guests[0].domains[0].virt_type, "test");
    assert_eq!(caps.host.secmodels[0].model, "testSecurity");
}

#[test]
fn broken_capabilities_are_errors() {
    assert!(Capabilities::parse("<capabilities><host>").is_err());
    assert!(Capabilities::parse("<domain/>").is_err());
    assert!(
        Capabilities::parse("<capabilities><host><uuid>zz</uuid></host></capabilities>").is_err()
    );
}
