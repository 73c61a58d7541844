//! `<devices>`: the device models of a domain.
//!
//! The devices drivers work with (disks, controllers, interfaces, character
//! devices, inputs, graphics, video, watchdog, memory balloon) have typed
//! structs; the others are [`GenericDevice`]s: the element as written,
//! reordered to libvirt's layout ([`crate::spec`]).

use super::address::Address;
use crate::dom::{self, Node};
use crate::dom::{attr, child};
use crate::generic::Element;
use crate::spec::{self, Spec};
use crate::xml::{self, Writer};
use crate::FormatOptions;
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Parses `aa:bb:cc:dd:ee:ff` (one or two hex digits per part).
    pub fn parse(s: &str) -> Option<Mac> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n >= 6 || part.is_empty() || part.len() > 2 {
                return None;
            }
            out[n] = u8::from_str_radix(part, 16).ok()?;
            n += 1;
        }
        (n == 6).then_some(Mac(out))
    }

    /// A random address with QEMU/KVM's prefix `52:54:00`, as libvirt
    /// generates for interfaces without one.
    pub fn random() -> Mac {
        let mut b = [0u8; 3];
        ironvirt_driver::types::fill_random(&mut b);
        Mac([0x52, 0x54, 0x00, b[0], b[1], b[2]])
    }

    /// Whether the multicast bit is set (libvirt rejects those).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl Mac {
    /// Appends the address as `Display` writes it.
    fn push_to(&self, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [b':'; 17];
        for (i, b) in self.0.iter().enumerate() {
            buf[3 * i] = HEX[(b >> 4) as usize];
            buf[3 * i + 1] = HEX[(b & 0xf) as usize];
        }
        out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// What libvirt's `virDomainDeviceInfo` carries for every device: boot
/// order, alias, ROM settings and address.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct DeviceInfo {
    /// `<boot order=...>`.
    pub boot_order: Option<u32>,
    /// `<boot loadparm=...>` (upper-cased, as libvirt stores it).
    pub boot_loadparm: Option<String>,
    /// `<alias name=...>`; only user aliases (`ua-` prefix) are kept in a
    /// definition.
    pub alias: Option<String>,
    /// `<master startport=...>` (USB companion controllers).
    pub master_startport: Option<u32>,
    /// `<rom>`, kept as written.
    pub rom: Option<Element>,
    /// `<address>`.
    pub address: Option<Address>,
    /// `<acpi index=...>`.
    pub acpi_index: Option<u32>,
}

impl DeviceInfo {
    fn parse(node: Node<'_, '_>) -> Result<DeviceInfo> {
        // The first child of each name, found in one pass.
        let (mut boot, mut alias, mut master, mut rom, mut address, mut acpi) =
            (None, None, None, None, None, None);
        for c in dom::elements(node) {
            let slot = match c.tag_name().name() {
                "boot" => &mut boot,
                "alias" => &mut alias,
                "master" => &mut master,
                "rom" => &mut rom,
                "address" => &mut address,
                "acpi" => &mut acpi,
                _ => continue,
            };
            slot.get_or_insert(c);
        }
        let mut d = DeviceInfo::default();
        if let Some(b) = boot {
            let o = b.attribute("order").unwrap_or("");
            d.boot_order = Some(xml::parse_u32(o).filter(|v| *v > 0).ok_or_else(|| {
                xml::internal(format!(
                    "incorrect boot order '{o}', expecting positive integer"
                ))
            })?);
            d.boot_loadparm = b.attribute("loadparm").map(|s| s.to_ascii_uppercase());
        }
        if let Some(a) = alias.and_then(|a| a.attribute("name")) {
            if a.starts_with("ua-") {
                d.alias = Some(a.to_string());
            }
        }
        if let Some(m) = master {
            d.master_startport = dom::attr_u32(m, "startport", "master")?;
        }
        d.rom = rom.map(|r| Element::from_dom(r, false));
        if let Some(a) = address {
            d.address = Some(Address::from_dom(a, false)?);
        }
        d.acpi_index = match acpi {
            Some(a) => dom::attr_u32(a, "index", "acpi")?,
            None => None,
        };
        Ok(d)
    }

    fn write_boot(&self, w: &mut Writer) {
        if let Some(o) = self.boot_order {
            w.start("boot").attr_int("order", o);
            w.attr_opt("loadparm", self.boot_loadparm.as_deref());
            w.end();
        }
    }

    /// Writes boot, alias, master, rom, address, acpi in libvirt's order.
    fn write(&self, w: &mut Writer) {
        self.write_boot(w);
        self.write_no_boot(w);
    }

    fn write_no_boot(&self, w: &mut Writer) {
        if let Some(a) = &self.alias {
            w.start("alias").attr("name", a).end();
        }
        if let Some(s) = self.master_startport {
            w.start("master").attr_int("startport", s).end();
        }
        if let Some(r) = &self.rom {
            r.write(w);
        }
        if let Some(a) = &self.address {
            a.write(w, true);
        }
        if let Some(i) = self.acpi_index {
            w.start("acpi").attr_int("index", i).end();
        }
    }
}

const INFO_NAMES: &[&str] = &["boot", "alias", "master", "rom", "address", "acpi"];

/// Children of `node` other than the device-info ones and `skip`, each
/// normalised with its layout from `order`; names not in `order` are
/// dropped as libvirt drops unknown elements.
fn extras(node: Node<'_, '_>, skip: &[&str], order: &[(&str, Option<&Spec>)]) -> Vec<Element> {
    let mut v: Vec<Element> = dom::elements(node)
        .filter(|c| {
            let n = c.tag_name().name();
            !skip.contains(&n) && !INFO_NAMES.contains(&n)
        })
        .map(|c| Element::from_dom(c, false))
        .collect();
    spec::order_children(&mut v, order, false);
    v
}

fn write_extras(w: &mut Writer, extras: &[Element], names: &[&str]) {
    for e in extras {
        if names.contains(&e.name.as_str()) {
            e.write(w);
        }
    }
}

// ------------------------------------------------------------------ disks

static BACKING_STORE: Spec = Spec {
    attrs: &["type", "index"],
    children: &[
        ("format", None),
        ("source", None),
        ("backingStore", Some(&BACKING_STORE)),
    ],
    keep_unknown: false,
};
static DISK_DRIVER: Spec = Spec {
    attrs: &[
        "name",
        "type",
        "cache",
        "error_policy",
        "rerror_policy",
        "io",
        "ioeventfd",
        "event_idx",
        "copy_on_read",
        "discard",
        "iothread",
        "detect_zeroes",
        "queues",
        "queue_size",
        "iommu",
        "ats",
        "packed",
        "page_per_vq",
        "metadata_cache",
    ],
    children: &[("metadata_cache", None), ("iothreads", None)],
    keep_unknown: true,
};
static DISK_SOURCE: Spec = Spec {
    attrs: &[
        "file",
        "dev",
        "dir",
        "protocol",
        "name",
        "tls",
        "pool",
        "volume",
        "mode",
        "type",
        "managed",
        "namespace",
        "startupPolicy",
        "index",
    ],
    children: &[],
    keep_unknown: true,
};
static DISK_EXTRA: &[(&str, Option<&Spec>)] = &[
    ("geometry", None),
    ("blockio", None),
    ("mirror", None),
    ("iotune", None),
    ("wwn", None),
    ("vendor", None),
    ("product", None),
    ("encryption", None),
];

