//! The embedded test driver: libvirt's `test:///default` mock hypervisor,
//! in-process, behind [`ironvirt_driver::Driver`].
//!
//! * `test:///default` starts with the same host and objects as libvirt's
//!   test driver: one running domain `test` (id 1), an i686 host with 16
//!   CPUs in 2 NUMA cells and 3 GiB of memory, the `testSecurity` model.
//!   Connections to it in one process share one state while any of them is
//!   open; a fresh state is built after the last one closes.
//! * `test:///abs/path/node.xml` loads a node description in libvirt's
//!   format (see [`node`]); every such connection has its own state.
//!
//! Domains follow libvirt's test driver state machine: ids are handed out on
//! start from a per-state counter, transient domains vanish when they stop,
//! defining a running domain changes only its persistent definition, and the
//! errors carry the codes, domains and messages libvirt's test driver uses.
//!
//! ```
//! use ironvirt_driver::Driver;
//! let drv = ironvirt_test::TestDriver::open("test:///default").unwrap();
//! let dom = drv.domain_lookup_by_name("test").unwrap();
//! assert_eq!(dom.id, 1);
//! ```

pub mod caps;
pub mod node;

use caps::Cell;
use ironvirt_conf::{DomainDef, FormatOptions};
use ironvirt_driver::{
    define_flags, event, list_flags, reason, xml_flags, DomainInfo, DomainRef, DomainState, Driver,
    Error, ErrorDomain, ErrorNumber, LifecycleCallback, LifecycleEvent, NodeInfo, Result,
    SecurityLabel, SecurityModel, Uri, Uuid,
};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// libvirt's `virConnectGetVersion` answer for the test driver (0.0.2).
pub const TEST_HV_VERSION: u64 = 2;

/// The domain `test:///default` starts with, running as id 1.
const DEFAULT_DOMAIN_XML: &str = "<domain type='test'>
  <name>test</name>
  <uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>
  <memory>8388608</memory>
  <currentMemory>2097152</currentMemory>
  <vcpu>2</vcpu>
  <os>
    <type>hvm</type>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/guest/diskimage1'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='aa:bb:cc:dd:ee:ff'/>
      <source network='default'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x1' function='0x0'/>
    </interface>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x2' function='0x0'/>
    </memballoon>
  </devices>
</domain>";

const TEST: ErrorDomain = ErrorDomain::TEST;

/// A domain object: its definitions and runtime state.
#[derive(Clone, Debug)]
struct DomObj {
    /// The live definition while running, the only one otherwise.
    def: DomainDef,
    /// The persistent definition while running (when it differs in
    /// lifetime from the live one), as libvirt's `newDef`.
    new_def: Option<DomainDef>,
    /// Id while active, -1 otherwise.
    id: i32,
    state: i32,
    reason: i32,
    persistent: bool,
    autostart: bool,
    has_managed_save: bool,
}

impl DomObj {
    fn new(def: DomainDef) -> DomObj {
        DomObj {
            def,
            new_def: None,
            id: -1,
            state: DomainState::Shutoff as i32,
            reason: reason::shutoff::UNKNOWN,
            persistent: false,
            autostart: false,
            has_managed_save: false,
        }
    }

    fn is_active(&self) -> bool {
        self.id != -1
    }

    fn dref(&self) -> DomainRef {
        DomainRef {
            name: self.def.name.clone(),
            uuid: self.def.uuid,
            id: self.id,
        }
    }
}

/// The state one `test:///` connection (or all `test:///default` ones) see.
struct Inner {
    node: NodeInfo,
    caps: String,
    /// Domains in the order they were added.
    /// Boxed, so that removing one from a long list moves pointers rather
    /// than whole definitions.
    domains: Vec<Box<DomObj>>,
    next_id: i32,
}

struct Callback {
    id: i32,
    owner: u64,
    func: LifecycleCallback,
}

/// Shared driver state with its event listeners.
struct Shared {
    inner: Mutex<Inner>,
    callbacks: Mutex<Vec<Callback>>,
    next_callback: AtomicI32,
}

