//! Lists the domains of a hypervisor like `virsh list --all`.
//!
//! `cargo run -p ironvirt --example list -- test:///default`

fn main() -> Result<(), ironvirt::Error> {
    let uri = std::env::args().nth(1).unwrap_or_default();
    let conn = ironvirt::Connect::open(&uri)?;
    println!("{:>4}  {:<20} state", "id", "name");
    for dom in conn.list_all_domains(0)? {
        let (state, _) = dom.get_state()?;
        let id = match dom.get_id() {
            -1 => "-".to_string(),
            n => n.to_string(),
        };
        println!("{id:>4}  {:<20} {state}", dom.get_name());
    }
    Ok(())
}
