//! `QemuCaps`: what one emulator binary can do, distilled from its QMP
//! replies ([`RawProbe`]). It is what the capabilities cache stores, one per
//! binary, and what host and domain capabilities are built from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::probe::RawProbe;

/// One machine type (`query-machines`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MachineType {
    /// Canonical name (`pc-i440fx-7.2`).
    pub name: String,
    /// Short alias (`pc`), if any.
    pub alias: Option<String>,
    /// Maximum number of vCPUs.
    pub max_cpus: u32,
    /// Whether it is QEMU's default machine.
    pub default: bool,
    /// Whether QEMU marks it deprecated.
    pub deprecated: bool,
    /// Whether vCPUs can be hot-plugged.
    pub hotplug_cpus: bool,
    /// QOM type of its default CPU (`qemu64-x86_64-cpu`).
    pub default_cpu_type: Option<String>,
}

/// A named CPU model (`query-cpu-definitions`) under one accelerator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CpuModel {
    /// Model name.
    pub name: String,
    /// Whether the accelerator can run it on this host (None: unknown).
    pub usable: Option<bool>,
    /// Whether QEMU marks it deprecated.
    pub deprecated: bool,
    /// Vendor string from its static expansion (`GenuineIntel`, ...).
    pub vendor: Option<String>,
    /// Features its static expansion turns on.
    pub features: BTreeSet<String>,
}

/// The CPU QEMU offers under one accelerator: named models and the
/// expansion of `host` (KVM) or `max` (TCG).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct AccelCpu {
    /// Named models, in QEMU's order, versioned names left out.
    pub models: Vec<CpuModel>,
    /// Vendor of the host/max CPU.
    pub host_vendor: Option<String>,
    /// Features on in the static expansion of host/max.
    pub host_features: BTreeSet<String>,
    /// Properties of the full expansion of host/max (name -> value as text).
    pub host_props: BTreeMap<String, String>,
}

/// SEV capabilities (`query-sev-capabilities`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SevCaps {
    /// C-bit position.
    pub cbitpos: u32,
    /// Reduction of physical address bits.
    pub reduced_phys_bits: u32,
}

/// What one emulator binary can do.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QemuCaps {
    /// The binary.
    pub binary: PathBuf,
    /// Guest architecture in libvirt's naming (`x86_64`, `i686`, ...).
    pub arch: String,
    /// QEMU version as major*1e6 + minor*1e3 + micro.
    pub version: u64,
    /// Distribution package string.
    pub package: String,
    /// Whether KVM was usable and enabled when probed.
    pub kvm: bool,
    /// Machine types, QEMU's default first, `none` left out.
    pub machines: Vec<MachineType>,
    /// QOM types (devices, objects, ...).
    pub qom_types: BTreeSet<String>,
    /// QMP commands.
    pub commands: BTreeSet<String>,
    /// Capabilities derived from the QAPI schema and command-line options.
    pub flags: BTreeSet<String>,
    /// Properties of the devices in [`crate::probe::PROBED_DEVICES`].
    pub device_props: BTreeMap<String, BTreeSet<String>>,
    /// CPU under KVM, if probed with KVM.
    pub kvm_cpu: Option<AccelCpu>,
    /// CPU under TCG.
    pub tcg_cpu: AccelCpu,
    /// TPM device models.
    pub tpm_models: Vec<String>,
    /// TPM backend types.
    pub tpm_types: Vec<String>,
    /// SEV, if the host has it.
    pub sev: Option<SevCaps>,
    /// Whether SGX is available.
    pub sgx: bool,
    /// GIC versions (ARM only).
    pub gic_versions: Vec<u32>,
}

/// Whether a CPU model name is a plain named model: not `host`, `max`,
/// `base`, nor a versioned name (`Skylake-Client-v2`).
pub fn is_plain_cpu_model(name: &str) -> bool {
    if matches!(name, "host" | "max" | "base") {
        return false;
    }
    match name.rsplit_once("-v") {
        Some((_, v)) => v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()),
        None => true,
    }
}

/// libvirt's architecture name for QEMU's target name.
pub fn arch_from_qemu(target: &str) -> String {
    match target {
        "i386" => "i686",
        "arm" => "armv7l",
        other => other,
    }
    .to_string()
}

/// The QEMU target name (`qemu-system-<name>`) for libvirt's architecture name.
pub fn qemu_target_for_arch(arch: &str) -> &str {
    match arch {
        "i686" | "i586" | "i486" | "i386" => "i386",
        "armv7l" | "armv6l" => "arm",
        "ppc64le" => "ppc64",
        other => other,
    }
}

fn bad(binary: &std::path::Path, what: &str) -> Error {
    Error::new(
        ErrorDomain::QEMU,
        ErrorNumber::INTERNAL_ERROR,
        format!(
            "binary {}: missing or malformed QMP reply to {what}",
            binary.display()
        ),
    )
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn true_features(props: &serde_json::Map<String, Value>) -> BTreeSet<String> {
    props
        .iter()
        .filter(|(_, v)| v.as_bool() == Some(true))
        .map(|(k, _)| k.clone())
        .collect()
}

/// Finds a type of the QAPI schema by name.
fn schema_type<'a>(schema: &'a [Value], name: &str) -> Option<&'a Value> {
    schema
        .iter()
        .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
}

