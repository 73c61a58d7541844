//! `QemuDriver`: the [`Driver`] of `qemu:///system` and `qemu:///session`.
//!
//! One driver per process, shared by every connection (`Arc`). It owns the
//! capabilities cache, the persistent domain definitions (one XML file per
//! domain under `<state_dir>/qemu/`, autostart links under
//! `<state_dir>/qemu/autostart/`) and the lifecycle-event callbacks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use ironvirt_conf::{DomainDef, FormatOptions};
use ironvirt_driver::{
    define_flags, event, list_flags, reason, DomainInfo, DomainRef, DomainState, Driver, Error,
    ErrorDomain, ErrorNumber, LifecycleCallback, LifecycleEvent, NodeInfo, Result, Uuid,
};

use crate::cache::{self, CachedDomCaps, CapsCache, CapsEntry, DomCapsKey};
use crate::domcaps::{DomainCaps, HostFacts};
use crate::probe::{Prober, QmpProber};
use crate::process::{lock, StartFlags, Vm};
use crate::{caps, firmware, host, validate};

const DOM: ErrorDomain = ErrorDomain::QEMU;

/// How to set up a [`QemuDriver`].
#[derive(Clone)]
pub struct QemuConfig {
    /// Root of everything the driver keeps on disk: `qemu/` (definitions),
    /// `qemu/autostart/`, `cache/qemu/capabilities/`.
    pub state_dir: PathBuf,
    /// `qemu:///system` (true) or `qemu:///session` (false).
    pub privileged: bool,
    /// Where to look for `qemu-system-*`; None: /usr/bin, /usr/local/bin,
    /// /usr/libexec and `$PATH`.
    pub emulator_dirs: Option<Vec<PathBuf>>,
    /// Firmware descriptor directories; None: QEMU's standard ones.
    pub firmware_dirs: Option<Vec<PathBuf>>,
    /// The KVM device.
    pub kvm_device: PathBuf,
    /// How long a probe may take.
    pub probe_timeout: Duration,
    /// Where the per-domain UEFI variable stores go; None: libvirt's
    /// (`/var/lib/libvirt/qemu/nvram` for `qemu:///system`,
    /// `$XDG_CONFIG_HOME/libvirt/qemu/nvram` for `qemu:///session`).
    pub nvram_dir: Option<PathBuf>,
    /// Probes binaries; None: run them ([`QmpProber`]).
    pub prober: Option<Arc<dyn Prober>>,
}

impl std::fmt::Debug for QemuConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuConfig")
            .field("state_dir", &self.state_dir)
            .field("privileged", &self.privileged)
            .finish_non_exhaustive()
    }
}

impl QemuConfig {
    /// Defaults for a state directory.
    pub fn new(state_dir: impl Into<PathBuf>, privileged: bool) -> QemuConfig {
        QemuConfig {
            state_dir: state_dir.into(),
            privileged,
            emulator_dirs: None,
            firmware_dirs: None,
            kvm_device: PathBuf::from("/dev/kvm"),
            probe_timeout: Duration::from_secs(30),
            nvram_dir: None,
            prober: None,
        }
    }
}

/// One domain: its definition and, while it runs, its guest.
pub(crate) struct DomainObj {
    /// The persistent definition (for a transient domain: the one it was
    /// started with).
    pub(crate) def: DomainDef,
    pub(crate) autostart: bool,
    /// Whether a definition is saved under `<state_dir>/qemu/`.
    pub(crate) persistent: bool,
    /// The running guest.
    pub(crate) run: Option<Arc<Vm>>,
    /// A start is under way.
    pub(crate) starting: bool,
    /// Why it last stopped (`VIR_DOMAIN_SHUTOFF_*`).
    pub(crate) shutoff_reason: i32,
}

impl DomainObj {
    fn dom_ref(&self) -> DomainRef {
        DomainRef {
            name: self.def.name.clone(),
            uuid: self.def.uuid,
            id: self.run.as_ref().map(|v| v.id).unwrap_or(-1),
        }
    }

    /// (state, reason) as libvirt reports them.
    fn state(&self) -> (DomainState, i32) {
        match &self.run {
            Some(vm) => {
                let st = lock(&vm.st);
                (st.state, st.reason)
            }
            None => (DomainState::Shutoff, self.shutoff_reason),
        }
    }
}

#[derive(Default)]
pub(crate) struct Domains {
    pub(crate) by_uuid: HashMap<Uuid, DomainObj>,
    pub(crate) by_name: HashMap<String, Uuid>,
}

impl Domains {
    /// Refuses a definition whose UUID belongs to a domain of another name,
    /// or whose name belongs to a domain with another UUID, with libvirt's
    /// messages (the UUID is checked first, as libvirt does).
    fn check_identity(&self, def: &DomainDef) -> Result<()> {
        if let Some(o) = self.by_uuid.get(&def.uuid) {
            if o.def.name != def.name {
                return Err(err(
                    ErrorNumber::OPERATION_FAILED,
                    format!(
                        "domain '{}' is already defined with uuid {}",
                        o.def.name, def.uuid
                    ),
                ));
            }
        } else if let Some(u) = self.by_name.get(&def.name) {
            return Err(err(
                ErrorNumber::OPERATION_FAILED,
                format!("domain '{}' already exists with uuid {u}", def.name),
            ));
        }
        Ok(())
    }
}

