//! The one seam every ironvirt API call crosses.
//!
//! A hypervisor driver (test, QEMU), the remote driver (which forwards calls
//! over libvirt's RPC protocol) and the daemon's dispatcher all meet at the
//! [`Driver`] trait: the library picks an implementation from the URI, the
//! daemon maps procedure numbers onto its methods.
//!
//! Every method has a default that answers `VIR_ERR_NO_SUPPORT` naming the
//! libvirt API, so a driver implements what it supports and nothing more.

pub mod error;
pub mod types;
pub mod uri;

use std::sync::Arc;

pub use error::{Error, ErrorDomain, ErrorLevel, ErrorNumber, Result};
pub use types::*;
pub use uri::Uri;

/// Receives lifecycle events; called from whatever thread raised the event,
/// so it must be quick (queue the event and return).
pub type LifecycleCallback = Arc<dyn Fn(&LifecycleEvent) + Send + Sync>;

macro_rules! unsupported {
    ($self:ident, $api:literal) => {
        Err(Error::no_support($self.error_domain(), $api))
    };
}

/// A connection to a hypervisor driver. Methods take `&self`: drivers are
/// shared between threads and do their own locking.
#[allow(unused_variables)]
pub trait Driver: Send + Sync {
    /// The error domain this driver reports in (`VIR_FROM_TEST`, ...).
    fn error_domain(&self) -> ErrorDomain;

