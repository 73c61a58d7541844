//! Checks a domain definition against domain capabilities: what the
//! emulator, machine type and virt type cannot provide is refused with
//! `VIR_ERR_CONFIG_UNSUPPORTED`, naming what and why.

use ironvirt_conf::DomainDef;
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};

use crate::domcaps::DomainCaps;

fn unsupported(caps: &DomainCaps, what: String) -> Error {
    Error::new(
        ErrorDomain::QEMU,
        ErrorNumber::CONFIG_UNSUPPORTED,
        format!(
            "{what} is not supported by emulator '{}' for machine '{}', arch '{}', virt type '{}'",
            caps.path.display(),
            caps.machine,
            caps.arch,
            caps.virttype
        ),
    )
}

fn check_enum(caps: &DomainCaps, device: &str, name: &str, value: &str, what: &str) -> Result<()> {
    match caps.device(device) {
        Some(d) if !d.supported => Err(unsupported(
            caps,
            format!("{device} devices are not supported: {what} '{value}'"),
        )),
        Some(d) => match d.get(name) {
            Some(e) if !e.has(value) => Err(unsupported(caps, format!("{what} '{value}'"))),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// Checks `def` against `caps`.
pub fn check(def: &DomainDef, caps: &DomainCaps) -> Result<()> {
    if def.virt_type != caps.virttype {
        return Err(unsupported(caps, format!("virt type '{}'", def.virt_type)));
    }
    if def.vcpus > caps.max_vcpus {
        return Err(Error::new(
            ErrorDomain::QEMU,
            ErrorNumber::CONFIG_UNSUPPORTED,
            format!(
                "Maximum CPUs greater than specified machine type limit {}",
                caps.max_vcpus
            ),
        ));
    }
    if let Some(fw) = &def.os.firmware {
        if !caps.firmware.has(fw) {
            return Err(unsupported(
                caps,
                format!("firmware '{fw}' (no matching firmware descriptor was found)"),
            ));
        }
    }
    if let Some(t) = def
        .os
        .loader
        .as_ref()
        .and_then(|l| l.loader_type.as_deref())
    {
        if caps.loader.get("type").is_some_and(|e| !e.has(t)) {
            return Err(unsupported(caps, format!("loader type '{t}'")));
        }
    }
    if def.os.loader.as_ref().and_then(|l| l.secure) == Some(true)
        && caps.loader.get("secure").is_some_and(|e| !e.has("yes"))
    {
        return Err(unsupported(
            caps,
            "secure boot loader (no firmware supports Secure Boot)".to_string(),
        ));
    }
    for d in &def.devices.disks {
        if !d.device.is_empty() {
            check_enum(caps, "disk", "diskDevice", &d.device, "disk device")?;
        }
        if let Some(bus) = &d.target_bus {
            check_enum(caps, "disk", "bus", bus, "disk bus")?;
        }
    }
    for (i, v) in def.devices.videos.iter().enumerate() {
        if !v.model.is_empty() {
            check_enum(caps, "video", "modelType", &v.model, "video model")?;
        }
        if i > 0 && v.model != "qxl" && v.model != "virtio" {
            return Err(Error::new(
                ErrorDomain::QEMU,
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!(
                    "video type '{}' is only valid as primary video device",
                    v.model
                ),
            ));
        }
    }
    for g in &def.devices.graphics {
        check_enum(caps, "graphics", "type", &g.gtype, "graphics type")?;
    }
    for r in &def.devices.rngs {
        if let Some(m) = r.elem.attr("model") {
            check_enum(caps, "rng", "model", m, "rng model")?;
        }
    }
    for t in &def.devices.tpms {
        if let Some(m) = t.elem.attr("model") {
            check_enum(caps, "tpm", "model", m, "TPM model")?;
        }
        let backend = t.elem.elements().find(|e| e.name == "backend");
        if let Some(b) = backend.and_then(|b| b.attr("type")) {
            let offered = caps
                .device("tpm")
                .and_then(|d| d.get("backendModel"))
                .is_none_or(|e| e.has(b));
            if !offered && b == "emulator" {
                // The emulator backend needs swtpm; libvirt words this as
                // the TPM version being unsupported.
                let version = backend.and_then(|b| b.attr("version")).unwrap_or(
                    match (t.elem.attr("model"), caps.arch.as_str()) {
                        (None | Some("tpm-tis"), "x86_64" | "i686") => "1.2",
                        _ => "2.0",
                    },
                );
                return Err(Error::new(
                    ErrorDomain::QEMU,
                    ErrorNumber::CONFIG_UNSUPPORTED,
                    format!("TPM version '{version}' is not supported"),
                ));
            }
            if !offered {
                return Err(unsupported(caps, format!("TPM backend '{b}'")));
            }
        }
    }
    for r in &def.devices.redirdevs {
        if let Some(b) = r.elem.attr("bus") {
            check_enum(caps, "redirdev", "bus", b, "redirdev bus")?;
        }
    }
    if let Some(cpu) = &def.cpu {
        let mode = cpu.attr("mode").unwrap_or("custom");
        let supported = match mode {
            "host-passthrough" => caps.cpu.host_passthrough.is_some(),
            "maximum" => caps.cpu.maximum.is_some(),
            "host-model" => caps.cpu.host_model.is_some(),
            "custom" => true,
            _ => false,
        };
        if !supported {
            return Err(unsupported(caps, format!("CPU mode '{mode}'")));
        }
        if mode == "custom" && !caps.cpu.custom.is_empty() {
            let model = cpu.elements().find(|m| m.name == "model").map(|m| {
                m.content
                    .iter()
                    .filter_map(|c| match c {
                        ironvirt_conf::Content::Text(t) => Some(t.trim().to_string()),
                        _ => None,
                    })
                    .collect::<String>()
            });
            if let Some(model) = model.filter(|m| !m.is_empty()) {
                if !caps.cpu.custom.iter().any(|c| c.name == model) {
                    return Err(unsupported(caps, format!("CPU model '{model}'")));
                }
            }
        }
    }
    Ok(())
}
