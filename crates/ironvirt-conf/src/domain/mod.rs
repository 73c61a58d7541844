//! The domain definition (`<domain>`), as libvirt's `virDomainDef`.
//!
//! # Defaults
//!
//! [`DomainDef::parse`] applies what libvirt's generic domain code adds for
//! every driver:
//! - a random UUID when `<uuid>` is absent;
//! - `currentMemory` = `memory` when absent or larger than `memory`;
//! - `<vcpu placement='static'>` (or `auto` when `cpuset` absent and
//!   numatune placement is auto);
//! - `<boot dev='hd'/>` for `hvm` guests without `<boot>` elements, kernel
//!   or per-device boot order;
//! - `<clock offset='utc'/>`, `on_poweroff` destroy, `on_reboot` restart,
//!   `on_crash` destroy;
//! - interface MAC addresses `52:54:00:xx:xx:xx` (random);
//! - controller indexes (the lowest unused one, USB2 companions joining
//!   their master) and the implicit controllers, appended and marked
//!   [`Controller::implicit`];
//! - the console for the first serial port (and the serial port for a
//!   serial console), serial/parallel/console ports;
//! - graphics ports, autoport and listens (a SPICE server without ports
//!   listens nowhere), a video device for graphics without one, the
//!   primary video first;
//! - filesystem type and access mode;
//! - the other device defaults listed on each device.
//!
//! Driver-specific defaults are not applied here; a driver adds them after
//! parsing. Measured on libvirt 9.0's test driver, it adds:
//! - `os.arch = Some("i686")` when no arch is given (the test driver's only
//!   guest arch), and `os.machine` stays unset;
//! - `target dev='testnetN'` for each interface without a target device
//!   (`N` counts up across the driver);
//! - nothing else (no device addresses, no implicit controllers).
//!
//! The QEMU driver adds far more (machine type, PCI addresses, USB/PCI
//! controllers, `<input type='mouse' bus='ps2'/>`, memballoon, ...).

pub mod address;
pub mod devices;
pub mod toplevel;

use crate::dom::{self, Node};
use crate::dom::{attr, child, child_text, elements, text_of, text_ref};
use crate::generic::Element;
use crate::units;
use crate::xml::{self, xml_err, Writer};
use crate::FormatOptions;
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result, Uuid};

pub use address::Address;
pub use devices::*;

/// `<os>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct OsDef {
    /// `<type>` text: `hvm`, `xen`, `linux`, `exe`, ...
    pub os_type: String,
    /// `<type arch=...>`.
    pub arch: Option<String>,
    /// `<type machine=...>`.
    pub machine: Option<String>,
    /// `<os firmware=...>` (`bios`, `efi`).
    pub firmware: Option<String>,
    /// `<firmware><feature enabled=... name=.../></firmware>`.
    pub firmware_features: Vec<(String, bool)>,
    /// `<boot dev=...>` in order.
    pub boot_devs: Vec<String>,
    /// `<bootmenu enable=... timeout=...>`.
    pub bootmenu: Option<BootMenu>,
    /// `<loader>`.
    pub loader: Option<Loader>,
    /// `<nvram>`.
    pub nvram: Option<Nvram>,
    /// `<kernel>`.
    pub kernel: Option<String>,
    /// `<initrd>`.
    pub initrd: Option<String>,
    /// `<cmdline>`.
    pub cmdline: Option<String>,
    /// `<dtb>`.
    pub dtb: Option<String>,
    /// `<init>` (containers).
    pub init: Option<String>,
    /// `<initarg>` (containers).
    pub initargs: Vec<String>,
    /// `<smbios mode=...>`.
    pub smbios_mode: Option<String>,
    /// `<bios useserial=... rebootTimeout=...>`.
    pub bios_useserial: Option<bool>,
    /// `<bios rebootTimeout=...>`.
    pub bios_reboot_timeout: Option<i64>,
    /// `<acpi><table type=...>path</table></acpi>`.
    pub acpi_tables: Vec<(String, String)>,
}