/// `<disk>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Disk {
    /// `type`: file, block, dir, network, volume, nvme, vhostuser.
    pub disk_type: String,
    /// `device`: disk, cdrom, floppy, lun.
    pub device: String,
    /// `model` (virtio, virtio-transitional, ...).
    pub model: Option<String>,
    /// `rawio` (yes/no).
    pub rawio: Option<String>,
    /// `sgio`.
    pub sgio: Option<String>,
    /// `<driver>` (name, type, cache, io, discard, ...).
    pub driver: Option<Element>,
    /// `<source>`; see [`Disk::source_path`].
    pub source: Option<Element>,
    /// `<backingStore>` chain as written.
    pub backing_store: Option<Element>,
    /// `<target dev=...>`.
    pub target_dev: String,
    /// `<target bus=...>` (defaulted from the device name).
    pub target_bus: Option<String>,
    /// `<target tray=...>`.
    pub tray: Option<String>,
    /// `<target removable=...>`.
    pub removable: Option<String>,
    /// `<target rotation_rate=...>`.
    pub rotation_rate: Option<u32>,
    /// `<readonly/>`.
    pub readonly: bool,
    /// `<shareable/>`.
    pub shareable: bool,
    /// `<transient/>`.
    pub transient: bool,
    /// `<serial>`.
    pub serial: Option<String>,
    /// Boot order, alias, address.
    pub info: DeviceInfo,
    /// Other known children (geometry, blockio, iotune, wwn, encryption...).
    pub extra: Vec<Element>,
}

impl Disk {
    /// The file, block device or directory of a local source, or the
    /// `name` of a network source.
    pub fn source_path(&self) -> Option<&str> {
        let s = self.source.as_ref()?;
        s.attr("file")
            .or_else(|| s.attr("dev"))
            .or_else(|| s.attr("dir"))
            .or_else(|| s.attr("name"))
    }

    /// A `<driver>` attribute (`type`, `cache`, ...).
    pub fn driver_attr(&self, name: &str) -> Option<&str> {
        self.driver.as_ref().and_then(|d| d.attr(name))
    }

    fn parse(node: Node<'_, '_>) -> Result<Disk> {
        let mut d = Disk {
            disk_type: attr(node, "type").unwrap_or_else(|| "file".into()),
            device: attr(node, "device").unwrap_or_else(|| "disk".into()),
            model: attr(node, "model"),
            rawio: attr(node, "rawio"),
            sgio: attr(node, "sgio"),
            ..Default::default()
        };
        if ![
            "file",
            "block",
            "dir",
            "network",
            "volume",
            "nvme",
            "vhostuser",
        ]
        .contains(&d.disk_type.as_str())
        {
            return Err(xml::internal(format!(
                "unknown disk type '{}'",
                d.disk_type
            )));
        }
        if !["disk", "cdrom", "floppy", "lun"].contains(&d.device.as_str()) {
            return Err(xml::internal(format!("unknown disk device '{}'", d.device)));
        }
        d.driver = child(node, "driver").map(|n| {
            let mut e = Element::from_dom(n, false);
            spec::normalize(&mut e, &DISK_DRIVER);
            e
        });
        d.source = child(node, "source").map(|n| {
            let mut e = Element::from_dom(n, false);
            spec::normalize(&mut e, &DISK_SOURCE);
            e
        });
        d.backing_store = child(node, "backingStore").map(|n| {
            let mut e = Element::from_dom(n, false);
            spec::normalize(&mut e, &BACKING_STORE);
            e
        });
        let no_target = |d: &Disk| {
            Error::new(
                ErrorDomain::DOMAIN,
                ErrorNumber::NO_TARGET,
                format!(
                    "missing target information for device {}",
                    d.source_path().unwrap_or("")
                ),
            )
        };
        let target = child(node, "target").ok_or_else(|| no_target(&d))?;
        d.target_dev = match target.attribute("dev") {
            Some(t) if !t.is_empty() => t.to_string(),
            _ => return Err(no_target(&d)),
        };
        d.target_bus = attr(target, "bus");
        d.tray = attr(target, "tray");
        d.removable = attr(target, "removable");
        d.rotation_rate = dom::attr_u32(target, "rotation_rate", "target")?;
        d.readonly = child(node, "readonly").is_some() || d.device == "cdrom";
        d.shareable = child(node, "shareable").is_some();
        d.transient = child(node, "transient").is_some();
        d.serial = dom::child_text(node, "serial");
        d.info = DeviceInfo::parse(node)?;
        d.extra = extras(
            node,
            &[
                "driver",
                "source",
                "backingStore",
                "target",
                "readonly",
                "shareable",
                "transient",
                "serial",
            ],
            DISK_EXTRA,
        );
        Ok(d)
    }

    fn write(&self, w: &mut Writer) {
        w.start("disk")
            .attr("type", &self.disk_type)
            .attr("device", &self.device);
        w.attr_opt("model", self.model.as_deref());
        w.attr_opt("rawio", self.rawio.as_deref());
        w.attr_opt("sgio", self.sgio.as_deref());
        for e in [&self.driver, &self.source, &self.backing_store]
            .into_iter()
            .flatten()
        {
            e.write(w);
        }
        write_extras(w, &self.extra, &["geometry", "blockio", "mirror"]);
        w.start("target").attr("dev", &self.target_dev);
        w.attr_opt("bus", self.target_bus.as_deref());
        w.attr_opt("tray", self.tray.as_deref());
        w.attr_opt("removable", self.removable.as_deref());
        w.attr_int_opt("rotation_rate", self.rotation_rate);
        w.end();
        write_extras(w, &self.extra, &["iotune"]);
        if self.readonly {
            w.empty("readonly");
        }
        if self.shareable {
            w.empty("shareable");
        }
        if self.transient {
            w.empty("transient");
        }
        if let Some(s) = &self.serial {
            w.text_elem("serial", s);
        }
        write_extras(w, &self.extra, &["wwn", "vendor", "product", "encryption"]);
        self.info.write(w);
        w.end();
    }
}

/// libvirt's `virDiskNameToIndex`: `vda` → 0, `sdz` → 25, `sdaa` → 26.
pub fn disk_name_to_index(name: &str) -> Option<u32> {
    const PREFIXES: &[&str] = &["fd", "hd", "vd", "sd", "xvd", "ubd"];
    let rest = PREFIXES.iter().find_map(|p| name.strip_prefix(p))?;
    let letters: &str = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    if letters.is_empty() {
        return None;
    }
    let mut idx: u64 = 0;
    for (i, c) in letters.bytes().enumerate() {
        if !c.is_ascii_lowercase() {
            return None;
        }
        if i > 0 {
            idx += 1;
        }
        idx = idx.checked_mul(26)?.checked_add(u64::from(c - b'a'))?;
        if idx > u64::from(u32::MAX) {
            return None;
        }
    }
    u32::try_from(idx).ok()
}

fn default_disk_bus(dev: &str, device: &str) -> &'static str {
    if device == "floppy" {
        return "fdc";
    }
    if dev.starts_with("hd") {
        "ide"
    } else if dev.starts_with("sd") {
        "scsi"
    } else if dev.starts_with("vd") {
        "virtio"
    } else if dev.starts_with("fd") {
        "fdc"
    } else if dev.starts_with("xvd") {
        "xen"
    } else if dev.starts_with("ubd") {
        "uml"
    } else {
        "ide"
    }
}

// ------------------------------------------------------------ controllers

/// `<controller>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Controller {
    /// `type`: ide, fdc, scsi, sata, usb, pci, virtio-serial, ccid, xenbus, isa.
    pub ctype: String,
    /// `index` (assigned when absent).
    pub index: u32,
    /// `model`.
    pub model: Option<String>,
    /// Other attributes (ports, vectors, maxGrantFrames, ...) in libvirt's order.
    pub attrs: Vec<(String, String)>,
    /// `<model name=...>` (PCI controllers).
    pub model_name: Option<String>,
    /// `<driver>`.
    pub driver: Option<Element>,
    /// `<target>` (PCI controllers).
    pub target: Option<Element>,
    /// Alias, address.
    pub info: DeviceInfo,
}

const CONTROLLER_TYPES: &[&str] = &[
    "ide",
    "fdc",
    "scsi",
    "sata",
    "virtio-serial",
    "ccid",
    "usb",
    "pci",
    "xenbus",
    "isa",
];

