//! `<address>`: where a device sits on its bus.

use crate::dom::{self, Node};
use crate::generic::Element;
use crate::xml::{self, Writer};
use ironvirt_driver::Result;

/// A device address.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Address {
    /// `type='pci'`.
    Pci {
        /// PCI domain.
        domain: u32,
        /// Bus.
        bus: u32,
        /// Slot.
        slot: u32,
        /// Function.
        function: u32,
        /// `multifunction` on/off.
        multifunction: Option<bool>,
    },
    /// `type='drive'`.
    Drive {
        /// Controller index.
        controller: u32,
        /// Bus.
        bus: u32,
        /// Target.
        target: u32,
        /// Unit.
        unit: u32,
    },
    /// `type='virtio-serial'`.
    VirtioSerial {
        /// Controller index.
        controller: u32,
        /// Bus.
        bus: u32,
        /// Port (absent: assigned by the driver).
        port: Option<u32>,
    },
    /// `type='ccid'`.
    Ccid {
        /// Controller index.
        controller: u32,
        /// Slot.
        slot: u32,
    },
    /// `type='usb'`.
    Usb {
        /// Bus.
        bus: u32,
        /// Port path (`1`, `1.2`).
        port: Option<String>,
    },
    /// `type='isa'`.
    Isa {
        /// I/O base.
        iobase: Option<u32>,
        /// IRQ.
        irq: Option<u32>,
    },
    /// Any other type (`spapr-vio`, `ccw`, `virtio-mmio`, `unassigned`,
    /// `dimm`), kept as written.
    Other(Element),
}

fn num(node: Node<'_, '_>, name: &str) -> Result<Option<u32>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => parse_c_uint(v)
            .map(Some)
            .ok_or_else(|| xml::xml_err(format!("Cannot parse <address> '{name}' attribute"))),
    }
}

/// ISA numbers are read as hexadecimal (`0x` prefix optional).
fn hex(node: Node<'_, '_>, name: &str) -> Result<Option<u32>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => {
            let t = v.trim();
            let t = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            u32::from_str_radix(t, 16)
                .map(Some)
                .map_err(|_| xml::xml_err(format!("Cannot parse <address> '{name}' attribute")))
        }
    }
}

/// `strtoul` with base 0: `0x` hex, leading `0` octal, else decimal.
pub fn parse_c_uint(v: &str) -> Option<u32> {
    let t = v.trim();
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if t.len() > 1 && t.starts_with('0') {
        (&t[1..], 8)
    } else {
        (t, 10)
    };
    if digits.is_empty() {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

impl Address {
    /// Parses an `<address>` element. `type` absent is a PCI address only
    /// inside hostdev sources (`default_pci`).
    pub fn parse(node: roxmltree::Node<'_, '_>, default_pci: bool) -> Result<Address> {
        dom::with_rox_node(node, |n| Address::from_dom(n, default_pci))
    }

    pub(crate) fn from_dom(node: Node<'_, '_>, default_pci: bool) -> Result<Address> {
        let t = node
            .attribute("type")
            .or(if default_pci { Some("pci") } else { None });
        Ok(match t {
            Some("pci") => Address::Pci {
                domain: num(node, "domain")?.unwrap_or(0),
                bus: num(node, "bus")?.unwrap_or(0),
                slot: num(node, "slot")?.unwrap_or(0),
                function: num(node, "function")?.unwrap_or(0),
                multifunction: dom::attr_onoff(node, "multifunction")?,
            },
            Some("drive") => Address::Drive {
                controller: num(node, "controller")?.unwrap_or(0),
                bus: num(node, "bus")?.unwrap_or(0),
                target: num(node, "target")?.unwrap_or(0),
                unit: num(node, "unit")?.unwrap_or(0),
            },
            Some("virtio-serial") => Address::VirtioSerial {
                controller: num(node, "controller")?.unwrap_or(0),
                bus: num(node, "bus")?.unwrap_or(0),
                port: num(node, "port")?,
            },
            Some("ccid") => Address::Ccid {
                controller: num(node, "controller")?.unwrap_or(0),
                slot: num(node, "slot")?.unwrap_or(0),
            },
            Some("usb") => Address::Usb {
                bus: num(node, "bus")?.unwrap_or(0),
                port: dom::attr(node, "port"),
            },
            Some("isa") => Address::Isa {
                iobase: hex(node, "iobase")?,
                irq: hex(node, "irq")?,
            },
            Some(other)
                if [
                    "spapr-vio",
                    "ccw",
                    "virtio-mmio",
                    "unassigned",
                    "dimm",
                    "virtio-s390",
                    "none",
                ]
                .contains(&other) =>
            {
                Address::Other(Element::from_dom(node, false))
            }
            Some(other) => return Err(xml::internal(format!("unknown address type '{other}'"))),
            None => return Err(xml::internal("No type specified for device address")),
        })
    }

    /// Writes the element; `with_type` is false inside hostdev sources.
    pub fn write(&self, w: &mut Writer, with_type: bool) {
        match self {
            Address::Pci {
                domain,
                bus,
                slot,
                function,
                multifunction,
            } => {
                w.start("address");
                if with_type {
                    w.attr("type", "pci");
                }
                w.attr_hex("domain", *domain, 4)
                    .attr_hex("bus", *bus, 2)
                    .attr_hex("slot", *slot, 2)
                    .attr_hex("function", *function, 1);
                w.attr_opt("multifunction", multifunction.map(xml::onoff));
                w.end();
            }
            Address::Drive {
                controller,
                bus,
                target,
                unit,
            } => {
                w.start("address")
                    .attr("type", "drive")
                    .attr_int("controller", controller)
                    .attr_int("bus", bus)
                    .attr_int("target", target)
                    .attr_int("unit", unit)
                    .end();
            }
            Address::VirtioSerial {
                controller,
                bus,
                port,
            } => {
                w.start("address")
                    .attr("type", "virtio-serial")
                    .attr_int("controller", controller)
                    .attr_int("bus", bus);
                w.attr_int_opt("port", *port);
                w.end();
            }
            Address::Ccid { controller, slot } => {
                w.start("address")
                    .attr("type", "ccid")
                    .attr_int("controller", controller)
                    .attr_int("slot", slot)
                    .end();
            }
            Address::Usb { bus, port } => {
                w.start("address").attr("type", "usb").attr_int("bus", bus);
                w.attr_opt("port", port.as_deref());
                w.end();
            }
            Address::Isa { iobase, irq } => {
                w.start("address").attr("type", "isa");
                if let Some(b) = iobase {
                    w.attr_hex("iobase", *b, 1);
                }
                if let Some(i) = irq {
                    w.attr_hex("irq", *i, 1);
                }
                w.end();
            }
            Address::Other(e) => e.write(w),
        }
    }
}