/// `<bootmenu>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BootMenu {
    /// `enable` (yes/no).
    pub enable: Option<bool>,
    /// `timeout` in milliseconds.
    pub timeout: Option<u32>,
}

/// `<loader>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Loader {
    /// `readonly` (yes/no).
    pub readonly: Option<bool>,
    /// `secure` (yes/no).
    pub secure: Option<bool>,
    /// `stateless` (yes/no).
    pub stateless: Option<bool>,
    /// `type` (`rom`, `pflash`).
    pub loader_type: Option<String>,
    /// `format`.
    pub format: Option<String>,
    /// Path.
    pub path: Option<String>,
}

/// `<nvram>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Nvram {
    /// `template`.
    pub template: Option<String>,
    /// `format`.
    pub format: Option<String>,
    /// Path.
    pub path: Option<String>,
}

/// `<vcpu placement=...>`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Placement {
    /// `static`.
    #[default]
    Static,
    /// `auto`.
    Auto,
}

impl Placement {
    fn as_str(self) -> &'static str {
        match self {
            Placement::Static => "static",
            Placement::Auto => "auto",
        }
    }
}

/// `<maxMemory slots=...>`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct MaxMemory {
    /// Size in KiB.
    pub kib: u64,
    /// Memory slots.
    pub slots: u32,
}

/// The lifecycle actions (`on_poweroff`, ...).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Lifecycle {
    /// `on_poweroff` (default `destroy`).
    pub on_poweroff: String,
    /// `on_reboot` (default `restart`).
    pub on_reboot: String,
    /// `on_crash` (default `destroy`).
    pub on_crash: String,
    /// `on_lockfailure`.
    pub on_lockfailure: Option<String>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            on_poweroff: "destroy".into(),
            on_reboot: "restart".into(),
            on_crash: "destroy".into(),
            on_lockfailure: None,
        }
    }
}

/// A domain definition.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DomainDef {
    /// `<domain type=...>`: `test`, `kvm`, `qemu`, ...
    pub virt_type: String,
    /// `<name>`.
    pub name: String,
    /// `<uuid>` (random when absent from the input).
    pub uuid: Uuid,
    /// `<genid>`: `Some(None)` for an empty element (generated by the
    /// hypervisor driver).
    pub genid: Option<Option<Uuid>>,
    /// `<title>`.
    pub title: Option<String>,
    /// `<description>`.
    pub description: Option<String>,
    /// Children of `<metadata>`, kept as they are.
    pub metadata: Vec<Element>,
    /// `<maxMemory>`.
    pub max_memory: Option<MaxMemory>,
    /// `<memory>` in KiB.
    pub memory_kib: u64,
    /// `<memory dumpCore=...>`.
    pub memory_dump_core: Option<bool>,
    /// `<currentMemory>` in KiB.
    pub current_memory_kib: u64,
    /// `<vcpu>`: the maximum number of vCPUs.
    pub vcpus: u32,
    /// `<vcpu current=...>` when it differs from the maximum.
    pub current_vcpus: Option<u32>,
    /// `<vcpu placement=...>`.
    pub vcpu_placement: Placement,
    /// `<vcpu cpuset=...>`.
    pub cpuset: Option<String>,
    /// `<vcpus>` (per-vCPU state), kept generically.
    pub vcpus_detail: Option<Element>,
    /// `<iothreads>`.
    pub iothreads: Option<u32>,
    /// `<iothreadids>`, kept generically.
    pub iothreadids: Option<Element>,
    /// `<blkiotune>`.
    pub blkiotune: Option<Element>,
    /// `<memtune>`.
    pub memtune: Option<Element>,
    /// `<memoryBacking>`.
    pub memory_backing: Option<Element>,
    /// `<cputune>`.
    pub cputune: Option<Element>,
    /// `<numatune>`.
    pub numatune: Option<Element>,
    /// `<resource>`.
    pub resource: Option<Element>,
    /// `<sysinfo>` elements.
    pub sysinfo: Vec<Element>,
    /// `<bootloader>`.
    pub bootloader: Option<String>,
    /// `<bootloader_args>`.
    pub bootloader_args: Option<String>,
    /// `<os>`.
    pub os: OsDef,
    /// `<idmap>`.
    pub idmap: Option<Element>,
    /// `<features>`.
    pub features: Option<Element>,
    /// `<cpu>`.
    pub cpu: Option<Element>,
    /// `<clock>`.
    pub clock: Option<Element>,
    /// Lifecycle actions.
    pub lifecycle: Lifecycle,
    /// `<pm>`.
    pub pm: Option<Element>,
    /// `<perf>`.
    pub perf: Option<Element>,
    /// `<devices><emulator>`.
    pub emulator: Option<String>,
    /// Devices.
    pub devices: Devices,
    /// `<seclabel>` elements.
    pub seclabels: Vec<Element>,
    /// `<keywrap>`.
    pub keywrap: Option<Element>,
    /// `<launchSecurity>`.
    pub launch_security: Option<Element>,
}