static CONTROLLER_DRIVER: Spec = Spec {
    attrs: &[
        "queues",
        "cmd_per_lun",
        "max_sectors",
        "ioeventfd",
        "iothread",
        "iommu",
        "ats",
        "packed",
        "page_per_vq",
    ],
    children: &[],
    keep_unknown: true,
};
static CONTROLLER_TARGET: Spec = Spec {
    attrs: &[
        "chassisNr",
        "chassis",
        "port",
        "busNr",
        "hotplug",
        "index",
        "memReserve",
    ],
    children: &[("node", None)],
    keep_unknown: true,
};

impl Controller {
    /// A controller of `ctype` with index `index` and nothing else, as
    /// libvirt adds implicitly.
    pub fn implicit(ctype: &str, index: u32) -> Controller {
        Controller {
            ctype: ctype.to_string(),
            index,
            ..Default::default()
        }
    }

    fn parse(node: Node<'_, '_>) -> Result<(Controller, bool)> {
        let ctype = attr(node, "type").unwrap_or_else(|| "ide".into());
        if !CONTROLLER_TYPES.contains(&ctype.as_str()) {
            return Err(xml::internal(format!("Unknown controller type '{ctype}'")));
        }
        let (index, has_index) = match node.attribute("index") {
            None => (0, false),
            Some(i) => (
                xml::parse_u32(i)
                    .ok_or_else(|| xml::internal(format!("Cannot parse controller index {i}")))?,
                true,
            ),
        };
        let mut attrs = Vec::new();
        for a in ["ports", "vectors", "maxGrantFrames", "maxEventChannels"] {
            if let Some(v) = node.attribute(a) {
                attrs.push((a.to_string(), v.to_string()));
            }
        }
        let c = Controller {
            model: attr(node, "model"),
            model_name: if ctype == "pci" {
                dom::child_attr(node, "model", "name")
            } else {
                None
            },
            driver: child(node, "driver").map(|n| {
                let mut e = Element::from_dom(n, false);
                spec::normalize(&mut e, &CONTROLLER_DRIVER);
                e
            }),
            target: if ctype == "pci" {
                child(node, "target").map(|n| {
                    let mut e = Element::from_dom(n, false);
                    spec::normalize(&mut e, &CONTROLLER_TARGET);
                    e
                })
            } else {
                None
            },
            info: DeviceInfo::parse(node)?,
            ctype,
            index,
            attrs,
        };
        Ok((c, has_index))
    }

    fn write(&self, w: &mut Writer) {
        w.start("controller")
            .attr("type", &self.ctype)
            .attr_int("index", self.index);
        w.attr_opt("model", self.model.as_deref());
        for (k, v) in &self.attrs {
            w.attr(k, v);
        }
        if let Some(n) = &self.model_name {
            w.start("model").attr("name", n).end();
        }
        if let Some(d) = &self.driver {
            d.write(w);
        }
        if let Some(t) = &self.target {
            t.write(w);
        }
        self.info.write(w);
        w.end();
    }
}

// ------------------------------------------------------------- interfaces

static IFACE_EXTRA: &[(&str, Option<&Spec>)] = &[
    ("source", None),
    ("vlan", None),
    ("virtualport", None),
    ("bandwidth", None),
    ("ip", None),
    ("route", None),
    ("script", None),
    ("downscript", None),
    ("backenddomain", None),
    ("target", None),
    ("guest", None),
    ("model", None),
    ("driver", None),
    ("backend", None),
    ("filterref", None),
    ("tune", None),
    ("teaming", None),
    ("link", None),
    ("mtu", None),
    ("coalesce", None),
    ("port", None),
];

/// `<interface>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Interface {
    /// `type`: network, bridge, user, direct, ethernet, hostdev, vhostuser, ...
    pub iface_type: String,
    /// Other attributes of `<interface>` (`trustGuestRxFilters`, `managed`).
    pub attrs: Vec<(String, String)>,
    /// `<mac address=...>` (generated when absent).
    pub mac: Mac,
    /// `<mac type=... check=...>`.
    pub mac_attrs: Vec<(String, String)>,
    /// `<source>` (network=, bridge=, dev= mode=, ...).
    pub source: Option<Element>,
    /// `<target dev=...>`.
    pub target_dev: Option<String>,
    /// `<target managed=...>`.
    pub target_managed: Option<String>,
    /// `<model type=...>`.
    pub model: Option<String>,
    /// Boot order, alias, ROM, address.
    pub info: DeviceInfo,
    /// Other known children (virtualport, driver, bandwidth, ...).
    pub extra: Vec<Element>,
}

impl Interface {
    /// The `<source>` attribute `name` (`network`, `bridge`, `dev`).
    pub fn source_attr(&self, name: &str) -> Option<&str> {
        self.source.as_ref().and_then(|s| s.attr(name))
    }

    fn parse(node: Node<'_, '_>) -> Result<Interface> {
        let iface_type = attr(node, "type")
            .ok_or_else(|| xml::xml_err("missing type attribute for interface"))?;
        const TYPES: &[&str] = &[
            "user",
            "ethernet",
            "vhostuser",
            "server",
            "client",
            "mcast",
            "network",
            "bridge",
            "internal",
            "direct",
            "hostdev",
            "udp",
            "vdpa",
            "null",
            "vds",
        ];
        if !TYPES.contains(&iface_type.as_str()) {
            return Err(Error::new(
                ErrorDomain::XML,
                ErrorNumber::XML_ERROR,
                format!(
                    "Invalid value for attribute 'type' in element 'interface': '{iface_type}'."
                ),
            ));
        }
        let mut i = Interface {
            iface_type,
            ..Default::default()
        };
        for a in ["trustGuestRxFilters", "managed"] {
            if let Some(v) = node.attribute(a) {
                i.attrs.push((a.to_string(), v.to_string()));
            }
        }
        if let Some(m) = child(node, "mac") {
            match m.attribute("address") {
                Some(a) => {
                    i.mac = Mac::parse(a).ok_or_else(|| {
                        xml::xml_err(format!("unable to parse mac address '{a}'"))
                    })?;
                    if i.mac.is_multicast() {
                        return Err(xml::xml_err(format!(
                            "expected unicast mac address, found multicast '{a}'"
                        )));
                    }
                }
                None => i.mac = Mac::random(),
            }
            for a in ["type", "check"] {
                if let Some(v) = m.attribute(a) {
                    i.mac_attrs.push((a.to_string(), v.to_string()));
                }
            }
        } else {
            i.mac = Mac::random();
        }
        i.source = child(node, "source").map(|n| Element::from_dom(n, false));
        if let Some(t) = child(node, "target") {
            i.target_dev = attr(t, "dev");
            i.target_managed = attr(t, "managed");
        }
        i.model = dom::child_attr(node, "model", "type");
        i.info = DeviceInfo::parse(node)?;
        i.extra = extras(node, &["mac", "source", "target", "model"], IFACE_EXTRA);
        for e in &mut i.extra {
            match e.name.as_str() {
                "ip" if e.attr("family").is_none() => {
                    if let Some(addr) = e.attr("address") {
                        let fam = if addr.contains(':') { "ipv6" } else { "ipv4" };
                        let pos = e
                            .attrs
                            .iter()
                            .position(|(k, _)| k == "address")
                            .map_or(0, |p| p + 1);
                        e.attrs.insert(pos, ("family".into(), fam.into()));
                    }
                }
                "virtualport" if e.attr("type") == Some("openvswitch") => {
                    let has_params = e
                        .elements()
                        .any(|p| p.name == "parameters" && p.attr("interfaceid").is_some());
                    if !has_params {
                        let id = ironvirt_driver::Uuid::random().to_string();
                        match e.content.iter_mut().find_map(|c| match c {
                            crate::Content::Elem(p) if p.name == "parameters" => Some(p),
                            _ => None,
                        }) {
                            Some(p) => p.attrs.push(("interfaceid".into(), id)),
                            None => e.content.push(crate::Content::Elem(Element {
                                name: "parameters".into(),
                                attrs: vec![("interfaceid".into(), id)],
                                ..Default::default()
                            })),
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(i)
    }

    fn write(&self, w: &mut Writer) {
        w.start("interface").attr("type", &self.iface_type);
        for (k, v) in &self.attrs {
            w.attr(k, v);
        }
        w.start("mac")
            .attr_with("address", |out| self.mac.push_to(out));
        for (k, v) in &self.mac_attrs {
            w.attr(k, v);
        }
        w.end();
        if let Some(s) = &self.source {
            s.write(w);
        }
        write_extras(
            w,
            &self.extra,
            &[
                "vlan",
                "virtualport",
                "bandwidth",
                "ip",
                "route",
                "script",
                "downscript",
                "backenddomain",
            ],
        );
        if self.target_dev.is_some() || self.target_managed.is_some() {
            w.start("target");
            w.attr_opt("dev", self.target_dev.as_deref());
            w.attr_opt("managed", self.target_managed.as_deref());
            w.end();
        }
        write_extras(w, &self.extra, &["guest"]);
        if let Some(m) = &self.model {
            w.start("model").attr("type", m).end();
        }
        write_extras(
            w,
            &self.extra,
            &[
                "driver",
                "backend",
                "filterref",
                "tune",
                "teaming",
                "link",
                "mtu",
                "coalesce",
                "port",
            ],
        );
        self.info.write(w);
        w.end();
    }
}

// ------------------------------------------------------ character devices

/// Which list a character device belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ChardevKind {
    /// `<serial>`.
    #[default]
    Serial,
    /// `<parallel>`.
    Parallel,
    /// `<console>`.
    Console,
    /// `<channel>`.
    Channel,
}

impl ChardevKind {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            ChardevKind::Serial => "serial",
            ChardevKind::Parallel => "parallel",
            ChardevKind::Console => "console",
            ChardevKind::Channel => "channel",
        }
    }
}

static CHR_SOURCE: Spec = Spec {
    attrs: &[
        "mode", "host", "service", "path", "append", "tls", "channel", "master", "slave",
    ],
    children: &[("reconnect", None), ("seclabel", None)],
    keep_unknown: true,
};

/// `<serial>`, `<parallel>`, `<console>` or `<channel>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Chardev {
    /// Which list it is in.
    pub kind: ChardevKind,
    /// `type`: pty, file, unix, tcp, udp, spicevmc, null, vc, stdio, dev, pipe, ...
    pub chr_type: String,
    /// `<source>` elements (udp has two).
    pub sources: Vec<Element>,
    /// `<protocol type=...>`.
    pub protocol: Option<String>,
    /// `<log>`.
    pub log: Option<Element>,
    /// `<target type=...>`.
    pub target_type: Option<String>,
    /// `<target port=...>`.
    pub target_port: Option<u32>,
    /// `<target name=...>` (virtio channels).
    pub target_name: Option<String>,
    /// Other `<target>` attributes (address, state) and children (model).
    pub target_extra: Element,
    /// Alias, address.
    pub info: DeviceInfo,
}

impl Chardev {
    /// The `path` of the first `<source>` (pty path, file, unix socket).
    pub fn source_path(&self) -> Option<&str> {
        self.sources.first().and_then(|s| s.attr("path"))
    }

