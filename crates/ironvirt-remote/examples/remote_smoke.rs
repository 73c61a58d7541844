//! Opens a URI with the remote driver and prints a few facts:
//! `cargo run -p ironvirt-remote --example remote_smoke -- URI`.

use ironvirt_driver::{Driver, Uri};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "test+unix:///default?socket=/run/libvirt-ref/libvirt-sock".into());
    let conn = ironvirt_remote::connect(&Uri::parse(&arg)?, false)?;
    println!(
        "type {} version {} lib {}",
        conn.get_type()?,
        conn.get_version()?,
        conn.get_lib_version()?
    );
    for d in conn.list_all_domains(0)? {
        println!("{} {} {:?}", d.name, d.uuid, conn.domain_get_info(&d)?);
    }
    conn.close()?;
    Ok(())
}
