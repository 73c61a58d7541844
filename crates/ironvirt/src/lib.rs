//! The ironvirt library: connect to a hypervisor by URI and manage its
//! domains, with libvirt's API in Rust form.
//!
//! [`Connect::open`] picks a driver from the URI: `test:///...` runs
//! libvirt's test driver in this process, everything else goes to the
//! remote driver (libvirt's RPC protocol to `libvirtd` or `ironvirtd`).
//! [`Domain`] handles carry the name, UUID and id of a domain, like
//! libvirt's `virDomainPtr`, and every call crosses the
//! [`ironvirt_driver::Driver`] seam.
//!
//! ```
//! use ironvirt::Connect;
//! let conn = Connect::open("test:///default")?;
//! for dom in conn.list_all_domains(0)? {
//!     println!("{} {}", dom.get_id(), dom.get_name());
//! }
//! # Ok::<(), ironvirt::Error>(())
//! ```

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

pub use ironvirt_driver::{
    define_flags, event, list_flags, reason, undefine_flags, xml_flags, DomainInfo, DomainState,
    Driver, Error, ErrorDomain, ErrorLevel, ErrorNumber, LifecycleEvent, NodeInfo, Result,
    SecurityLabel, SecurityModel, Uri, Uuid,
};

/// The environment variable naming the URI used when none is given.
pub const DEFAULT_URI_ENV: &str = "LIBVIRT_DEFAULT_URI";

/// Errors raised by the library layer itself use libvirt's domain API
/// error domain.
const API: ErrorDomain = ErrorDomain::DOMAIN;

/// The one place a non-`test:` URI is handed to the remote driver, which
/// reaches a local or remote daemon (ironvirtd or libvirtd).
fn open_remote(uri: &Uri, read_only: bool) -> Result<Arc<dyn Driver>> {
    ironvirt_remote::open(uri, read_only)
}

/// Opens the driver `uri` names.
fn open_driver(uri: &Uri, read_only: bool) -> Result<Arc<dyn Driver>> {
    if uri.driver == "test" && uri.is_local() {
        Ok(Arc::new(ironvirt_test::TestDriver::open_uri(uri)?))
    } else {
        open_remote(uri, read_only)
    }
}

/// The URI used when the caller gives none: `LIBVIRT_DEFAULT_URI`, else the
/// local QEMU driver (system instance for root, session otherwise).
pub fn default_uri() -> String {
    match std::env::var(DEFAULT_URI_ENV) {
        Ok(u) if !u.is_empty() => u,
        _ => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            if root {
                "qemu:///system"
            } else {
                "qemu:///session"
            }
            .to_string()
        }
    }
}

struct ConnInner {
    driver: Arc<dyn Driver>,
    read_only: bool,
    callbacks: Mutex<Vec<i32>>,
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        let ids: Vec<i32> = self.callbacks.lock().map(|v| v.clone()).unwrap_or_default();
        for id in ids {
            let _ = self.driver.domain_event_deregister(id);
        }
        let _ = self.driver.close();
    }
}

/// A connection to a hypervisor (`virConnectPtr`). Cloning shares the
/// connection; it closes when the last clone (and the last [`Domain`] from
/// it) is dropped.
#[derive(Clone)]
pub struct Connect {
    inner: Arc<ConnInner>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("read_only", &self.inner.read_only)
            .finish()
    }
}

fn denied(api: &str) -> Error {
    Error::new(
        API,
        ErrorNumber::OPERATION_DENIED,
        format!("read only access prevents {api}"),
    )
}

