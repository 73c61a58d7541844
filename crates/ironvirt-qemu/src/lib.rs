//! The QEMU/KVM driver of ironvirt: emulator capabilities and their caches,
//! host and domain capabilities, and the persistent domain definitions of
//! `qemu:///system` and `qemu:///session`.
//!
//! The heart is the capabilities cache ([`cache::CapsCache`]): one
//! [`qemucaps::QemuCaps`] per emulator binary, probed by running the binary
//! and asking it over QMP ([`probe`]), persisted under the state directory and
//! valid while the binary, `/dev/kvm` and ironvirt are unchanged. Domain
//! capabilities live inside each entry, so they never outlive the binary
//! they describe.

pub mod address;
pub mod cache;
pub mod caps;
pub mod command;
pub mod defaults;
pub mod domcaps;
pub mod driver;
pub mod firmware;
pub mod host;
pub mod probe;
pub mod process;
pub mod qemucaps;
pub mod qmp;
pub mod validate;

pub use driver::{QemuConfig, QemuDriver};