static DEFAULT_STATE: Mutex<Weak<Shared>> = Mutex::new(Weak::new());
static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks flags as libvirt's `virCheckFlags` does: unknown bits are an
/// `VIR_ERR_INVALID_ARG` naming the test driver's function.
fn check_flags(flags: u32, allowed: u32, func: &str) -> Result<()> {
    Error::check_flags(TEST, flags, allowed, func)
}

/// Parses a domain definition and adds the test driver's own defaults.
fn parse_def(xml: &str) -> Result<DomainDef> {
    let mut def = DomainDef::parse(xml)?;
    if let Some(c) = def.name.chars().find(|c| *c == '\n') {
        return Err(Error::new(
            ErrorDomain::XML,
            ErrorNumber::XML_DETAIL,
            format!("invalid char in name: {c}"),
        ));
    }
    generate_ifnames(&mut def);
    def.apply_test_driver_defaults(0);
    Ok(def)
}

/// Names interfaces without a target device `testnetN`, N being the lowest
/// number no interface of the domain uses yet.
fn generate_ifnames(def: &mut DomainDef) {
    for i in 0..def.devices.interfaces.len() {
        if def.devices.interfaces[i].target_dev.is_some() {
            continue;
        }
        let name = (0..)
            .map(|n| format!("testnet{n}"))
            .find(|n| {
                !def.devices
                    .interfaces
                    .iter()
                    .any(|x| x.target_dev.as_deref() == Some(n))
            })
            .unwrap_or_default();
        def.devices.interfaces[i].target_dev = Some(name);
    }
}

fn no_domain() -> Error {
    Error::new(TEST, ErrorNumber::NO_DOMAIN, "")
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64 * 1000)
        .unwrap_or(0)
}

impl Inner {
    fn new(node: NodeInfo, cells: Vec<Cell>) -> Inner {
        let caps = caps::capabilities_xml(&cells);
        Inner {
            node,
            caps,
            domains: Vec::new(),
            next_id: 1,
        }
    }

    fn find(&self, dom: &DomainRef) -> Result<usize> {
        self.domains
            .iter()
            .position(|d| d.def.uuid == dom.uuid)
            .ok_or_else(|| {
                Error::new(
                    TEST,
                    ErrorNumber::NO_DOMAIN,
                    format!("no domain with matching uuid '{}' ({})", dom.uuid, dom.name),
                )
            })
    }

    /// Gives a domain the running state (`testDomainStartState`).
    fn start_state(&mut self, idx: usize, reason: i32) {
        let id = self.next_id;
        self.next_id += 1;
        let d = &mut self.domains[idx];
        d.state = DomainState::Running as i32;
        d.reason = reason;
        d.id = id;
        if d.persistent && d.new_def.is_none() {
            d.new_def = Some(d.def.clone());
        }
        d.has_managed_save = false;
    }

    /// Stops a domain (`testDomainShutdownState`): the persistent
    /// definition becomes the only one again.
    fn shutdown_state(&mut self, idx: usize, reason: i32) {
        let d = &mut self.domains[idx];
        if let Some(nd) = d.new_def.take() {
            d.def = nd;
        }
        d.state = DomainState::Shutoff as i32;
        d.reason = reason;
        d.id = -1;
    }

    /// `virDomainObjListAdd`: adds `def` or assigns it to the domain with its
    /// UUID. Returns the index and whether a previous definition was replaced.
    fn add(&mut self, def: DomainDef, live: bool, check_live: bool) -> Result<(usize, bool)> {
        if let Some(idx) = self.domains.iter().position(|d| d.def.uuid == def.uuid) {
            let d = &mut self.domains[idx];
            if d.def.name != def.name {
                return Err(Error::new(
                    ErrorDomain::DOMAIN,
                    ErrorNumber::OPERATION_FAILED,
                    format!(
                        "domain '{}' is already defined with uuid {}",
                        d.def.name, def.uuid
                    ),
                ));
            }
            if check_live {
                if d.is_active() {
                    return Err(Error::operation_invalid(
                        ErrorDomain::DOMAIN,
                        format!("domain '{}' is already active", d.def.name),
                    ));
                }
                if !d.persistent {
                    return Err(Error::operation_invalid(
                        ErrorDomain::DOMAIN,
                        format!("domain '{}' is already being started", d.def.name),
                    ));
                }
            }
            let replaced;
            if d.is_active() {
                replaced = d.new_def.is_some();
                d.new_def = Some(def);
            } else if live {
                if d.new_def.is_none() {
                    d.new_def = Some(std::mem::replace(&mut d.def, def));
                } else {
                    d.def = def;
                }
                replaced = true;
            } else {
                d.def = def;
                replaced = true;
            }
            return Ok((idx, replaced));
        }
        if let Some(d) = self.domains.iter().find(|d| d.def.name == def.name) {
            return Err(Error::new(
                ErrorDomain::DOMAIN,
                ErrorNumber::OPERATION_FAILED,
                format!(
                    "domain '{}' already exists with uuid {}",
                    def.name, d.def.uuid
                ),
            ));
        }
        self.domains.push(Box::new(DomObj::new(def)));
        Ok((self.domains.len() - 1, false))
    }

