//! Times lookup+info round trips through the Rust client:
//! `cargo run --release -p ironvirt-remote --example remote_calls -- URI [N]`.

use ironvirt_driver::Uri;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let uri = args
        .next()
        .unwrap_or_else(|| "test+unix:///default?socket=/run/libvirt-ref/libvirt-sock".into());
    let n: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5000);
    let conn = ironvirt_remote::open(&Uri::parse(&uri)?, false)?;
    for _ in 0..2 {
        let t = Instant::now();
        for _ in 0..n {
            let d = conn.domain_lookup_by_name("test")?;
            conn.domain_get_info(&d)?;
        }
        let dt = t.elapsed().as_secs_f64();
        println!("lookup_info_1conn {:.0} calls/s", 2.0 * f64::from(n) / dt);
    }
    Ok(())
}
