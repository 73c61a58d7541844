//! Prints the lifecycle events a few operations raise.
//!
//! `cargo run -p ironvirt --example events`

use ironvirt::{Connect, LifecycleEvent};

fn main() -> Result<(), ironvirt::Error> {
    let conn = Connect::open("test:///default")?;
    let id = conn.domain_event_register(|e: &LifecycleEvent| {
        println!(
            "event: domain '{}' type {} detail {}",
            e.dom.name, e.event, e.detail
        );
    })?;
    let dom = conn.domain_lookup_by_name("test")?;
    dom.suspend()?;
    dom.resume()?;
    dom.destroy()?;
    dom.create()?;
    conn.domain_event_deregister(id)?;
    Ok(())
}
