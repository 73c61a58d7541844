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
#[derive(Clone, Eq, Debug, Default)]
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
    /// Added by the parser's defaults (or a driver) rather than written in
    /// the XML it was parsed from. Not formatted and not compared: a
    /// definition formatted and parsed again has no implicit controllers.
    pub implicit: bool,
}

impl PartialEq for Controller {
    fn eq(&self, o: &Self) -> bool {
        self.ctype == o.ctype
            && self.index == o.index
            && self.model == o.model
            && self.attrs == o.attrs
            && self.model_name == o.model_name
            && self.driver == o.driver
            && self.target == o.target
            && self.info == o.info
    }
}

/// The USB2 EHCI master and its UHCI companions, which share an index.
fn is_usb2(c: &Controller) -> bool {
    c.ctype == "usb"
        && matches!(
            c.model.as_deref(),
            Some("ich9-ehci1" | "ich9-uhci1" | "ich9-uhci2" | "ich9-uhci3")
        )
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
    /// libvirt adds implicitly (marked [`Controller::implicit`]).
    pub fn implicit(ctype: &str, index: u32) -> Controller {
        Controller {
            ctype: ctype.to_string(),
            index,
            implicit: true,
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
        let mut c = Controller {
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
            implicit: false,
        };
        // A UHCI companion without <master> gets the ports of its place
        // behind the EHCI master.
        if c.ctype == "usb" && c.info.master_startport.is_none() {
            c.info.master_startport = match c.model.as_deref() {
                Some("ich9-uhci1") => Some(0),
                Some("ich9-uhci2") => Some(2),
                Some("ich9-uhci3") => Some(4),
                _ => None,
            };
        }
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
        self.write_as(w, self.kind.name(), false);
    }

    /// Writes the device as element `name`; `serial_console` writes a
    /// serial port as the console standing for it (target type `serial`,
    /// the port's number, nothing else of its target).
    fn write_as(&self, w: &mut Writer, name: &str, serial_console: bool) {
        w.start(name).attr("type", &self.chr_type);
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
        if serial_console {
            w.start("target").attr("type", "serial");
            w.attr_int_opt("port", self.target_port);
            w.end();
            self.info.write(w);
            w.end();
            return;
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
        let listening = matches!(g.gtype.as_str(), "vnc" | "spice" | "rdp");
        g.extra = extras(node, &["listen"], GRAPHICS_CHILDREN);
        if !listening {
            return Ok(g);
        }
        g.listens = dom::children(node, "listen")
            .map(|n| Element::from_dom(n, false))
            .collect();
        g.listen_defaults()?;
        let ports = match g.gtype.as_str() {
            "vnc" => g.vnc_ports()?,
            "spice" => g.spice_ports()?,
            _ => g.rdp_ports()?,
        };
        // SPICE without any port listens nowhere (libvirt's post-parse
        // turns such an address listen into `none`).
        if g.gtype == "spice"
            && ports == (0, 0, false)
            && g.listens.first().and_then(|l| l.attr("type")) == Some("address")
        {
            g.listens[0] = listen_elem("none", None);
        }
        g.set_port_attrs(ports);
        if g.gtype == "spice" && g.attr("defaultMode") == Some("any") {
            g.attrs.retain(|(k, _)| k != "defaultMode");
        }
        Ok(g)
    }

    /// The `<listen>` elements from the legacy `listen` (and, for VNC,
    /// `socket`) attributes: one is made when none is written; a `socket`
    /// attribute replaces a first address or network listen; the `listen`
    /// attribute fills the address of a first address listen and must
    /// match it.
    fn listen_defaults(&mut self) -> Result<()> {
        let socket = if self.gtype == "vnc" {
            self.attr("socket").map(str::to_string)
        } else {
            None
        };
        let address = self
            .attr("listen")
            .filter(|a| !a.is_empty())
            .map(str::to_string);
        let first_type = self
            .listens
            .first()
            .map(|l| l.attr("type").unwrap_or("").to_string());
        match (first_type.as_deref(), socket) {
            (None, Some(path)) => self
                .listens
                .push(listen_elem("socket", Some(("socket", path)))),
            (None, None) => self
                .listens
                .push(listen_elem("address", address.map(|a| ("address", a)))),
            (Some("address" | "network"), Some(path)) => {
                self.listens[0] = listen_elem("socket", Some(("socket", path)));
            }
            (Some("address"), None) => {
                if let Some(a) = address {
                    let first = &mut self.listens[0];
                    match first.attr("address") {
                        None => first.attrs.push(("address".into(), a)),
                        Some(found) if found != a => {
                            return Err(xml::unsupported(format!(
                                "graphics 'listen' attribute '{a}' must match 'address' attribute of first listen element (found '{found}')"
                            )));
                        }
                        Some(_) => {}
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// VNC `(port, 0, autoport)`: no port or `-1` means autoport, as does
    /// `autoport='yes'` (which drops a given port).
    fn vnc_ports(&self) -> Result<(i32, i32, bool)> {
        let (mut port, mut auto) = match self.attr("port") {
            None => (0, true),
            Some(p) => match p.trim().parse::<i32>() {
                Ok(-1) => (0, true),
                Ok(n) => (n, false),
                Err(_) => return Err(xml::internal(format!("cannot parse vnc port {p}"))),
            },
        };
        match self.attr("autoport") {
            Some("yes") => {
                auto = true;
                port = 0;
            }
            Some("no") => auto = false,
            _ => {}
        }
        Ok((port, 0, auto))
    }

    /// SPICE `(port, tlsPort, autoport)`: autoport only when asked for
    /// (or both ports are `-1`); it drops the ports.
    fn spice_ports(&self) -> Result<(i32, i32, bool)> {
        let int = |name: &str| -> Result<i32> {
            match self.attr(name) {
                None => Ok(0),
                Some(v) => v.trim().parse::<i32>().map_err(|_| {
                    Error::new(
                        ErrorDomain::XML,
                        ErrorNumber::XML_ERROR,
                        format!(
                            "Invalid value for attribute '{name}' in element 'graphics': '{v}'. Expected integer value"
                        ),
                    )
                }),
            }
        };
        let (port, tls) = (int("port")?, int("tlsPort")?);
        let auto = match self.attr("autoport") {
            None => false,
            Some("yes") => true,
            Some("no") => false,
            Some(v) => {
                return Err(Error::new(
                    ErrorDomain::XML,
                    ErrorNumber::XML_ERROR,
                    format!("Invalid value for attribute 'autoport' in element 'graphics': '{v}'."),
                ))
            }
        };
        if auto || (port == -1 && tls == -1) {
            Ok((0, 0, true))
        } else {
            Ok((port, tls, false))
        }
    }

    /// RDP `(port, 0, autoport)`: no port, `-1` or `autoport='yes'` means
    /// autoport.
    fn rdp_ports(&self) -> Result<(i32, i32, bool)> {
        let (port, auto) = match self.attr("port") {
            None => (0, true),
            Some(p) => match p.trim().parse::<i32>() {
                Ok(-1) => (0, true),
                Ok(n) => (n, false),
                Err(_) => return Err(xml::internal(format!("cannot parse rdp port {p}"))),
            },
        };
        if self.attr("autoport") == Some("yes") {
            return Ok((0, 0, true));
        }
        Ok((port, 0, auto))
    }

    /// Rewrites `port`, `tlsPort`, `autoport`, `listen` and `socket` the
    /// way libvirt formats them for the first listen's type: ports only
    /// for address and network listens, the legacy `listen` attribute from
    /// an address listen, VNC's `socket` from a socket listen.
    fn set_port_attrs(&mut self, (port, tls, auto): (i32, i32, bool)) {
        self.attrs.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "port" | "tlsPort" | "autoport" | "listen" | "socket"
            )
        });
        let first = self.listens.first();
        let ltype = first.and_then(|l| l.attr("type")).unwrap_or("");
        let address = first
            .filter(|_| ltype == "address")
            .and_then(|l| l.attr("address"))
            .map(str::to_string);
        let socket = first
            .filter(|_| ltype == "socket" && self.gtype == "vnc")
            .and_then(|l| l.attr("socket"))
            .map(str::to_string);
        let yesno = |b: bool| if b { "yes" } else { "no" };
        let ported = matches!(ltype, "address" | "network");
        match self.gtype.as_str() {
            "vnc" if ported => {
                if port != 0 && !auto {
                    self.set_attr("port", port.to_string());
                } else if auto {
                    self.set_attr("port", "-1");
                }
                self.set_attr("autoport", yesno(auto));
            }
            "spice" if ported => {
                if port != 0 {
                    self.set_attr("port", port.to_string());
                }
                if tls != 0 {
                    self.set_attr("tlsPort", tls.to_string());
                }
                self.set_attr("autoport", yesno(auto));
            }
            "rdp" => {
                if port != 0 || auto {
                    self.set_attr("port", port.to_string());
                }
                if auto {
                    self.set_attr("autoport", "yes");
                }
            }
            _ => {}
        }
        if let Some(a) = address {
            self.set_attr("listen", a);
        }
        if let Some(s) = socket {
            self.set_attr("socket", s);
        }
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

/// A `<listen type=...>` element with one optional attribute.
fn listen_elem(ltype: &str, attr: Option<(&str, String)>) -> Element {
    let mut attrs = vec![("type".to_string(), ltype.to_string())];
    if let Some((k, v)) = attr {
        attrs.push((k.to_string(), v));
    }
    Element {
        name: "listen".into(),
        attrs,
        ..Default::default()
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
    /// `heads='0'` was given: no heads default.
    pub no_heads: bool,
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

    /// The model of a video without `<model type=...>`.
    fn default_model(os_type: &str) -> &'static str {
        if os_type == "xen" || os_type == "linux" {
            "xen"
        } else {
            "cirrus"
        }
    }

    /// The video libvirt adds for graphics without one: the default model
    /// with its default sizes.
    pub fn implicit(os_type: &str) -> Video {
        let mut v = Video {
            model: Self::default_model(os_type).to_string(),
            ..Default::default()
        };
        v.size_defaults();
        v
    }

    /// Whether `primary='yes'` is set.
    pub fn is_primary(&self) -> bool {
        self.model_attr("primary") == Some("yes")
    }

    fn parse(node: Node<'_, '_>, os_type: &str) -> Result<Video> {
        let mut v = Video::default();
        let m = child(node, "model");
        v.model = match m.and_then(|m| m.attribute("type")) {
            Some(t) => t.to_string(),
            None => Self::default_model(os_type).to_string(),
        };
        if let Some(m) = m {
            for a in VIDEO_MODEL_ATTRS {
                let Some(val) = m.attribute(a) else { continue };
                match *a {
                    // Only a primary video is marked.
                    "primary" if val != "yes" => continue,
                    "primary" | "blob" => {}
                    _ => {
                        let n = xml::parse_u32(val).ok_or_else(|| {
                            let msg = format!("cannot parse video {a} '{val}'");
                            if *a == "heads" {
                                xml::internal(msg)
                            } else {
                                xml::xml_err(msg)
                            }
                        })?;
                        // 0 is the same as absent, except that heads
                        // then stays unset.
                        if n == 0 {
                            if *a == "heads" {
                                v.no_heads = true;
                            }
                            continue;
                        }
                    }
                }
                v.model_attrs.push((a.to_string(), val.to_string()));
            }
            v.model_children = dom::elements(m)
                .map(|c| Element::from_dom(c, false))
                .collect();
        }
        v.driver = child(node, "driver").map(|n| Element::from_dom(n, false));
        v.info = DeviceInfo::parse(node)?;
        v.size_defaults();
        Ok(v)
    }

    /// Video RAM and heads defaults of the model; RAM sizes are rounded up
    /// to a power of two. (libvirt gives VGA-like models 8 MiB on VirtualBox
    /// and 4 MiB on VMware domains; the drivers concerned adjust that.)
    fn size_defaults(&mut self) {
        let v = self;
        let vram = match v.model.as_str() {
            "vga" | "cirrus" | "vmvga" | "bochs" => Some("16384"),
            "xen" => Some("4096"),
            "qxl" => Some("65536"),
            _ => None,
        };
        if v.model == "qxl" {
            v.set_model_attr("ram", "65536");
        }
        if let Some(vr) = vram {
            v.set_model_attr("vram", vr);
        }
        for (k, val) in v.model_attrs.iter_mut() {
            if k == "ram" || k == "vram" {
                if let Some(n) = xml::parse_u32(val) {
                    let up = n.checked_next_power_of_two().unwrap_or(n);
                    if up != n {
                        *val = up.to_string();
                    }
                }
            }
        }
        if v.model != "none" && !v.no_heads {
            v.set_model_attr("heads", "1");
        }
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

static FS_BINARY: Spec = Spec {
    attrs: &["path", "xattr"],
    children: &[
        ("cache", None),
        ("sandbox", None),
        ("lock", None),
        ("thread_pool", None),
    ],
    keep_unknown: true,
};
static FILESYSTEM: Spec = Spec {
    attrs: &["type", "accessmode", "model", "multidevs", "fmode", "dmode"],
    children: &[
        ("driver", None),
        ("binary", Some(&FS_BINARY)),
        ("source", None),
        ("target", None),
        ("readonly", None),
        ("space_hard_limit", None),
        ("space_soft_limit", None),
    ],
    keep_unknown: true,
};

/// libvirt's filesystem defaults: type `mount`, access mode `passthrough`
/// (unless the source is a vhost-user socket), RAM usage in KiB and space
/// limits in bytes.
fn filesystem_defaults(e: &mut Element) -> Result<()> {
    if e.attr("type").is_none() {
        e.attrs.insert(0, ("type".into(), "mount".into()));
    }
    let ram = e.attr("type") == Some("ram");
    let mut socket = false;
    for c in e.content.iter_mut() {
        let crate::Content::Elem(c) = c else { continue };
        match c.name.as_str() {
            "source" => {
                socket |= c.attr("socket").is_some();
                if !ram {
                    continue;
                }
                let Some(usage) = c.attr("usage") else {
                    continue;
                };
                let value = xml::parse_u64(usage).ok_or_else(|| {
                    xml::xml_err(format!("cannot parse usage '{usage}' for RAM filesystem"))
                })?;
                let bytes =
                    crate::units::scale(value, c.attr("units").unwrap_or(""), 1024, u64::MAX)?;
                c.attrs.retain(|(k, _)| k != "usage" && k != "units");
                c.attrs.push(("usage".into(), (bytes / 1024).to_string()));
                c.attrs.push(("units".into(), "KiB".into()));
            }
            "space_hard_limit" | "space_soft_limit" => {
                let text: String = c
                    .content
                    .iter()
                    .filter_map(|t| match t {
                        crate::Content::Text(t) => Some(t.as_str()),
                        crate::Content::Elem(_) => None,
                    })
                    .collect();
                let value = xml::parse_u64(text.trim()).ok_or_else(|| {
                    Error::new(
                        ErrorDomain::XML,
                        ErrorNumber::XML_ERROR,
                        format!(
                            "Invalid value '{text}' for element or attribute './{}[1]'",
                            c.name
                        ),
                    )
                })?;
                let bytes = crate::units::scale(value, c.attr("unit").unwrap_or(""), 1, u64::MAX)?;
                c.attrs = vec![("unit".into(), "bytes".into())];
                c.content = vec![crate::Content::Text(bytes.to_string())];
            }
            _ => {}
        }
    }
    if !socket && e.attr("accessmode").is_none() {
        e.attrs.push(("accessmode".into(), "passthrough".into()));
    }
    Ok(())
}

fn dev_spec(name: &str) -> DevSpec {
    let (spec, info_at): (&'static Spec, InfoAt) = match name {
        "sound" => (&SOUND, InfoAt::End),
        "watchdog" => (&WATCHDOG, InfoAt::End),
        "memballoon" => (&MEMBALLOON, InfoAt::Before(&["driver"])),
        "rng" => (&RNG, InfoAt::End),
        "hostdev" => (&HOSTDEV, InfoAt::End),
        "smartcard" => (&SMARTCARD, InfoAt::End),
        "redirdev" => (&REDIRDEV, InfoAt::End),
        "filesystem" => (
            &FILESYSTEM,
            InfoAt::Before(&["space_hard_limit", "space_soft_limit"]),
        ),
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
        if name == "filesystem" {
            filesystem_defaults(&mut elem)?;
        }
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

/// Where libvirt's `virDomainControllerInsertPreAlloced` puts `c` among
/// `ctrls` while parsing; `pending[i]` tells whether `ctrls[i]` has no
/// index yet (it sorts before every index). A controller without an index
/// goes right after the last one of its type; one with an index before
/// the first of its type with a higher index, and a master before the
/// companions of its index.
fn controller_insert_pos(
    ctrls: &[Controller],
    pending: &[bool],
    c: &Controller,
    c_pending: bool,
) -> usize {
    let key = |i: usize| {
        if pending[i] {
            -1
        } else {
            i64::from(ctrls[i].index)
        }
    };
    let c_key = if c_pending { -1 } else { i64::from(c.index) };
    let c_master = c.info.master_startport.is_none();
    let mut insert_at: Option<usize> = None;
    for i in (0..ctrls.len()).rev() {
        let cur = &ctrls[i];
        if cur.ctype != c.ctype {
            continue;
        }
        if c_pending {
            return i + 1;
        }
        if key(i) > c_key || (c_master && cur.info.master_startport.is_some() && key(i) == c_key) {
            insert_at = Some(i);
        } else if insert_at.is_none() {
            insert_at = Some(i + 1);
        }
    }
    insert_at.unwrap_or(ctrls.len())
}

/// libvirt's `virDomainAssignControllerIndexes`: in list order, each
/// controller without an index gets the lowest index unused by its type,
/// except that a USB2 controller following another USB2 controller joins
/// that one's index unless a controller of its model already has it.
fn assign_controller_indexes(ctrls: &mut [Controller], pending: &mut [bool]) {
    for outer in 0..ctrls.len() {
        if !pending[outer] {
            continue;
        }
        let mut joined: Option<u32> = None;
        if outer > 0 && is_usb2(&ctrls[outer]) {
            let prev = (0..outer).rev().find(|&i| ctrls[i].ctype == "usb");
            if let Some(p) = prev.filter(|&p| is_usb2(&ctrls[p])) {
                let idx = ctrls[p].index;
                let taken = (0..ctrls.len()).any(|i| {
                    !pending[i]
                        && ctrls[i].ctype == "usb"
                        && ctrls[i].index == idx
                        && ctrls[i].model == ctrls[outer].model
                });
                if !taken {
                    joined = Some(idx);
                }
            }
        }
        let idx = joined.unwrap_or_else(|| {
            let used = |n: u32| {
                (0..ctrls.len()).any(|i| {
                    !pending[i] && ctrls[i].ctype == ctrls[outer].ctype && ctrls[i].index == n
                })
            };
            (0..).find(|&n| !used(n)).unwrap_or(0)
        });
        ctrls[outer].index = idx;
        pending[outer] = false;
    }
}

impl Devices {
    /// Parses `<devices>` (`os_type` picks defaults such as the video model).
    pub fn parse(node: roxmltree::Node<'_, '_>, os_type: &str) -> Result<Devices> {
        dom::with_rox_node(node, |n| Devices::from_dom(n, os_type))
    }

    pub(crate) fn from_dom(node: Node<'_, '_>, os_type: &str) -> Result<Devices> {
        let mut d = Devices::default();
        d.reserve_for(node);
        // Controllers still without an index (parallel to d.controllers).
        let mut pending: Vec<bool> = Vec::new();
        for c in dom::elements(node) {
            match c.tag_name().name() {
                "emulator" => {}
                "disk" => disk_insert(&mut d.disks, Disk::parse(c)?),
                "controller" => {
                    let (ctrl, has_index) = Controller::parse(c)?;
                    let at = controller_insert_pos(&d.controllers, &pending, &ctrl, !has_index);
                    d.controllers.insert(at, ctrl);
                    pending.insert(at, !has_index);
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
        if pending.contains(&true) {
            assign_controller_indexes(&mut d.controllers, &mut pending);
        }
        // Several USB controllers may share an index (companions); other
        // types may not.
        for (i, c) in d.controllers.iter().enumerate() {
            if c.ctype != "usb"
                && d.controllers[..i]
                    .iter()
                    .any(|x| x.ctype == c.ctype && x.index == c.index)
            {
                return Err(xml::xml_err(format!(
                    "Multiple '{}' controllers with index '{}'",
                    c.ctype, c.index
                )));
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
            || self.filesystems.iter().any(|f| f.info.boot_order.is_some())
    }

    /// libvirt's generic device defaults (every driver): disk buses and
    /// drive addresses, implicit controllers, console/serial pairing,
    /// serial ports, input buses, the video for graphics and the primary
    /// video, watchdog action, hostdev `managed`, smartcard addresses, rng
    /// backend; and the checks libvirt makes on them (consoles, videos).
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
        self.chardev_defaults(hvm)?;
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
        // Videos: the primary one first, one for graphics without any;
        // a "none" primary video keeps nothing but its alias.
        if let Some(p) = self.videos.iter().position(Video::is_primary) {
            if self.videos[p + 1..].iter().any(Video::is_primary) {
                return Err(xml::unsupported(
                    "Only one primary video device is supported",
                ));
            }
            let v = self.videos.remove(p);
            self.videos.insert(0, v);
        }
        if self.videos.is_empty() && !self.graphics.is_empty() {
            self.videos.push(Video::implicit(os_type));
        }
        if let Some(first) = self.videos.first_mut() {
            if first.model == "none" {
                *first = Video {
                    model: "none".into(),
                    info: DeviceInfo {
                        alias: first.info.alias.take(),
                        ..Default::default()
                    },
                    ..Default::default()
                };
            } else {
                first.set_model_attr("primary", "yes");
            }
        }
        if self.videos.len() > 1 && self.videos.iter().any(|v| v.model == "none") {
            return Err(xml::unsupported(
                "a 'none' video type must be the only video device defined for the domain",
            ));
        }
        for v in self.videos.iter().filter(|v| v.model != "qxl") {
            for a in ["ram", "vram64", "vgamem"] {
                if v.model_attr(a).is_some() {
                    return Err(xml::unsupported(format!(
                        "{a} attribute only supported for video type qxl"
                    )));
                }
            }
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

    /// Character device defaults: console target type `serial`, ports,
    /// and the first console as an alias of the first serial port.
    fn chardev_defaults(&mut self, hvm: bool) -> Result<()> {
        // Serial and parallel ports count up from the highest one; console
        // ports are not read from the XML and count up from 0.
        for list in [&mut self.serials, &mut self.parallels] {
            for i in 0..list.len() {
                if list[i].target_port.is_none() {
                    let next = list
                        .iter()
                        .filter_map(|c| c.target_port)
                        .max()
                        .map_or(0, |m| m + 1);
                    list[i].target_port = Some(next);
                }
            }
        }
        for (port, c) in (0u32..).zip(self.consoles.iter_mut()) {
            if c.target_type.is_none() {
                c.target_type = Some("serial".into());
            }
            c.target_port = Some(port);
        }
        if self.consoles[1.min(self.consoles.len())..]
            .iter()
            .any(|c| c.target_type.as_deref() == Some("serial"))
        {
            return Err(xml::unsupported(
                "Only the first console can be a serial port",
            ));
        }
        if !hvm {
            return Ok(());
        }
        let serial_console = self
            .consoles
            .first()
            .is_some_and(|c| c.target_type.as_deref() == Some("serial"));
        if serial_console {
            // The console stands for the first serial port, made from it
            // when there is none.
            if self.serials.is_empty() {
                let mut s = self.consoles[0].clone();
                s.kind = ChardevKind::Serial;
                s.target_type = None;
                s.target_port = Some(0);
                self.serials.push(s);
            }
        } else if self.serials.first().is_some_and(|s| {
            !matches!(
                s.target_type.as_deref(),
                Some("usb-serial" | "pci-serial" | "isa-debug")
            )
        }) {
            self.consoles.insert(0, Chardev::default());
        } else {
            return Ok(());
        }
        // Written as a copy of the serial port with the console's target.
        let mut c = self.serials[0].clone();
        c.kind = ChardevKind::Console;
        c.target_type = Some("serial".into());
        c.target_name = None;
        c.target_extra = Element {
            name: "target".into(),
            ..Default::default()
        };
        self.consoles[0] = c;
        Ok(())
    }

    /// Appends an implicit controller `ctype`/`index` unless one is
    /// present (libvirt's `virDomainDefMaybeAddController`, which adds at
    /// the end of the list).
    pub fn ensure_controller(&mut self, ctype: &str, index: u32) {
        if !self
            .controllers
            .iter()
            .any(|c| c.ctype == ctype && c.index == index)
        {
            self.controllers.push(Controller::implicit(ctype, index));
        }
    }

    /// Writes the devices (without `<devices>` itself and `<emulator>`) of
    /// a guest of `os_type`.
    pub fn format(&self, w: &mut Writer, opts: &FormatOptions, os_type: &str) {
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
        for c in self.serials.iter().chain(&self.parallels) {
            c.write(w);
        }
        // An hvm guest's serial console is written from the serial port it
        // stands for, as that port is now.
        for (i, c) in self.consoles.iter().enumerate() {
            match self.serials.get(i) {
                Some(s)
                    if os_type == "hvm"
                        && matches!(c.target_type.as_deref(), None | Some("serial")) =>
                {
                    s.write_as(w, "console", true);
                }
                _ => c.write(w),
            }
        }
        for c in &self.channels {
            c.write(w);
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
