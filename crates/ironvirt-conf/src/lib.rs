//! XML models of ironvirt: domain definitions and capabilities, parsed from
//! and formatted to libvirt's XML formats.
//!
//! CONTRACT (used by the drivers; keep these names and signatures):
//!
//! ```ignore
//! let mut def = DomainDef::parse(xml)?;          // Err: VIR_ERR_XML_ERROR / XML_DETAIL / ...
//! def.name; def.uuid; def.virt_type;            // String, Uuid, String ("test", "kvm", "qemu")
//! def.memory_kib; def.current_memory_kib;       // u64, KiB, normalised
//! def.vcpus; def.current_vcpus;                 // u32, Option<u32>
//! def.os.os_type; def.os.arch; def.os.machine;  // String, Option<String>, Option<String>
//! def.emulator;                                 // Option<String>
//! let xml: String = def.format(&FormatOptions { id: Some(3), inactive: false, secure: false });
//! ```
//!
//! [`DomainDef::parse`] applies the defaults every libvirt driver gets from
//! the generic domain configuration code (see [`domain`] for the list);
//! driver-specific defaults are the driver's job.

pub mod caps;
mod dom;
pub mod domain;
pub mod generic;
pub mod spec;
pub mod units;
pub mod xml;

pub use caps::Capabilities;
pub use domain::*;
pub use generic::{Content, Element};

/// How to format a domain definition (`virDomainGetXMLDesc` flags and the
/// running domain's id).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormatOptions {
    /// The id of a running domain: adds `id='N'` on `<domain>`.
    pub id: Option<i32>,
    /// `VIR_DOMAIN_XML_INACTIVE`: leave out live-only data.
    pub inactive: bool,
    /// `VIR_DOMAIN_XML_SECURE`: include secrets (graphics passwords).
    pub secure: bool,
}
