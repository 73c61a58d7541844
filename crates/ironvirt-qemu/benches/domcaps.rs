//! Domain capabilities: warm lookup + format (cache hit) and a cold probe
//! of the real emulator (empty cache, fresh driver).

use criterion::{criterion_group, criterion_main, Criterion};
use ironvirt_driver::Driver;
use ironvirt_qemu::{QemuConfig, QemuDriver};

const QEMU: &str = "/usr/bin/qemu-system-x86_64";

fn warm(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = QemuDriver::new(QemuConfig::new(tmp.path(), true)).expect("driver");
    drv.get_domain_capabilities(None, None, None, None, 0)
        .expect("domcaps");
    c.bench_function("domcaps_warm", |b| {
        b.iter(|| {
            drv.get_domain_capabilities(None, None, None, None, 0)
                .expect("domcaps")
        })
    });
}

fn cold(c: &mut Criterion) {
    if !std::path::Path::new(QEMU).exists() {
        eprintln!("{QEMU} missing: skipping the cold probe benchmark");
        return;
    }
    let mut g = c.benchmark_group("domcaps_cold");
    g.sample_size(10);
    g.bench_function("probe_and_build", |b| {
        b.iter(|| {
            let tmp = tempfile::tempdir().expect("tmp");
            let drv = QemuDriver::new(QemuConfig::new(tmp.path(), true)).expect("driver");
            drv.get_domain_capabilities(Some(QEMU), None, None, None, 0)
                .expect("domcaps")
        })
    });
    g.finish();
}

criterion_group!(benches, warm, cold);
criterion_main!(benches);