    /// `virConnectGetType`: "Test", "QEMU", ...
    fn get_type(&self) -> Result<String>;
    /// `virConnectGetURI`.
    fn get_uri(&self) -> Result<String>;
    /// `virConnectGetHostname`.
    fn get_hostname(&self) -> Result<String> {
        unsupported!(self, "virConnectGetHostname")
    }
    /// `virConnectGetVersion`: the hypervisor's version as major*1e6+minor*1e3+micro.
    fn get_version(&self) -> Result<u64> {
        unsupported!(self, "virConnectGetVersion")
    }
    /// `virConnectGetLibVersion`.
    fn get_lib_version(&self) -> Result<u64> {
        Ok(LIB_VERSION)
    }
    /// `virConnectGetCapabilities`: the capabilities XML.
    fn get_capabilities(&self) -> Result<String> {
        unsupported!(self, "virConnectGetCapabilities")
    }
    /// `virConnectGetDomainCapabilities`.
    fn get_domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
        flags: u32,
    ) -> Result<String> {
        unsupported!(self, "virConnectGetDomainCapabilities")
    }
    /// `virConnectDomainXMLToNative`: the hypervisor's own configuration
    /// for a domain XML (for QEMU, `qemu-argv`: its command line).
    fn domain_xml_to_native(&self, native_format: &str, xml: &str, flags: u32) -> Result<String> {
        unsupported!(self, "virConnectDomainXMLToNative")
    }
    /// `virNodeGetInfo`.
    fn node_get_info(&self) -> Result<NodeInfo> {
        unsupported!(self, "virNodeGetInfo")
    }
    /// `virNodeGetSecurityModel`.
    fn node_get_security_model(&self) -> Result<SecurityModel> {
        Ok(SecurityModel::default())
    }
    /// `virConnectIsAlive`, `virConnectIsSecure`, ... are answered by callers.
    ///
    /// `virConnectNumOfDomains`: running domains.
    fn num_of_domains(&self) -> Result<i32> {
        Ok(self.list_all_domains(list_flags::ACTIVE)?.len() as i32)
    }
    /// `virConnectNumOfDefinedDomains`: inactive persistent domains.
    fn num_of_defined_domains(&self) -> Result<i32> {
        Ok(self.list_all_domains(list_flags::INACTIVE)?.len() as i32)
    }

    /// `virDomainLookupByName`.
    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        unsupported!(self, "virDomainLookupByName")
    }
    /// `virDomainLookupByUUID`.
    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        unsupported!(self, "virDomainLookupByUUID")
    }
    /// `virDomainLookupByID`.
    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainRef> {
        unsupported!(self, "virDomainLookupByID")
    }
    /// `virConnectListAllDomains` with libvirt's filter flags ([`list_flags`]).
    fn list_all_domains(&self, flags: u32) -> Result<Vec<DomainRef>> {
        unsupported!(self, "virConnectListAllDomains")
    }
    /// `virDomainDefineXMLFlags`.
    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        unsupported!(self, "virDomainDefineXMLFlags")
    }
    /// `virDomainUndefineFlags`.
    fn domain_undefine(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        unsupported!(self, "virDomainUndefineFlags")
    }
    /// `virDomainCreateWithFlags`: start a defined domain; returns it with its new id.
    fn domain_create(&self, dom: &DomainRef, flags: u32) -> Result<DomainRef> {
        unsupported!(self, "virDomainCreateWithFlags")
    }
    /// `virDomainCreateXML`: start a transient domain.
    fn domain_create_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        unsupported!(self, "virDomainCreateXML")
    }
    /// `virDomainDestroyFlags`.
    fn domain_destroy(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        unsupported!(self, "virDomainDestroyFlags")
    }
    /// `virDomainShutdownFlags`.
    fn domain_shutdown(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        unsupported!(self, "virDomainShutdownFlags")
    }
    /// `virDomainReboot`.
    fn domain_reboot(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        unsupported!(self, "virDomainReboot")
    }
    /// `virDomainReset`.
    fn domain_reset(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        unsupported!(self, "virDomainReset")
    }
    /// `virDomainSuspend`.
    fn domain_suspend(&self, dom: &DomainRef) -> Result<()> {
        unsupported!(self, "virDomainSuspend")
    }
    /// `virDomainResume`.
    fn domain_resume(&self, dom: &DomainRef) -> Result<()> {
        unsupported!(self, "virDomainResume")
    }
    /// `virDomainGetInfo`.
    fn domain_get_info(&self, dom: &DomainRef) -> Result<DomainInfo> {
        unsupported!(self, "virDomainGetInfo")
    }
    /// `virDomainGetState`: (state, reason).
    fn domain_get_state(&self, dom: &DomainRef, flags: u32) -> Result<(i32, i32)> {
        unsupported!(self, "virDomainGetState")
    }
    /// `virDomainGetXMLDesc` ([`xml_flags`]).
    fn domain_get_xml_desc(&self, dom: &DomainRef, flags: u32) -> Result<String> {
        unsupported!(self, "virDomainGetXMLDesc")
    }
    /// `virDomainGetOSType`.
    fn domain_get_os_type(&self, dom: &DomainRef) -> Result<String> {
        unsupported!(self, "virDomainGetOSType")
    }
    /// `virDomainGetMaxMemory` in KiB.
    fn domain_get_max_memory(&self, dom: &DomainRef) -> Result<u64> {
        Ok(self.domain_get_info(dom)?.max_mem)
    }
    /// `virDomainGetAutostart`.
    fn domain_get_autostart(&self, dom: &DomainRef) -> Result<bool> {
        unsupported!(self, "virDomainGetAutostart")
    }
    /// `virDomainSetAutostart`.
    fn domain_set_autostart(&self, dom: &DomainRef, autostart: bool) -> Result<()> {
        unsupported!(self, "virDomainSetAutostart")
    }
    /// `virDomainIsActive`.
    fn domain_is_active(&self, dom: &DomainRef) -> Result<bool> {
        unsupported!(self, "virDomainIsActive")
    }
    /// `virDomainIsPersistent`.
    fn domain_is_persistent(&self, dom: &DomainRef) -> Result<bool> {
        unsupported!(self, "virDomainIsPersistent")
    }
    /// `virDomainIsUpdated`.
    fn domain_is_updated(&self, dom: &DomainRef) -> Result<bool> {
        Ok(false)
    }
    /// `virDomainHasManagedSaveImage`.
    fn domain_has_managed_save_image(&self, dom: &DomainRef, flags: u32) -> Result<bool> {
        Ok(false)
    }
    /// `virDomainGetSecurityLabel`.
    fn domain_get_security_label(&self, dom: &DomainRef) -> Result<SecurityLabel> {
        Ok(SecurityLabel::default())
    }

    /// Registers a lifecycle-event callback for all domains; returns its id.
    fn domain_event_register(&self, callback: LifecycleCallback) -> Result<i32> {
        unsupported!(self, "virConnectDomainEventRegisterAny")
    }
    /// Removes a callback registered with [`Driver::domain_event_register`].
    fn domain_event_deregister(&self, callback_id: i32) -> Result<()> {
        unsupported!(self, "virConnectDomainEventDeregisterAny")
    }
    /// Called once when the connection is closed.
    fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// The libvirt version ironvirt reports as its library version
/// (`virConnectGetLibVersion`): the API level it implements, 9.0.0.
pub const LIB_VERSION: u64 = 9_000_000;