/// Number of the top-level elements read once each.
const TOP_LEVEL: usize = 35;

/// Where the first top-level element called `name` is kept while parsing.
#[inline]
fn top_level_slot(name: &str) -> Option<usize> {
    Some(match name {
        "name" => 0,
        "uuid" => 1,
        "genid" => 2,
        "title" => 3,
        "description" => 4,
        "metadata" => 5,
        "memory" => 6,
        "currentMemory" => 7,
        "maxMemory" => 8,
        "blkiotune" => 9,
        "memtune" => 10,
        "memoryBacking" => 11,
        "vcpu" => 12,
        "vcpus" => 13,
        "iothreads" => 14,
        "iothreadids" => 15,
        "cputune" => 16,
        "numatune" => 17,
        "resource" => 18,
        "bootloader" => 19,
        "bootloader_args" => 20,
        "os" => 21,
        "idmap" => 22,
        "features" => 23,
        "cpu" => 24,
        "clock" => 25,
        "on_poweroff" => 26,
        "on_reboot" => 27,
        "on_crash" => 28,
        "on_lockfailure" => 29,
        "pm" => 30,
        "perf" => 31,
        "devices" => 32,
        "keywrap" => 33,
        "launchSecurity" => 34,
        _ => return None,
    })
}

/// Reads a scaled memory element (`<memory unit='MiB'>128</memory>`) and
/// returns its size in KiB.
fn parse_memory_elem(node: Node<'_, '_>) -> Result<u64> {
    let text = text_ref(node);
    let value = parse_ull_text(&text).ok_or_else(|| {
        Error::new(
            ErrorDomain::XML,
            ErrorNumber::XML_ERROR,
            format!(
                "Invalid value '{text}' for element or attribute './{}[1]'",
                node.tag_name().name()
            ),
        )
    })?;
    units::memory_kib(value, node.attribute("unit").unwrap_or(""))
}