    fn remove(&mut self, idx: usize) {
        self.domains.remove(idx);
    }

    fn event(&self, idx: usize, ev: i32, detail: i32) -> LifecycleEvent {
        LifecycleEvent {
            dom: self.domains[idx].dref(),
            event: ev,
            detail,
        }
    }

    /// Loads the domains of a node description (`testParseDomains`).
    fn load_domains(&mut self, domains: &[node::NodeDomain]) -> Result<()> {
        for nd in domains {
            let def = parse_def(&nd.xml)?;
            let (idx, _) = self.add(def, false, false)?;
            self.domains[idx].persistent = !nd.transient;
            self.domains[idx].has_managed_save = nd.has_managed_save;
            if nd.runstate != DomainState::Shutoff as i32 {
                self.start_state(idx, reason::running::BOOTED);
            } else {
                self.shutdown_state(idx, 0);
            }
            self.domains[idx].state = nd.runstate;
            self.domains[idx].reason = 0;
        }
        Ok(())
    }
}

impl Shared {
    fn new(inner: Inner) -> Arc<Shared> {
        Arc::new(Shared {
            inner: Mutex::new(inner),
            callbacks: Mutex::new(Vec::new()),
            next_callback: AtomicI32::new(0),
        })
    }

    /// Delivers events to every registered callback, outside the state lock.
    fn emit(&self, events: Vec<LifecycleEvent>) {
        if events.is_empty() {
            return;
        }
        let funcs: Vec<LifecycleCallback> = lock(&self.callbacks)
            .iter()
            .map(|c| c.func.clone())
            .collect();
        for ev in &events {
            for f in &funcs {
                f(ev);
            }
        }
    }
}

fn default_shared() -> Result<Arc<Shared>> {
    let mut slot = lock(&DEFAULT_STATE);
    if let Some(s) = slot.upgrade() {
        return Ok(s);
    }
    let s = Shared::new(default_inner()?);
    *slot = Arc::downgrade(&s);
    Ok(s)
}

/// A fresh `test:///default` state.
fn default_inner() -> Result<Inner> {
    let mut inner = Inner::new(caps::default_node_info(), caps::default_cells());
    inner.load_domains(&[node::NodeDomain {
        xml: DEFAULT_DOMAIN_XML.to_string(),
        runstate: DomainState::Running as i32,
        transient: false,
        has_managed_save: false,
    }])?;
    Ok(inner)
}

/// A connection to the test driver.
pub struct TestDriver {
    shared: Arc<Shared>,
    uri: String,
    conn_id: u64,
}

impl std::fmt::Debug for TestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDriver")
            .field("uri", &self.uri)
            .finish()
    }
}

impl TestDriver {
    /// Opens `test:///default` or `test:///abs/path/node.xml`.
    ///
    /// ```
    /// let drv = ironvirt_test::TestDriver::open("test:///default").unwrap();
    /// # let _ = drv;
    /// assert!(ironvirt_test::TestDriver::open("test:///").is_err());
    /// ```
    pub fn open(uri: &str) -> Result<TestDriver> {
        Self::open_uri(&Uri::parse(uri)?)
    }

