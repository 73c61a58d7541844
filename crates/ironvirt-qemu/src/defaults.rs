//! What the QEMU driver adds to a definition when it is defined, in
//! libvirt's order (measured against libvirt 9.0 with QEMU 7.2):
//!
//! 1. machine-level defaults: the NVRAM file of a `pflash` loader; for x86
//!    i440fx and q35 machines the PS/2 mouse and keyboard, USB controller
//!    0 (`piix3-uhci` on i440fx, `qemu-xhci` on q35), the q35 SATA
//!    controller, the PCI root (`pci-root` / `pcie-root`), a virtio memory
//!    balloon and an `<audio>` backend (`spice` with SPICE graphics,
//!    `none` with VNC or without graphics);
//! 2. the default CPU model of the machine type, and the CPU `check` /
//!    `migratable` defaults;
//! 3. per-device defaults: disk driver `qemu` and format `raw`, the
//!    interface model (`rtl8139`), USB and SCSI controller models, serial
//!    target types and models (`isa-serial`), QXL `vgamem`;
//! 4. the controllers every driver adds (disk controllers, virtio-serial,
//!    CCID), which the domain parser marks [`Controller::implicit`] — after
//!    the QEMU ones, as libvirt appends them later;
//! 5. addresses ([`crate::address`]).
//!
//! The domain parser (ironvirt-conf) applies libvirt's generic defaults
//! before: among them the video for graphics without one, with the model
//! libvirt's QEMU driver picks when the emulator has `cirrus-vga` (all
//! x86 builds of QEMU here); the primary video and a cleared `none` one.

use std::path::Path;

use ironvirt_conf::domain::toplevel::normalize_cpu;
use ironvirt_conf::{Content, Controller, DomainDef, Element, GenericDevice, Input};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};

use crate::address::{self, Machine};
use crate::qemucaps::{MachineType, QemuCaps};

fn elem(name: &str, attrs: &[(&str, &str)]) -> Element {
    Element {
        name: name.to_string(),
        namespaces: vec![],
        attrs: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        content: vec![],
    }
}

/// The machine families the defaults depend on.
pub fn machine_kind(name: &str) -> Machine {
    Machine {
        i440fx: name == "pc" || name.starts_with("pc-i440fx-") || name.starts_with("pc-0."),
        q35: name == "q35" || name.starts_with("pc-q35-"),
    }
}

fn has_controller(def: &DomainDef, ctype: &str, idx: u32) -> bool {
    def.devices
        .controllers
        .iter()
        .any(|c| c.ctype == ctype && c.index == idx)
}

fn feature_off(def: &DomainDef, name: &str) -> bool {
    def.features.as_ref().is_some_and(|f| {
        f.elements()
            .any(|e| e.name == name && e.attr("state") == Some("off"))
    })
}

fn maybe_add_input(def: &mut DomainDef, itype: &str, bus: &str) {
    if !def
        .devices
        .inputs
        .iter()
        .any(|i| i.input_type == itype && i.bus.as_deref() == Some(bus))
    {
        def.devices.inputs.push(Input {
            input_type: itype.into(),
            bus: Some(bus.into()),
            ..Default::default()
        });
    }
}

/// The USB controller model of a machine: `autoadded` for the one the
/// driver adds itself.
fn default_usb_model(qc: &QemuCaps, m: Machine, autoadded: bool) -> Option<&'static str> {
    if m.q35 && autoadded {
        if qc.has_type("qemu-xhci") {
            return Some("qemu-xhci");
        }
        if qc.has_type("nec-usb-xhci") {
            return Some("nec-xhci");
        }
    }
    if qc.has_type("piix3-usb-uhci") {
        return Some("piix3-uhci");
    }
    if qc.has_type("piix4-usb-uhci") {
        return Some("piix4-uhci");
    }
    if qc.has_type("usb-ehci") {
        return Some("ehci");
    }
    if qc.has_type("qemu-xhci") {
        return Some("qemu-xhci");
    }
    None
}

fn default_scsi_model(qc: &QemuCaps) -> Option<&'static str> {
    if qc.has_type("lsi53c895a") {
        Some("lsilogic")
    } else if qc.has_type("virtio-scsi-pci") {
        Some("virtio-scsi")
    } else {
        None
    }
}

fn default_net_model(qc: &QemuCaps) -> &'static str {
    if qc.has_type("rtl8139") {
        "rtl8139"
    } else if qc.has_type("e1000") {
        "e1000"
    } else if qc.has_type("virtio-net-pci") {
        "virtio"
    } else {
        "rtl8139"
    }
}

