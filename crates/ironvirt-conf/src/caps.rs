//! The capabilities XML (`virConnectGetCapabilities`): the host and the
//! guests a driver can run, in libvirt's layout (a blank line between the
//! top-level sections).

use crate::generic::Element;
use crate::xml::{self, attr, child, child_text, elements, parse_document, text_of, Writer};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result, Uuid};
use roxmltree::Node;

/// `<topology sockets dies cores threads>` of the host CPU.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CpuTopology {
    /// Sockets.
    pub sockets: u32,
    /// Dies per socket.
    pub dies: u32,
    /// Cores per die.
    pub cores: u32,
    /// Threads per core.
    pub threads: u32,
}

/// `<host><cpu>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HostCpu {
    /// `<arch>`.
    pub arch: String,
    /// `<features>` children (`pae`, `nonpae`, `vmx`, `svm`).
    pub arch_features: Vec<String>,
    /// `<model>`.
    pub model: Option<String>,
    /// `<vendor>`.
    pub vendor: Option<String>,
    /// `<microcode version=...>`.
    pub microcode: Option<String>,
    /// `<signature family model stepping>`.
    pub signature: Option<Element>,
    /// `<counter name frequency scaling>`.
    pub counter: Option<Element>,
    /// `<topology>`.
    pub topology: Option<CpuTopology>,
    /// `<maxphysaddr mode bits>`.
    pub maxphysaddr: Option<Element>,
    /// `<feature name=...>` in order.
    pub features: Vec<String>,
    /// `<pages unit='KiB' size=...>` sizes in KiB.
    pub pages_kib: Vec<u64>,
}

/// A CPU of a NUMA cell.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CellCpu {
    /// `id`.
    pub id: u32,
    /// `socket_id`.
    pub socket_id: Option<u32>,
    /// `die_id`.
    pub die_id: Option<u32>,
    /// `core_id`.
    pub core_id: Option<u32>,
    /// `siblings` (a bitmap string).
    pub siblings: Option<String>,
}

/// A NUMA cell of the host.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Cell {
    /// `id`.
    pub id: u32,
    /// `<memory unit='KiB'>`.
    pub memory_kib: Option<u64>,
    /// `<pages unit='KiB' size=...>count</pages>`: (size KiB, count).
    pub pages: Vec<(u64, u64)>,
    /// `<distances><sibling id value>`.
    pub distances: Vec<(u32, u32)>,
    /// `<cpus>`.
    pub cpus: Vec<CellCpu>,
}

/// `<secmodel>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct SecModel {
    /// `<model>`.
    pub model: String,
    /// `<doi>` (always written, empty when unknown).
    pub doi: String,
    /// `<baselabel type=...>label</baselabel>`.
    pub baselabels: Vec<(String, String)>,
}

/// `<migration_features>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct MigrationFeatures {
    /// `<live/>`.
    pub live: bool,
    /// `<uri_transports><uri_transport>`.
    pub uri_transports: Vec<String>,
}

/// `<host>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HostCaps {
    /// `<uuid>`.
    pub uuid: Option<Uuid>,
    /// `<cpu>`.
    pub cpu: HostCpu,
    /// `<power_management>` children (`suspend_mem`, `suspend_disk`,
    /// `suspend_hybrid`); `None` leaves the element out.
    pub power_management: Option<Vec<String>>,
    /// `<iommu support=...>`.
    pub iommu: Option<bool>,
    /// `<migration_features>`.
    pub migration: Option<MigrationFeatures>,
    /// `<topology><cells>`.
    pub cells: Vec<Cell>,
    /// `<cache>`, kept as written.
    pub cache: Option<Element>,
    /// `<memory_bandwidth>`, kept as written.
    pub memory_bandwidth: Option<Element>,
    /// `<secmodel>` elements.
    pub secmodels: Vec<SecModel>,
}

/// `<machine>` of a guest arch or domain type.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Machine {
    /// Machine type name.
    pub name: String,
    /// `canonical` (for aliases such as `pc`).
    pub canonical: Option<String>,
    /// `maxCpus`.
    pub max_cpus: Option<u32>,
    /// `deprecated='yes'`.
    pub deprecated: bool,
}

/// `<domain type=...>` under a guest arch.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct GuestDomain {
    /// `type`.
    pub virt_type: String,
    /// `<emulator>` when it differs from the arch's.
    pub emulator: Option<String>,
    /// `<machine>` when they differ from the arch's.
    pub machines: Vec<Machine>,
}