/// Whether the return type of `command` is a union with a variant `case`.
fn schema_ret_has_variant(schema: &[Value], command: &str, case: &str) -> bool {
    let Some(cmd) = schema_type(schema, command) else {
        return false;
    };
    let Some(ret) = cmd.get("ret-type").and_then(Value::as_str) else {
        return false;
    };
    let Some(ty) = schema_type(schema, ret) else {
        return false;
    };
    ty.get("variants")
        .and_then(Value::as_array)
        .is_some_and(|vs| {
            vs.iter()
                .any(|v| v.get("case").and_then(Value::as_str) == Some(case))
        })
}

impl QemuCaps {
    /// Distils the replies of a probe.
    pub fn from_raw(raw: &RawProbe) -> Result<QemuCaps> {
        let bin = &raw.binary;
        let main = raw.accels.first().map(String::as_str).unwrap_or("tcg");
        let q = |cmd: &str| raw.ret(&format!("{main}/{cmd}"));

        let ver = q("query-version")
            .or_else(|| raw.greeting.pointer("/QMP/version"))
            .ok_or_else(|| bad(bin, "query-version"))?;
        let num = |k: &str| ver.pointer(&format!("/qemu/{k}")).and_then(Value::as_u64);
        let (Some(major), Some(minor), Some(micro)) = (num("major"), num("minor"), num("micro"))
        else {
            return Err(bad(bin, "query-version"));
        };
        let version = major * 1_000_000 + minor * 1_000 + micro;
        let package = ver
            .get("package")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();

        let arch = q("query-target")
            .and_then(|t| t.get("arch"))
            .and_then(Value::as_str)
            .map(arch_from_qemu)
            .or_else(|| {
                let name = bin.file_name()?.to_str()?;
                Some(arch_from_qemu(name.strip_prefix("qemu-system-")?))
            })
            .ok_or_else(|| bad(bin, "query-target"))?;

        let mut machines = Vec::new();
        for m in q("query-machines")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(bin, "query-machines"))?
        {
            let Some(name) = m.get("name").and_then(Value::as_str) else {
                continue;
            };
            if name == "none" {
                continue;
            }
            let mt = MachineType {
                name: name.to_string(),
                alias: m.get("alias").and_then(Value::as_str).map(str::to_string),
                max_cpus: m.get("cpu-max").and_then(Value::as_u64).unwrap_or(1) as u32,
                default: m
                    .get("is-default")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                deprecated: m
                    .get("deprecated")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                hotplug_cpus: m
                    .get("hotpluggable-cpus")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                default_cpu_type: m
                    .get("default-cpu-type")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            };
            if mt.default {
                machines.insert(0, mt);
            } else {
                machines.push(mt);
            }
        }

        let kvm = main == "kvm"
            && q("query-kvm")
                .and_then(|k| k.get("enabled"))
                .and_then(Value::as_bool)
                .unwrap_or(false);