/// Sets an attribute when absent, keeping the attributes in `order`.
fn set_attr_ordered(attrs: &mut Vec<(String, String)>, name: &str, value: &str, order: &[&str]) {
    if attrs.iter().any(|(k, _)| k == name) {
        return;
    }
    attrs.push((name.to_string(), value.to_string()));
    let pos = |k: &str| order.iter().position(|a| *a == k).unwrap_or(usize::MAX);
    attrs.sort_by_key(|(k, _)| pos(k));
}

const VIDEO_MODEL_ATTRS: &[&str] = &[
    "ram", "vram", "vram64", "vgamem", "heads", "primary", "blob",
];

/// libvirt's `<audio>` default: the backend of the last graphics device
/// that has one, `none` without graphics; none at all when the last such
/// graphics device would pass host audio through (SDL), or when only
/// graphics without audio exist.
fn add_default_audio(def: &mut DomainDef) {
    if !def.devices.audios.is_empty() {
        return;
    }
    let mut add: Option<Option<&str>> = None;
    for g in &def.devices.graphics {
        match g.gtype.as_str() {
            "vnc" => add = Some(Some("none")),
            "spice" => add = Some(Some("spice")),
            // Passes the host's audio through, which needs the daemon's
            // QEMU_AUDIO_DRV: no backend is recorded.
            "sdl" => add = Some(None),
            _ => {}
        }
    }
    if def.devices.graphics.is_empty() {
        add = Some(Some("none"));
    }
    if let Some(Some(t)) = add {
        def.devices.audios.push(GenericDevice {
            elem: elem("audio", &[("id", "1"), ("type", t)]),
            info: Default::default(),
        });
    }
}

fn add_default_devices(def: &mut DomainDef, qc: &QemuCaps, m: Machine) -> Result<()> {
    let x86 = matches!(def.os.arch.as_deref(), Some("x86_64" | "i686"));
    if !x86 {
        return Ok(());
    }
    let machine = def.os.machine.clone().unwrap_or_default();
    if machine == "isapc" || machine.starts_with("microvm") {
        return Ok(());
    }
    if !feature_off(def, "ps2") {
        maybe_add_input(def, "mouse", "ps2");
        maybe_add_input(def, "keyboard", "ps2");
    }
    if !has_controller(def, "usb", 0) {
        let model = if m.q35 {
            default_usb_model(qc, m, true)
        } else {
            None
        };
        let mut c = Controller::implicit("usb", 0);
        c.model = model.map(str::to_string);
        def.devices.controllers.push(c);
    }
    if m.q35 && !has_controller(def, "sata", 0) {
        def.devices
            .controllers
            .push(Controller::implicit("sata", 0));
    }
    let root = if m.q35 {
        Some("pcie-root")
    } else if m.i440fx {
        Some("pci-root")
    } else {
        None
    };
    if let Some(root) = root {
        match def
            .devices
            .controllers
            .iter()
            .find(|c| c.ctype == "pci" && c.index == 0)
        {
            Some(c) if c.model.as_deref() != Some(root) => {
                return Err(Error::new(
                    ErrorDomain::DOMAIN,
                    ErrorNumber::XML_ERROR,
                    format!(
                        "The PCI controller with index='0' must be model='{root}' for this machine type, but model='{}' was found instead",
                        c.model.as_deref().unwrap_or("")
                    ),
                ));
            }
            Some(_) => {}
            None => {
                let mut c = Controller::implicit("pci", 0);
                c.model = Some(root.into());
                def.devices.controllers.push(c);
            }
        }
    }
    if def.devices.memballoon.is_none() {
        def.devices.memballoon = Some(GenericDevice {
            elem: elem("memballoon", &[("model", "virtio")]),
            info: Default::default(),
        });
    }
    add_default_audio(def);
    Ok(())
}