    /// Opens a parsed `test:` URI.
    ///
    /// ```
    /// use ironvirt_driver::{Driver, Uri};
    /// let drv = ironvirt_test::TestDriver::open_uri(&Uri::parse("test:///default").unwrap()).unwrap();
    /// assert_eq!(drv.get_uri().unwrap(), "test:///default");
    /// ```
    pub fn open_uri(uri: &Uri) -> Result<TestDriver> {
        if uri.driver != "test" {
            return Err(Error::new(
                ErrorDomain::NONE,
                ErrorNumber::NO_CONNECT,
                uri.original.clone(),
            ));
        }
        let shared = match uri.path.as_str() {
            "" | "/" => {
                return Err(Error::invalid_arg(
                    TEST,
                    "testOpen: supply a path or use test:///default",
                ));
            }
            "/default" => default_shared()?,
            path => {
                let nf = node::load_node(Path::new(path))?;
                let mut inner = Inner::new(nf.info, Vec::new());
                inner.load_domains(&nf.domains)?;
                Shared::new(inner)
            }
        };
        Ok(TestDriver {
            shared,
            uri: uri.original.clone(),
            conn_id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.shared.inner)
    }

    fn with_dom<T>(&self, dom: &DomainRef, f: impl FnOnce(&DomObj) -> T) -> Result<T> {
        let inner = self.inner();
        let idx = inner.find(dom)?;
        Ok(f(&inner.domains[idx]))
    }
}

impl Drop for TestDriver {
    fn drop(&mut self) {
        let me = self.conn_id;
        lock(&self.shared.callbacks).retain(|c| c.owner != me);
    }
}

/// Whether a domain passes `virConnectListAllDomains` filter `flags`.
fn matches(d: &DomObj, flags: u32) -> bool {
    use list_flags::*;
    let both = |a: u32, b: u32| flags & (a | b) == 0 || flags & (a | b) == (a | b);
    if !both(ACTIVE, INACTIVE) && ((flags & ACTIVE != 0) != d.is_active()) {
        return false;
    }
    if !both(PERSISTENT, TRANSIENT) && ((flags & PERSISTENT != 0) != d.persistent) {
        return false;
    }
    let states = RUNNING | PAUSED | SHUTOFF | OTHER;
    if flags & states != 0 {
        let running = d.state == DomainState::Running as i32;
        let paused = d.state == DomainState::Paused as i32;
        let shutoff = d.state == DomainState::Shutoff as i32;
        let ok = (flags & RUNNING != 0 && running)
            || (flags & PAUSED != 0 && paused)
            || (flags & SHUTOFF != 0 && shutoff)
            || (flags & OTHER != 0 && !running && !paused && !shutoff);
        if !ok {
            return false;
        }
    }
    if !both(MANAGEDSAVE, NO_MANAGEDSAVE) && ((flags & MANAGEDSAVE != 0) != d.has_managed_save) {
        return false;
    }
    if !both(AUTOSTART, NO_AUTOSTART) && ((flags & AUTOSTART != 0) != d.autostart) {
        return false;
    }
    // No domain of the test driver has snapshots or checkpoints here.
    if !both(HAS_SNAPSHOT, NO_SNAPSHOT) && flags & HAS_SNAPSHOT != 0 {
        return false;
    }
    if !both(HAS_CHECKPOINT, NO_CHECKPOINT) && flags & HAS_CHECKPOINT != 0 {
        return false;
    }
    true
}

impl Driver for TestDriver {
    fn error_domain(&self) -> ErrorDomain {
        TEST
    }

    fn get_type(&self) -> Result<String> {
        Ok("TEST".into())
    }

    fn get_uri(&self) -> Result<String> {
        Ok(self.uri.clone())
    }