impl Connect {
    /// `virConnectOpen`: opens `uri`, or the default URI when it is empty.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.get_type()?, "TEST");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn open(uri: &str) -> Result<Connect> {
        Self::open_flags(uri, false)
    }

    /// `virConnectOpenReadOnly`: calls that change anything fail with
    /// `VIR_ERR_OPERATION_DENIED`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open_read_only("test:///default")?;
    /// let dom = conn.domain_lookup_by_name("test")?;
    /// assert!(dom.destroy().is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn open_read_only(uri: &str) -> Result<Connect> {
        Self::open_flags(uri, true)
    }

    /// Opens the default URI (see [`default_uri`]).
    ///
    /// ```no_run
    /// let conn = ironvirt::Connect::open_default()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn open_default() -> Result<Connect> {
        Self::open_flags("", false)
    }

    fn open_flags(uri: &str, read_only: bool) -> Result<Connect> {
        let uri = if uri.is_empty() {
            default_uri()
        } else {
            uri.to_string()
        };
        let parsed = Uri::parse(&uri)?;
        let driver = open_driver(&parsed, read_only)?;
        Ok(Connect::from_driver(driver, read_only))
    }

    /// Wraps an already opened driver (used by the daemon and by tests).
    ///
    /// ```
    /// use std::sync::Arc;
    /// let drv = ironvirt_test::TestDriver::open("test:///default")?;
    /// let conn = ironvirt::Connect::from_driver(Arc::new(drv), false);
    /// assert_eq!(conn.get_uri()?, "test:///default");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn from_driver(driver: Arc<dyn Driver>, read_only: bool) -> Connect {
        Connect {
            inner: Arc::new(ConnInner {
                driver,
                read_only,
                callbacks: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The driver behind this connection.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.driver().get_type()?, "TEST");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.inner.driver
    }

    fn check_write(&self, api: &str) -> Result<()> {
        if self.inner.read_only {
            Err(denied(api))
        } else {
            Ok(())
        }
    }

    fn domain(&self, r: ironvirt_driver::DomainRef) -> Domain {
        Domain {
            conn: self.clone(),
            name: r.name,
            uuid: r.uuid,
            id: AtomicI32::new(r.id),
        }
    }

    /// Whether the connection was opened read-only.
    ///
    /// ```
    /// assert!(ironvirt::Connect::open_read_only("test:///default")?.is_read_only());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn is_read_only(&self) -> bool {
        self.inner.read_only
    }

    /// `virConnectIsAlive`.
    ///
    /// ```
    /// assert!(ironvirt::Connect::open("test:///default")?.is_alive());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        true
    }

    /// `virConnectClose`: drops this handle (the connection closes when no
    /// other clone or domain holds it).
    ///
    /// ```
    /// ironvirt::Connect::open("test:///default")?.close();
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn close(self) {}

    /// `virConnectGetType`: the driver name ("TEST", "QEMU").
    ///
    /// ```
    /// assert_eq!(ironvirt::Connect::open("test:///default")?.get_type()?, "TEST");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_type(&self) -> Result<String> {
        self.inner.driver.get_type()
    }

    /// `virConnectGetURI`.
    ///
    /// ```
    /// assert_eq!(ironvirt::Connect::open("test:///default")?.get_uri()?, "test:///default");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_uri(&self) -> Result<String> {
        self.inner.driver.get_uri()
    }

    /// `virConnectGetHostname`.
    ///
    /// ```
    /// assert!(!ironvirt::Connect::open("test:///default")?.get_hostname()?.is_empty());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_hostname(&self) -> Result<String> {
        self.inner.driver.get_hostname()
    }

    /// `virConnectGetVersion`: major * 1,000,000 + minor * 1,000 + release.
    ///
    /// ```
    /// assert_eq!(ironvirt::Connect::open("test:///default")?.get_version()?, 2);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_version(&self) -> Result<u64> {
        self.inner.driver.get_version()
    }

    /// `virConnectGetLibVersion`.
    ///
    /// ```
    /// assert_eq!(ironvirt::Connect::open("test:///default")?.get_lib_version()?, 9_000_000);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_lib_version(&self) -> Result<u64> {
        self.inner.driver.get_lib_version()
    }

    /// `virConnectGetCapabilities`.
    ///
    /// ```
    /// let caps = ironvirt::Connect::open("test:///default")?.get_capabilities()?;
    /// assert!(caps.starts_with("<capabilities>"));
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_capabilities(&self) -> Result<String> {
        self.inner.driver.get_capabilities()
    }

    /// `virConnectGetDomainCapabilities`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// // The test driver has no domain capabilities, like libvirt's.
    /// assert!(conn.get_domain_capabilities(None, None, None, None, 0).is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
        flags: u32,
    ) -> Result<String> {
        self.inner
            .driver
            .get_domain_capabilities(emulator, arch, machine, virttype, flags)
            .map_err(|mut e| {
                // libvirt reports a missing implementation from its API layer.
                if e.code == ErrorNumber::NO_SUPPORT {
                    e.domain = API;
                }
                e
            })
    }

    /// `virConnectDomainXMLToNative`: the hypervisor's own configuration for
    /// a domain XML (`qemu-argv` on the QEMU driver: its command line).
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// // The test driver has no native format, like libvirt's.
    /// let e = conn.domain_xml_to_native("qemu-argv", "<domain/>", 0).unwrap_err();
    /// assert_eq!(e.code, ironvirt::ErrorNumber::NO_SUPPORT);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_xml_to_native(
        &self,
        native_format: &str,
        xml: &str,
        flags: u32,
    ) -> Result<String> {
        self.inner
            .driver
            .domain_xml_to_native(native_format, xml, flags)
            .map_err(|mut e| {
                if e.code == ErrorNumber::NO_SUPPORT {
                    e.domain = API;
                }
                e
            })
    }

    /// `virNodeGetInfo`.
    ///
    /// ```
    /// let info = ironvirt::Connect::open("test:///default")?.node_get_info()?;
    /// assert_eq!(info.cpus, 16);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn node_get_info(&self) -> Result<NodeInfo> {
        self.inner.driver.node_get_info()
    }

    /// `virNodeGetSecurityModel`.
    ///
    /// ```
    /// let m = ironvirt::Connect::open("test:///default")?.node_get_security_model()?;
    /// assert_eq!(m.model, "testSecurity");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn node_get_security_model(&self) -> Result<SecurityModel> {
        self.inner.driver.node_get_security_model()
    }

    /// `virConnectNumOfDomains`: running domains.
    ///
    /// ```
    /// assert_eq!(ironvirt::Connect::open("test:///default")?.num_of_domains()?, 1);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn num_of_domains(&self) -> Result<i32> {
        self.inner.driver.num_of_domains()
    }

    /// `virConnectNumOfDefinedDomains`: inactive persistent domains.
    ///
    /// ```
    /// assert_eq!(ironvirt::Connect::open("test:///default")?.num_of_defined_domains()?, 0);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn num_of_defined_domains(&self) -> Result<i32> {
        self.inner.driver.num_of_defined_domains()
    }

    /// `virConnectListAllDomains` with [`list_flags`] filters.
    ///
    /// ```
    /// use ironvirt::list_flags;
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let running = conn.list_all_domains(list_flags::ACTIVE)?;
    /// assert!(running.iter().any(|d| d.get_name() == "test"));
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn list_all_domains(&self, flags: u32) -> Result<Vec<Domain>> {
        Ok(self
            .inner
            .driver
            .list_all_domains(flags)?
            .into_iter()
            .map(|r| self.domain(r))
            .collect())
    }

    /// `virDomainLookupByName`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_name("test")?.get_id(), 1);
    /// assert!(conn.domain_lookup_by_name("nosuch").is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_lookup_by_name(&self, name: &str) -> Result<Domain> {
        Ok(self.domain(self.inner.driver.domain_lookup_by_name(name)?))
    }

    /// `virDomainLookupByUUID`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let u = ironvirt::Uuid::parse("6695eb01-f6a4-8304-79aa-97f2502e193f").unwrap();
    /// assert_eq!(conn.domain_lookup_by_uuid(&u)?.get_name(), "test");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<Domain> {
        Ok(self.domain(self.inner.driver.domain_lookup_by_uuid(uuid)?))
    }

    /// `virDomainLookupByUUIDString`: an unparsable string is
    /// `VIR_ERR_INVALID_ARG` "Invalid UUID".
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_uuid_string("6695eb01f6a4830479aa97f2502e193f")?.get_name(), "test");
    /// assert_eq!(conn.domain_lookup_by_uuid_string("xyz").unwrap_err().message, "Invalid UUID");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_lookup_by_uuid_string(&self, uuid: &str) -> Result<Domain> {
        let u = Uuid::parse(uuid)
            .ok_or_else(|| Error::raw(API, ErrorNumber::INVALID_ARG, "Invalid UUID"))?;
        self.domain_lookup_by_uuid(&u)
    }

    /// `virDomainLookupByID`: negative ids are refused.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_id(1)?.get_name(), "test");
    /// assert!(conn.domain_lookup_by_id(-1).is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_lookup_by_id(&self, id: i32) -> Result<Domain> {
        if id < 0 {
            return Err(Error::raw(
                API,
                ErrorNumber::INVALID_ARG,
                "id in virDomainLookupByID must be zero or greater",
            ));
        }
        Ok(self.domain(self.inner.driver.domain_lookup_by_id(id)?))
    }

    /// `virDomainDefineXML`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let dom = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-define</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// assert!(!dom.is_active()?);
    /// dom.undefine()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_define_xml(&self, xml: &str) -> Result<Domain> {
        self.check_write("virDomainDefineXML")?;
        Ok(self.domain(self.inner.driver.domain_define_xml(xml, 0)?))
    }

    /// `virDomainDefineXMLFlags` ([`define_flags::VALIDATE`]).
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert!(conn.domain_define_xml_flags("<domain", 0).is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_define_xml_flags(&self, xml: &str, flags: u32) -> Result<Domain> {
        self.check_write("virDomainDefineXMLFlags")?;
        Ok(self.domain(self.inner.driver.domain_define_xml(xml, flags)?))
    }

    /// `virDomainCreateXML`: starts a transient domain.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let dom = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-create</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// assert!(dom.is_active()? && !dom.is_persistent()?);
    /// dom.destroy()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_create_xml(&self, xml: &str, flags: u32) -> Result<Domain> {
        self.check_write("virDomainCreateXML")?;
        Ok(self.domain(self.inner.driver.domain_create_xml(xml, flags)?))
    }

    /// Registers a lifecycle event callback for all domains
    /// (`virConnectDomainEventRegisterAny` with `VIR_DOMAIN_EVENT_ID_LIFECYCLE`);
    /// returns the callback id. The callback runs on the thread that caused
    /// the event and must return quickly.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let id = conn.domain_event_register(move |e: &ironvirt::LifecycleEvent| {
    ///     s.lock().unwrap().push((e.dom.name.clone(), e.event));
    /// })?;
    /// let dom = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-event</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// dom.undefine()?;
    /// conn.domain_event_deregister(id)?;
    /// assert!(seen.lock().unwrap().contains(&("doc-event".to_string(), ironvirt::event::DEFINED)));
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_event_register<F>(&self, callback: F) -> Result<i32>
    where
        F: Fn(&LifecycleEvent) + Send + Sync + 'static,
    {
        let id = self
            .inner
            .driver
            .domain_event_register(Arc::new(callback))?;
        if let Ok(mut v) = self.inner.callbacks.lock() {
            v.push(id);
        }
        Ok(id)
    }

    /// Removes a callback registered with [`Connect::domain_event_register`].
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let id = conn.domain_event_register(|_| {})?;
    /// conn.domain_event_deregister(id)?;
    /// assert!(conn.domain_event_deregister(id).is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn domain_event_deregister(&self, callback_id: i32) -> Result<()> {
        self.inner.driver.domain_event_deregister(callback_id)?;
        if let Ok(mut v) = self.inner.callbacks.lock() {
            v.retain(|i| *i != callback_id);
        }
        Ok(())
    }
}

