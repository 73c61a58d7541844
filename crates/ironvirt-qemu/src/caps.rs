//! Host capabilities (`virConnectGetCapabilities`) of the QEMU driver: the
//! host (CPU, NUMA topology, caches, security models) and one `<guest>` per
//! emulator binary with its machine types and domain types.

use std::fmt::Write;

use crate::domcaps::{escape, HostModel};
use crate::host::{self, Cell};
use crate::qemucaps::QemuCaps;

/// The host part of the capabilities.
#[derive(Clone, Debug)]
pub struct HostCaps {
    /// Host UUID.
    pub uuid: String,
    /// Architecture.
    pub arch: String,
    /// Host CPU as model + features, if known.
    pub cpu_model: Option<HostModel>,
    /// (family, model, stepping) from /proc/cpuinfo.
    pub signature: Option<(u32, u32, u32)>,
    /// Microcode version.
    pub microcode: Option<u64>,
    /// Physical address bits.
    pub phys_bits: Option<u32>,
    /// (sockets, dies, cores, threads).
    pub topology: (u32, u32, u32, u32),
    /// Page sizes in KiB.
    pub page_sizes: Vec<u64>,
    /// Whether an IOMMU is present.
    pub iommu: bool,
    /// NUMA cells.
    pub cells: Vec<Cell>,
    /// Cache banks.
    pub caches: Vec<host::CacheBank>,
    /// DAC base label (`+uid:+gid`).
    pub dac_label: String,
}

fn cpuinfo_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

impl HostCaps {
    /// Reads the host; `cpu_model` is the host CPU as described from the
    /// probe of the host architecture's emulator.
    pub fn read(uuid: String, cpu_model: Option<HostModel>) -> HostCaps {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let num = |k: &str| cpuinfo_field(&cpuinfo, k).and_then(|v| v.parse::<u32>().ok());
        let signature = match (num("cpu family"), num("model"), num("stepping")) {
            (Some(f), Some(m), Some(s)) => Some((f, m, s)),
            _ => None,
        };
        let microcode = cpuinfo_field(&cpuinfo, "microcode")
            .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok());
        let phys_bits = cpuinfo_field(&cpuinfo, "address sizes")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()));
        let ni = host::node_info();
        let mut page_sizes = vec![host::page_size_kib()];
        page_sizes.extend(host::huge_page_sizes());
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        HostCaps {
            uuid,
            arch: host::host_arch(),
            cpu_model,
            signature,
            microcode,
            phys_bits,
            topology: (ni.sockets * ni.nodes, 1, ni.cores, ni.threads),
            page_sizes,
            iommu: std::fs::read_dir("/sys/kernel/iommu_groups")
                .map(|mut d| d.next().is_some())
                .unwrap_or(false),
            cells: host::cells(),
            caches: host::cache_banks(),
            dac_label: format!("+{uid}:+{gid}"),
        }
    }
}

fn wordsize(arch: &str) -> u32 {
    match arch {
        "i686" | "armv7l" | "ppc" | "mips" | "mipsel" | "sparc" | "riscv32" | "m68k" => 32,
        _ => 64,
    }
}

