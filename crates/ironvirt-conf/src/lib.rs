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