fn set_default_cpu(def: &mut DomainDef, qc: &QemuCaps, mt: &MachineType) -> Result<()> {
    let x86 = qc.arch == "x86_64" || qc.arch == "i686";
    if !x86 {
        return Ok(());
    }
    let has_model = |c: &Element| c.elements().any(|e| e.name == "model");
    if let Some(c) = &def.cpu {
        if c.attr("mode").unwrap_or("custom") != "custom" || has_model(c) {
            return Ok(());
        }
    }
    let suffix = format!("-{}-cpu", crate::qemucaps::qemu_target_for_arch(&qc.arch));
    let Some(model) = mt
        .default_cpu_type
        .as_deref()
        .and_then(|t| t.strip_suffix(&suffix))
    else {
        return Ok(());
    };
    let cpu = def.cpu.get_or_insert_with(|| elem("cpu", &[]));
    if model == "host" {
        if def.virt_type != "kvm" {
            return Err(Error::new(
                ErrorDomain::QEMU,
                ErrorNumber::INTERNAL_ERROR,
                "QEMU reports invalid default CPU model \"host\" for non-kvm domain virt type",
            ));
        }
        cpu.attrs.retain(|(k, _)| k != "mode");
        cpu.attrs.push(("mode".into(), "host-passthrough".into()));
    } else {
        cpu.attrs
            .retain(|(k, _)| !matches!(k.as_str(), "mode" | "match" | "check"));
        cpu.attrs.push(("mode".into(), "custom".into()));
        cpu.attrs.push(("match".into(), "exact".into()));
        cpu.attrs.push(("check".into(), "none".into()));
        let mut m = elem("model", &[("fallback", "forbid")]);
        m.content.push(Content::Text(model.to_string()));
        cpu.content.insert(0, Content::Elem(m));
    }
    normalize_cpu(cpu)?;
    Ok(())
}

/// The CPU `check` and `migratable` defaults.
fn cpu_post_parse(def: &mut DomainDef, qc: &QemuCaps) -> Result<()> {
    let virt = def.virt_type.clone();
    let Some(cpu) = &mut def.cpu else {
        return Ok(());
    };
    let mode = cpu.attr("mode").unwrap_or("custom").to_string();
    if mode == "host-passthrough" && cpu.attr("migratable").is_none() {
        let migratable = [true, false]
            .iter()
            .any(|kvm| qc.cpu(*kvm).host_props.contains_key("migratable"));
        if migratable {
            cpu.attrs.push(("migratable".into(), "on".into()));
        } else if qc.arch == "x86_64" || qc.arch == "i686" {
            cpu.attrs.push(("migratable".into(), "off".into()));
        }
    }
    let has_model = cpu.elements().any(|e| e.name == "model");
    if (has_model || mode != "custom") && cpu.attr("check").is_none() {
        let check = match mode.as_str() {
            "host-passthrough" | "maximum" => Some("none"),
            "host-model" => Some("partial"),
            "custom" if virt == "qemu" => Some("none"),
            "custom" => Some("partial"),
            _ => None,
        };
        if let Some(c) = check {
            cpu.attrs.push(("check".into(), c.into()));
        }
    }
    normalize_cpu(cpu)
}

/// Per-device defaults (libvirt's QEMU device post-parse callback).
fn device_post_parse(def: &mut DomainDef, qc: &QemuCaps, m: Machine) -> Result<()> {
    let x86 = matches!(def.os.arch.as_deref(), Some("x86_64" | "i686"));
    let d = &mut def.devices;
    for disk in &mut d.disks {
        let drv = disk.driver.get_or_insert_with(|| elem("driver", &[]));
        if drv.attr("name").is_none() {
            drv.attrs.insert(0, ("name".into(), "qemu".into()));
        }
        if drv.attr("type").is_none() && disk.disk_type != "volume" {
            let pos = drv
                .attrs
                .iter()
                .position(|(k, _)| k == "name")
                .map_or(0, |p| p + 1);
            drv.attrs.insert(pos, ("type".into(), "raw".into()));
        }
    }
    for n in &mut d.interfaces {
        if n.model.is_none() {
            match n.iface_type.as_str() {
                "vdpa" | "vhostuser" => n.model = Some("virtio".into()),
                "hostdev" => {}
                _ => n.model = Some(default_net_model(qc).into()),
            }
        }
    }
    for v in &mut d.videos {
        if v.model == "qxl" {
            set_attr_ordered(&mut v.model_attrs, "vgamem", "16384", VIDEO_MODEL_ATTRS);
        }
    }
    controllers_post_parse(&mut d.controllers, qc, m)?;
    if x86 {
        for s in &mut d.serials {
            if s.target_type.is_none() {
                s.target_type = Some("isa-serial".into());
            }
            let model = match s.target_type.as_deref() {
                Some("isa-serial") => Some("isa-serial"),
                Some("usb-serial") => Some("usb-serial"),
                Some("pci-serial") => Some("pci-serial"),
                Some("isa-debug") => Some("isa-debugcon"),
                _ => None,
            };
            if let Some(model) = model {
                if !s.target_extra.elements().any(|e| e.name == "model") {
                    s.target_extra
                        .content
                        .push(Content::Elem(elem("model", &[("name", model)])));
                }
            }
        }
    }
    for s in &mut d.shmems {
        let model = s
            .elem
            .elements()
            .find(|e| e.name == "model")
            .and_then(|m| m.attr("type"))
            .unwrap_or("ivshmem");
        if model != "ivshmem-doorbell" && !s.elem.elements().any(|e| e.name == "size") {
            let mut size = elem("size", &[("unit", "M")]);
            size.content.push(Content::Text("4".into()));
            let at = s
                .elem
                .content
                .iter()
                .position(|c| matches!(c, Content::Elem(e) if e.name != "model"))
                .unwrap_or(s.elem.content.len());
            s.elem.content.insert(at, Content::Elem(size));
        }
    }
    if let Some(v) = &mut d.vsock {
        if v.elem.attr("model").is_none() {
            v.elem.attrs.insert(0, ("model".into(), "virtio".into()));
        }
    }
    if x86 {
        for p in &mut d.panics {
            if p.elem.attr("model").is_none() {
                p.elem.attrs.insert(0, ("model".into(), "isa".into()));
            }
        }
    }
    Ok(())
}

