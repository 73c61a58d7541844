//! Domain capabilities (`virConnectGetDomainCapabilities`): what a guest of
//! one emulator, machine type, architecture and virtualization type may use,
//! built from a binary's [`QemuCaps`] and formatted in libvirt's layout.
//!
//! The candidate values of each enum are libvirt's own tables (in libvirt's
//! enum order); each is offered only when the binary reports what it needs.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::PathBuf;

use ironvirt_driver::Result;

use crate::qemucaps::{AccelCpu, MachineType, QemuCaps};

/// A named list of values (`<enum name='bus'>`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapsEnum {
    /// The enum's name.
    pub name: &'static str,
    /// Its values, in libvirt's order.
    pub values: Vec<String>,
}

impl CapsEnum {
    fn new(name: &'static str, table: &[(&'static str, bool)]) -> CapsEnum {
        CapsEnum {
            name,
            values: table
                .iter()
                .filter(|(_, on)| *on)
                .map(|(v, _)| v.to_string())
                .collect(),
        }
    }

    /// Whether the enum offers `value`.
    pub fn has(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    fn format(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        if self.values.is_empty() {
            let _ = writeln!(out, "{pad}<enum name='{}'/>", self.name);
            return;
        }
        let _ = writeln!(out, "{pad}<enum name='{}'>", self.name);
        for v in &self.values {
            let _ = writeln!(out, "{pad}  <value>{}</value>", escape(v));
        }
        let _ = writeln!(out, "{pad}</enum>");
    }
}

/// An element with a `supported` attribute and enums (devices, loader, ...).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CapsElement {
    /// Element name (`disk`, `video`, ...).
    pub name: &'static str,
    /// `supported='yes'`.
    pub supported: bool,
    /// Its enums.
    pub enums: Vec<CapsEnum>,
}

impl CapsElement {
    /// The enum called `name`.
    pub fn get(&self, name: &str) -> Option<&CapsEnum> {
        self.enums.iter().find(|e| e.name == name)
    }

    fn format(&self, out: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        if !self.supported || self.enums.is_empty() {
            let _ = writeln!(
                out,
                "{pad}<{} supported='{}'/>",
                self.name,
                yes_no(self.supported)
            );
            return;
        }
        let _ = writeln!(out, "{pad}<{} supported='yes'>", self.name);
        for e in &self.enums {
            e.format(out, indent + 2);
        }
        let _ = writeln!(out, "{pad}</{}>", self.name);
    }
}

/// A named CPU model of `<mode name='custom'>`.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomModel {
    /// Name.
    pub name: String,
    /// `usable` (yes/no/unknown).
    pub usable: Option<bool>,
    /// Vendor (`Intel`, `AMD`, ...; `unknown` when there is none).
    pub vendor: String,
}

/// The host CPU described as a named model plus features.
#[derive(Clone, Debug, PartialEq)]
pub struct HostModel {
    /// Base model.
    pub model: String,
    /// Vendor.
    pub vendor: Option<String>,
    /// (policy, feature), `require` ones first.
    pub features: Vec<(&'static str, String)>,
}

/// `<cpu>` of domain capabilities.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CpuCaps {
    /// host-passthrough: None when unsupported, else its migratable enum.
    pub host_passthrough: Option<CapsEnum>,
    /// maximum: None when unsupported, else its migratable enum.
    pub maximum: Option<CapsEnum>,
    /// host-model, when supported.
    pub host_model: Option<HostModel>,
    /// custom models.
    pub custom: Vec<CustomModel>,
}