/// `<guest>`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct GuestCaps {
    /// `<os_type>`.
    pub os_type: String,
    /// `<arch name=...>`.
    pub arch: String,
    /// `<wordsize>`.
    pub wordsize: Option<u32>,
    /// `<emulator>`.
    pub emulator: Option<String>,
    /// `<loader>`.
    pub loader: Option<String>,
    /// `<machine>` elements.
    pub machines: Vec<Machine>,
    /// `<domain>` elements.
    pub domains: Vec<GuestDomain>,
    /// `<features>` children (`pae`, `acpi default='on' toggle='yes'`...).
    pub features: Vec<Element>,
}

/// The capabilities document.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Capabilities {
    /// `<host>`.
    pub host: HostCaps,
    /// `<guest>` elements.
    pub guests: Vec<GuestCaps>,
}

fn caps_err(detail: impl Into<String>) -> Error {
    Error::new(ErrorDomain::CAPABILITIES, ErrorNumber::XML_ERROR, detail)
}

fn u32_attr(n: Node<'_, '_>, name: &str) -> Result<Option<u32>> {
    match n.attribute(name) {
        None => Ok(None),
        Some(v) => xml::parse_u32(v).map(Some).ok_or_else(|| {
            caps_err(format!(
                "invalid '{name}' in <{}>: '{v}'",
                n.tag_name().name()
            ))
        }),
    }
}

fn u64_text(n: Node<'_, '_>) -> Result<u64> {
    let t = text_of(n);
    xml::parse_u64(&t).ok_or_else(|| {
        caps_err(format!(
            "invalid number in <{}>: '{t}'",
            n.tag_name().name()
        ))
    })
}

fn parse_machines(n: Node<'_, '_>) -> Result<Vec<Machine>> {
    xml::children(n, "machine")
        .map(|m| {
            Ok(Machine {
                name: text_of(m).trim().to_string(),
                canonical: attr(m, "canonical"),
                max_cpus: u32_attr(m, "maxCpus")?,
                deprecated: m.attribute("deprecated") == Some("yes"),
            })
        })
        .collect()
}

fn write_machines(w: &mut Writer, machines: &[Machine]) {
    for m in machines {
        w.start("machine");
        w.attr_opt("canonical", m.canonical.as_deref());
        w.attr_num_opt("maxCpus", m.max_cpus);
        if m.deprecated {
            w.attr("deprecated", "yes");
        }
        w.text(&m.name).end();
    }
}

impl Capabilities {
    /// Parses a capabilities document.
    pub fn parse(text: &str) -> Result<Capabilities> {
        let doc = parse_document(text, "capabilities")?;
        let root = doc.root_element();
        if root.tag_name().name() != "capabilities" {
            return Err(caps_err(format!(
                "expecting root element of 'capabilities', not '{}'",
                root.tag_name().name()
            )));
        }
        let mut caps = Capabilities::default();
        if let Some(h) = child(root, "host") {
            caps.host = parse_host(h)?;
        }
        for g in xml::children(root, "guest") {
            caps.guests.push(parse_guest(g)?);
        }
        Ok(caps)
    }

    /// Formats in libvirt's layout.
    pub fn format(&self) -> String {
        let mut w = Writer::new();
        w.start("capabilities").force_open();
        w.raw_lines("\n");
        format_host(&mut w, &self.host);
        w.raw_lines("\n");
        for g in &self.guests {
            format_guest(&mut w, g);
            w.raw_lines("\n");
        }
        w.end();
        // libvirt writes the separating blank lines without indentation.
        w.finish().replace("\n  \n", "\n\n")
    }
}

