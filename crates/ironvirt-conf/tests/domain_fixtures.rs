//! Domain XML against libvirt's own output.
//!
//! `tests/fixtures/domain/NAME.expected.xml` and
//! `tests/fixtures/domain-invalid/NAME.expected-error` were produced by
//! libvirt 9.0 itself (`tests/fixtures/regen.sh`, which defines each input
//! on libvirt's test driver and stores `virsh dumpxml --inactive` or the
//! error). The test driver adds two defaults of its own (arch `i686`,
//! interface targets `testnetN`); `apply_test_driver_defaults` adds the
//! same here before comparing.

use ironvirt_conf::{DomainDef, FormatOptions};
use ironvirt_driver::ErrorNumber;
use std::path::{Path, PathBuf};

const INACTIVE: FormatOptions = FormatOptions {
    id: None,
    inactive: true,
    secure: false,
};

fn fixtures(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.ends_with(ext) && !n.ends_with(".expected.xml")
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no fixtures in {}", dir.display());
    v
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn formatting_matches_libvirt_byte_for_byte() {
    let mut failures = Vec::new();
    for input in fixtures("domain", ".xml") {
        let expected = read(&input.with_extension("expected.xml"));
        let mut def =
            DomainDef::parse(&read(&input)).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        def.apply_test_driver_defaults(0);
        let ours = def.format(&INACTIVE);
        if ours != expected {
            failures.push(format!(
                "{}:\n--- libvirt\n{expected}\n--- ours\n{ours}",
                input.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Inputs whose libvirt output is not stable under a second definition
/// (`tests/fixtures/domain-once`): the first definition only.
#[test]
fn first_definitions_match_libvirt() {
    let mut failures = Vec::new();
    for input in fixtures("domain-once", ".xml") {
        let expected = read(&input.with_extension("expected.xml"));
        let mut def =
            DomainDef::parse(&read(&input)).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        def.apply_test_driver_defaults(0);
        let ours = def.format(&INACTIVE);
        if ours != expected {
            failures.push(format!(
                "{}:\n--- libvirt\n{expected}\n--- ours\n{ours}",
                input.display()
            ));
        }
        // What makes them unstable: our second pass differs too.
        let again = DomainDef::parse(&ours)
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()))
            .format(&INACTIVE);
        assert_ne!(
            again,
            ours,
            "{}: stable, move it to domain/",
            input.display()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_round_trips() {
    for input in fixtures("domain", ".xml") {
        // Secure formatting keeps passwords, so nothing of the model is lost.
        let secure = FormatOptions {
            id: None,
            inactive: true,
            secure: true,
        };
        let mut def =
            DomainDef::parse(&read(&input)).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        if input.ends_with("disk-order.xml") {
            // libvirt orders disks by the bus given in the input; disks whose
            // bus comes from their name are placed differently on a second
            // pass (measured: defining libvirt's own output of this fixture
            // again moves sdz before hdd). Start from the second pass.
            def = DomainDef::parse(&def.format(&secure))
                .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        }
        let once = def.format(&secure);
        let again = DomainDef::parse(&once)
            .unwrap_or_else(|e| panic!("{} reparse: {e}\n{once}", input.display()));
        assert_eq!(
            once,
            again.format(&secure),
            "{}: formatting not stable",
            input.display()
        );
        if def != again {
            let (a, b) = (format!("{def:?}"), format!("{again:?}"));
            let at = a
                .bytes()
                .zip(b.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            let from = at.saturating_sub(200);
            panic!(
                "{}: model changed after a round trip near:\n{}\nvs\n{}",
                input.display(),
                &a[from..(at + 100).min(a.len())],
                &b[from..(at + 100).min(b.len())]
            );
        }
        // libvirt's own output parses to the same model too.
        let expected = read(&input.with_extension("expected.xml"));
        let mut from_libvirt =
            DomainDef::parse(&expected).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let mut ours = def.clone();
        ours.apply_test_driver_defaults(0);
        from_libvirt.apply_test_driver_defaults(0);
        if ours
            .devices
            .graphics
            .iter()
            .all(|g| g.attr("passwd").is_none())
        {
            assert!(
                ours == from_libvirt,
                "{}: libvirt's output parses differently",
                input.display()
            );
        }
    }
}

#[test]
fn errors_match_libvirt() {
    for input in fixtures("domain-invalid", ".xml") {
        let expected = read(&input.with_extension("expected-error"));
        let mut lines = expected.lines();
        let code: i32 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .expect("code line");
        let domain: i32 = lines
            .next()
            .and_then(|l| l.parse().ok())
            .expect("domain line");
        let message: Vec<&str> = lines.collect();
        let message = message.join("\n");
        let err = match DomainDef::parse(&read(&input)) {
            Ok(_) => panic!("{}: accepted, libvirt says {message}", input.display()),
            Err(e) => e,
        };
        assert_eq!(
            (err.code.0, err.domain.0),
            (code, domain),
            "{}: {} vs libvirt {message}",
            input.display(),
            err.message
        );
        if err.code == ErrorNumber::XML_DETAIL {
            // libxml2's wording cannot be reproduced; the position prefix is.
            assert!(
                err.message.starts_with("(domain_definition):"),
                "{}: {}",
                input.display(),
                err.message
            );
        } else {
            assert_eq!(err.message, message, "{}", input.display());
        }
    }
}

#[test]
fn truncated_and_corrupted_inputs_never_panic() {
    for input in fixtures("domain", ".xml") {
        let text = read(&input);
        let bytes = text.as_bytes();
        for cut in 0..bytes.len() {
            if let Ok(s) = std::str::from_utf8(&bytes[..cut]) {
                let _ = DomainDef::parse(s);
            }
        }
        let mut seed: u32 = 0x1234_5678;
        for _ in 0..400 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let mut b = bytes.to_vec();
            let pos = (seed >> 8) as usize % b.len();
            const PICKS: &[u8] = b"<>/='\"&; -x0:9";
            b[pos] = PICKS[(seed as usize >> 3) % PICKS.len()];
            if let Ok(s) = String::from_utf8(b) {
                if let Ok(def) = DomainDef::parse(&s) {
                    // Whatever parses must format and parse again.
                    let out = def.format(&INACTIVE);
                    if let Err(e) = DomainDef::parse(&out) {
                        panic!(
                            "{}: mutation at {pos} formats to unparsable XML: {e}\n{out}",
                            input.display()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn generated_uuid_and_mac() {
    let xml = "<domain type='test'><name>g</name><memory>1024</memory><os><type>hvm</type></os>\
               <devices><interface type='network'><source network='default'/></interface></devices></domain>";
    let a = DomainDef::parse(xml).unwrap();
    let b = DomainDef::parse(xml).unwrap();
    assert_ne!(a.uuid, b.uuid, "uuid must be random when absent");
    assert_eq!(a.uuid.0[6] >> 4, 4, "version 4 uuid");
    let mac = a.devices.interfaces[0].mac.to_string();
    assert!(mac.starts_with("52:54:00:"), "{mac}");
}

#[test]
fn live_id_and_secure_flags() {
    let xml = "<domain type='test'><name>g</name><memory>1024</memory><os><type>hvm</type></os>\
               <devices><graphics type='vnc' passwd='s3cret'/></devices></domain>";
    let def = DomainDef::parse(xml).unwrap();
    let live = def.format(&FormatOptions {
        id: Some(3),
        inactive: false,
        secure: false,
    });
    assert!(live.starts_with("<domain type='test' id='3'>\n"), "{live}");
    assert!(!live.contains("s3cret"));
    let secure = def.format(&FormatOptions {
        id: None,
        inactive: true,
        secure: true,
    });
    assert!(secure.starts_with("<domain type='test'>\n"));
    assert!(secure.contains("passwd='s3cret'"), "{secure}");
}

#[test]
fn unknown_elements_are_dropped() {
    let xml = "<domain type='test'><name>u</name><memory>1024</memory><os><type>hvm</type></os>\
               <bogus a='1'/><devices><gadget/><disk type='file'><source file='/a'/><target dev='vda'/><sparkle/></disk></devices></domain>";
    let out = DomainDef::parse(xml).unwrap().format(&INACTIVE);
    assert!(
        !out.contains("bogus") && !out.contains("gadget") && !out.contains("sparkle"),
        "{out}"
    );
    assert!(out.contains("<target dev='vda' bus='virtio'/>"), "{out}");
}

#[test]
fn serial_console_is_written_from_its_serial_port() {
    // libvirt writes an hvm guest's serial console as a copy of the serial
    // port at the time of formatting: on its QEMU driver, the console of a
    // pci-serial port shows the PCI address the driver gave the port
    // (measured on libvirt 9.0, `<address type='pci' ... slot='0x03' .../>`
    // under both `<serial>` and `<console>`).
    let xml = "<domain type='test'><name>c</name><memory>1024</memory><os><type>hvm</type></os>\
               <devices><serial type='pty'><target type='pci-serial'/></serial><console type='pty'/></devices></domain>";
    let mut def = DomainDef::parse(xml).unwrap();
    def.devices.serials[0].info.address = Some(ironvirt_conf::Address::Pci {
        domain: 0,
        bus: 0,
        slot: 3,
        function: 0,
        multifunction: None,
    });
    let out = def.format(&INACTIVE);
    let addr = "<address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>";
    let console = &out[out.find("<console").expect("console")..];
    assert!(
        console.starts_with(&format!(
            "<console type='pty'>\n      <target type='serial' port='0'/>\n      {addr}\n    </console>"
        )),
        "{out}"
    );
    assert_eq!(out.matches(addr).count(), 2, "{out}");
}