/// One `<features>` child.
#[derive(Clone, Debug, PartialEq)]
pub enum Feature {
    /// `<name supported='yes|no'/>`.
    Flag(&'static str, bool),
    /// A feature with enums (gic, hyperv).
    Enums(CapsElement),
    /// SEV with its numbers.
    Sev {
        cbitpos: u32,
        reduced_phys_bits: u32,
    },
}

/// Domain capabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct DomainCaps {
    /// Emulator.
    pub path: PathBuf,
    /// `kvm` or `qemu`.
    pub virttype: String,
    /// Canonical machine type.
    pub machine: String,
    /// Architecture.
    pub arch: String,
    /// Maximum vCPUs.
    pub max_vcpus: u32,
    /// IOThreads.
    pub iothreads: bool,
    /// `<os>`: firmware enum.
    pub firmware: CapsEnum,
    /// Loader paths.
    pub loader_values: Vec<String>,
    /// Loader enums (type, readonly, secure).
    pub loader: CapsElement,
    /// `<cpu>`.
    pub cpu: CpuCaps,
    /// `<memoryBacking>`.
    pub memory_backing: CapsElement,
    /// `<devices>` children.
    pub devices: Vec<CapsElement>,
    /// `<features>` children.
    pub features: Vec<Feature>,
}