    fn parse(node: Node<'_, '_>, kind: ChardevKind) -> Result<Chardev> {
        let chr_type = attr(node, "type").unwrap_or_else(|| "null".into());
        const TYPES: &[&str] = &[
            "null",
            "vc",
            "pty",
            "dev",
            "file",
            "pipe",
            "stdio",
            "udp",
            "tcp",
            "unix",
            "spicevmc",
            "spiceport",
            "nmdm",
            "qemu-vdagent",
            "dbus",
        ];
        if !TYPES.contains(&chr_type.as_str()) {
            return Err(xml::xml_err(format!(
                "unknown type presented to host for character device: {chr_type}"
            )));
        }
        let mut c = Chardev {
            kind,
            chr_type,
            target_extra: Element {
                name: "target".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        for s in dom::children(node, "source") {
            let mut e = Element::from_dom(s, false);
            spec::normalize(&mut e, &CHR_SOURCE);
            c.sources.push(e);
        }
        c.protocol = dom::child_attr(node, "protocol", "type");
        c.log = child(node, "log").map(|n| Element::from_dom(n, false));
        if let Some(t) = child(node, "target") {
            c.target_type = attr(t, "type");
            c.target_port = dom::attr_u32(t, "port", "target")?;
            c.target_name = attr(t, "name");
            let mut e = Element::from_dom(t, false);
            e.attrs
                .retain(|(k, _)| k != "type" && k != "port" && k != "name");
            if c.target_type.as_deref() == Some("guestfwd") {
                // guestfwd's port is part of the guest address: keep order.
                if let Some(p) = t.attribute("port") {
                    e.attrs.push(("port".into(), p.to_string()));
                }
                c.target_port = None;
            }
            c.target_extra = e;
        }
        c.info = DeviceInfo::parse(node)?;
        // libvirt drops a unix source without a path (the driver makes one).
        if c.chr_type == "unix" {
            c.sources.retain(|s| s.attr("path").is_some());
        }
        Ok(c)
    }

    fn write(&self, w: &mut Writer) {
        w.start(self.kind.name()).attr("type", &self.chr_type);
        for s in &self.sources {
            if self.chr_type == "pty" && s.attr("path").is_none() {
                continue;
            }
            s.write(w);
        }
        if let Some(p) = &self.protocol {
            w.start("protocol").attr("type", p).end();
        }
        if let Some(l) = &self.log {
            l.write(w);
        }
        w.start("target");
        w.attr_opt("type", self.target_type.as_deref());
        w.attr_opt("name", self.target_name.as_deref());
        for (k, v) in &self.target_extra.attrs {
            if k != "port" {
                w.attr(k, v);
            }
        }
        w.attr_int_opt("port", self.target_port);
        for (k, v) in &self.target_extra.attrs {
            if k == "port" {
                w.attr(k, v);
            }
        }
        for e in self.target_extra.elements() {
            e.write(w);
        }
        w.end();
        self.info.write(w);
        w.end();
    }
}

// ------------------------------------------------------------- the rest

/// `<input>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Input {
    /// `type`: mouse, tablet, keyboard, passthrough, evdev.
    pub input_type: String,
    /// `bus`: ps2, usb, xen, virtio (defaulted for hvm guests).
    pub bus: Option<String>,
    /// `model`.
    pub model: Option<String>,
    /// `<source>`, `<driver>`.
    pub extra: Vec<Element>,
    /// Alias, address.
    pub info: DeviceInfo,
}

impl Input {
    fn parse(node: Node<'_, '_>) -> Result<Input> {
        let input_type =
            attr(node, "type").ok_or_else(|| xml::xml_err("missing input device type"))?;
        if !["mouse", "tablet", "keyboard", "passthrough", "evdev"].contains(&input_type.as_str()) {
            return Err(xml::xml_err(format!(
                "unknown input device type '{input_type}'"
            )));
        }
        Ok(Input {
            input_type,
            bus: attr(node, "bus"),
            model: attr(node, "model"),
            extra: extras(node, &[], &[("source", None), ("driver", None)]),
            info: DeviceInfo::parse(node)?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.start("input").attr("type", &self.input_type);
        w.attr_opt("bus", self.bus.as_deref());
        w.attr_opt("model", self.model.as_deref());
        write_extras(w, &self.extra, &["source", "driver"]);
        self.info.write(w);
        w.end();
    }
}

static GRAPHICS_ATTRS: &[&str] = &[
    "display",
    "xauth",
    "fullscreen",
    "socket",
    "port",
    "tlsPort",
    "autoport",
    "websocket",
    "websocketGenerated",
    "listen",
    "keymap",
    "defaultMode",
    "sharePolicy",
    "multiUser",
    "replaceUser",
    "passwd",
    "passwdValidTo",
    "connected",
    "powerControl",
    "rendernode",
];
static GRAPHICS_CHILDREN: &[(&str, Option<&Spec>)] = &[
    ("listen", None),
    ("channel", None),
    ("image", None),
    ("jpeg", None),
    ("zlib", None),
    ("playback", None),
    ("streaming", None),
    ("mouse", None),
    ("clipboard", None),
    ("filetransfer", None),
    ("gl", None),
    ("audio", None),
];

/// `<graphics>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Graphics {
    /// `type`: vnc, spice, sdl, rdp, desktop, egl-headless, dbus.
    pub gtype: String,
    /// Attributes (port, autoport, listen, passwd, ...) in libvirt's order.
    pub attrs: Vec<(String, String)>,
    /// `<listen>` elements.
    pub listens: Vec<Element>,
    /// Other children (spice channels, image, gl, audio...).
    pub extra: Vec<Element>,
}

impl Graphics {
    /// An attribute.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets an attribute, keeping libvirt's order.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(a) => a.1 = value,
            None => {
                self.attrs.push((name.to_string(), value));
                let pos = |k: &str| {
                    GRAPHICS_ATTRS
                        .iter()
                        .position(|a| *a == k)
                        .unwrap_or(usize::MAX)
                };
                self.attrs.sort_by_key(|(k, _)| pos(k));
            }
        }
    }