    fn get_hostname(&self) -> Result<String> {
        let mut buf = [0u8; 256];
        // SAFETY: buf is a valid writable buffer of the length passed.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(Error::system(TEST, "failed to determine host name", &err));
        }
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).into_owned();
        Ok(canonical_hostname(name))
    }

    fn get_version(&self) -> Result<u64> {
        Ok(TEST_HV_VERSION)
    }

    fn get_capabilities(&self) -> Result<String> {
        Ok(self.inner().caps.clone())
    }

    fn node_get_info(&self) -> Result<NodeInfo> {
        Ok(self.inner().node.clone())
    }

    fn node_get_security_model(&self) -> Result<SecurityModel> {
        Ok(SecurityModel {
            model: caps::SECURITY_MODEL.into(),
            doi: String::new(),
        })
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        let inner = self.inner();
        inner
            .domains
            .iter()
            .find(|d| d.def.name == name)
            .map(|d| d.dref())
            .ok_or_else(no_domain)
    }

    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        let inner = self.inner();
        inner
            .domains
            .iter()
            .find(|d| d.def.uuid == *uuid)
            .map(|d| d.dref())
            .ok_or_else(no_domain)
    }

    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainRef> {
        let inner = self.inner();
        inner
            .domains
            .iter()
            .find(|d| d.is_active() && d.id == id)
            .map(|d| d.dref())
            .ok_or_else(no_domain)
    }

    fn list_all_domains(&self, flags: u32) -> Result<Vec<DomainRef>> {
        check_flags(flags, 0xffff, "testConnectListAllDomains")?;
        let inner = self.inner();
        Ok(inner
            .domains
            .iter()
            .filter(|d| matches(d, flags))
            .map(|d| d.dref())
            .collect())
    }

    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        check_flags(flags, define_flags::VALIDATE, "testDomainDefineXMLFlags")?;
        let def = parse_def(xml)?;
        let mut inner = self.inner();
        let (idx, replaced) = inner.add(def, false, false)?;
        inner.domains[idx].persistent = true;
        let detail = if replaced {
            event::defined::UPDATED
        } else {
            event::defined::ADDED
        };
        let ev = inner.event(idx, event::DEFINED, detail);
        let r = inner.domains[idx].dref();
        drop(inner);
        self.shared.emit(vec![ev]);
        Ok(r)
    }

    fn domain_undefine(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        use ironvirt_driver::undefine_flags::{MANAGED_SAVE, SNAPSHOTS_METADATA};
        check_flags(
            flags,
            MANAGED_SAVE | SNAPSHOTS_METADATA,
            "testDomainUndefineFlags",
        )?;
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        if inner.domains[idx].has_managed_save && flags & MANAGED_SAVE == 0 {
            return Err(Error::operation_invalid(
                TEST,
                "Refusing to undefine while domain managed save image exists",
            ));
        }
        let ev = inner.event(idx, event::UNDEFINED, event::undefined::REMOVED);
        inner.domains[idx].has_managed_save = false;
        if inner.domains[idx].is_active() {
            inner.domains[idx].persistent = false;
        } else {
            inner.remove(idx);
        }
        drop(inner);
        self.shared.emit(vec![ev]);
        Ok(())
    }

    fn domain_create(&self, dom: &DomainRef, flags: u32) -> Result<DomainRef> {
        check_flags(flags, 0, "testDomainCreateWithFlags")?;
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        if inner.domains[idx].state != DomainState::Shutoff as i32 {
            return Err(Error::internal(
                TEST,
                format!("Domain '{}' is already running", dom.name),
            ));
        }
        inner.start_state(idx, reason::running::BOOTED);
        let ev = inner.event(idx, event::STARTED, event::started::BOOTED);
        let r = inner.domains[idx].dref();
        drop(inner);
        self.shared.emit(vec![ev]);
        Ok(r)
    }

    fn domain_create_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        check_flags(flags, define_flags::START_VALIDATE, "testDomainCreateXML")?;
        let def = parse_def(xml)?;
        let mut inner = self.inner();
        let (idx, _) = inner.add(def, true, true)?;
        inner.start_state(idx, reason::running::BOOTED);
        let ev = inner.event(idx, event::STARTED, event::started::BOOTED);
        let r = inner.domains[idx].dref();
        drop(inner);
        self.shared.emit(vec![ev]);
        Ok(r)
    }

    fn domain_destroy(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        check_flags(flags, 1, "testDomainDestroyFlags")?;
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        if !inner.domains[idx].is_active() {
            return Err(Error::operation_invalid(
                ErrorDomain::DOMAIN,
                "domain is not running",
            ));
        }
        inner.shutdown_state(idx, reason::shutoff::DESTROYED);
        let ev = inner.event(idx, event::STOPPED, event::stopped::DESTROYED);
        if !inner.domains[idx].persistent {
            inner.remove(idx);
        }
        drop(inner);
        self.shared.emit(vec![ev]);
        Ok(())
    }

    fn domain_shutdown(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        check_flags(flags, 0, "testDomainShutdownFlags")?;
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        if inner.domains[idx].state == DomainState::Shutoff as i32 {
            return Err(Error::internal(
                TEST,
                format!("domain '{}' not running", dom.name),
            ));
        }
        let action = inner.domains[idx].def.lifecycle.on_poweroff.clone();
        let ev = lifecycle_action(&mut inner, idx, &action);
        drop(inner);
        self.shared.emit(ev.into_iter().collect());
        Ok(())
    }

    fn domain_reboot(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        check_flags(flags, 0x1f, "testDomainReboot")?;
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        if !inner.domains[idx].is_active() {
            return Err(Error::operation_invalid(
                ErrorDomain::DOMAIN,
                "domain is not running",
            ));
        }
        let action = inner.domains[idx].def.lifecycle.on_reboot.clone();
        let ev = lifecycle_action(&mut inner, idx, &action);
        drop(inner);
        self.shared.emit(ev.into_iter().collect());
        Ok(())
    }

    fn domain_reset(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        check_flags(flags, 0, "testDomainReset")?;
        let inner = self.inner();
        let idx = inner.find(dom)?;
        if !inner.domains[idx].is_active() {
            return Err(Error::operation_invalid(
                ErrorDomain::DOMAIN,
                "domain is not running",
            ));
        }
        Ok(())
    }

    fn domain_suspend(&self, dom: &DomainRef) -> Result<()> {
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        let st = inner.domains[idx].state;
        if st == DomainState::Shutoff as i32 || st == DomainState::Paused as i32 {
            return Err(Error::internal(
                TEST,
                format!("domain '{}' not running", dom.name),
            ));
        }
        inner.domains[idx].state = DomainState::Paused as i32;
        inner.domains[idx].reason = reason::paused::USER;
        let ev = inner.event(idx, event::SUSPENDED, event::suspended::PAUSED);
        drop(inner);
        self.shared.emit(vec![ev]);
        Ok(())
    }

    fn domain_resume(&self, dom: &DomainRef) -> Result<()> {
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        if inner.domains[idx].state != DomainState::Paused as i32 {
            return Err(Error::internal(
                TEST,
                format!("domain '{}' not paused", dom.name),
            ));
        }
        inner.domains[idx].state = DomainState::Running as i32;
        inner.domains[idx].reason = reason::running::UNPAUSED;
        let ev = inner.event(idx, event::RESUMED, event::resumed::UNPAUSED);
        drop(inner);
        self.shared.emit(vec![ev]);
        Ok(())
    }

    fn domain_get_info(&self, dom: &DomainRef) -> Result<DomainInfo> {
        self.with_dom(dom, |d| DomainInfo {
            state: d.state as u8,
            max_mem: d.def.memory_kib,
            memory: d.def.current_memory_kib,
            nr_virt_cpu: d
                .def
                .current_vcpus
                .unwrap_or(d.def.vcpus)
                .min(u32::from(u16::MAX)) as u16,
            cpu_time: now_ns(),
        })
    }

    fn domain_get_state(&self, dom: &DomainRef, flags: u32) -> Result<(i32, i32)> {
        check_flags(flags, 0, "testDomainGetState")?;
        self.with_dom(dom, |d| (d.state, d.reason))
    }

    fn domain_get_xml_desc(&self, dom: &DomainRef, flags: u32) -> Result<String> {
        check_flags(flags, 0xf, "testDomainGetXMLDesc")?;
        self.with_dom(dom, |d| {
            let inactive = flags & xml_flags::INACTIVE != 0;
            let def = match (&d.new_def, inactive) {
                (Some(nd), true) => nd,
                _ => &d.def,
            };
            let id = (!inactive && d.is_active()).then_some(d.id);
            def.format(&FormatOptions {
                id,
                inactive,
                secure: flags & xml_flags::SECURE != 0,
            })
        })
    }

    fn domain_get_os_type(&self, dom: &DomainRef) -> Result<String> {
        // libvirt's test driver answers "linux" whatever the definition says.
        self.with_dom(dom, |_| "linux".to_string())
    }

    fn domain_get_max_memory(&self, dom: &DomainRef) -> Result<u64> {
        self.with_dom(dom, |d| d.def.memory_kib)
    }

    fn domain_get_autostart(&self, dom: &DomainRef) -> Result<bool> {
        self.with_dom(dom, |d| d.autostart)
    }

    fn domain_set_autostart(&self, dom: &DomainRef, autostart: bool) -> Result<()> {
        let mut inner = self.inner();
        let idx = inner.find(dom)?;
        inner.domains[idx].autostart = autostart;
        Ok(())
    }

    fn domain_is_active(&self, dom: &DomainRef) -> Result<bool> {
        self.with_dom(dom, DomObj::is_active)
    }

    fn domain_is_persistent(&self, dom: &DomainRef) -> Result<bool> {
        self.with_dom(dom, |d| d.persistent)
    }

    fn domain_has_managed_save_image(&self, dom: &DomainRef, flags: u32) -> Result<bool> {
        check_flags(flags, 0, "testDomainHasManagedSaveImage")?;
        self.with_dom(dom, |d| d.has_managed_save)
    }

    fn domain_get_security_label(&self, dom: &DomainRef) -> Result<SecurityLabel> {
        self.with_dom(dom, |d| {
            if d.is_active() {
                SecurityLabel {
                    label: caps::SECURITY_LABEL.into(),
                    enforcing: true,
                }
            } else {
                SecurityLabel::default()
            }
        })
    }

    fn domain_event_register(&self, callback: LifecycleCallback) -> Result<i32> {
        let id = self.shared.next_callback.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.callbacks).push(Callback {
            id,
            owner: self.conn_id,
            func: callback,
        });
        Ok(id)
    }

    fn domain_event_deregister(&self, callback_id: i32) -> Result<()> {
        let mut cbs = lock(&self.shared.callbacks);
        match cbs
            .iter()
            .position(|c| c.id == callback_id && c.owner == self.conn_id)
        {
            Some(i) => {
                cbs.remove(i);
                Ok(())
            }
            None => Err(Error::invalid_arg(
                TEST,
                format!("could not find event callback {callback_id} for deletion"),
            )),
        }
    }

    fn close(&self) -> Result<()> {
        let me = self.conn_id;
        lock(&self.shared.callbacks).retain(|c| c.owner != me);
        Ok(())
    }
}