/// The QEMU driver.
pub struct QemuDriver {
    cfg: QemuConfig,
    cache: CapsCache,
    host_uuid: String,
    host_facts: OnceLock<HostFacts>,
    pub(crate) domains: RwLock<Domains>,
    /// Serialises the changes that add, rename or remove definitions
    /// (define, undefine, create-xml), so that their config files are
    /// written without holding `domains`: lookups and listings never wait
    /// for a disk flush.
    config_lock: Mutex<()>,
    callbacks: Mutex<Vec<(i32, LifecycleCallback)>>,
    next_callback: AtomicI32,
    /// The id the next started guest gets.
    pub(crate) next_id: AtomicI32,
    me: OnceLock<Weak<QemuDriver>>,
}

impl Drop for QemuDriver {
    /// Guests keep running: only their monitor connections close, so that
    /// a new driver on the same state directory can reconnect.
    fn drop(&mut self) {
        let doms = self.domains.get_mut().unwrap_or_else(|p| p.into_inner());
        for o in doms.by_uuid.values() {
            if let Some(vm) = &o.run {
                if let Some(q) = lock(&vm.qmp).take() {
                    q.close();
                }
            }
        }
    }
}

impl std::fmt::Debug for QemuDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuDriver")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn err(code: ErrorNumber, msg: impl Into<String>) -> Error {
    Error::new(DOM, code, msg)
}

fn host_uuid() -> String {
    for p in [
        "/sys/devices/virtual/dmi/id/product_uuid",
        "/sys/class/dmi/id/product_uuid",
    ] {
        if let Some(u) = std::fs::read_to_string(p)
            .ok()
            .and_then(|s| Uuid::parse(&s))
        {
            return u.to_string();
        }
    }
    Uuid::random().to_string()
}

impl QemuDriver {
    /// Creates the driver: makes its directories and loads the persistent
    /// definitions. Emulators are probed lazily, on first use.
    pub fn new(cfg: QemuConfig) -> Result<Arc<QemuDriver>> {
        let prober: Arc<dyn Prober> = match &cfg.prober {
            Some(p) => p.clone(),
            None => Arc::new(QmpProber {
                timeout: cfg.probe_timeout,
            }),
        };
        let cache = CapsCache::new(
            cfg.state_dir.join("cache/qemu/capabilities"),
            cfg.kvm_device.clone(),
            prober,
        );
        let drv = QemuDriver {
            cache,
            host_uuid: host_uuid(),
            host_facts: OnceLock::new(),
            domains: RwLock::new(Domains::default()),
            config_lock: Mutex::new(()),
            callbacks: Mutex::new(Vec::new()),
            next_callback: AtomicI32::new(1),
            next_id: AtomicI32::new(1),
            me: OnceLock::new(),
            cfg,
        };
        for d in [drv.config_dir(), drv.autostart_dir()] {
            std::fs::create_dir_all(&d).map_err(|e| {
                Error::system(
                    DOM,
                    format_args!("cannot create directory '{}'", d.display()),
                    &e,
                )
            })?;
        }
        drv.load_configs();
        let drv = Arc::new(drv);
        let _ = drv.me.set(Arc::downgrade(&drv));
        drv.reconnect_all();
        Ok(drv)
    }

    /// A weak reference to this driver (for monitor threads).
    pub(crate) fn weak(&self) -> Weak<QemuDriver> {
        self.me.get().cloned().unwrap_or_default()
    }

    /// Whether guests were running when the driver last stopped (status
    /// files in its run directory): then it must be created at daemon
    /// start to reconnect to them, not on the first client's open.
    pub fn has_status_files(cfg: &QemuConfig) -> bool {
        std::fs::read_dir(cfg.state_dir.join("run/qemu"))
            .map(|rd| {
                rd.flatten()
                    .any(|e| e.path().extension().is_some_and(|x| x == "xml"))
            })
            .unwrap_or(false)
    }

    /// Whether any domain is marked autostart.
    pub fn has_autostart(cfg: &QemuConfig) -> bool {
        std::fs::read_dir(cfg.state_dir.join("qemu/autostart"))
            .map(|mut rd| rd.next().is_some())
            .unwrap_or(false)
    }