fn controllers_post_parse(ctrls: &mut [Controller], qc: &QemuCaps, m: Machine) -> Result<()> {
    for c in ctrls {
        match c.ctype.as_str() {
            "scsi" => {
                if matches!(c.model.as_deref(), None | Some("auto")) {
                    c.model = Some(
                        default_scsi_model(qc)
                            .ok_or_else(|| {
                                Error::new(
                                    ErrorDomain::QEMU,
                                    ErrorNumber::INTERNAL_ERROR,
                                    format!(
                                        "Unable to determine model for SCSI controller idx={}",
                                        c.index
                                    ),
                                )
                            })?
                            .into(),
                    );
                }
            }
            "usb" => {
                if c.model.is_none() {
                    c.model = default_usb_model(qc, m, false).map(str::to_string);
                }
                if c.model.as_deref() == Some("none") {
                    c.info.address = None;
                }
                if matches!(c.model.as_deref(), Some("qusb1" | "qusb2")) {
                    return Err(Error::new(
                        ErrorDomain::QEMU,
                        ErrorNumber::CONFIG_UNSUPPORTED,
                        "USB controller model type 'qusb1' or 'qusb2' is not supported in kvm",
                    ));
                }
            }
            "pci"
                if matches!(c.model.as_deref(), Some("pci-root" | "pcie-root")) && c.index != 0 =>
            {
                return Err(Error::new(
                    ErrorDomain::QEMU,
                    ErrorNumber::XML_ERROR,
                    "pci-root and pcie-root controllers should have index 0",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Fills in the NVRAM file of a read-only `pflash` loader.
fn nvram_default(def: &mut DomainDef, nvram_dir: &Path) {
    let Some(l) = &def.os.loader else {
        return;
    };
    if l.loader_type.as_deref() != Some("pflash")
        || l.readonly != Some(true)
        || l.stateless == Some(true)
    {
        return;
    }
    let nv = def.os.nvram.get_or_insert_with(Default::default);
    if nv.path.is_none() {
        nv.path = Some(
            nvram_dir
                .join(format!("{}_VARS.fd", def.name))
                .to_string_lossy()
                .into_owned(),
        );
    }
}

/// Applies the QEMU driver's define-time defaults to `def`, whose
/// emulator, architecture and (canonical) machine type are already set.
/// The controllers the domain parser added ([`Controller::implicit`]) are
/// moved after the QEMU driver's own, where libvirt adds them.
pub fn apply(def: &mut DomainDef, qc: &QemuCaps, mt: &MachineType, nvram_dir: &Path) -> Result<()> {
    let m = machine_kind(&mt.name);
    let (implicit, explicit): (Vec<Controller>, Vec<Controller>) =
        std::mem::take(&mut def.devices.controllers)
            .into_iter()
            .partition(|c| c.implicit);
    def.devices.controllers = explicit;
    nvram_default(def, nvram_dir);
    add_default_devices(def, qc, m)?;
    set_default_cpu(def, qc, mt)?;
    cpu_post_parse(def, qc)?;
    device_post_parse(def, qc, m)?;
    for c in implicit {
        if !has_controller(def, &c.ctype, c.index) {
            def.devices.controllers.push(c);
        }
    }
    controllers_post_parse(&mut def.devices.controllers, qc, m)?;
    let x86 = matches!(def.os.arch.as_deref(), Some("x86_64" | "i686"));
    if x86 && (m.i440fx || m.q35) {
        address::assign(def, qc, m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_kinds() {
        assert!(machine_kind("pc-i440fx-7.2").i440fx);
        assert!(machine_kind("pc-q35-7.2").q35);
        assert!(!machine_kind("isapc").i440fx && !machine_kind("isapc").q35);
    }
}