    fn parse(node: Node<'_, '_>) -> Result<Graphics> {
        let gtype =
            attr(node, "type").ok_or_else(|| xml::xml_err("missing graphics device type"))?;
        if ![
            "sdl",
            "vnc",
            "rdp",
            "desktop",
            "spice",
            "egl-headless",
            "dbus",
        ]
        .contains(&gtype.as_str())
        {
            return Err(xml::xml_err(format!(
                "unknown graphics device type '{gtype}'"
            )));
        }
        let mut g = Graphics {
            gtype,
            ..Default::default()
        };
        for a in GRAPHICS_ATTRS {
            if let Some(v) = node.attribute(a) {
                g.attrs.push((a.to_string(), v.to_string()));
            }
        }
        g.listens = dom::children(node, "listen")
            .map(|n| Element::from_dom(n, false))
            .collect();
        g.extra = extras(node, &["listen"], GRAPHICS_CHILDREN);
        if g.gtype == "spice" && g.attr("autoport") == Some("yes") {
            g.attrs.retain(|(k, _)| k != "port" && k != "tlsPort");
        }
        if g.gtype == "spice" && g.attr("defaultMode") == Some("any") {
            g.attrs.retain(|(k, _)| k != "defaultMode");
        }
        let listen_attr = g.attr("listen").map(str::to_string);
        if matches!(g.gtype.as_str(), "vnc" | "spice" | "rdp") {
            if g.gtype == "vnc" || g.gtype == "spice" {
                let has_port = g.attr("port").is_some();
                if g.attr("autoport").is_none() {
                    if !has_port || g.attr("port") == Some("-1") {
                        if g.gtype == "vnc" {
                            g.set_attr("port", "-1");
                        }
                        g.set_attr("autoport", "yes");
                    } else {
                        g.set_attr("autoport", "no");
                    }
                } else if g.attr("autoport") == Some("yes") && g.gtype == "vnc" {
                    g.set_attr("port", "-1");
                }
            }
            if g.listens.is_empty() {
                let mut e = Element {
                    name: "listen".into(),
                    ..Default::default()
                };
                e.attrs.push(("type".into(), "address".into()));
                if let Some(a) = listen_attr {
                    e.attrs.push(("address".into(), a));
                }
                g.listens.push(e);
            } else if let Some(first) = g.listens.first() {
                // The first listen's address is mirrored in the legacy attribute.
                if first.attr("type") == Some("address") {
                    if let Some(a) = first.attr("address") {
                        let a = a.to_string();
                        g.set_attr("listen", a);
                    }
                }
            }
        }
        Ok(g)
    }

    fn write(&self, w: &mut Writer, opts: &FormatOptions) {
        w.start("graphics").attr("type", &self.gtype);
        for (k, v) in &self.attrs {
            if k == "passwd" && !opts.secure {
                continue;
            }
            w.attr(k, v);
        }
        for l in &self.listens {
            l.write(w);
        }
        for e in &self.extra {
            e.write(w);
        }
        w.end();
    }
}

/// `<video>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Video {
    /// `<model type=...>` (defaulted: cirrus for hvm guests).
    pub model: String,
    /// `<model>` attributes other than `type` (ram, vram, vram64, vgamem,
    /// heads, primary) in libvirt's order.
    pub model_attrs: Vec<(String, String)>,
    /// `<model><acceleration .../>` and `<resolution>`.
    pub model_children: Vec<Element>,
    /// `<driver>`.
    pub driver: Option<Element>,
    /// Alias, address.
    pub info: DeviceInfo,
}

const VIDEO_MODEL_ATTRS: &[&str] = &[
    "ram", "vram", "vram64", "vgamem", "heads", "primary", "blob",
];

impl Video {
    fn model_attr(&self, k: &str) -> Option<&str> {
        self.model_attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }

    fn set_model_attr(&mut self, k: &str, v: &str) {
        if self.model_attr(k).is_none() {
            self.model_attrs.push((k.to_string(), v.to_string()));
            let pos = |k: &str| {
                VIDEO_MODEL_ATTRS
                    .iter()
                    .position(|a| *a == k)
                    .unwrap_or(usize::MAX)
            };
            self.model_attrs.sort_by_key(|(k, _)| pos(k));
        }
    }

    fn parse(node: Node<'_, '_>, os_type: &str) -> Result<Video> {
        let mut v = Video::default();
        let m = child(node, "model");
        v.model = match m.and_then(|m| m.attribute("type")) {
            Some(t) => t.to_string(),
            None => if os_type == "xen" || os_type == "linux" {
                "xen"
            } else {
                "cirrus"
            }
            .to_string(),
        };
        if let Some(m) = m {
            for a in VIDEO_MODEL_ATTRS {
                if let Some(val) = m.attribute(a) {
                    v.model_attrs.push((a.to_string(), val.to_string()));
                }
            }
            v.model_children = dom::elements(m)
                .map(|c| Element::from_dom(c, false))
                .collect();
        }
        v.driver = child(node, "driver").map(|n| Element::from_dom(n, false));
        v.info = DeviceInfo::parse(node)?;
        let vram = match v.model.as_str() {
            "vga" | "cirrus" | "vmvga" | "bochs" | "xen" => Some("16384"),
            "vbox" => Some("8192"),
            "qxl" => Some("65536"),
            _ => None,
        };
        if v.model == "qxl" {
            v.set_model_attr("ram", "65536");
        }
        if let Some(vr) = vram {
            v.set_model_attr("vram", vr);
        }
        if v.model != "none" {
            v.set_model_attr("heads", "1");
        }
        Ok(v)
    }

    fn write(&self, w: &mut Writer) {
        w.start("video");
        if let Some(d) = &self.driver {
            d.write(w);
        }
        w.start("model").attr("type", &self.model);
        for (k, v) in &self.model_attrs {
            w.attr(k, v);
        }
        for c in &self.model_children {
            c.write(w);
        }
        w.end();
        self.info.write(w);
        w.end();
    }
}

/// A device kept generically: the element reordered to libvirt's layout,
/// with its device info (alias, address) typed.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct GenericDevice {
    /// The element without its boot/alias/rom/address children.
    pub elem: Element,
    /// Boot order, alias, address.
    pub info: DeviceInfo,
}

/// Where a generic device's device info goes among its children.
#[derive(Clone, Copy)]
enum InfoAt {
    /// After all other children.
    End,
    /// Before the children with these names.
    Before(&'static [&'static str]),
}

struct DevSpec {
    spec: &'static Spec,
    info_at: InfoAt,
}