    /// Starts the persistent domains marked autostart that are not running,
    /// once per host boot as libvirt does (a daemon restart does not start
    /// again a guest the user stopped): the boot id of the last autostart is
    /// kept in the run directory. Returns the domains that failed to start.
    pub fn autostart_domains(&self) -> Vec<(String, Error)> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let marker = self.run_dir().join("autostarted");
        if !boot_id.is_empty()
            && std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == boot_id)
        {
            return Vec::new();
        }
        use ironvirt_driver::list_flags as l;
        let mut failed = Vec::new();
        match self.list_all_domains(l::INACTIVE | l::PERSISTENT | l::AUTOSTART) {
            Ok(doms) => {
                for d in doms {
                    match self.domain_create(&d, 0) {
                        Ok(_) => tracing::info!(domain = %d.name, "autostarted"),
                        Err(e) => {
                            tracing::warn!(domain = %d.name, error = %e, "autostart failed");
                            failed.push((d.name, e));
                        }
                    }
                }
            }
            Err(e) => failed.push((String::new(), e)),
        }
        if !boot_id.is_empty() {
            let written = std::fs::create_dir_all(self.run_dir())
                .and_then(|_| cache::write_atomic(&marker, boot_id.as_bytes()));
            if let Err(e) = written {
                tracing::warn!(file = %marker.display(), error = %e, "cannot record autostart");
            }
        }
        failed
    }

    /// The configuration the driver was made with.
    pub fn config(&self) -> &QemuConfig {
        &self.cfg
    }

    /// Where domain definitions are kept.
    pub fn config_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("qemu")
    }

    /// Where the UEFI variable stores of domains are kept.
    pub fn nvram_dir(&self) -> PathBuf {
        if let Some(d) = &self.cfg.nvram_dir {
            return d.clone();
        }
        if self.cfg.privileged {
            return PathBuf::from("/var/lib/libvirt/qemu/nvram");
        }
        std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("libvirt/qemu/nvram")
    }

    /// Where autostart links are kept.
    pub fn autostart_dir(&self) -> PathBuf {
        self.cfg.state_dir.join("qemu/autostart")
    }

    /// The capabilities cache.
    pub fn caps_cache(&self) -> &CapsCache {
        &self.cache
    }

    fn config_file(&self, name: &str) -> PathBuf {
        self.config_dir().join(format!("{name}.xml"))
    }

    fn autostart_link(&self, name: &str) -> PathBuf {
        self.autostart_dir().join(format!("{name}.xml"))
    }

    fn load_configs(&self) {
        let Ok(rd) = std::fs::read_dir(self.config_dir()) else {
            return;
        };
        let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
        for e in rd.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("xml") || !path.is_file() {
                continue;
            }
            let def = match std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| DomainDef::parse(&t).map_err(|e| e.to_string()))
            {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "ignoring unreadable domain definition");
                    continue;
                }
            };
            if path.file_stem().and_then(|s| s.to_str()) != Some(def.name.as_str()) {
                tracing::warn!(file = %path.display(), name = %def.name, "domain definition file name does not match its name");
                continue;
            }
            if doms.by_name.contains_key(&def.name) || doms.by_uuid.contains_key(&def.uuid) {
                tracing::warn!(file = %path.display(), "duplicate domain definition ignored");
                continue;
            }
            let autostart = self.autostart_link(&def.name).exists();
            doms.by_name.insert(def.name.clone(), def.uuid);
            doms.by_uuid.insert(
                def.uuid,
                DomainObj {
                    def,
                    autostart,
                    persistent: true,
                    run: None,
                    starting: false,
                    shutoff_reason: reason::shutoff::UNKNOWN,
                },
            );
        }
    }

    fn host_facts(&self) -> &HostFacts {
        self.host_facts.get_or_init(|| {
            let fw_dirs = self.cfg.firmware_dirs.clone().unwrap_or_else(|| {
                let mut v = Vec::new();
                if !self.cfg.privileged {
                    if let Some(h) = std::env::var_os("XDG_CONFIG_HOME")
                        .map(PathBuf::from)
                        .or_else(|| {
                            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config"))
                        })
                    {
                        v.push(h.join("qemu/firmware"));
                    }
                }
                v.push(PathBuf::from("/etc/qemu/firmware"));
                v.push(PathBuf::from("/usr/share/qemu/firmware"));
                v
            });
            HostFacts {
                kvm_max_vcpus: host::kvm_max_vcpus(&self.cfg.kvm_device),
                vfio: host::vfio_supported(),
                swtpm: host::in_path("swtpm"),
                firmware: firmware::load(&fw_dirs),
            }
        })
    }

    fn search_dirs(&self) -> Vec<PathBuf> {
        self.cfg
            .emulator_dirs
            .clone()
            .unwrap_or_else(cache::default_search_dirs)
    }

    /// The emulator binaries found: (QEMU target, path).
    pub fn emulators(&self) -> Vec<(String, PathBuf)> {
        cache::find_binaries(&self.search_dirs())
    }

    /// The emulator for a guest architecture.
    pub fn emulator_for_arch(&self, arch: &str) -> Result<PathBuf> {
        let target = crate::qemucaps::qemu_target_for_arch(arch);
        let name = format!("qemu-system-{target}");
        self.search_dirs()
            .into_iter()
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                err(
                    ErrorNumber::INVALID_ARG,
                    format!("unable to find any emulator to serve '{arch}' architecture"),
                )
            })
    }

    /// The capabilities of one binary (cached).
    pub fn qemu_caps(&self, binary: &Path) -> Result<Arc<CapsEntry>> {
        self.cache.lookup(binary)
    }

    fn kvm_usable(&self) -> bool {
        cache::kvm_state(&self.cfg.kvm_device).1
    }

    /// Resolves the arguments of `virConnectGetDomainCapabilities` to an
    /// entry and the cached domain capabilities.
    pub fn domain_caps(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
    ) -> Result<(Arc<CapsEntry>, Arc<CachedDomCaps>)> {
        let virttype = match virttype {
            None => {
                if self.kvm_usable() {
                    "kvm"
                } else {
                    "qemu"
                }
            }
            Some(v @ ("kvm" | "qemu")) => v,
            Some(other) => {
                return Err(err(
                    ErrorNumber::INVALID_ARG,
                    format!("unknown virttype: {other}"),
                ));
            }
        };
        let binary = match (emulator, arch) {
            (Some(e), _) => PathBuf::from(e),
            (None, Some(a)) => self.emulator_for_arch(a)?,
            (None, None) => self.emulator_for_arch(&host::host_arch())?,
        };
        let entry = self.cache.lookup(&binary)?;
        let qc = &entry.caps;
        if let Some(a) = arch {
            if a != qc.arch {
                return Err(err(
                    ErrorNumber::INVALID_ARG,
                    format!(
                        "emulator '{}' does not support arch '{a}'",
                        binary.display()
                    ),
                ));
            }
        }
        if virttype == "kvm" && !(qc.kvm && caps::kvm_runs(&host::host_arch(), &qc.arch)) {
            return Err(err(
                ErrorNumber::INVALID_ARG,
                format!(
                    "KVM is not supported by '{}' on this host",
                    binary.display()
                ),
            ));
        }
        let mt = match machine {
            Some(m) => qc.machine(m).ok_or_else(|| {
                err(
                    ErrorNumber::INVALID_ARG,
                    format!(
                        "the machine '{m}' is not supported by emulator '{}'",
                        binary.display()
                    ),
                )
            })?,
            None => qc.default_machine().ok_or_else(|| {
                err(
                    ErrorNumber::INTERNAL_ERROR,
                    format!("emulator '{}' reports no machine types", binary.display()),
                )
            })?,
        }
        .clone();
        let key = DomCapsKey {
            machine: mt.name.clone(),
            arch: qc.arch.clone(),
            virttype: virttype.to_string(),
        };
        let facts = self.host_facts();
        let dc = entry.domcaps(key, |qc| DomainCaps::build(qc, &mt, virttype, facts))?;
        Ok((entry, dc))
    }

    /// Checks a definition against the domain capabilities of its emulator,
    /// machine, architecture and virt type (`VIR_ERR_CONFIG_UNSUPPORTED`).
    pub fn validate_domain(&self, def: &DomainDef) -> Result<()> {
        if def.virt_type != "kvm" && def.virt_type != "qemu" {
            return Err(err(
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!(
                    "virt type '{}' is not supported by the QEMU driver (only 'kvm' and 'qemu')",
                    def.virt_type
                ),
            ));
        }
        let (_, dc) = self
            .domain_caps(
                def.emulator.as_deref(),
                def.os.arch.as_deref(),
                def.os.machine.as_deref(),
                Some(&def.virt_type),
            )
            .map_err(|e| {
                if e.code == ErrorNumber::INVALID_ARG {
                    err(
                        ErrorNumber::CONFIG_UNSUPPORTED,
                        e.str2.clone().unwrap_or(e.message.clone()),
                    )
                } else {
                    e
                }
            })?;
        validate::check(def, &dc.caps)
    }

    pub(crate) fn emit(&self, dom: DomainRef, ev: i32, detail: i32) {
        let cbs: Vec<LifecycleCallback> = self
            .callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        let e = LifecycleEvent {
            dom,
            event: ev,
            detail,
        };
        for c in cbs {
            c(&e);
        }
    }

    /// Fills in what libvirt's QEMU driver adds to a new definition:
    /// architecture, emulator, canonical machine type, then
    /// [`crate::defaults::apply`] (default devices, CPU, per-device
    /// defaults, PCI/USB/virtio-serial addresses and the controllers they
    /// need).
    pub fn apply_defaults(&self, def: &mut DomainDef) -> Result<()> {
        let arch = def.os.arch.clone().unwrap_or_else(host::host_arch);
        let emulator = match &def.emulator {
            Some(e) => PathBuf::from(e),
            None => self.emulator_for_arch(&arch)?,
        };
        let entry = self.cache.lookup(&emulator)?;
        let qc = &entry.caps;
        if def.os.arch.is_some() && qc.arch != arch {
            return Err(err(
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!(
                    "emulator '{}' does not support arch '{arch}'",
                    emulator.display()
                ),
            ));
        }
        let mt = match &def.os.machine {
            Some(m) => qc.machine(m).ok_or_else(|| {
                err(
                    ErrorNumber::CONFIG_UNSUPPORTED,
                    format!(
                        "Emulator '{}' does not support machine type '{m}'",
                        emulator.display()
                    ),
                )
            })?,
            None => qc.default_machine().ok_or_else(|| {
                err(
                    ErrorNumber::INTERNAL_ERROR,
                    "emulator reports no machine types",
                )
            })?,
        }
        .clone();
        def.os.arch = Some(qc.arch.clone());
        def.os.machine = Some(mt.name.clone());
        def.emulator = Some(emulator.to_string_lossy().to_string());
        crate::defaults::apply(def, qc, &mt, &self.nvram_dir())
    }

    fn lookup<T>(&self, dom: &DomainRef, f: impl FnOnce(&DomainObj) -> Result<T>) -> Result<T> {
        let doms = self.domains.read().unwrap_or_else(|p| p.into_inner());
        match doms.by_uuid.get(&dom.uuid) {
            Some(o) => f(o),
            None => Err(Error::new(
                DOM,
                ErrorNumber::NO_DOMAIN,
                format!("no domain with matching uuid '{}' ({})", dom.uuid, dom.name),
            )),
        }
    }
}

