//! Records the QMP replies of the installed emulators into
//! `tests/fixtures/qmp/<binary>.json`, for the tests that replay them.
//! Run by `tests/record-qmp.sh` (it is ignored in normal test runs).

use std::path::{Path, PathBuf};

use ironvirt_qemu::probe::{Prober, QmpProber};

#[test]
#[ignore = "records fixtures from the real QEMU; run tests/record-qmp.sh"]
fn record_qmp_fixtures() {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qmp");
    std::fs::create_dir_all(&out).expect("fixture dir");
    let kvm = ironvirt_qemu::cache::kvm_state(Path::new("/dev/kvm")).1;
    for bin in ["/usr/bin/qemu-system-x86_64", "/usr/bin/qemu-system-i386"] {
        let raw = QmpProber::default()
            .probe(Path::new(bin), kvm)
            .expect("probe");
        let name = Path::new(bin)
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name");
        let json = serde_json::to_string(&raw).expect("serialise");
        std::fs::write(out.join(format!("{name}.json")), json).expect("write");
    }
}