fn parse_host(h: Node<'_, '_>) -> Result<HostCaps> {
    let mut host = HostCaps::default();
    if let Some(u) = child_text(h, "uuid") {
        host.uuid =
            Some(Uuid::parse(&u).ok_or_else(|| caps_err(format!("invalid host uuid '{u}'")))?);
    }
    if let Some(c) = child(h, "cpu") {
        let cpu = &mut host.cpu;
        cpu.arch = child_text(c, "arch").unwrap_or_default();
        if let Some(f) = child(c, "features") {
            cpu.arch_features = elements(f)
                .map(|e| e.tag_name().name().to_string())
                .collect();
        }
        cpu.model = child_text(c, "model");
        cpu.vendor = child_text(c, "vendor");
        cpu.microcode = xml::child_attr(c, "microcode", "version");
        cpu.signature = child(c, "signature").map(|n| Element::from_node(n, false));
        cpu.counter = child(c, "counter").map(|n| Element::from_node(n, false));
        if let Some(t) = child(c, "topology") {
            cpu.topology = Some(CpuTopology {
                sockets: u32_attr(t, "sockets")?.unwrap_or(1),
                dies: u32_attr(t, "dies")?.unwrap_or(1),
                cores: u32_attr(t, "cores")?.unwrap_or(1),
                threads: u32_attr(t, "threads")?.unwrap_or(1),
            });
        }
        cpu.maxphysaddr = child(c, "maxphysaddr").map(|n| Element::from_node(n, false));
        cpu.features = xml::children(c, "feature")
            .filter_map(|f| attr(f, "name"))
            .collect();
        for p in xml::children(c, "pages") {
            let size = p
                .attribute("size")
                .and_then(xml::parse_u64)
                .ok_or_else(|| caps_err("invalid pages size"))?;
            cpu.pages_kib.push(crate::units::memory_kib(
                size,
                p.attribute("unit").unwrap_or("KiB"),
            )?);
        }
    }
    host.power_management = child(h, "power_management").map(|p| {
        elements(p)
            .map(|e| e.tag_name().name().to_string())
            .collect()
    });
    host.iommu = child(h, "iommu").map(|i| i.attribute("support") == Some("yes"));
    if let Some(m) = child(h, "migration_features") {
        host.migration = Some(MigrationFeatures {
            live: child(m, "live").is_some(),
            uri_transports: child(m, "uri_transports")
                .map(|u| xml::children(u, "uri_transport").map(text_of).collect())
                .unwrap_or_default(),
        });
    }
    if let Some(cells) = child(h, "topology").and_then(|t| child(t, "cells")) {
        for c in xml::children(cells, "cell") {
            let mut cell = Cell {
                id: u32_attr(c, "id")?.unwrap_or(0),
                ..Default::default()
            };
            if let Some(m) = child(c, "memory") {
                cell.memory_kib = Some(crate::units::memory_kib(
                    u64_text(m)?,
                    m.attribute("unit").unwrap_or("KiB"),
                )?);
            }
            for p in xml::children(c, "pages") {
                let size = p
                    .attribute("size")
                    .and_then(xml::parse_u64)
                    .ok_or_else(|| caps_err("invalid pages size"))?;
                cell.pages.push((
                    crate::units::memory_kib(size, p.attribute("unit").unwrap_or("KiB"))?,
                    u64_text(p)?,
                ));
            }
            if let Some(d) = child(c, "distances") {
                for s in xml::children(d, "sibling") {
                    cell.distances.push((
                        u32_attr(s, "id")?.unwrap_or(0),
                        u32_attr(s, "value")?.unwrap_or(0),
                    ));
                }
            }
            if let Some(cpus) = child(c, "cpus") {
                for cpu in xml::children(cpus, "cpu") {
                    cell.cpus.push(CellCpu {
                        id: u32_attr(cpu, "id")?.unwrap_or(0),
                        socket_id: u32_attr(cpu, "socket_id")?,
                        die_id: u32_attr(cpu, "die_id")?,
                        core_id: u32_attr(cpu, "core_id")?,
                        siblings: attr(cpu, "siblings"),
                    });
                }
            }
            host.cells.push(cell);
        }
    }
    host.cache = child(h, "cache").map(|n| Element::from_node(n, false));
    host.memory_bandwidth = child(h, "memory_bandwidth").map(|n| Element::from_node(n, false));
    for s in xml::children(h, "secmodel") {
        host.secmodels.push(SecModel {
            model: child_text(s, "model").unwrap_or_default(),
            doi: child_text(s, "doi").unwrap_or_default(),
            baselabels: xml::children(s, "baselabel")
                .map(|b| (b.attribute("type").unwrap_or("").to_string(), text_of(b)))
                .collect(),
        });
    }
    Ok(host)
}