static SOUND: Spec = Spec {
    attrs: &["model"],
    children: &[("codec", None), ("audio", None)],
    keep_unknown: false,
};
static WATCHDOG: Spec = Spec {
    attrs: &["model", "action"],
    children: &[],
    keep_unknown: false,
};
static MEMBALLOON: Spec = Spec {
    attrs: &["model", "autodeflate", "freePageReporting"],
    children: &[("stats", None), ("driver", None)],
    keep_unknown: false,
};
static RNG_RATE: Spec = Spec {
    attrs: &["bytes", "period"],
    children: &[],
    keep_unknown: false,
};
static RNG: Spec = Spec {
    attrs: &["model"],
    children: &[
        ("rate", Some(&RNG_RATE)),
        ("backend", None),
        ("driver", None),
    ],
    keep_unknown: false,
};
static ANY_DEV: Spec = Spec::ANY;
static HOSTDEV: Spec = Spec {
    attrs: &[
        "mode", "type", "managed", "sgio", "rawio", "model", "display", "ramfb",
    ],
    children: &[
        ("source", None),
        ("driver", None),
        ("readonly", None),
        ("shareable", None),
    ],
    keep_unknown: true,
};
static SMARTCARD: Spec = Spec {
    attrs: &["mode", "type"],
    children: &[],
    keep_unknown: true,
};
static REDIRDEV: Spec = Spec {
    attrs: &["bus", "type"],
    children: &[("source", Some(&CHR_SOURCE)), ("protocol", None)],
    keep_unknown: false,
};

fn dev_spec(name: &str) -> DevSpec {
    let (spec, info_at): (&'static Spec, InfoAt) = match name {
        "sound" => (&SOUND, InfoAt::End),
        "watchdog" => (&WATCHDOG, InfoAt::End),
        "memballoon" => (&MEMBALLOON, InfoAt::Before(&["driver"])),
        "rng" => (&RNG, InfoAt::End),
        "hostdev" => (&HOSTDEV, InfoAt::End),
        "smartcard" => (&SMARTCARD, InfoAt::End),
        "redirdev" => (&REDIRDEV, InfoAt::End),
        _ => (&ANY_DEV, InfoAt::End),
    };
    DevSpec { spec, info_at }
}