impl QemuDriver {
    /// The running guest of a domain (`VIR_ERR_OPERATION_INVALID` when it
    /// is shut off).
    fn running(&self, dom: &DomainRef) -> Result<Arc<Vm>> {
        self.lookup(dom, |o| {
            o.run
                .clone()
                .ok_or_else(|| Error::operation_invalid(DOM, "domain is not running"))
        })
    }

    /// Starts a domain already marked as starting, with `def` as its live
    /// definition; emits libvirt's events.
    fn launch(&self, uuid: Uuid, def: DomainDef, flags: StartFlags) -> Result<DomainRef> {
        let res = self.start_process(def, flags);
        let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
        let vm = match res {
            Ok(vm) => vm,
            Err(e) => {
                let remove = match doms.by_uuid.get_mut(&uuid) {
                    Some(o) => {
                        o.starting = false;
                        o.shutoff_reason = reason::shutoff::FAILED;
                        !o.persistent
                    }
                    None => false,
                };
                if remove {
                    if let Some(o) = doms.by_uuid.remove(&uuid) {
                        doms.by_name.remove(&o.def.name);
                    }
                }
                return Err(e);
            }
        };
        if let Some(o) = doms.by_uuid.get_mut(&uuid) {
            o.starting = false;
            o.run = Some(vm.clone());
        }
        drop(doms);
        let r = vm.dom_ref();
        if flags.paused {
            self.emit(r.clone(), event::STARTED, event::started::BOOTED);
            self.emit(r.clone(), event::SUSPENDED, event::suspended::PAUSED);
        } else {
            // libvirt 9.0 reports the resume of the first `cont` before the start.
            self.emit(r.clone(), event::RESUMED, event::resumed::UNPAUSED);
            self.emit(r.clone(), event::STARTED, event::started::BOOTED);
        }
        if lock(&vm.st).stopped {
            // It died at once: the stop has been handled by the monitor.
            let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
            let remove = match doms.by_uuid.get_mut(&uuid) {
                Some(o) if o.run.as_ref().is_some_and(|x| Arc::ptr_eq(x, &vm)) => {
                    o.run = None;
                    !o.persistent
                }
                _ => false,
            };
            if remove {
                if let Some(o) = doms.by_uuid.remove(&uuid) {
                    doms.by_name.remove(&o.def.name);
                }
            }
        }
        Ok(r)
    }
}