fn format_host(w: &mut Writer, h: &HostCaps) {
    w.start("host");
    if let Some(u) = &h.uuid {
        w.text_elem("uuid", &u.to_string());
    }
    let c = &h.cpu;
    w.start("cpu");
    w.text_elem("arch", &c.arch);
    if !c.arch_features.is_empty() {
        w.start("features");
        for f in &c.arch_features {
            w.empty(f);
        }
        w.end();
    }
    if let Some(m) = &c.model {
        w.text_elem("model", m);
    }
    if let Some(v) = &c.vendor {
        w.text_elem("vendor", v);
    }
    if let Some(m) = &c.microcode {
        w.start("microcode").attr("version", m).end();
    }
    for e in [&c.signature, &c.counter].into_iter().flatten() {
        e.write(w);
    }
    if let Some(t) = &c.topology {
        w.start("topology")
            .attr_num("sockets", t.sockets)
            .attr_num("dies", t.dies)
            .attr_num("cores", t.cores)
            .attr_num("threads", t.threads)
            .end();
    }
    if let Some(m) = &c.maxphysaddr {
        m.write(w);
    }
    for f in &c.features {
        w.start("feature").attr("name", f).end();
    }
    for p in &c.pages_kib {
        w.start("pages")
            .attr("unit", "KiB")
            .attr_num("size", p)
            .end();
    }
    w.end();
    if let Some(pm) = &h.power_management {
        w.start("power_management");
        for p in pm {
            w.empty(p);
        }
        w.end();
    }
    if let Some(i) = h.iommu {
        w.start("iommu").attr("support", xml::yesno(i)).end();
    }
    if let Some(m) = &h.migration {
        w.start("migration_features");
        if m.live {
            w.empty("live");
        }
        if !m.uri_transports.is_empty() {
            w.start("uri_transports");
            for t in &m.uri_transports {
                w.text_elem("uri_transport", t);
            }
            w.end();
        }
        w.end();
    }
    if !h.cells.is_empty() {
        w.start("topology");
        w.start("cells").attr_num("num", h.cells.len());
        for cell in &h.cells {
            w.start("cell").attr_num("id", cell.id);
            if let Some(m) = cell.memory_kib {
                w.start("memory")
                    .attr("unit", "KiB")
                    .text(&m.to_string())
                    .end();
            }
            for (size, count) in &cell.pages {
                w.start("pages")
                    .attr("unit", "KiB")
                    .attr_num("size", size)
                    .text(&count.to_string())
                    .end();
            }
            if !cell.distances.is_empty() {
                w.start("distances");
                for (id, v) in &cell.distances {
                    w.start("sibling")
                        .attr_num("id", id)
                        .attr_num("value", v)
                        .end();
                }
                w.end();
            }
            w.start("cpus").attr_num("num", cell.cpus.len());
            for cpu in &cell.cpus {
                w.start("cpu").attr_num("id", cpu.id);
                w.attr_num_opt("socket_id", cpu.socket_id);
                w.attr_num_opt("die_id", cpu.die_id);
                w.attr_num_opt("core_id", cpu.core_id);
                w.attr_opt("siblings", cpu.siblings.as_deref());
                w.end();
            }
            w.end();
            w.end();
        }
        w.end();
        w.end();
    }
    for e in [&h.cache, &h.memory_bandwidth].into_iter().flatten() {
        e.write(w);
    }
    for s in &h.secmodels {
        w.start("secmodel");
        w.text_elem("model", &s.model);
        // `<doi></doi>` keeps its end tag when empty.
        w.start("doi").raw_text("").text(&s.doi).end();
        for (t, l) in &s.baselabels {
            w.start("baselabel").attr("type", t).text(l).end();
        }
        w.end();
    }
    w.end();
}

fn parse_guest(g: Node<'_, '_>) -> Result<GuestCaps> {
    let mut guest = GuestCaps {
        os_type: child_text(g, "os_type").unwrap_or_default(),
        ..Default::default()
    };
    if let Some(a) = child(g, "arch") {
        guest.arch = attr(a, "name").unwrap_or_default();
        guest.wordsize = match child(a, "wordsize") {
            Some(n) => Some(
                xml::parse_u32(&text_of(n))
                    .ok_or_else(|| caps_err(format!("invalid wordsize '{}'", text_of(n))))?,
            ),
            None => None,
        };
        guest.emulator = child_text(a, "emulator");
        guest.loader = child_text(a, "loader");
        guest.machines = parse_machines(a)?;
        for d in xml::children(a, "domain") {
            guest.domains.push(GuestDomain {
                virt_type: attr(d, "type").unwrap_or_default(),
                emulator: child_text(d, "emulator"),
                machines: parse_machines(d)?,
            });
        }
    }
    if let Some(f) = child(g, "features") {
        guest.features = elements(f).map(|e| Element::from_node(e, false)).collect();
    }
    Ok(guest)
}

fn format_guest(w: &mut Writer, g: &GuestCaps) {
    w.start("guest");
    w.text_elem("os_type", &g.os_type);
    w.start("arch").attr("name", &g.arch);
    if let Some(ws) = g.wordsize {
        w.num_elem("wordsize", ws);
    }
    if let Some(e) = &g.emulator {
        w.text_elem("emulator", e);
    }
    if let Some(l) = &g.loader {
        w.text_elem("loader", l);
    }
    write_machines(w, &g.machines);
    for d in &g.domains {
        w.start("domain").attr("type", &d.virt_type);
        if let Some(e) = &d.emulator {
            w.text_elem("emulator", e);
        }
        write_machines(w, &d.machines);
        w.end();
    }
    w.end();
    if !g.features.is_empty() {
        w.start("features");
        for f in &g.features {
            f.write(w);
        }
        w.end();
    }
    w.end();
}