        let qom_types: BTreeSet<String> = q("qom-list-types")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(bin, "qom-list-types"))?
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();
        let commands: BTreeSet<String> = q("query-commands")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(bin, "query-commands"))?
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .map(str::to_string)
            .collect();

        let mut flags = BTreeSet::new();
        if let Some(schema) = q("query-qmp-schema").and_then(Value::as_array) {
            for (case, flag) in [
                ("sdl", "sdl"),
                ("egl-headless", "egl-headless"),
                ("dbus", "display-dbus"),
            ] {
                if schema_ret_has_variant(schema, "query-display-options", case) {
                    flags.insert(flag.to_string());
                }
            }
        }
        if let Some(opts) = q("query-command-line-options").and_then(Value::as_array) {
            for o in opts {
                if let Some(opt) = o.get("option").and_then(Value::as_str) {
                    flags.insert(format!("cmdline:{opt}"));
                }
            }
        }

        let mut device_props = BTreeMap::new();
        for dev in crate::probe::PROBED_DEVICES {
            if let Some(list) =
                q(&format!("device-list-properties/{dev}")).and_then(Value::as_array)
            {
                let names = list
                    .iter()
                    .filter_map(|p| p.get("name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect();
                device_props.insert(dev.to_string(), names);
            }
        }

        let accel_cpu = |accel: &str| -> Option<AccelCpu> {
            let defs = raw
                .ret(&format!("{accel}/query-cpu-definitions"))?
                .as_array()?;
            let host = if accel == "kvm" { "host" } else { "max" };
            let mut cpu = AccelCpu::default();
            for d in defs {
                let Some(name) = d.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if !is_plain_cpu_model(name) {
                    continue;
                }
                let expansion = raw
                    .ret(&format!("{accel}/query-cpu-model-expansion/static/{name}"))
                    .or_else(|| raw.ret(&format!("tcg/query-cpu-model-expansion/static/{name}")))
                    .and_then(|r| r.pointer("/model/props"))
                    .and_then(Value::as_object);
                cpu.models.push(CpuModel {
                    name: name.to_string(),
                    usable: d
                        .get("unavailable-features")
                        .and_then(Value::as_array)
                        .map(|u| u.is_empty()),
                    deprecated: d
                        .get("deprecated")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    vendor: expansion
                        .and_then(|p| p.get("vendor"))
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    features: expansion.map(true_features).unwrap_or_default(),
                });
            }
            if let Some(p) = raw
                .ret(&format!("{accel}/query-cpu-model-expansion/static/{host}"))
                .and_then(|r| r.pointer("/model/props"))
                .and_then(Value::as_object)
            {
                cpu.host_vendor = p.get("vendor").and_then(Value::as_str).map(str::to_string);
                cpu.host_features = true_features(p);
            }
            if let Some(p) = raw
                .ret(&format!("{accel}/query-cpu-model-expansion/full/{host}"))
                .and_then(|r| r.pointer("/model/props"))
                .and_then(Value::as_object)
            {
                cpu.host_props = p
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string()),
                        )
                    })
                    .collect();
            }
            Some(cpu)
        };
        let mut kvm_cpu = if raw.accels.iter().any(|a| a == "kvm") {
            accel_cpu("kvm")
        } else {
            None
        };
        let tcg_cpu = accel_cpu("tcg").unwrap_or_default();
        // KVM reports the host's vendor for every model; a model's own vendor
        // is what TCG reports.
        if let Some(k) = kvm_cpu.as_mut() {
            for m in &mut k.models {
                m.vendor = tcg_cpu
                    .models
                    .iter()
                    .find(|t| t.name == m.name)
                    .and_then(|t| t.vendor.clone());
            }
        }

        let sev = q("query-sev-capabilities").and_then(|s| {
            Some(SevCaps {
                cbitpos: s.get("cbitpos")?.as_u64()? as u32,
                reduced_phys_bits: s.get("reduced-phys-bits")?.as_u64()? as u32,
            })
        });
        let gic_versions = q("query-gic-capabilities")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|g| {
                        g.get("kernel").and_then(Value::as_bool) == Some(true)
                            || g.get("emulated").and_then(Value::as_bool) == Some(true)
                    })
                    .filter_map(|g| g.get("version").and_then(Value::as_u64).map(|v| v as u32))
                    .collect()
            })
            .unwrap_or_default();

        Ok(QemuCaps {
            binary: bin.clone(),
            arch,
            version,
            package,
            kvm,
            machines,
            qom_types,
            commands,
            flags,
            device_props,
            kvm_cpu,
            tcg_cpu,
            tpm_models: str_list(q("query-tpm-models")),
            tpm_types: str_list(q("query-tpm-types")),
            sev,
            sgx: q("query-sgx-capabilities").is_some(),
            gic_versions,
        })
    }

    /// Whether the binary knows a QOM type.
    pub fn has_type(&self, name: &str) -> bool {
        self.qom_types.contains(name)
    }

    /// Whether the binary has a QMP command.
    pub fn has_command(&self, name: &str) -> bool {
        self.commands.contains(name)
    }

    /// Whether a derived capability flag is set.
    pub fn has_flag(&self, name: &str) -> bool {
        self.flags.contains(name)
    }

    /// QEMU's default machine type.
    pub fn default_machine(&self) -> Option<&MachineType> {
        self.machines
            .iter()
            .find(|m| m.default)
            .or(self.machines.first())
    }

    /// Resolves a machine name or alias to its machine type.
    pub fn machine(&self, name: &str) -> Option<&MachineType> {
        self.machines.iter().find(|m| m.name == name).or_else(|| {
            self.machines
                .iter()
                .find(|m| m.alias.as_deref() == Some(name))
        })
    }

    /// The CPU data of an accelerator (`kvm` or anything else for TCG).
    pub fn cpu(&self, kvm: bool) -> &AccelCpu {
        match (kvm, &self.kvm_cpu) {
            (true, Some(c)) => c,
            _ => &self.tcg_cpu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_cpu_model_names() {
        assert!(is_plain_cpu_model("Skylake-Client"));
        assert!(is_plain_cpu_model("Skylake-Client-IBRS"));
        assert!(is_plain_cpu_model("486"));
        assert!(!is_plain_cpu_model("Skylake-Client-v2"));
        assert!(!is_plain_cpu_model("host"));
        assert!(!is_plain_cpu_model("486-v1"));
    }

    #[test]
    fn arch_names() {
        assert_eq!(arch_from_qemu("i386"), "i686");
        assert_eq!(qemu_target_for_arch("i686"), "i386");
        assert_eq!(qemu_target_for_arch("x86_64"), "x86_64");
    }
}
