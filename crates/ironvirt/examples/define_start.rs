//! Defines a domain, starts it, shows its live XML, then stops and removes it.
//!
//! `cargo run -p ironvirt --example define_start`

use ironvirt::{xml_flags, Connect};

const XML: &str = "<domain type='test'>
  <name>example</name>
  <memory unit='MiB'>64</memory>
  <os><type>hvm</type></os>
</domain>";

fn main() -> Result<(), ironvirt::Error> {
    let conn = Connect::open("test:///default")?;
    let dom = conn.domain_define_xml(XML)?;
    dom.create()?;
    println!("started '{}' with id {}", dom.get_name(), dom.get_id());
    print!("{}", dom.get_xml_desc(0)?);
    dom.destroy()?;
    println!(
        "inactive definition:\n{}",
        dom.get_xml_desc(xml_flags::INACTIVE)?
    );
    dom.undefine()?;
    Ok(())
}