/// Formats the capabilities document; `guests` are the probed binaries,
/// `kvm` whether KVM is usable.
pub fn format(host: &HostCaps, guests: &[&QemuCaps], kvm: bool) -> String {
    let mut o = String::with_capacity(16384);
    o.push_str("<capabilities>\n\n  <host>\n");
    let _ = writeln!(o, "    <uuid>{}</uuid>", escape(&host.uuid));
    o.push_str("    <cpu>\n");
    let _ = writeln!(o, "      <arch>{}</arch>", host.arch);
    if let Some(m) = &host.cpu_model {
        let _ = writeln!(o, "      <model>{}</model>", escape(&m.model));
        if let Some(v) = &m.vendor {
            let _ = writeln!(o, "      <vendor>{}</vendor>", escape(v));
        }
    }
    if let Some(mc) = host.microcode {
        let _ = writeln!(o, "      <microcode version='{mc}'/>");
    }
    if let Some((f, m, s)) = host.signature {
        let _ = writeln!(
            o,
            "      <signature family='{f}' model='{m}' stepping='{s}'/>"
        );
    }
    let (s, d, c, t) = host.topology;
    let _ = writeln!(
        o,
        "      <topology sockets='{s}' dies='{d}' cores='{c}' threads='{t}'/>"
    );
    if let Some(bits) = host.phys_bits {
        let _ = writeln!(o, "      <maxphysaddr mode='emulate' bits='{bits}'/>");
    }
    if let Some(m) = &host.cpu_model {
        for (policy, name) in &m.features {
            if *policy == "require" {
                let _ = writeln!(o, "      <feature name='{}'/>", escape(name));
            }
        }
    }
    for p in &host.page_sizes {
        let _ = writeln!(o, "      <pages unit='KiB' size='{p}'/>");
    }
    o.push_str("    </cpu>\n    <power_management/>\n");
    let _ = writeln!(
        o,
        "    <iommu support='{}'/>",
        if host.iommu { "yes" } else { "no" }
    );
    o.push_str("    <migration_features>\n      <live/>\n      <uri_transports>\n");
    o.push_str(
        "        <uri_transport>tcp</uri_transport>\n        <uri_transport>rdma</uri_transport>\n",
    );
    o.push_str("      </uri_transports>\n    </migration_features>\n");
    o.push_str("    <topology>\n");
    let _ = writeln!(o, "      <cells num='{}'>", host.cells.len());
    for cell in &host.cells {
        let _ = writeln!(o, "        <cell id='{}'>", cell.id);
        let _ = writeln!(
            o,
            "          <memory unit='KiB'>{}</memory>",
            cell.memory_kib
        );
        for (size, n) in &cell.pages {
            let _ = writeln!(o, "          <pages unit='KiB' size='{size}'>{n}</pages>");
        }
        if !cell.distances.is_empty() {
            o.push_str("          <distances>\n");
            for (id, v) in &cell.distances {
                let _ = writeln!(o, "            <sibling id='{id}' value='{v}'/>");
            }
            o.push_str("          </distances>\n");
        }
        let _ = writeln!(o, "          <cpus num='{}'>", cell.cpus.len());
        for c in &cell.cpus {
            let _ = writeln!(
                o,
                "            <cpu id='{}' socket_id='{}' die_id='{}' core_id='{}' siblings='{}'/>",
                c.id,
                c.socket,
                c.die,
                c.core,
                escape(&c.siblings)
            );
        }
        o.push_str("          </cpus>\n        </cell>\n");
    }
    o.push_str("      </cells>\n    </topology>\n");
    if !host.caches.is_empty() {
        o.push_str("    <cache>\n");
        for b in &host.caches {
            let (size, unit) = if b.size_kib % 1024 == 0 {
                (b.size_kib / 1024, "MiB")
            } else {
                (b.size_kib, "KiB")
            };
            let _ = writeln!(
                o,
                "      <bank id='{}' level='{}' type='{}' size='{size}' unit='{unit}' cpus='{}'/>",
                b.id,
                b.level,
                b.kind,
                escape(&b.cpus)
            );
        }
        o.push_str("    </cache>\n");
    }
    o.push_str("    <secmodel>\n      <model>none</model>\n      <doi>0</doi>\n    </secmodel>\n");
    o.push_str("    <secmodel>\n      <model>dac</model>\n      <doi>0</doi>\n");
    let _ = writeln!(
        o,
        "      <baselabel type='kvm'>{}</baselabel>",
        host.dac_label
    );
    let _ = writeln!(
        o,
        "      <baselabel type='qemu'>{}</baselabel>",
        host.dac_label
    );
    o.push_str("    </secmodel>\n  </host>\n\n");

    for g in guests {
        o.push_str("  <guest>\n    <os_type>hvm</os_type>\n");
        let _ = writeln!(o, "    <arch name='{}'>", g.arch);
        let _ = writeln!(o, "      <wordsize>{}</wordsize>", wordsize(&g.arch));
        let _ = writeln!(
            o,
            "      <emulator>{}</emulator>",
            escape(&g.binary.to_string_lossy())
        );
        for m in &g.machines {
            let dep = if m.deprecated {
                " deprecated='yes'"
            } else {
                ""
            };
            let _ = writeln!(
                o,
                "      <machine maxCpus='{}'{dep}>{}</machine>",
                m.max_cpus,
                escape(&m.name)
            );
            if let Some(a) = &m.alias {
                let _ = writeln!(
                    o,
                    "      <machine canonical='{}' maxCpus='{}'{dep}>{}</machine>",
                    escape(&m.name),
                    m.max_cpus,
                    escape(a)
                );
            }
        }
        o.push_str("      <domain type='qemu'/>\n");
        if kvm && kvm_runs(&host.arch, &g.arch) {
            o.push_str("      <domain type='kvm'/>\n");
        }
        o.push_str("    </arch>\n    <features>\n");
        if g.arch == "i686" {
            o.push_str("      <pae/>\n      <nonpae/>\n");
        }
        if matches!(g.arch.as_str(), "i686" | "x86_64") {
            o.push_str(
                "      <acpi default='on' toggle='yes'/>\n      <apic default='on' toggle='no'/>\n",
            );
        }
        o.push_str("      <cpuselection/>\n      <deviceboot/>\n      <disksnapshot default='on' toggle='no'/>\n");
        o.push_str("    </features>\n  </guest>\n\n");
    }
    o.push_str("</capabilities>\n");
    o
}

/// Whether KVM on a host of `host` arch runs guests of `guest` arch.
pub fn kvm_runs(host: &str, guest: &str) -> bool {
    host == guest
        || (host == "x86_64" && guest == "i686")
        || (host == "aarch64" && guest == "armv7l")
        || (host == "ppc64le" && guest == "ppc64")
}
