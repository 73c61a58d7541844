//! Parse + format of a typical domain definition (the virt-manager-style
//! fixture: about 110 lines, q35 guest with disks, controllers, network,
//! serial/console, channels, graphics, video, balloon, rng) and of a
//! 60-line virt-install definition.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use ironvirt_conf::{DomainDef, FormatOptions};

fn fixture(name: &str) -> String {
    let p = format!(
        "{}/tests/fixtures/domain/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

fn bench(c: &mut Criterion) {
    let opts = FormatOptions {
        id: None,
        inactive: true,
        secure: false,
    };
    for name in ["virtinst-kvm-disk.xml", "virt-manager.xml"] {
        let xml = fixture(name);
        c.bench_function(
            &format!("parse+format {name} ({} lines)", xml.lines().count()),
            |b| {
                b.iter(|| {
                    let def = DomainDef::parse(black_box(&xml)).expect("fixture parses");
                    black_box(def.format(&opts))
                })
            },
        );
        let def = DomainDef::parse(&xml).expect("fixture parses");
        c.bench_function(&format!("format {name}"), |b| {
            b.iter(|| black_box(def.format(&opts)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
