//! Prints domain capabilities or capabilities from the real emulators:
//! `qemu-caps STATE_DIR [caps | define FILE | domcaps [machine] [virttype]]`.

use ironvirt_driver::Driver;
use ironvirt_qemu::{QemuConfig, QemuDriver};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let state = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "/tmp/ironvirt-qemu-caps".into());
    let drv = match QemuDriver::new(QemuConfig::new(state, true)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let t = std::time::Instant::now();
    let out = match args.get(2).map(String::as_str) {
        Some("caps") => drv.get_capabilities(),
        Some("define") => std::fs::read_to_string(args.get(3).map(String::as_str).unwrap_or("-"))
            .map_err(|e| {
                ironvirt_driver::Error::system(
                    ironvirt_driver::ErrorDomain::QEMU,
                    "cannot read XML",
                    &e,
                )
            })
            .and_then(|x| drv.domain_define_xml(&x, 0))
            .and_then(|d| drv.domain_get_xml_desc(&d, 0)),
        _ => drv.get_domain_capabilities(
            None,
            None,
            args.get(3).map(String::as_str),
            args.get(4).map(String::as_str),
            0,
        ),
    };
    match out {
        Ok(x) => print!("{x}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    eprintln!(
        "took {:?}, probes {}",
        t.elapsed(),
        drv.caps_cache().probe_count()
    );
}
