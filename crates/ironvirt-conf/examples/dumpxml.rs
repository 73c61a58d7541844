//! Parses a domain XML file and prints it the way `virsh dumpxml --inactive`
//! would: `cargo run -p ironvirt-conf --example dumpxml FILE [--test-driver]`.
//! With `--test-driver`, the defaults of libvirt's test driver are applied
//! too (arch i686, interface targets testnetN).

use ironvirt_conf::{DomainDef, FormatOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: dumpxml FILE [--test-driver]");
        std::process::exit(2);
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    match DomainDef::parse(&text) {
        Ok(mut def) => {
            if args.iter().any(|a| a == "--test-driver") {
                def.apply_test_driver_defaults(0);
            }
            print!(
                "{}",
                def.format(&FormatOptions {
                    id: None,
                    inactive: true,
                    secure: false
                })
            );
        }
        Err(e) => {
            println!(
                "code={} domain={} msg={:?}",
                e.code.0, e.domain.0, e.message
            );
            std::process::exit(1);
        }
    }
}