/// `strtoull` base 10 on trimmed-left text, requiring the whole string.
fn parse_ull_text(text: &str) -> Option<u64> {
    let t = text.trim_start();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

impl DomainDef {
    /// Parses a `<domain>` document and applies libvirt's generic defaults.
    pub fn parse(xml_text: &str) -> Result<DomainDef> {
        dom::with_document(xml_text, "domain_definition", |doc| {
            Self::from_root(doc.root_element())
        })
    }

    /// Parses from a `<domain>` element.
    pub fn from_node(root: roxmltree::Node<'_, '_>) -> Result<DomainDef> {
        dom::with_rox_node(root, Self::from_dom)
    }

    /// Checks the root element's name and parses it.
    fn from_root(root: Node<'_, '_>) -> Result<DomainDef> {
        if root.tag_name().name() != "domain" {
            return Err(Error::new(
                ErrorDomain::XML,
                ErrorNumber::XML_ERROR,
                format!(
                    "expecting root element of 'domain', not '{}'",
                    root.tag_name().name()
                ),
            ));
        }
        Self::from_dom(root)
    }

    fn from_dom(root: Node<'_, '_>) -> Result<DomainDef> {
        let mut def = DomainDef::default();
        // Index the top-level elements once: every lookup below is by name.
        let mut slots: [Option<Node<'_, '_>>; TOP_LEVEL] = [None; TOP_LEVEL];
        for n in elements(root) {
            if let Some(i) = top_level_slot(n.tag_name().name()) {
                slots[i].get_or_insert(n);
            }
        }
        // The first element called `name` (one of the slotted names).
        let get = |name: &str| {
            let slot = top_level_slot(name);
            debug_assert!(slot.is_some(), "{name} has no slot");
            slot.and_then(|i| slots[i])
        };
        let get_all =
            |name: &'static str| elements(root).filter(move |n| n.tag_name().name() == name);
        def.virt_type = match root.attribute("type") {
            None => return Err(xml::internal("missing domain type attribute")),
            Some(t) if VIRT_TYPES.contains(&t) => t.to_string(),
            Some(t) => return Err(xml::unsupported(format!("invalid domain type {t}"))),
        };

        def.name = match get("name").map(text_of) {
            Some(n) if !n.is_empty() => n,
            _ => return Err(Error::new(ErrorDomain::DOMAIN, ErrorNumber::NO_NAME, "")),
        };
        if def.name.contains('/') {
            return Err(xml_err(format!("name {} cannot contain '/'", def.name)));
        }
        def.uuid = match get("uuid").map(text_ref) {
            None => Uuid::random(),
            Some(u) => Uuid::parse(&u).ok_or_else(|| xml::internal("malformed uuid element"))?,
        };
        if let Some(g) = get("genid") {
            let t = text_ref(g);
            def.genid = Some(if t.trim().is_empty() {
                None
            } else {
                Some(Uuid::parse(&t).ok_or_else(|| xml::internal("malformed genid element"))?)
            });
        }
        def.title = get("title").map(text_of);
        if def.title.as_deref().is_some_and(|t| t.contains('\n')) {
            return Err(xml_err("Domain title can't contain newlines"));
        }
        def.description = get("description").map(text_of);
        if let Some(m) = get("metadata") {
            def.metadata = elements(m).map(|e| Element::from_dom(e, true)).collect();
        }

        // Memory.
        if let Some(m) = get("memory") {
            def.memory_kib = parse_memory_elem(m)?;
            def.memory_dump_core = dom::attr_onoff(m, "dumpCore")?;
        }
        if let Some(m) = get("currentMemory") {
            def.current_memory_kib = parse_memory_elem(m)?;
        }
        if let Some(m) = get("maxMemory") {
            let kib = parse_memory_elem(m)?;
            let slots = dom::attr_u32(m, "slots", "maxMemory")?.unwrap_or(0);
            def.max_memory = Some(MaxMemory { kib, slots });
        }
        def.blkiotune = get("blkiotune").map(|n| Element::from_dom(n, false));
        if let Some(n) = get("memtune") {
            let mut e = Element::from_dom(n, false);
            toplevel::normalize_memtune(&mut e)?;
            def.memtune = Some(e);
        }
        if let Some(n) = get("memoryBacking") {
            let mut e = Element::from_dom(n, false);
            toplevel::normalize_memory_backing(&mut e);
            def.memory_backing = Some(e);
        }

        // vCPUs.
        match get("vcpu") {
            None => def.vcpus = 1,
            Some(v) => {
                let t = text_ref(v);
                def.vcpus = if t.trim().is_empty() {
                    1
                } else {
                    xml::parse_u32(&t)
                        .ok_or_else(|| xml_err("maximum vcpus count must be an integer"))?
                };
                if let Some(c) = v.attribute("current") {
                    let cur = xml::parse_u32(c)
                        .ok_or_else(|| xml_err("current vcpus count must be an integer"))?;
                    if cur > def.vcpus {
                        return Err(xml::unsupported(
                            "maximum vCPU count must not be less than current vCPU count",
                        ));
                    }
                    if cur != def.vcpus {
                        def.current_vcpus = Some(cur);
                    }
                }
                def.cpuset = match v.attribute("cpuset") {
                    Some(c) => Some(toplevel::canon_bitmap(c, "cpuset")?),
                    None => None,
                };
                def.vcpu_placement = match v.attribute("placement") {
                    None | Some("static") => Placement::Static,
                    Some("auto") => Placement::Auto,
                    Some(p) => {
                        return Err(xml_err(format!("Unsupported CPU placement mode '{p}'")))
                    }
                };
            }
        }
        if def.vcpus == 0 {
            return Err(xml::internal("CPU IDs in <numa> exceed the <vcpu> count"));
        }
        def.vcpus_detail = get("vcpus").map(|n| Element::from_dom(n, false));
        if let Some(n) = get("iothreads") {
            let t = text_ref(n);
            def.iothreads = Some(
                xml::parse_u32(&t)
                    .ok_or_else(|| xml_err(format!("invalid iothreads count '{t}'")))?,
            );
        }
        def.iothreadids = get("iothreadids").map(|n| Element::from_dom(n, false));
        if let Some(n) = get("cputune") {
            let mut e = Element::from_dom(n, false);
            toplevel::normalize_cputune(&mut e)?;
            def.cputune = Some(e);
        }
        if let Some(n) = get("numatune") {
            let mut e = Element::from_dom(n, false);
            toplevel::normalize_numatune(&mut e)?;
            def.numatune = Some(e);
        }
        def.resource = get("resource").map(|n| Element::from_dom(n, false));
        def.sysinfo = get_all("sysinfo")
            .map(|n| Element::from_dom(n, false))
            .collect();
        def.bootloader = get("bootloader").map(text_of);
        def.bootloader_args = get("bootloader_args").map(text_of);

        // OS.
        let os = get("os");
        def.os = match os {
            Some(os) => parse_os(os)?,
            None => OsDef::default(),
        };
        if def.os.os_type.is_empty() {
            return Err(xml_err("an os <type> must be specified"));
        }
        def.idmap = get("idmap").map(|n| Element::from_dom(n, false));
        if let Some(n) = get("features") {
            let mut e = Element::from_dom(n, false);
            toplevel::normalize_features(&mut e)?;
            def.features = Some(e);
        }
        if let Some(n) = get("cpu") {
            let mut e = Element::from_dom(n, false);
            toplevel::normalize_cpu(&mut e)?;
            // A <cpu> with nothing in it is dropped.
            if !(e.content.is_empty() && e.attr("mode") == Some("custom") && e.attrs.len() == 1) {
                def.cpu = Some(e);
            }
        }
        if let Some(n) = get("clock") {
            let mut e = Element::from_dom(n, false);
            toplevel::normalize_clock(&mut e);
            def.clock = Some(e);
        }
        if let Some(v) = get("on_poweroff").map(text_of) {
            def.lifecycle.on_poweroff = v;
        }
        if let Some(v) = get("on_reboot").map(text_of) {
            def.lifecycle.on_reboot = v;
        }
        if let Some(v) = get("on_crash").map(text_of) {
            def.lifecycle.on_crash = v;
        }
        def.lifecycle.on_lockfailure = get("on_lockfailure").map(text_of);
        def.pm = get("pm").map(|n| Element::from_dom(n, false));
        def.perf = get("perf").map(|n| Element::from_dom(n, false));

        if let Some(devs) = get("devices") {
            def.emulator = child_text(devs, "emulator");
            def.devices = Devices::from_dom(devs, &def.os.os_type)?;
        }
        def.seclabels = get_all("seclabel")
            .map(|n| Element::from_dom(n, false))
            .collect();
        def.keywrap = get("keywrap").map(|n| Element::from_dom(n, false));
        def.launch_security = get("launchSecurity").map(|n| Element::from_dom(n, false));

        def.apply_defaults()?;
        Ok(def)
    }

    /// libvirt's generic post-parse defaults (every driver).
    fn apply_defaults(&mut self) -> Result<()> {
        if self.memory_kib == 0 {
            return Err(xml_err(
                "Memory size must be specified via <memory> or in the <numa> configuration",
            ));
        }
        if self.clock.is_none() {
            let mut c = Element {
                name: "clock".into(),
                ..Default::default()
            };
            toplevel::normalize_clock(&mut c);
            self.clock = Some(c);
        }
        if self.current_memory_kib == 0 || self.current_memory_kib > self.memory_kib {
            self.current_memory_kib = self.memory_kib;
        }
        if self.os.os_type == "hvm"
            && self.os.boot_devs.is_empty()
            && !self.devices.any_boot_order()
        {
            self.os.boot_devs.push("hd".into());
        }
        self.devices.apply_defaults(&self.os.os_type)?;
        Ok(())
    }

    /// Applies the defaults libvirt's test driver adds when a domain is
    /// defined (measured on libvirt 9.0): `arch='i686'` when none is given,
    /// and `target dev='testnetN'` for interfaces without one, `N` starting
    /// at `next_net` and counting up. Returns the next free `N`.
    pub fn apply_test_driver_defaults(&mut self, mut next_net: u32) -> u32 {
        if self.os.arch.is_none() {
            self.os.arch = Some("i686".into());
        }
        for i in &mut self.devices.interfaces {
            if i.target_dev.is_none() {
                i.target_dev = Some(format!("testnet{next_net}"));
                next_net += 1;
            }
        }
        next_net
    }

    /// Formats the definition in libvirt's layout.
    pub fn format(&self, opts: &FormatOptions) -> String {
        let mut w = Writer::new();
        w.start("domain").attr("type", &self.virt_type);
        if let Some(id) = opts.id {
            if !opts.inactive {
                w.attr_int("id", id);
            }
        }
        w.text_elem("name", &self.name);
        w.start("uuid")
            .text_with(|out| xml::push_uuid(out, &self.uuid))
            .end();
        match &self.genid {
            None => {}
            Some(Some(g)) => {
                w.start("genid")
                    .text_with(|out| xml::push_uuid(out, g))
                    .end();
            }
            Some(None) => {
                w.empty("genid");
            }
        }
        if let Some(t) = &self.title {
            w.text_elem("title", t);
        }
        if let Some(d) = &self.description {
            w.text_elem("description", d);
        }
        if !self.metadata.is_empty() {
            w.start("metadata");
            let mut s = String::new();
            for m in &self.metadata {
                m.dump(&mut s, 0);
                s.push('\n');
            }
            w.raw_lines(&s);
            w.end();
        }
        if let Some(m) = &self.max_memory {
            w.start("maxMemory")
                .attr_int("slots", m.slots)
                .attr("unit", "KiB")
                .text_int(m.kib)
                .end();
        }
        w.start("memory");
        if let Some(d) = self.memory_dump_core {
            w.attr("dumpCore", xml::onoff(d));
        }
        w.attr("unit", "KiB").text_int(self.memory_kib).end();
        w.start("currentMemory")
            .attr("unit", "KiB")
            .text_int(self.current_memory_kib)
            .end();
        for e in [&self.blkiotune, &self.memtune, &self.memory_backing]
            .into_iter()
            .flatten()
        {
            e.write(&mut w);
        }
        w.start("vcpu")
            .attr("placement", self.vcpu_placement.as_str());
        w.attr_opt("cpuset", self.cpuset.as_deref());
        w.attr_int_opt("current", self.current_vcpus);
        w.text_int(self.vcpus).end();
        if let Some(e) = &self.vcpus_detail {
            e.write(&mut w);
        }
        if let Some(n) = self.iothreads {
            w.start("iothreads").text_int(n).end();
        }
        for e in [
            &self.iothreadids,
            &self.cputune,
            &self.numatune,
            &self.resource,
        ]
        .into_iter()
        .flatten()
        {
            e.write(&mut w);
        }
        for e in &self.sysinfo {
            e.write(&mut w);
        }
        if let Some(b) = &self.bootloader {
            w.text_elem("bootloader", b);
        }
        if let Some(b) = &self.bootloader_args {
            w.text_elem("bootloader_args", b);
        }
        format_os(&mut w, &self.os);
        if let Some(e) = &self.idmap {
            e.write(&mut w);
        }
        if let Some(f) = &self.features {
            toplevel::write_features(&mut w, f);
        }
        if let Some(e) = &self.cpu {
            e.write(&mut w);
        }
        match &self.clock {
            Some(c) => c.write(&mut w),
            None => {
                w.start("clock").attr("offset", "utc").end();
            }
        }
        w.text_elem("on_poweroff", &self.lifecycle.on_poweroff);
        w.text_elem("on_reboot", &self.lifecycle.on_reboot);
        w.text_elem("on_crash", &self.lifecycle.on_crash);
        if let Some(l) = &self.lifecycle.on_lockfailure {
            w.text_elem("on_lockfailure", l);
        }
        for e in [&self.pm, &self.perf].into_iter().flatten() {
            e.write(&mut w);
        }
        w.start("devices").force_open();
        if let Some(e) = &self.emulator {
            w.text_elem("emulator", e);
        }
        self.devices.format(&mut w, opts, &self.os.os_type);
        w.end();
        for e in &self.seclabels {
            e.write(&mut w);
        }
        for e in [&self.keywrap, &self.launch_security].into_iter().flatten() {
            e.write(&mut w);
        }
        w.end();
        w.finish()
    }
}

/// The `<domain type=...>` values libvirt knows.
pub const VIRT_TYPES: &[&str] = &[
    "none",
    "qemu",
    "kqemu",
    "kvm",
    "xen",
    "lxc",
    "uml",
    "openvz",
    "test",
    "vmware",
    "hyperv",
    "vbox",
    "phyp",
    "parallels",
    "bhyve",
    "vz",
    "ch",
];

fn parse_yesno(node: Node<'_, '_>, name: &str) -> Result<Option<bool>> {
    dom::attr_onoff(node, name)
}

fn parse_os(os: Node<'_, '_>) -> Result<OsDef> {
    let mut d = OsDef::default();
    if let Some(t) = child(os, "type") {
        d.os_type = text_ref(t).trim().to_string();
        d.arch = attr(t, "arch");
        d.machine = attr(t, "machine");
    }
    d.firmware = attr(os, "firmware");
    if let Some(fw) = child(os, "firmware") {
        for f in dom::children(fw, "feature") {
            let enabled = parse_yesno(f, "enabled")?.unwrap_or(false);
            d.firmware_features
                .push((f.attribute("name").unwrap_or("").to_string(), enabled));
        }
    }
    for b in dom::children(os, "boot") {
        if let Some(dev) = b.attribute("dev") {
            if !["fd", "cdrom", "hd", "network"].contains(&dev) {
                return Err(Error::new(
                    ErrorDomain::XML,
                    ErrorNumber::XML_ERROR,
                    format!("Invalid value for attribute 'dev' in element 'boot': '{dev}'."),
                ));
            }
            if d.boot_devs.len() < 4 {
                d.boot_devs.push(dev.to_string());
            }
        }
    }
    if let Some(m) = child(os, "bootmenu") {
        d.bootmenu = Some(BootMenu {
            enable: parse_yesno(m, "enable")?,
            timeout: dom::attr_u32(m, "timeout", "bootmenu")?,
        });
    }
    if let Some(l) = child(os, "loader") {
        let path = text_ref(l);
        d.loader = Some(Loader {
            readonly: parse_yesno(l, "readonly")?,
            secure: parse_yesno(l, "secure")?,
            stateless: parse_yesno(l, "stateless")?,
            loader_type: attr(l, "type"),
            format: attr(l, "format"),
            path: (!path.trim().is_empty()).then(|| path.trim().to_string()),
        });
    }
    if let Some(n) = child(os, "nvram") {
        let path = text_ref(n);
        d.nvram = Some(Nvram {
            template: attr(n, "template"),
            format: attr(n, "format"),
            path: (!path.trim().is_empty()).then(|| path.trim().to_string()),
        });
    }
    d.kernel = child_text(os, "kernel");
    d.initrd = child_text(os, "initrd");
    d.cmdline = child_text(os, "cmdline");
    d.dtb = child_text(os, "dtb");
    d.init = child_text(os, "init");
    d.initargs = dom::children(os, "initarg").map(text_of).collect();
    d.smbios_mode = child_attr_s(os, "smbios", "mode");
    if let Some(b) = child(os, "bios") {
        d.bios_useserial = parse_yesno(b, "useserial")?;
        d.bios_reboot_timeout = dom::attr_i64(b, "rebootTimeout", "bios")?;
    }
    if let Some(a) = child(os, "acpi") {
        for t in dom::children(a, "table") {
            d.acpi_tables
                .push((t.attribute("type").unwrap_or("").to_string(), text_of(t)));
        }
    }
    Ok(d)
}

fn child_attr_s(node: Node<'_, '_>, c: &str, a: &str) -> Option<String> {
    dom::child_attr(node, c, a)
}

fn format_os(w: &mut Writer, os: &OsDef) {
    w.start("os");
    w.attr_opt("firmware", os.firmware.as_deref());
    w.start("type");
    w.attr_opt("arch", os.arch.as_deref());
    w.attr_opt("machine", os.machine.as_deref());
    w.text(&os.os_type).end();
    if !os.firmware_features.is_empty() {
        w.start("firmware");
        for (name, en) in &os.firmware_features {
            w.start("feature")
                .attr("enabled", xml::yesno(*en))
                .attr("name", name)
                .end();
        }
        w.end();
    }
    if let Some(i) = &os.init {
        w.text_elem("init", i);
    }
    for a in &os.initargs {
        w.text_elem("initarg", a);
    }
    if let Some(l) = &os.loader {
        w.start("loader");
        w.attr_opt("readonly", l.readonly.map(xml::yesno));
        w.attr_opt("secure", l.secure.map(xml::yesno));
        w.attr_opt("type", l.loader_type.as_deref());
        w.attr_opt("format", l.format.as_deref());
        w.attr_opt("stateless", l.stateless.map(xml::yesno));
        if let Some(p) = &l.path {
            w.text(p);
        }
        w.end();
    }
    if let Some(n) = &os.nvram {
        w.start("nvram");
        w.attr_opt("template", n.template.as_deref());
        w.attr_opt("format", n.format.as_deref());
        if let Some(p) = &n.path {
            w.text(p);
        }
        w.end();
    }
    if let Some(k) = &os.kernel {
        w.text_elem("kernel", k);
    }
    if let Some(k) = &os.initrd {
        w.text_elem("initrd", k);
    }
    if let Some(k) = &os.cmdline {
        w.text_elem("cmdline", k);
    }
    if let Some(k) = &os.dtb {
        w.text_elem("dtb", k);
    }
    if !os.acpi_tables.is_empty() {
        w.start("acpi");
        for (t, p) in &os.acpi_tables {
            w.start("table").attr("type", t).text(p).end();
        }
        w.end();
    }
    for b in &os.boot_devs {
        w.start("boot").attr("dev", b).end();
    }
    if let Some(m) = &os.bootmenu {
        w.start("bootmenu");
        w.attr_opt("enable", m.enable.map(xml::yesno));
        w.attr_int_opt("timeout", m.timeout);
        w.end();
    }
    if os.bios_useserial.is_some() || os.bios_reboot_timeout.is_some() {
        w.start("bios");
        w.attr_opt("useserial", os.bios_useserial.map(xml::yesno));
        w.attr_int_opt("rebootTimeout", os.bios_reboot_timeout);
        w.end();
    }
    if let Some(m) = &os.smbios_mode {
        w.start("smbios").attr("mode", m).end();
    }
    w.end();
}