fn start_flags(flags: u32, api: &str, allowed: u32) -> Result<StartFlags> {
    Error::check_flags(DOM, flags, allowed, api)?;
    Ok(StartFlags {
        paused: flags & define_flags::START_PAUSED != 0,
    })
}

impl Driver for QemuDriver {
    fn error_domain(&self) -> ErrorDomain {
        DOM
    }

    fn get_type(&self) -> Result<String> {
        Ok("QEMU".to_string())
    }

    fn get_uri(&self) -> Result<String> {
        Ok(if self.cfg.privileged {
            "qemu:///system"
        } else {
            "qemu:///session"
        }
        .to_string())
    }

    fn get_hostname(&self) -> Result<String> {
        Ok(host::hostname())
    }

    fn get_version(&self) -> Result<u64> {
        let bin = self.emulator_for_arch(&host::host_arch()).or_else(|_| {
            self.emulators()
                .into_iter()
                .next()
                .map(|(_, p)| p)
                .ok_or_else(|| {
                    err(
                        ErrorNumber::INTERNAL_ERROR,
                        "Cannot find suitable emulator for QEMU",
                    )
                })
        })?;
        Ok(self.cache.lookup(&bin)?.caps.version)
    }

    fn get_capabilities(&self) -> Result<String> {
        let bins = self.emulators();
        let entries: Vec<Result<Arc<CapsEntry>>> = std::thread::scope(|s| {
            let hs: Vec<_> = bins
                .iter()
                .map(|(_, b)| s.spawn(move || self.cache.lookup(b)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(err(ErrorNumber::INTERNAL_ERROR, "probe thread panicked"))
                    })
                })
                .collect()
        });
        let mut ok = Vec::new();
        for (e, (_, b)) in entries.into_iter().zip(&bins) {
            match e {
                Ok(e) => ok.push(e),
                Err(e) => tracing::warn!(binary = %b.display(), error = %e, "skipping emulator"),
            }
        }
        let harch = host::host_arch();
        let host_model = ok
            .iter()
            .find(|e| e.caps.arch == harch)
            .and_then(|e| crate::domcaps::host_model(e.caps.cpu(e.caps.kvm)));
        let hc = caps::HostCaps::read(self.host_uuid.clone(), host_model);
        let guests: Vec<&crate::qemucaps::QemuCaps> = ok.iter().map(|e| &e.caps).collect();
        Ok(caps::format(&hc, &guests, self.kvm_usable()))
    }

    fn domain_xml_to_native(&self, native_format: &str, xml: &str, flags: u32) -> Result<String> {
        Error::check_flags(DOM, flags, 0, "qemuConnectDomainXMLToNative")?;
        if native_format != "qemu-argv" {
            return Err(err(
                ErrorNumber::INVALID_ARG,
                format!("unsupported config type {native_format}"),
            ));
        }
        QemuDriver::domain_xml_to_native(self, xml)
    }

    fn get_domain_capabilities(
        &self,
        emulator: Option<&str>,
        arch: Option<&str>,
        machine: Option<&str>,
        virttype: Option<&str>,
        flags: u32,
    ) -> Result<String> {
        Error::check_flags(DOM, flags, 0, "qemuConnectGetDomainCapabilities")?;
        Ok(self
            .domain_caps(emulator, arch, machine, virttype)?
            .1
            .xml
            .clone())
    }

    fn node_get_info(&self) -> Result<NodeInfo> {
        Ok(host::node_info())
    }

    fn domain_lookup_by_name(&self, name: &str) -> Result<DomainRef> {
        let doms = self.domains.read().unwrap_or_else(|p| p.into_inner());
        doms.by_name
            .get(name)
            .and_then(|u| doms.by_uuid.get(u))
            .map(DomainObj::dom_ref)
            .ok_or_else(|| Error::no_domain_name(DOM, name))
    }

    fn domain_lookup_by_uuid(&self, uuid: &Uuid) -> Result<DomainRef> {
        let doms = self.domains.read().unwrap_or_else(|p| p.into_inner());
        doms.by_uuid
            .get(uuid)
            .map(DomainObj::dom_ref)
            .ok_or_else(|| Error::no_domain_uuid(DOM, &uuid.to_string()))
    }

    fn domain_lookup_by_id(&self, id: i32) -> Result<DomainRef> {
        let doms = self.domains.read().unwrap_or_else(|p| p.into_inner());
        doms.by_uuid
            .values()
            .find(|o| o.run.as_ref().is_some_and(|v| v.id == id))
            .map(DomainObj::dom_ref)
            .ok_or_else(|| Error::no_domain_id(DOM, id))
    }

    fn list_all_domains(&self, flags: u32) -> Result<Vec<DomainRef>> {
        let doms = self.domains.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<DomainRef> = doms
            .by_uuid
            .values()
            .filter(|o| {
                let active = o.run.is_some();
                let active_ok = flags & (list_flags::ACTIVE | list_flags::INACTIVE) == 0
                    || (active && flags & list_flags::ACTIVE != 0)
                    || (!active && flags & list_flags::INACTIVE != 0);
                let pers_ok = flags & (list_flags::PERSISTENT | list_flags::TRANSIENT) == 0
                    || (o.persistent && flags & list_flags::PERSISTENT != 0)
                    || (!o.persistent && flags & list_flags::TRANSIENT != 0);
                let state_mask = list_flags::RUNNING
                    | list_flags::PAUSED
                    | list_flags::SHUTOFF
                    | list_flags::OTHER;
                let state_flag = match o.state().0 {
                    DomainState::Running => list_flags::RUNNING,
                    DomainState::Paused => list_flags::PAUSED,
                    DomainState::Shutoff => list_flags::SHUTOFF,
                    _ => list_flags::OTHER,
                };
                let state_ok = flags & state_mask == 0 || flags & state_flag != 0;
                let auto_ok = match (
                    flags & list_flags::AUTOSTART != 0,
                    flags & list_flags::NO_AUTOSTART != 0,
                ) {
                    (true, false) => o.autostart,
                    (false, true) => !o.autostart,
                    _ => true,
                };
                let ms_ok = flags & (list_flags::MANAGEDSAVE | list_flags::NO_MANAGEDSAVE) == 0
                    || flags & list_flags::NO_MANAGEDSAVE != 0;
                let snap_ok = flags & (list_flags::HAS_SNAPSHOT | list_flags::NO_SNAPSHOT) == 0
                    || flags & list_flags::NO_SNAPSHOT != 0;
                let ckpt_ok = flags & (list_flags::HAS_CHECKPOINT | list_flags::NO_CHECKPOINT) == 0
                    || flags & list_flags::NO_CHECKPOINT != 0;
                active_ok && pers_ok && state_ok && auto_ok && ms_ok && snap_ok && ckpt_ok
            })
            .map(DomainObj::dom_ref)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn domain_define_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        Error::check_flags(
            DOM,
            flags,
            ironvirt_driver::define_flags::VALIDATE,
            "qemuDomainDefineXMLFlags",
        )?;
        let mut def = DomainDef::parse(xml)?;
        if def.virt_type != "kvm" && def.virt_type != "qemu" {
            return Err(err(
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!(
                    "virt type '{}' is not supported by the QEMU driver (only 'kvm' and 'qemu')",
                    def.virt_type
                ),
            ));
        }
        self.apply_defaults(&mut def)?;
        self.validate_domain(&def)?;
        let text = def.format(&FormatOptions {
            id: None,
            inactive: true,
            secure: true,
        });
        let _serial = lock(&self.config_lock);
        let updated = {
            let doms = self.domains.read().unwrap_or_else(|p| p.into_inner());
            doms.check_identity(&def)?;
            doms.by_uuid.contains_key(&def.uuid)
        };
        let path = self.config_file(&def.name);
        cache::write_atomic(&path, text.as_bytes()).map_err(|e| {
            Error::new(
                DOM,
                ErrorNumber::WRITE_FAILED,
                format!(
                    "cannot save config file '{}': {}",
                    path.display(),
                    ironvirt_driver::error::io_strerror(&e)
                ),
            )
        })?;
        let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
        doms.by_name.insert(def.name.clone(), def.uuid);
        let r = match doms.by_uuid.get_mut(&def.uuid) {
            Some(o) => {
                // A running domain keeps its live definition; the new one
                // applies from its next start.
                o.def = def;
                o.persistent = true;
                o.dom_ref()
            }
            None => {
                let o = DomainObj {
                    def,
                    autostart: false,
                    persistent: true,
                    run: None,
                    starting: false,
                    shutoff_reason: reason::shutoff::UNKNOWN,
                };
                let r = o.dom_ref();
                doms.by_uuid.insert(r.uuid, o);
                r
            }
        };
        drop(doms);
        self.emit(
            r.clone(),
            event::DEFINED,
            if updated {
                event::defined::UPDATED
            } else {
                event::defined::ADDED
            },
        );
        Ok(r)
    }

    fn domain_undefine(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        use ironvirt_driver::undefine_flags as uf;
        let allowed = uf::MANAGED_SAVE
            | uf::SNAPSHOTS_METADATA
            | uf::NVRAM
            | uf::KEEP_NVRAM
            | uf::CHECKPOINTS_METADATA
            | uf::TPM
            | uf::KEEP_TPM;
        Error::check_flags(DOM, flags, allowed, "qemuDomainUndefineFlags")?;
        let _serial = lock(&self.config_lock);
        let (name, r) = {
            let doms = self.domains.read().unwrap_or_else(|p| p.into_inner());
            let Some(o) = doms.by_uuid.get(&dom.uuid) else {
                return Err(Error::no_domain_uuid(DOM, &dom.uuid.to_string()));
            };
            if !o.persistent {
                return Err(Error::operation_invalid(
                    DOM,
                    "cannot undefine transient domain",
                ));
            }
            (o.def.name.clone(), o.dom_ref())
        };
        let path = self.config_file(&name);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(Error::system(
                    DOM,
                    format_args!("cannot remove config {}", path.display()),
                    &e,
                ));
            }
        }
        let _ = std::fs::remove_file(self.autostart_link(&name));
        if let Ok(d) = std::fs::File::open(self.config_dir()) {
            let _ = d.sync_all();
        }
        // The domain may have started or stopped while the file went.
        let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
        let active = doms
            .by_uuid
            .get(&dom.uuid)
            .is_some_and(|o| o.run.is_some() || o.starting);
        if active {
            // A running domain becomes transient and goes when it stops.
            if let Some(o) = doms.by_uuid.get_mut(&dom.uuid) {
                o.persistent = false;
                o.autostart = false;
            }
        } else {
            doms.by_uuid.remove(&dom.uuid);
            doms.by_name.remove(&name);
        }
        drop(doms);
        self.emit(r, event::UNDEFINED, event::undefined::REMOVED);
        Ok(())
    }

    fn domain_create(&self, dom: &DomainRef, flags: u32) -> Result<DomainRef> {
        use define_flags as f;
        let sf = start_flags(
            flags,
            "qemuDomainCreateWithFlags",
            f::START_PAUSED | f::START_AUTODESTROY | f::START_BYPASS_CACHE | f::START_FORCE_BOOT,
        )?;
        let def = {
            let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
            let Some(o) = doms.by_uuid.get_mut(&dom.uuid) else {
                return Err(Error::no_domain_uuid(DOM, &dom.uuid.to_string()));
            };
            if o.run.is_some() || o.starting {
                return Err(Error::operation_invalid(DOM, "domain is already running"));
            }
            o.starting = true;
            o.def.clone()
        };
        self.launch(dom.uuid, def, sf)
    }

    fn domain_create_xml(&self, xml: &str, flags: u32) -> Result<DomainRef> {
        use define_flags as f;
        let sf = start_flags(
            flags,
            "qemuDomainCreateXML",
            f::START_PAUSED | f::START_AUTODESTROY | f::START_BYPASS_CACHE | f::START_VALIDATE,
        )?;
        let mut def = DomainDef::parse(xml)?;
        if def.virt_type != "kvm" && def.virt_type != "qemu" {
            return Err(err(
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!(
                    "virt type '{}' is not supported by the QEMU driver (only 'kvm' and 'qemu')",
                    def.virt_type
                ),
            ));
        }
        self.apply_defaults(&mut def)?;
        self.validate_domain(&def)?;
        {
            let _serial = lock(&self.config_lock);
            let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
            doms.check_identity(&def)?;
            match doms.by_uuid.get_mut(&def.uuid) {
                Some(o) => {
                    if o.run.is_some() || o.starting {
                        return Err(err(
                            ErrorNumber::OPERATION_INVALID,
                            format!("domain '{}' is already active", def.name),
                        ));
                    }
                    o.starting = true;
                }
                None => {
                    doms.by_name.insert(def.name.clone(), def.uuid);
                    doms.by_uuid.insert(
                        def.uuid,
                        DomainObj {
                            def: def.clone(),
                            autostart: false,
                            persistent: false,
                            run: None,
                            starting: true,
                            shutoff_reason: reason::shutoff::UNKNOWN,
                        },
                    );
                }
            }
        }
        self.launch(def.uuid, def, sf)
    }

    fn domain_destroy(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        Error::check_flags(DOM, flags, 1, "qemuDomainDestroyFlags")?;
        let vm = self.running(dom)?;
        self.destroy_vm(&vm)
    }

    fn domain_shutdown(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        // Only ACPI is offered (no guest agent, initctl or signal).
        if flags & !1 != 0 {
            return Err(err(
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!("shutdown mode 0x{flags:x} is not supported (only ACPI)"),
            ));
        }
        let vm = self.running(dom)?;
        self.powerdown_vm(&vm, false)
    }

    fn domain_reboot(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        if flags & !1 != 0 {
            return Err(err(
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!("reboot mode 0x{flags:x} is not supported (only ACPI)"),
            ));
        }
        let vm = self.running(dom)?;
        self.powerdown_vm(&vm, true)
    }

    fn domain_reset(&self, dom: &DomainRef, flags: u32) -> Result<()> {
        Error::check_flags(DOM, flags, 0, "qemuDomainReset")?;
        let vm = self.running(dom)?;
        self.reset_vm(&vm)
    }

    fn domain_suspend(&self, dom: &DomainRef) -> Result<()> {
        let vm = self.running(dom)?;
        self.suspend_vm(&vm)
    }

    fn domain_resume(&self, dom: &DomainRef) -> Result<()> {
        let vm = self.running(dom)?;
        self.resume_vm(&vm)
    }

    fn domain_get_info(&self, dom: &DomainRef) -> Result<DomainInfo> {
        self.lookup(dom, |o| match &o.run {
            Some(vm) => {
                let (state, max_mem, memory, vcpus) = {
                    let st = lock(&vm.st);
                    (
                        st.state,
                        st.def.memory_kib,
                        st.def.current_memory_kib,
                        st.def.current_vcpus.unwrap_or(st.def.vcpus),
                    )
                };
                Ok(DomainInfo {
                    state: state as u8,
                    max_mem,
                    memory,
                    nr_virt_cpu: vcpus as u16,
                    cpu_time: vm.cpu_time(),
                })
            }
            None => Ok(DomainInfo {
                state: DomainState::Shutoff as u8,
                max_mem: o.def.memory_kib,
                memory: o.def.current_memory_kib,
                nr_virt_cpu: o.def.vcpus as u16,
                cpu_time: 0,
            }),
        })
    }

    fn domain_get_state(&self, dom: &DomainRef, _flags: u32) -> Result<(i32, i32)> {
        self.lookup(dom, |o| {
            let (s, r) = o.state();
            Ok((s as i32, r))
        })
    }

    fn domain_get_xml_desc(&self, dom: &DomainRef, flags: u32) -> Result<String> {
        use ironvirt_driver::xml_flags as xf;
        self.lookup(dom, |o| match &o.run {
            Some(vm) if flags & xf::INACTIVE == 0 => Ok(lock(&vm.st).def.format(&FormatOptions {
                id: Some(vm.id),
                inactive: false,
                secure: flags & xf::SECURE != 0,
            })),
            _ => Ok(o.def.format(&FormatOptions {
                id: None,
                inactive: true,
                secure: flags & xf::SECURE != 0,
            })),
        })
    }

    fn domain_get_os_type(&self, dom: &DomainRef) -> Result<String> {
        self.lookup(dom, |o| Ok(o.def.os.os_type.clone()))
    }

    fn domain_get_autostart(&self, dom: &DomainRef) -> Result<bool> {
        self.lookup(dom, |o| Ok(o.autostart))
    }

    fn domain_set_autostart(&self, dom: &DomainRef, autostart: bool) -> Result<()> {
        let mut doms = self.domains.write().unwrap_or_else(|p| p.into_inner());
        let Some(o) = doms.by_uuid.get_mut(&dom.uuid) else {
            return Err(Error::no_domain_uuid(DOM, &dom.uuid.to_string()));
        };
        if o.autostart == autostart {
            return Ok(());
        }
        let link = self.autostart_link(&o.def.name);
        let res = if autostart {
            std::os::unix::fs::symlink(self.config_file(&o.def.name), &link)
        } else {
            std::fs::remove_file(&link)
        };
        match res {
            Ok(()) => {}
            Err(e) if !autostart && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if autostart && e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                let what = if autostart {
                    "Failed to create symlink"
                } else {
                    "Failed to delete symlink"
                };
                return Err(Error::system(
                    DOM,
                    format_args!("{what} '{}'", link.display()),
                    &e,
                ));
            }
        }
        o.autostart = autostart;
        Ok(())
    }

    fn domain_is_active(&self, dom: &DomainRef) -> Result<bool> {
        self.lookup(dom, |o| Ok(o.run.is_some()))
    }

    fn domain_is_persistent(&self, dom: &DomainRef) -> Result<bool> {
        self.lookup(dom, |o| Ok(o.persistent))
    }

    fn domain_event_register(&self, callback: LifecycleCallback) -> Result<i32> {
        let id = self.next_callback.fetch_add(1, Ordering::SeqCst);
        self.callbacks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((id, callback));
        Ok(id)
    }

    fn domain_event_deregister(&self, callback_id: i32) -> Result<()> {
        let mut cbs = self.callbacks.lock().unwrap_or_else(|p| p.into_inner());
        let before = cbs.len();
        cbs.retain(|(id, _)| *id != callback_id);
        if cbs.len() == before {
            return Err(err(
                ErrorNumber::INVALID_ARG,
                format!("could not find event callback {callback_id} for deletion"),
            ));
        }
        Ok(())
    }
}