/// A domain handle (`virDomainPtr`): name, UUID and the id it had when the
/// handle was made (updated by [`Domain::create`] and stop calls).
pub struct Domain {
    conn: Connect,
    name: String,
    uuid: Uuid,
    id: AtomicI32,
}

impl std::fmt::Debug for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Domain")
            .field("name", &self.name)
            .field("uuid", &self.uuid)
            .field("id", &self.get_id())
            .finish()
    }
}

impl Clone for Domain {
    fn clone(&self) -> Domain {
        Domain {
            conn: self.conn.clone(),
            name: self.name.clone(),
            uuid: self.uuid,
            id: AtomicI32::new(self.get_id()),
        }
    }
}

impl Domain {
    fn dref(&self) -> ironvirt_driver::DomainRef {
        ironvirt_driver::DomainRef {
            name: self.name.clone(),
            uuid: self.uuid,
            id: self.get_id(),
        }
    }

    fn drv(&self) -> &dyn Driver {
        self.conn.inner.driver.as_ref()
    }

    /// The connection this domain belongs to (`virDomainGetConnect`).
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_lookup_by_name("test")?;
    /// assert_eq!(d.get_connect().get_type()?, "TEST");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_connect(&self) -> &Connect {
        &self.conn
    }

    /// `virDomainGetName`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_id(1)?.get_name(), "test");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// `virDomainGetUUID`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_name("test")?.get_uuid().0[0], 0x66);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_uuid(&self) -> Uuid {
        self.uuid
    }

    /// `virDomainGetUUIDString`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_name("test")?.get_uuid_string(), "6695eb01-f6a4-8304-79aa-97f2502e193f");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_uuid_string(&self) -> String {
        self.uuid.to_string()
    }

    /// `virDomainGetID`: -1 for an inactive domain.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_name("test")?.get_id(), 1);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_id(&self) -> i32 {
        self.id.load(Ordering::Relaxed)
    }

    /// `virDomainGetInfo`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let info = conn.domain_lookup_by_name("test")?.get_info()?;
    /// assert_eq!(info.nr_virt_cpu, 2);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_info(&self) -> Result<DomainInfo> {
        self.drv().domain_get_info(&self.dref())
    }

    /// `virDomainGetState`: (state, reason).
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let (state, _reason) = conn.domain_lookup_by_name("test")?.get_state()?;
    /// assert!(state == ironvirt::DomainState::Running as i32 || state == ironvirt::DomainState::Shutoff as i32
    ///     || state == ironvirt::DomainState::Paused as i32);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_state(&self) -> Result<(i32, i32)> {
        self.drv().domain_get_state(&self.dref(), 0)
    }

    /// `virDomainGetXMLDesc` with [`xml_flags`].
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let xml = conn.domain_lookup_by_name("test")?.get_xml_desc(ironvirt::xml_flags::INACTIVE)?;
    /// assert!(xml.starts_with("<domain type='test'>"));
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_xml_desc(&self, flags: u32) -> Result<String> {
        if self.conn.inner.read_only && flags & xml_flags::SECURE != 0 {
            return Err(Error::new(
                API,
                ErrorNumber::OPERATION_DENIED,
                "virDomainGetXMLDesc with secure flag",
            ));
        }
        self.drv().domain_get_xml_desc(&self.dref(), flags)
    }

    fn set_id(&self, id: i32) {
        self.id.store(id, Ordering::Relaxed);
    }

    /// `virDomainCreate`: starts a defined domain.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-start</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// d.create()?;
    /// assert!(d.get_id() > 0);
    /// d.destroy()?;
    /// d.undefine()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn create(&self) -> Result<()> {
        self.conn.check_write("virDomainCreate")?;
        let r = self.drv().domain_create(&self.dref(), 0)?;
        self.set_id(r.id);
        Ok(())
    }

    /// `virDomainCreateWithFlags` ([`define_flags`] `START_*`).
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_lookup_by_name("test")?;
    /// assert!(d.create_with_flags(ironvirt::define_flags::START_PAUSED).is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn create_with_flags(&self, flags: u32) -> Result<()> {
        self.conn.check_write("virDomainCreateWithFlags")?;
        let r = self.drv().domain_create(&self.dref(), flags)?;
        self.set_id(r.id);
        Ok(())
    }

    /// `virDomainDestroy`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-destroy</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// d.destroy()?;
    /// assert_eq!(d.get_id(), -1);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn destroy(&self) -> Result<()> {
        self.destroy_api("virDomainDestroy", 0)
    }

    /// `virDomainDestroyFlags`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-destroyf</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// d.destroy_flags(0)?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn destroy_flags(&self, flags: u32) -> Result<()> {
        self.destroy_api("virDomainDestroyFlags", flags)
    }

    fn destroy_api(&self, api: &str, flags: u32) -> Result<()> {
        self.conn.check_write(api)?;
        self.drv().domain_destroy(&self.dref(), flags)?;
        self.set_id(-1);
        Ok(())
    }

    /// `virDomainShutdown`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-shutdown</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// d.shutdown()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn shutdown(&self) -> Result<()> {
        self.shutdown_api("virDomainShutdown", 0)
    }

    /// `virDomainShutdownFlags`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_lookup_by_name("test")?;
    /// // The test driver takes no shutdown mode flags.
    /// assert!(d.shutdown_flags(1).is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn shutdown_flags(&self, flags: u32) -> Result<()> {
        self.shutdown_api("virDomainShutdownFlags", flags)
    }

    fn shutdown_api(&self, api: &str, flags: u32) -> Result<()> {
        self.conn.check_write(api)?;
        self.drv().domain_shutdown(&self.dref(), flags)?;
        if let Ok(r) = self.drv().domain_lookup_by_uuid(&self.uuid) {
            self.set_id(r.id);
        } else {
            self.set_id(-1);
        }
        Ok(())
    }

    /// `virDomainReboot`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-reboot</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// d.reboot(0)?;
    /// assert!(d.is_active()?);
    /// d.destroy()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn reboot(&self, flags: u32) -> Result<()> {
        self.conn.check_write("virDomainReboot")?;
        self.drv().domain_reboot(&self.dref(), flags)?;
        if let Ok(r) = self.drv().domain_lookup_by_uuid(&self.uuid) {
            self.set_id(r.id);
        } else {
            self.set_id(-1);
        }
        Ok(())
    }

    /// `virDomainReset`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-reset</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// d.reset(0)?;
    /// d.destroy()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn reset(&self, flags: u32) -> Result<()> {
        self.conn.check_write("virDomainReset")?;
        self.drv().domain_reset(&self.dref(), flags)
    }

    /// `virDomainSuspend`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-suspend</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// d.suspend()?;
    /// assert_eq!(d.get_state()?.0, ironvirt::DomainState::Paused as i32);
    /// d.resume()?;
    /// d.destroy()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn suspend(&self) -> Result<()> {
        self.conn.check_write("virDomainSuspend")?;
        self.drv().domain_suspend(&self.dref())
    }

    /// `virDomainResume`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_create_xml(
    ///     "<domain type='test'><name>doc-resume</name><memory>1024</memory><os><type>hvm</type></os></domain>", 0)?;
    /// assert!(d.resume().is_err()); // not paused
    /// d.destroy()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn resume(&self) -> Result<()> {
        self.conn.check_write("virDomainResume")?;
        self.drv().domain_resume(&self.dref())
    }

    /// `virDomainUndefine`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-undefine</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// d.undefine()?;
    /// assert!(conn.domain_lookup_by_name("doc-undefine").is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn undefine(&self) -> Result<()> {
        self.conn.check_write("virDomainUndefine")?;
        self.drv().domain_undefine(&self.dref(), 0)
    }

    /// `virDomainUndefineFlags` ([`undefine_flags`]).
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-undefinef</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// d.undefine_flags(ironvirt::undefine_flags::MANAGED_SAVE)?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn undefine_flags(&self, flags: u32) -> Result<()> {
        self.conn.check_write("virDomainUndefineFlags")?;
        self.drv().domain_undefine(&self.dref(), flags)
    }

    /// `virDomainGetAutostart`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-auto</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// assert!(!d.get_autostart()?);
    /// d.set_autostart(true)?;
    /// assert!(d.get_autostart()?);
    /// d.undefine()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_autostart(&self) -> Result<bool> {
        self.drv().domain_get_autostart(&self.dref())
    }

    /// `virDomainSetAutostart`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open_read_only("test:///default")?;
    /// assert!(conn.domain_lookup_by_name("test")?.set_autostart(true).is_err());
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn set_autostart(&self, autostart: bool) -> Result<()> {
        self.conn.check_write("virDomainSetAutostart")?;
        self.drv().domain_set_autostart(&self.dref(), autostart)
    }

    /// `virDomainIsActive`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-active</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// assert!(!d.is_active()?);
    /// d.undefine()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn is_active(&self) -> Result<bool> {
        self.drv().domain_is_active(&self.dref())
    }

    /// `virDomainIsPersistent`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_define_xml(
    ///     "<domain type='test'><name>doc-persist</name><memory>1024</memory><os><type>hvm</type></os></domain>")?;
    /// assert!(d.is_persistent()?);
    /// d.undefine()?;
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn is_persistent(&self) -> Result<bool> {
        self.drv().domain_is_persistent(&self.dref())
    }

    /// `virDomainIsUpdated`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert!(!conn.domain_lookup_by_id(1)?.is_updated()?);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn is_updated(&self) -> Result<bool> {
        self.drv().domain_is_updated(&self.dref())
    }

    /// `virDomainHasManagedSaveImage`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert!(!conn.domain_lookup_by_name("test")?.has_managed_save_image(0)?);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn has_managed_save_image(&self, flags: u32) -> Result<bool> {
        self.drv()
            .domain_has_managed_save_image(&self.dref(), flags)
    }

    /// `virDomainGetOSType`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_name("test")?.get_os_type()?, "linux");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_os_type(&self) -> Result<String> {
        self.drv().domain_get_os_type(&self.dref())
    }

    /// `virDomainGetMaxMemory` in KiB.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// assert_eq!(conn.domain_lookup_by_name("test")?.get_max_memory()?, 8388608);
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_max_memory(&self) -> Result<u64> {
        self.drv().domain_get_max_memory(&self.dref())
    }

    /// `virDomainGetSecurityLabel`.
    ///
    /// ```
    /// let conn = ironvirt::Connect::open("test:///default")?;
    /// let d = conn.domain_lookup_by_name("test")?;
    /// let l = d.get_security_label()?;
    /// assert!(l.label.is_empty() || l.label == "libvirt-test");
    /// # Ok::<(), ironvirt::Error>(())
    /// ```
    pub fn get_security_label(&self) -> Result<SecurityLabel> {
        self.drv().domain_get_security_label(&self.dref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_picks_the_test_driver_or_the_remote_driver() {
        let c = Connect::open("test:///default").unwrap();
        assert_eq!(c.get_type().unwrap(), "TEST");
        // Every other URI goes to the remote driver, which reports a
        // missing daemon socket as libvirt does.
        let e = Connect::open("qemu+unix:///system?socket=/nonexistent/libvirt-sock").unwrap_err();
        assert_eq!(e.code, ErrorNumber::SYSTEM_ERROR);
        assert_eq!(
            e.message,
            "Failed to connect socket to '/nonexistent/libvirt-sock': No such file or directory"
        );
        let e = Connect::open("test:///").unwrap_err();
        assert_eq!(
            e.message,
            "invalid argument: testOpen: supply a path or use test:///default"
        );
    }

    #[test]
    fn read_only_refuses_changes_with_libvirts_message() {
        let c = Connect::open_read_only("test:///default").unwrap();
        let d = c.domain_lookup_by_name("test").unwrap();
        let e = d.destroy().unwrap_err();
        assert_eq!((e.code.0, e.domain.0), (29, 20));
        assert_eq!(
            e.message,
            "operation forbidden: read only access prevents virDomainDestroy"
        );
        let e = c.domain_define_xml("<x/>").unwrap_err();
        assert_eq!(
            e.message,
            "operation forbidden: read only access prevents virDomainDefineXML"
        );
        let e = d.get_xml_desc(xml_flags::SECURE).unwrap_err();
        assert_eq!(
            e.message,
            "operation forbidden: virDomainGetXMLDesc with secure flag"
        );
        assert!(d.get_xml_desc(0).is_ok());
    }

    #[test]
    fn ids_follow_start_and_stop() {
        let c = Connect::open("test:///default").unwrap();
        let d = c
            .domain_define_xml(
                "<domain type='test'><name>lib-ids</name><memory>1024</memory><os><type>hvm</type></os></domain>",
            )
            .unwrap();
        assert_eq!(d.get_id(), -1);
        d.create().unwrap();
        let id = d.get_id();
        assert!(id > 0);
        assert_eq!(c.domain_lookup_by_id(id).unwrap().get_name(), "lib-ids");
        d.shutdown().unwrap();
        assert_eq!(d.get_id(), -1);
        d.undefine().unwrap();
    }
}