impl GenericDevice {
    fn parse(node: Node<'_, '_>) -> Result<GenericDevice> {
        let name = node.tag_name().name();
        let info = DeviceInfo::parse(node)?;
        let mut elem = Element::from_dom(node, false);
        let is_hostdev_source = |e: &Element| e.name == "source";
        elem.content.retain(|c| match c {
            crate::Content::Elem(e) => {
                !INFO_NAMES.contains(&e.name.as_str()) || is_hostdev_source(e)
            }
            crate::Content::Text(_) => true,
        });
        let ds = dev_spec(name);
        spec::normalize(&mut elem, ds.spec);
        if name == "hostdev" && elem.attr("type") == Some("pci") {
            // The host PCI address is written in libvirt's number format.
            if let Some(src) = child(node, "source") {
                if let Some(a) = child(src, "address") {
                    let addr = Address::from_dom(a, true)?;
                    let mut w = Writer::new();
                    addr.write(&mut w, false);
                    let text = w.finish();
                    let doc = roxmltree::Document::parse(&text)
                        .map_err(|e| xml::internal(format!("hostdev address: {e}")))?;
                    let new = Element::from_node(doc.root_element(), false);
                    for c in elem.content.iter_mut() {
                        if let crate::Content::Elem(s) = c {
                            if s.name == "source" {
                                for sc in s.content.iter_mut() {
                                    if let crate::Content::Elem(x) = sc {
                                        if x.name == "address" {
                                            *x = new.clone();
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(GenericDevice { elem, info })
    }

    /// An attribute of the device element.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.elem.attr(name)
    }

    fn write(&self, w: &mut Writer) {
        let ds = dev_spec(&self.elem.name);
        let e = &self.elem;
        // redirdev is written with a start and end tag even when empty.
        let force_open = e.name == "redirdev";
        if e.content.is_empty() && self.info == DeviceInfo::default() && !force_open {
            e.write(w);
            return;
        }
        w.start_owned(&e.name);
        for (k, v) in &e.attrs {
            w.attr(k, v);
        }
        if force_open && e.content.is_empty() && self.info == DeviceInfo::default() {
            w.force_open();
        }
        let mut info_written = false;
        for c in e.elements() {
            if let InfoAt::Before(names) = ds.info_at {
                if !info_written && names.contains(&c.name.as_str()) {
                    self.info.write(w);
                    info_written = true;
                }
            }
            c.write(w);
        }
        if !info_written {
            self.info.write(w);
        }
        w.end();
    }
}

/// `<devices>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Devices {
    /// `<disk>`, in libvirt's order (grouped by bus, sorted by target).
    pub disks: Vec<Disk>,
    /// `<controller>`, grouped by type and sorted by index.
    pub controllers: Vec<Controller>,
    /// `<lease>`.
    pub leases: Vec<GenericDevice>,
    /// `<filesystem>`.
    pub filesystems: Vec<GenericDevice>,
    /// `<interface>`.
    pub interfaces: Vec<Interface>,
    /// `<smartcard>`.
    pub smartcards: Vec<GenericDevice>,
    /// `<serial>`.
    pub serials: Vec<Chardev>,
    /// `<parallel>`.
    pub parallels: Vec<Chardev>,
    /// `<console>`.
    pub consoles: Vec<Chardev>,
    /// `<channel>`.
    pub channels: Vec<Chardev>,
    /// `<input>`.
    pub inputs: Vec<Input>,
    /// `<tpm>`.
    pub tpms: Vec<GenericDevice>,
    /// `<graphics>`.
    pub graphics: Vec<Graphics>,
    /// `<sound>`.
    pub sounds: Vec<GenericDevice>,
    /// `<audio>`.
    pub audios: Vec<GenericDevice>,
    /// `<video>`.
    pub videos: Vec<Video>,
    /// `<hostdev>`.
    pub hostdevs: Vec<GenericDevice>,
    /// `<redirdev>`.
    pub redirdevs: Vec<GenericDevice>,
    /// `<redirfilter>`.
    pub redirfilters: Vec<GenericDevice>,
    /// `<hub>`.
    pub hubs: Vec<GenericDevice>,
    /// `<watchdog>`.
    pub watchdogs: Vec<GenericDevice>,
    /// `<memballoon>`.
    pub memballoon: Option<GenericDevice>,
    /// `<rng>`.
    pub rngs: Vec<GenericDevice>,
    /// `<nvram>` (sPAPR).
    pub nvram: Option<GenericDevice>,
    /// `<panic>`.
    pub panics: Vec<GenericDevice>,
    /// `<shmem>`.
    pub shmems: Vec<GenericDevice>,
    /// `<memory>` (DIMMs).
    pub memories: Vec<GenericDevice>,
    /// `<iommu>`.
    pub iommu: Option<GenericDevice>,
    /// `<vsock>`.
    pub vsock: Option<GenericDevice>,
    /// `<crypto>`.
    pub cryptos: Vec<GenericDevice>,
}

/// Inserts `d` the way libvirt's `virDomainDiskInsert` does: after the last
/// disk on the same bus, or before the first one on that bus with a higher
/// target index.
fn disk_insert(disks: &mut Vec<Disk>, d: Disk) {
    let idx = disk_name_to_index(&d.target_dev);
    let mut insert_at: Option<usize> = None;
    for i in (0..disks.len()).rev() {
        if disks[i].target_bus == d.target_bus {
            if disk_name_to_index(&disks[i].target_dev) > idx {
                insert_at = Some(i);
            } else if insert_at.is_none() {
                insert_at = Some(i + 1);
            }
        }
    }
    match insert_at {
        Some(i) => disks.insert(i, d),
        None => disks.push(d),
    }
}

/// Inserts `c` the way libvirt's `virDomainControllerInsertPreAlloced` does.
fn controller_insert(ctrls: &mut Vec<Controller>, c: Controller) {
    let mut insert_at: Option<usize> = None;
    for i in (0..ctrls.len()).rev() {
        if ctrls[i].ctype == c.ctype {
            if ctrls[i].index > c.index {
                insert_at = Some(i);
            } else if insert_at.is_none() {
                insert_at = Some(i + 1);
            }
        }
    }
    match insert_at {
        Some(i) => ctrls.insert(i, c),
        None => ctrls.push(c),
    }
}

fn is_ich9_ehci1(c: &Controller) -> bool {
    c.model.as_deref() == Some("ich9-ehci1")
}

impl Devices {
    /// Parses `<devices>` (`os_type` picks defaults such as the video model).
    pub fn parse(node: roxmltree::Node<'_, '_>, os_type: &str) -> Result<Devices> {
        dom::with_rox_node(node, |n| Devices::from_dom(n, os_type))
    }

    pub(crate) fn from_dom(node: Node<'_, '_>, os_type: &str) -> Result<Devices> {
        let mut d = Devices::default();
        d.reserve_for(node);
        // The last USB controller: index, whether it is an ICH9 EHCI
        // master, whether it is a companion.
        let mut last_usb: Option<(u32, bool, bool)> = None;
        for c in dom::elements(node) {
            match c.tag_name().name() {
                "emulator" => {}
                "disk" => disk_insert(&mut d.disks, Disk::parse(c)?),
                "controller" => {
                    let (ctrl, has_index) = Controller::parse(c)?;
                    let companion = ctrl.ctype == "usb" && ctrl.info.master_startport.is_some();
                    if has_index {
                        if ctrl.ctype == "usb" {
                            last_usb = Some((ctrl.index, is_ich9_ehci1(&ctrl), companion));
                        }
                        if !companion
                            && d.controllers
                                .iter()
                                .any(|x| x.ctype == ctrl.ctype && x.index == ctrl.index)
                        {
                            return Err(xml::xml_err(format!(
                                "Multiple '{}' controllers with index '{}'",
                                ctrl.ctype, ctrl.index
                            )));
                        }
                        controller_insert(&mut d.controllers, ctrl);
                    } else {
                        // A USB companion controller right after its EHCI
                        // master (or another companion) shares its index.
                        let joins = companion
                            && last_usb.as_ref().is_some_and(
                                |(_, ehci1, is_comp): &(u32, bool, bool)| *is_comp || *ehci1,
                            );
                        let next = if joins {
                            last_usb.as_ref().map_or(0, |l| l.0)
                        } else {
                            d.controllers
                                .iter()
                                .filter(|x| x.ctype == ctrl.ctype)
                                .map(|x| x.index + 1)
                                .max()
                                .unwrap_or(0)
                        };
                        let mut ctrl = ctrl;
                        ctrl.index = next;
                        if ctrl.ctype == "usb" {
                            last_usb = Some((ctrl.index, is_ich9_ehci1(&ctrl), companion));
                        }
                        controller_insert(&mut d.controllers, ctrl);
                    }
                }
                "interface" => d.interfaces.push(Interface::parse(c)?),
                "serial" => d.serials.push(Chardev::parse(c, ChardevKind::Serial)?),
                "parallel" => d.parallels.push(Chardev::parse(c, ChardevKind::Parallel)?),
                "console" => d.consoles.push(Chardev::parse(c, ChardevKind::Console)?),
                "channel" => d.channels.push(Chardev::parse(c, ChardevKind::Channel)?),
                "input" => d.inputs.push(Input::parse(c)?),
                "graphics" => d.graphics.push(Graphics::parse(c)?),
                "video" => d.videos.push(Video::parse(c, os_type)?),
                "lease" => d.leases.push(GenericDevice::parse(c)?),
                "filesystem" => d.filesystems.push(GenericDevice::parse(c)?),
                "smartcard" => d.smartcards.push(GenericDevice::parse(c)?),
                "tpm" => d.tpms.push(GenericDevice::parse(c)?),
                "sound" => d.sounds.push(GenericDevice::parse(c)?),
                "audio" => d.audios.push(GenericDevice::parse(c)?),
                "hostdev" => d.hostdevs.push(GenericDevice::parse(c)?),
                "redirdev" => d.redirdevs.push(GenericDevice::parse(c)?),
                "redirfilter" => d.redirfilters.push(GenericDevice::parse(c)?),
                "hub" => d.hubs.push(GenericDevice::parse(c)?),
                "watchdog" => d.watchdogs.push(GenericDevice::parse(c)?),
                "memballoon" if d.memballoon.is_none() => {
                    d.memballoon = Some(GenericDevice::parse(c)?);
                }
                "rng" => d.rngs.push(GenericDevice::parse(c)?),
                "nvram" => d.nvram = Some(GenericDevice::parse(c)?),
                "panic" => d.panics.push(GenericDevice::parse(c)?),
                "shmem" => d.shmems.push(GenericDevice::parse(c)?),
                "memory" => d.memories.push(GenericDevice::parse(c)?),
                "iommu" => d.iommu = Some(GenericDevice::parse(c)?),
                "vsock" => d.vsock = Some(GenericDevice::parse(c)?),
                "crypto" => d.cryptos.push(GenericDevice::parse(c)?),
                // libvirt ignores elements it does not know.
                _ => {}
            }
        }
        Ok(d)
    }

    /// Sizes the lists of the big device structs for the children of
    /// `node` (growing them by doubling wastes memory and time).
    fn reserve_for(&mut self, node: Node<'_, '_>) {
        let (mut disks, mut ctrls, mut ifaces, mut chr, mut inputs, mut gfx, mut videos) =
            (0, 0, 0, 0, 0, 0, 0);
        for c in dom::elements(node) {
            match c.tag_name().name() {
                "disk" => disks += 1,
                "controller" => ctrls += 1,
                "interface" => ifaces += 1,
                "serial" | "console" => chr += 1,
                "input" => inputs += 1,
                "graphics" => gfx += 1,
                "video" => videos += 1,
                _ => {}
            }
        }
        self.disks.reserve_exact(disks);
        self.controllers.reserve_exact(ctrls);
        self.interfaces.reserve_exact(ifaces);
        // Consoles and serials are paired by the defaults.
        self.serials.reserve_exact(chr);
        self.consoles.reserve_exact(chr);
        self.inputs.reserve_exact(inputs);
        self.graphics.reserve_exact(gfx);
        self.videos.reserve_exact(videos);
    }

    /// Whether any device carries a `<boot order=...>`.
    pub fn any_boot_order(&self) -> bool {
        self.disks.iter().any(|d| d.info.boot_order.is_some())
            || self.interfaces.iter().any(|i| i.info.boot_order.is_some())
            || self.hostdevs.iter().any(|h| h.info.boot_order.is_some())
            || self.redirdevs.iter().any(|h| h.info.boot_order.is_some())
    }

    /// libvirt's generic device defaults (every driver): disk buses and
    /// drive addresses, implicit controllers, console/serial pairing,
    /// serial ports, input buses, primary video, watchdog action, hostdev
    /// `managed`, smartcard addresses, rng backend.
    pub fn apply_defaults(&mut self, os_type: &str) -> Result<()> {
        let hvm = os_type == "hvm";
        // Disks: bus from the device name, drive addresses.
        for d in &mut self.disks {
            if d.target_bus.is_none() {
                d.target_bus = Some(default_disk_bus(&d.target_dev, &d.device).to_string());
            }
            let bus = d.target_bus.as_deref().unwrap_or("");
            if d.info.address.is_none() && ["scsi", "ide", "fdc", "sata"].contains(&bus) {
                let idx = disk_name_to_index(&d.target_dev).ok_or_else(|| {
                    xml::xml_err(format!(
                        "Unknown disk name '{}' and no address specified",
                        d.target_dev
                    ))
                })?;
                d.info.address = Some(match bus {
                    "scsi" => Address::Drive {
                        controller: idx / 7,
                        bus: 0,
                        target: 0,
                        unit: idx % 7,
                    },
                    "ide" => Address::Drive {
                        controller: idx / 4,
                        bus: (idx % 4) / 2,
                        target: 0,
                        unit: idx % 2,
                    },
                    "fdc" => Address::Drive {
                        controller: idx / 2,
                        bus: 0,
                        target: 0,
                        unit: idx % 2,
                    },
                    _ => Address::Drive {
                        controller: idx / 6,
                        bus: 0,
                        target: 0,
                        unit: idx % 6,
                    },
                });
            }
        }
        // Implicit disk controllers (scsi, fdc, ide, sata).
        for (ctype, bus) in [
            ("scsi", "scsi"),
            ("fdc", "fdc"),
            ("ide", "ide"),
            ("sata", "sata"),
        ] {
            let max = self
                .disks
                .iter()
                .filter(|d| d.target_bus.as_deref() == Some(bus))
                .filter_map(|d| match d.info.address {
                    Some(Address::Drive { controller, .. }) => Some(controller),
                    _ => None,
                })
                .max();
            if let Some(max) = max {
                for i in 0..=max {
                    self.ensure_controller(ctype, i);
                }
            }
        }
        // virtio-serial for virtio channels and consoles.
        let mut vs_max: Option<u32> = None;
        for c in self.channels.iter().chain(self.consoles.iter()) {
            if c.target_type.as_deref() == Some("virtio") {
                let ctl = match c.info.address {
                    Some(Address::VirtioSerial { controller, .. }) => controller,
                    _ => 0,
                };
                vs_max = Some(vs_max.map_or(ctl, |m: u32| m.max(ctl)));
            }
        }
        if let Some(max) = vs_max {
            for i in 0..=max {
                self.ensure_controller("virtio-serial", i);
            }
        }
        // Smartcards: ccid controller and addresses.
        if !self.smartcards.is_empty() {
            let mut slot = 0;
            for s in &mut self.smartcards {
                if s.info.address.is_none() {
                    s.info.address = Some(Address::Ccid {
                        controller: 0,
                        slot,
                    });
                    slot += 1;
                }
            }
            self.ensure_controller("ccid", 0);
        }
        // Console/serial pairing.
        if hvm {
            if let Some(first) = self.consoles.first_mut() {
                if first.target_type.is_none() {
                    first.target_type = Some("serial".into());
                }
            }
            if self.consoles.is_empty() && !self.serials.is_empty() {
                let mut c = self.serials[0].clone();
                c.kind = ChardevKind::Console;
                c.target_type = Some("serial".into());
                c.target_extra = Element {
                    name: "target".into(),
                    ..Default::default()
                };
                c.info = DeviceInfo::default();
                self.consoles.push(c);
            }
            let pair = self
                .consoles
                .first()
                .is_some_and(|c| c.target_type.as_deref() == Some("serial"));
            if pair {
                if self.serials.is_empty() {
                    let mut s = self.consoles[0].clone();
                    s.kind = ChardevKind::Serial;
                    s.target_type = None;
                    self.serials.push(s);
                } else {
                    let mut c = self.serials[0].clone();
                    c.kind = ChardevKind::Console;
                    c.target_type = Some("serial".into());
                    c.target_extra = Element {
                        name: "target".into(),
                        ..Default::default()
                    };
                    c.info = self.consoles[0].info.clone();
                    self.consoles[0] = c;
                }
            }
        }
        // Serial and parallel ports numbered in order.
        for list in [&mut self.serials, &mut self.parallels] {
            let mut used: Vec<u32> = list.iter().filter_map(|c| c.target_port).collect();
            for c in list.iter_mut() {
                if c.target_port.is_none() {
                    let mut p = 0;
                    while used.contains(&p) {
                        p += 1;
                    }
                    c.target_port = Some(p);
                    used.push(p);
                }
            }
        }
        if let (Some(s), Some(c)) = (self.serials.first(), self.consoles.first_mut()) {
            if c.target_type.as_deref() == Some("serial") {
                c.target_port = s.target_port;
            }
        }
        for c in self.consoles.iter_mut() {
            if c.target_port.is_none() {
                c.target_port = Some(0);
            }
        }
        // Input buses.
        for i in &mut self.inputs {
            if i.bus.is_none() {
                i.bus = Some(
                    match (os_type, i.input_type.as_str()) {
                        ("hvm", "tablet") => "usb",
                        ("hvm", _) => "ps2",
                        ("xen" | "linux", _) => "xen",
                        _ => "ps2",
                    }
                    .to_string(),
                );
            }
        }
        // Primary video.
        if !self.videos.is_empty()
            && !self
                .videos
                .iter()
                .any(|v| v.model_attr("primary") == Some("yes"))
        {
            self.videos[0].set_model_attr("primary", "yes");
        }
        // Watchdog action, hostdev managed, rng backend.
        for wd in &mut self.watchdogs {
            if wd.elem.attr("action").is_none() {
                wd.elem.attrs.push(("action".into(), "reset".into()));
            }
        }
        for h in &mut self.hostdevs {
            if h.elem.attr("mode").unwrap_or("subsystem") == "subsystem"
                && h.elem.attr("managed").is_none()
            {
                let pos = h
                    .elem
                    .attrs
                    .iter()
                    .position(|(k, _)| k == "type")
                    .map_or(h.elem.attrs.len(), |p| p + 1);
                h.elem.attrs.insert(pos, ("managed".into(), "no".into()));
            }
        }
        for r in &mut self.rngs {
            for c in r.elem.content.iter_mut() {
                if let crate::Content::Elem(b) = c {
                    if b.name == "backend"
                        && b.attr("model") == Some("random")
                        && b.content.is_empty()
                    {
                        b.content.push(crate::Content::Text("/dev/random".into()));
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds controller `ctype`/`index` unless present (libvirt's
    /// `virDomainDefMaybeAddController`).
    pub fn ensure_controller(&mut self, ctype: &str, index: u32) {
        if !self
            .controllers
            .iter()
            .any(|c| c.ctype == ctype && c.index == index)
        {
            controller_insert(&mut self.controllers, Controller::implicit(ctype, index));
        }
    }

    /// Writes the devices (without `<devices>` itself and `<emulator>`).
    pub fn format(&self, w: &mut Writer, opts: &FormatOptions) {
        for d in &self.disks {
            d.write(w);
        }
        for c in &self.controllers {
            c.write(w);
        }
        for l in &self.leases {
            l.write(w);
        }
        for f in &self.filesystems {
            f.write(w);
        }
        for i in &self.interfaces {
            i.write(w);
        }
        for s in &self.smartcards {
            s.write(w);
        }
        for list in [
            &self.serials,
            &self.parallels,
            &self.consoles,
            &self.channels,
        ] {
            for c in list {
                c.write(w);
            }
        }
        for i in &self.inputs {
            i.write(w);
        }
        for t in &self.tpms {
            t.write(w);
        }
        for g in &self.graphics {
            g.write(w, opts);
        }
        for s in self.sounds.iter().chain(&self.audios) {
            s.write(w);
        }
        for v in &self.videos {
            v.write(w);
        }
        for g in self
            .hostdevs
            .iter()
            .chain(&self.redirdevs)
            .chain(&self.redirfilters)
            .chain(&self.hubs)
            .chain(&self.watchdogs)
        {
            g.write(w);
        }
        if let Some(m) = &self.memballoon {
            m.write(w);
        }
        for r in &self.rngs {
            r.write(w);
        }
        if let Some(n) = &self.nvram {
            n.write(w);
        }
        for g in self.panics.iter().chain(&self.shmems).chain(&self.memories) {
            g.write(w);
        }
        if let Some(i) = &self.iommu {
            i.write(w);
        }
        if let Some(v) = &self.vsock {
            v.write(w);
        }
        for c in &self.cryptos {
            c.write(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_indexes() {
        assert_eq!(disk_name_to_index("vda"), Some(0));
        assert_eq!(disk_name_to_index("sdz"), Some(25));
        assert_eq!(disk_name_to_index("sdaa"), Some(26));
        assert_eq!(disk_name_to_index("sdah"), Some(33));
        assert_eq!(disk_name_to_index("hdd"), Some(3));
        assert_eq!(disk_name_to_index("xyz"), None);
    }

    #[test]
    fn mac_roundtrip() {
        let m = Mac::parse("52:54:00:0a:1b:2c").unwrap();
        assert_eq!(m.to_string(), "52:54:00:0a:1b:2c");
        assert!(Mac::parse("52:54:00:0a:1b").is_none());
        assert!(Mac::parse("52:54:00:0a:1b:2c:3d").is_none());
        assert!(Mac::random().to_string().starts_with("52:54:00:"));
    }
}