/// The host name as libvirt's `virGetHostname` reports it: names with a
/// dot or starting with "localhost" as they are, others resolved to their
/// canonical name when the resolver knows one.
fn canonical_hostname(name: String) -> String {
    if name.starts_with("localhost") || name.contains('.') {
        return name;
    }
    let Ok(cname) = std::ffi::CString::new(name.clone()) else {
        return name;
    };
    // SAFETY: a zeroed addrinfo is a valid "no hints" value; the fields set
    // below are plain integers.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    let mut info: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: cname and hints outlive the call; info receives a list that
    // is freed below.
    let rc = unsafe { libc::getaddrinfo(cname.as_ptr(), std::ptr::null(), &hints, &mut info) };
    if rc != 0 || info.is_null() {
        return name;
    }
    // SAFETY: info is a valid list returned by getaddrinfo; ai_canonname is
    // a NUL-terminated string or null.
    let canon = unsafe {
        let c = (*info).ai_canonname;
        let s = if c.is_null() {
            None
        } else {
            Some(std::ffi::CStr::from_ptr(c).to_string_lossy().into_owned())
        };
        libc::freeaddrinfo(info);
        s
    };
    match canon {
        Some(c) if c != "localhost" => c,
        _ => name,
    }
}

/// Applies a lifecycle action (`on_poweroff`, `on_reboot`) to a running
/// domain, as `testDomainActionSetState` does; returns the stop event when
/// the domain ends up shut off.
fn lifecycle_action(inner: &mut Inner, idx: usize, action: &str) -> Option<LifecycleEvent> {
    let d = &mut inner.domains[idx];
    match action {
        "restart" | "rename-restart" => {
            d.state = DomainState::Running as i32;
            d.reason = reason::running::BOOTED;
            None
        }
        _ => {
            inner.shutdown_state(idx, reason::shutoff::SHUTDOWN);
            let ev = inner.event(idx, event::STOPPED, event::stopped::SHUTDOWN);
            if !inner.domains[idx].persistent {
                inner.remove(idx);
            }
            Some(ev)
        }
    }
}

#[cfg(test)]
mod tests;