/// Facts about the host that domain capabilities depend on.
#[derive(Clone, Debug, Default)]
pub struct HostFacts {
    /// KVM's vCPU limit (`KVM_CAP_MAX_VCPUS`), if known.
    pub kvm_max_vcpus: Option<u32>,
    /// Whether PCI passthrough with VFIO is possible.
    pub vfio: bool,
    /// Whether the swtpm emulator is installed.
    pub swtpm: bool,
    /// Firmware descriptors found on the host.
    pub firmware: Vec<crate::firmware::Firmware>,
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// XML-escapes text and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '\'' => o.push_str("&apos;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

/// libvirt's short vendor name for a CPUID vendor string.
pub fn vendor_name(cpuid: &str) -> String {
    match cpuid {
        "GenuineIntel" => "Intel",
        "AuthenticAMD" => "AMD",
        "HygonGenuine" => "Hygon",
        "CentaurHauls" => "VIA",
        "  Shanghai  " => "Zhaoxin",
        other => other,
    }
    .to_string()
}

/// libvirt's spelling of a QEMU CPU feature name, or None for properties
/// that are not CPUID features (KVM paravirt, VMX controls, Hyper-V, ...).
pub fn libvirt_feature_name(qemu: &str) -> Option<String> {
    if qemu.starts_with("kvm")
        || qemu.starts_with("vmx-")
        || qemu.starts_with("hv-")
        || qemu == "migratable"
    {
        return None;
    }
    Some(
        match qemu {
            "lahf-lm" => "lahf_lm",
            "tsc-adjust" => "tsc_adjust",
            "fxsr-opt" => "fxsr_opt",
            "cmp-legacy" => "cmp_legacy",
            "nodeid-msr" => "nodeid_msr",
            "perfctr-core" => "perfctr_core",
            "perfctr-nb" => "perfctr_nb",
            "ds-cpl" => "ds_cpl",
            "pclmulqdq" => "pclmuldq",
            "sse4.1" => "sse4.1",
            other => other,
        }
        .to_string(),
    )
}

fn cpuid_features(set: &BTreeSet<String>) -> BTreeSet<String> {
    set.iter().filter_map(|f| libvirt_feature_name(f)).collect()
}

/// Describes the host (KVM) or maximum (TCG) CPU as the named model needing
/// the fewest added and removed features, preferring the host's vendor.
pub fn host_model(cpu: &AccelCpu) -> Option<HostModel> {
    if cpu.host_features.is_empty() {
        return None;
    }
    let host = cpuid_features(&cpu.host_features);
    let mut best: Option<(usize, &crate::qemucaps::CpuModel, BTreeSet<String>)> = None;
    for m in &cpu.models {
        if m.features.is_empty() {
            continue;
        }
        if let (Some(hv), Some(mv)) = (&cpu.host_vendor, &m.vendor) {
            if hv != mv {
                continue;
            }
        }
        let feats = cpuid_features(&m.features);
        let score = host.difference(&feats).count() + feats.difference(&host).count();
        if best.as_ref().is_none_or(|(s, _, _)| score < *s) {
            best = Some((score, m, feats));
        }
    }
    let (_, m, feats) = best?;
    let mut features: Vec<(&'static str, String)> = host
        .difference(&feats)
        .map(|f| ("require", f.clone()))
        .collect();
    features.extend(feats.difference(&host).map(|f| ("disable", f.clone())));
    Some(HostModel {
        model: m.name.clone(),
        vendor: cpu.host_vendor.as_deref().map(vendor_name),
        features,
    })
}

/// Whether a machine type has an IDE controller built in.
pub fn machine_has_builtin_ide(arch: &str, machine: &str) -> bool {
    match arch {
        "x86_64" | "i686" => {
            machine == "pc"
                || machine.starts_with("pc-0.")
                || machine.starts_with("pc-1.")
                || machine.starts_with("pc-i440")
                || machine == "isapc"
        }
        "mips" | "mipsel" | "mips64" | "mips64el" => machine == "malta",
        "sparc64" => machine == "sun4u",
        "ppc" => machine == "g3beige" || machine == "mac99" || machine == "prep",
        _ => false,
    }
}

fn is_x86(arch: &str) -> bool {
    arch == "x86_64" || arch == "i686"
}

/// The Hyper-V enlightenments libvirt knows, in its order.
const HYPERV_FEATURES: &[&str] = &[
    "relaxed",
    "vapic",
    "spinlocks",
    "vpindex",
    "runtime",
    "synic",
    "stimer",
    "reset",
    "vendor_id",
    "frequencies",
    "reenlightenment",
    "tlbflush",
    "ipi",
    "evmcs",
    "avic",
];

impl DomainCaps {
    /// Builds the domain capabilities of `caps` for a machine and virt type.
    pub fn build(
        caps: &QemuCaps,
        machine: &MachineType,
        virttype: &str,
        host: &HostFacts,
    ) -> Result<DomainCaps> {
        let kvm = virttype == "kvm";
        let arch = caps.arch.clone();
        let x86 = is_x86(&arch);
        let t = |n: &str| caps.has_type(n);

        let mut max_vcpus = machine.max_cpus;
        if kvm {
            if let Some(k) = host.kvm_max_vcpus {
                max_vcpus = max_vcpus.min(k);
            }
        }

        // <os>
        let fws: Vec<&crate::firmware::Firmware> = host
            .firmware
            .iter()
            .filter(|f| f.matches(&arch, &machine.name))
            .collect();
        let firmware = CapsEnum::new(
            "firmware",
            &[
                ("bios", fws.iter().any(|f| f.is_bios())),
                ("efi", fws.iter().any(|f| f.is_uefi())),
            ],
        );
        let mut loader_values = Vec::new();
        for f in fws.iter().filter(|f| f.is_uefi()) {
            if !loader_values.contains(&f.executable) {
                loader_values.push(f.executable.clone());
            }
        }
        let loader = CapsElement {
            name: "loader",
            supported: true,
            enums: vec![
                CapsEnum::new("type", &[("rom", true), ("pflash", true)]),
                CapsEnum::new("readonly", &[("yes", true), ("no", true)]),
                CapsEnum::new(
                    "secure",
                    &[("yes", fws.iter().any(|f| f.secure_boot)), ("no", true)],
                ),
            ],
        };

        // <cpu>
        let cpu = caps.cpu(kvm);
        // libvirt learns that `migratable` can be switched on from the
        // properties of QEMU's x86_64 `max` CPU type only, so an i386
        // emulator offers just `off`; `maximum` always offers both.
        let migratable_on = arch == "x86_64" && cpu.host_props.contains_key("migratable");
        let host_passthrough = (kvm && caps.kvm_cpu.is_some()).then(|| {
            CapsEnum::new(
                "hostPassthroughMigratable",
                &[("on", migratable_on), ("off", true)],
            )
        });
        let maximum = (!cpu.host_props.is_empty())
            .then(|| CapsEnum::new("maximumMigratable", &[("on", true), ("off", true)]));
        let custom = cpu
            .models
            .iter()
            .map(|m| CustomModel {
                name: m.name.clone(),
                usable: m.usable,
                vendor: m
                    .vendor
                    .as_deref()
                    .map(vendor_name)
                    .unwrap_or_else(|| "unknown".to_string()),
            })
            .collect();
        let cpu_caps = CpuCaps {
            host_passthrough,
            maximum,
            host_model: host_model(cpu),
            custom,
        };

        let memory_backing = CapsElement {
            name: "memoryBacking",
            supported: true,
            enums: vec![CapsEnum::new(
                "sourceType",
                &[
                    ("file", t("memory-backend-file")),
                    ("anonymous", true),
                    ("memfd", t("memory-backend-memfd")),
                ],
            )],
        };

        let transitional = t("virtio-blk-pci-transitional");
        let virtio_models = |name: &'static str, base: bool| {
            CapsEnum::new(
                name,
                &[
                    ("virtio", base),
                    ("virtio-transitional", base && transitional),
                    ("virtio-non-transitional", base && transitional),
                ],
            )
        };
        let pseries = arch.starts_with("ppc64") && machine.name.starts_with("pseries");
        let floppy = !pseries && t("isa-fdc");
        let disk = CapsElement {
            name: "disk",
            supported: true,
            enums: vec![
                CapsEnum::new(
                    "diskDevice",
                    &[
                        ("disk", true),
                        ("cdrom", true),
                        ("floppy", floppy),
                        ("lun", true),
                    ],
                ),
                CapsEnum::new(
                    "bus",
                    &[
                        ("ide", machine_has_builtin_ide(&arch, &machine.name)),
                        ("fdc", floppy),
                        ("scsi", true),
                        ("virtio", true),
                        ("usb", t("usb-storage")),
                        ("sata", t("ich9-ahci")),
                    ],
                ),
                virtio_models("model", true),
            ],
        };
        let graphics = CapsElement {
            name: "graphics",
            supported: true,
            enums: vec![CapsEnum::new(
                "type",
                &[
                    ("sdl", caps.has_flag("sdl")),
                    ("vnc", caps.has_command("query-vnc")),
                    ("spice", caps.has_command("query-spice")),
                    ("egl-headless", caps.has_flag("egl-headless")),
                    ("dbus", caps.has_flag("display-dbus")),
                ],
            )],
        };
        let video = CapsElement {
            name: "video",
            supported: true,
            enums: vec![CapsEnum::new(
                "modelType",
                &[
                    ("vga", t("VGA")),
                    ("cirrus", t("cirrus-vga")),
                    ("vmvga", t("vmware-svga")),
                    ("qxl", t("qxl-vga")),
                    (
                        "virtio",
                        t("virtio-gpu-pci") || t("virtio-gpu-ccw") || t("virtio-gpu-device"),
                    ),
                    ("none", true),
                    ("bochs", t("bochs-display")),
                    ("ramfb", t("ramfb")),
                ],
            )],
        };
        let vfio = host.vfio && t("vfio-pci");
        let hostdev = CapsElement {
            name: "hostdev",
            supported: true,
            enums: vec![
                CapsEnum::new("mode", &[("subsystem", true)]),
                CapsEnum::new(
                    "startupPolicy",
                    &[
                        ("default", true),
                        ("mandatory", true),
                        ("requisite", true),
                        ("optional", true),
                    ],
                ),
                CapsEnum::new(
                    "subsysType",
                    &[("usb", true), ("pci", true), ("scsi", t("scsi-generic"))],
                ),
                CapsEnum::new("capsType", &[]),
                CapsEnum::new("pciBackend", &[("default", vfio), ("vfio", vfio)]),
            ],
        };
        let rng = CapsElement {
            name: "rng",
            supported: true,
            enums: vec![
                virtio_models(
                    "model",
                    t("virtio-rng-pci") || t("virtio-rng-ccw") || t("virtio-rng-device"),
                ),
                CapsEnum::new(
                    "backendModel",
                    &[
                        ("random", t("rng-random")),
                        ("egd", t("rng-egd")),
                        ("builtin", t("rng-builtin")),
                    ],
                ),
            ],
        };
        let filesystem = CapsElement {
            name: "filesystem",
            supported: true,
            enums: vec![CapsEnum::new(
                "driverType",
                &[
                    ("path", true),
                    ("handle", true),
                    ("virtiofs", t("vhost-user-fs-device")),
                ],
            )],
        };
        let tpm_model = |m: &str| caps.tpm_models.iter().any(|x| x == m);
        let tpm_type = |m: &str| caps.tpm_types.iter().any(|x| x == m);
        let tpm = CapsElement {
            name: "tpm",
            supported: !caps.tpm_models.is_empty(),
            enums: vec![
                CapsEnum::new(
                    "model",
                    &[
                        ("tpm-tis", tpm_model("tpm-tis")),
                        ("tpm-crb", tpm_model("tpm-crb")),
                        ("tpm-spapr", tpm_model("tpm-spapr")),
                        ("spapr-tpm-proxy", t("spapr-tpm-proxy")),
                    ],
                ),
                CapsEnum::new(
                    "backendModel",
                    &[
                        ("passthrough", tpm_type("passthrough")),
                        ("emulator", tpm_type("emulator") && host.swtpm),
                    ],
                ),
            ],
        };
        let redirdev = CapsElement {
            name: "redirdev",
            supported: t("usb-redir"),
            enums: vec![CapsEnum::new("bus", &[("usb", t("usb-redir"))])],
        };
        let channel = CapsElement {
            name: "channel",
            supported: true,
            enums: vec![CapsEnum::new(
                "type",
                &[
                    ("pty", true),
                    ("unix", true),
                    ("spicevmc", caps.has_command("query-spice")),
                ],
            )],
        };
        let devices = vec![
            disk, graphics, video, hostdev, rng, filesystem, tpm, redirdev, channel,
        ];

        // <features>
        let arm = arch == "aarch64" || arch == "armv7l";
        let mut features = Vec::new();
        if arm && !caps.gic_versions.is_empty() {
            let versions: Vec<String> = caps.gic_versions.iter().map(u32::to_string).collect();
            features.push(Feature::Enums(CapsElement {
                name: "gic",
                supported: true,
                enums: vec![CapsEnum {
                    name: "version",
                    values: versions,
                }],
            }));
        } else {
            features.push(Feature::Flag("gic", false));
        }
        features.push(Feature::Flag("vmcoreinfo", t("vmcoreinfo")));
        features.push(Feature::Flag("genid", t("vmgenid")));
        features.push(Feature::Flag(
            "backingStoreInput",
            caps.has_command("blockdev-add"),
        ));
        features.push(Feature::Flag(
            "backup",
            caps.has_command("blockdev-backup") && caps.has_command("block-dirty-bitmap-merge"),
        ));
        match &caps.sev {
            Some(s) if t("sev-guest") => features.push(Feature::Sev {
                cbitpos: s.cbitpos,
                reduced_phys_bits: s.reduced_phys_bits,
            }),
            _ => features.push(Feature::Flag("sev", false)),
        }
        features.push(Feature::Flag("sgx", caps.sgx));
        match (&caps.kvm_cpu, x86) {
            (Some(k), true) => {
                let values: Vec<String> = HYPERV_FEATURES
                    .iter()
                    .filter(|f| {
                        let prop = format!("hv-{}", f.replace('_', "-"));
                        match k.host_props.get(&prop).map(String::as_str) {
                            Some("true") => true,
                            Some("false") | None => false,
                            Some(_) => true,
                        }
                    })
                    .map(|f| f.to_string())
                    .collect();
                features.push(Feature::Enums(CapsElement {
                    name: "hyperv",
                    supported: true,
                    enums: vec![CapsEnum {
                        name: "features",
                        values,
                    }],
                }));
            }
            _ => features.push(Feature::Flag("hyperv", false)),
        }

        Ok(DomainCaps {
            path: caps.binary.clone(),
            virttype: virttype.to_string(),
            machine: machine.name.clone(),
            arch,
            max_vcpus,
            iothreads: t("iothread"),
            firmware,
            loader_values,
            loader,
            cpu: cpu_caps,
            memory_backing,
            devices,
            features,
        })
    }

    /// The device element called `name`.
    pub fn device(&self, name: &str) -> Option<&CapsElement> {
        self.devices.iter().find(|d| d.name == name)
    }

    /// Formats the `<domainCapabilities>` document as libvirt does.
    pub fn format(&self) -> String {
        let mut o = String::with_capacity(8192);
        o.push_str("<domainCapabilities>\n");
        let _ = writeln!(o, "  <path>{}</path>", escape(&self.path.to_string_lossy()));
        let _ = writeln!(o, "  <domain>{}</domain>", self.virttype);
        let _ = writeln!(o, "  <machine>{}</machine>", escape(&self.machine));
        let _ = writeln!(o, "  <arch>{}</arch>", self.arch);
        let _ = writeln!(o, "  <vcpu max='{}'/>", self.max_vcpus);
        let _ = writeln!(o, "  <iothreads supported='{}'/>", yes_no(self.iothreads));
        o.push_str("  <os supported='yes'>\n");
        self.firmware.format(&mut o, 4);
        o.push_str("    <loader supported='yes'>\n");
        for v in &self.loader_values {
            let _ = writeln!(o, "      <value>{}</value>", escape(v));
        }
        for e in &self.loader.enums {
            e.format(&mut o, 6);
        }
        o.push_str("    </loader>\n  </os>\n");

        o.push_str("  <cpu>\n");
        for (name, m) in [
            ("host-passthrough", &self.cpu.host_passthrough),
            ("maximum", &self.cpu.maximum),
        ] {
            match m {
                None => {
                    let _ = writeln!(o, "    <mode name='{name}' supported='no'/>");
                }
                Some(e) if e.values.is_empty() => {
                    let _ = writeln!(o, "    <mode name='{name}' supported='yes'/>");
                }
                Some(e) => {
                    let _ = writeln!(o, "    <mode name='{name}' supported='yes'>");
                    e.format(&mut o, 6);
                    o.push_str("    </mode>\n");
                }
            }
        }
        match &self.cpu.host_model {
            None => o.push_str("    <mode name='host-model' supported='no'/>\n"),
            Some(h) => {
                o.push_str("    <mode name='host-model' supported='yes'>\n");
                let _ = writeln!(
                    o,
                    "      <model fallback='forbid'>{}</model>",
                    escape(&h.model)
                );
                if let Some(v) = &h.vendor {
                    let _ = writeln!(o, "      <vendor>{}</vendor>", escape(v));
                }
                for (policy, name) in &h.features {
                    let _ = writeln!(
                        o,
                        "      <feature policy='{policy}' name='{}'/>",
                        escape(name)
                    );
                }
                o.push_str("    </mode>\n");
            }
        }
        if self.cpu.custom.is_empty() {
            o.push_str("    <mode name='custom' supported='no'/>\n");
        } else {
            o.push_str("    <mode name='custom' supported='yes'>\n");
            for m in &self.cpu.custom {
                let usable = match m.usable {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "unknown",
                };
                let _ = writeln!(
                    o,
                    "      <model usable='{usable}' vendor='{}'>{}</model>",
                    escape(&m.vendor),
                    escape(&m.name)
                );
            }
            o.push_str("    </mode>\n");
        }
        o.push_str("  </cpu>\n");
        self.memory_backing.format(&mut o, 2);
        o.push_str("  <devices>\n");
        for d in &self.devices {
            d.format(&mut o, 4);
        }
        o.push_str("  </devices>\n  <features>\n");
        for f in &self.features {
            match f {
                Feature::Flag(name, on) => {
                    let _ = writeln!(o, "    <{name} supported='{}'/>", yes_no(*on));
                }
                Feature::Enums(e) => e.format(&mut o, 4),
                Feature::Sev {
                    cbitpos,
                    reduced_phys_bits,
                } => {
                    let _ = writeln!(
                        o,
                        "    <sev supported='yes'>\n      <cbitpos>{cbitpos}</cbitpos>\n      <reducedPhysBits>{reduced_phys_bits}</reducedPhysBits>\n    </sev>"
                    );
                }
            }
        }
        o.push_str("  </features>\n</domainCapabilities>\n");
        o
    }
}
