//! QEMU's command line from a domain definition, as libvirt 9.0 builds it
//! for QEMU 7.2: `-blockdev` for disks, JSON `-device`/`-object`/`-netdev`
//! arguments, the QMP monitor on a unix socket, `-S` so the guest starts
//! paused until the driver says `cont`.
//!
//! The order of options and of the properties inside each JSON argument is
//! libvirt's (measured with `virsh domxml-to-native qemu-argv` on the
//! reference libvirtd), so the two command lines can be compared option by
//! option. What is not supported yet is refused with
//! `VIR_ERR_CONFIG_UNSUPPORTED` naming the device, never silently dropped.
//!
//! [`assign_aliases`] gives every device the alias libvirt gives it when a
//! domain starts (`virtio-disk0`, `net0`, `pci.1`, ...): the command line
//! uses the aliases as QEMU ids and the live XML shows them.

use std::path::{Path, PathBuf};

use ironvirt_conf::{Address, Chardev, Content, DomainDef, Element};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};

const DOM: ErrorDomain = ErrorDomain::QEMU;

fn unsupported(msg: impl Into<String>) -> Error {
    Error::new(DOM, ErrorNumber::CONFIG_UNSUPPORTED, msg)
}

/// Where a guest's runtime files go.
#[derive(Clone, Debug)]
pub struct CmdPaths {
    /// The per-guest private directory (libvirt's
    /// `/var/lib/libvirt/qemu/domain-ID-NAME`): `HOME` of the process, the
    /// master key and the monitor socket.
    pub domain_dir: PathBuf,
    /// Directory for unix channels without a path (libvirt's
    /// `/var/lib/libvirt/qemu/channel/target/domain-ID-NAME`).
    pub channel_dir: PathBuf,
}

impl CmdPaths {
    /// The QMP monitor socket.
    pub fn monitor(&self) -> PathBuf {
        self.domain_dir.join("monitor.sock")
    }

    /// The master key file (`-object secret`).
    pub fn master_key(&self) -> PathBuf {
        self.domain_dir.join("master-key.aes")
    }
}

/// A complete QEMU invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuCommand {
    /// Environment of the process (the only variables it gets).
    pub env: Vec<(String, String)>,
    /// The emulator binary.
    pub binary: PathBuf,
    /// Arguments after the binary.
    pub args: Vec<String>,
}

/// Characters that make libvirt quote an argument when it prints a command.
const SHELL_SPECIAL: &[char] = &[
    '"', '\'', '\\', ' ', '\t', '\n', '\r', '$', '`', ';', '&', '|', '<', '>', '(', ')', '{', '}',
    '[', ']', '*', '?', '~', '#', '!',
];

fn shell_quote(s: &str, out: &mut String) {
    if !s.is_empty() && !s.contains(SHELL_SPECIAL) {
        out.push_str(s);
        return;
    }
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
}

impl QemuCommand {
    /// The command as one shell line, the way `virsh domxml-to-native
    /// qemu-argv` prints it: environment, binary, arguments, quoted where
    /// a shell needs it.
    pub fn to_shell(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.env {
            out.push_str(k);
            out.push('=');
            shell_quote(v, &mut out);
            out.push(' ');
        }
        shell_quote(&self.binary.to_string_lossy(), &mut out);
        for a in &self.args {
            out.push(' ');
            shell_quote(a, &mut out);
        }
        out
    }
}

// ------------------------------------------------------------ JSON values

/// A JSON value whose object keys keep the order they were added in.
#[derive(Clone, Debug)]
enum J {
    S(String),
    I(i64),
    B(bool),
    O(Obj),
}

#[derive(Clone, Debug, Default)]
struct Obj(Vec<(&'static str, J)>);

impl Obj {
    fn new() -> Obj {
        Obj(Vec::new())
    }
    fn s(mut self, k: &'static str, v: impl Into<String>) -> Obj {
        self.0.push((k, J::S(v.into())));
        self
    }
    fn i(mut self, k: &'static str, v: i64) -> Obj {
        self.0.push((k, J::I(v)));
        self
    }
    fn b(mut self, k: &'static str, v: bool) -> Obj {
        self.0.push((k, J::B(v)));
        self
    }
    fn push_s(&mut self, k: &'static str, v: impl Into<String>) {
        self.0.push((k, J::S(v.into())));
    }
    fn push_i(&mut self, k: &'static str, v: i64) {
        self.0.push((k, J::I(v)));
    }
    fn push_b(&mut self, k: &'static str, v: bool) {
        self.0.push((k, J::B(v)));
    }
    fn push_o(&mut self, k: &'static str, v: Obj) {
        self.0.push((k, J::O(v)));
    }
    fn write(&self, out: &mut String) {
        out.push('{');
        for (n, (k, v)) in self.0.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            push_json_str(k, out);
            out.push(':');
            match v {
                J::S(s) => push_json_str(s, out),
                J::I(i) => out.push_str(&i.to_string()),
                J::B(b) => out.push_str(if *b { "true" } else { "false" }),
                J::O(o) => o.write(out),
            }
        }
        out.push('}');
    }
    fn text(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }
}

fn push_json_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::Value::String(s.to_string()).to_string());
}

// ------------------------------------------------------------- helpers

fn child<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    e.elements().find(|c| c.name == name)
}

fn text(e: &Element) -> String {
    e.content
        .iter()
        .filter_map(|c| match c {
            Content::Text(t) => Some(t.as_str()),
            Content::Elem(_) => None,
        })
        .collect::<String>()
        .trim()
        .to_string()
}

fn attr<'a>(e: Option<&'a Element>, name: &str) -> Option<&'a str> {
    e.and_then(|e| e.attr(name))
}

fn parse_num(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        t.parse().ok()
    }
}

/// Whether the machine type is a q35 one.
fn is_q35(def: &DomainDef) -> bool {
    def.os
        .machine
        .as_deref()
        .is_some_and(|m| m.starts_with("pc-q35") || m == "q35")
}

// ------------------------------------------------------------- aliases

/// The index libvirt derives from a disk target name (`vda` -> 0,
/// `sdb` -> 1, `hdaa` -> 26).
pub fn disk_index(dev: &str) -> Option<u32> {
    let suffix = ["fd", "hd", "vd", "sd", "xvd", "ubd"]
        .iter()
        .filter_map(|p| dev.strip_prefix(p))
        .min_by_key(|s| s.len())?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    let mut idx: u32 = 0;
    for (i, b) in suffix.bytes().enumerate() {
        let v = (b - b'a') as u32;
        idx = if i == 0 {
            v
        } else {
            (idx + 1).checked_mul(26)?.checked_add(v)?
        };
    }
    Some(idx)
}

fn controller_model<'a>(def: &'a DomainDef, ctype: &str, index: u32) -> Option<&'a str> {
    def.devices
        .controllers
        .iter()
        .find(|c| c.ctype == ctype && c.index == index)
        .and_then(|c| c.model.as_deref())
}

/// Gives every device the alias libvirt assigns at start-up (user aliases,
/// `ua-...`, are kept).
pub fn assign_aliases(def: &mut DomainDef) {
    let q35 = is_q35(def);
    let set = |slot: &mut Option<String>, v: String| {
        if slot.as_deref().is_none_or(|a| !a.starts_with("ua-")) {
            *slot = Some(v);
        }
    };
    let mut usb_seen = false;
    for c in &mut def.devices.controllers {
        let a = match c.ctype.as_str() {
            "pci" if c.index == 0 => {
                if c.model.as_deref() == Some("pcie-root") || q35 {
                    "pcie.0".to_string()
                } else {
                    "pci.0".to_string()
                }
            }
            "pci" => format!("pci.{}", c.index),
            "usb" if !usb_seen && c.index == 0 => {
                usb_seen = true;
                "usb".to_string()
            }
            "usb" => format!("usb{}", c.index),
            "virtio-serial" => format!("virtio-serial{}", c.index),
            "ide" if q35 => "ide".to_string(),
            t => format!("{t}{}", c.index),
        };
        set(&mut c.info.alias, a);
    }
    let lsi: Vec<u32> = def
        .devices
        .controllers
        .iter()
        .filter(|c| c.ctype == "scsi" && c.model.as_deref() == Some("lsilogic"))
        .map(|c| c.index)
        .collect();
    for d in &mut def.devices.disks {
        let bus = d.target_bus.clone().unwrap_or_default();
        let a = match (&bus[..], &d.info.address) {
            ("virtio", _) => format!("virtio-disk{}", disk_index(&d.target_dev).unwrap_or(0)),
            (
                "scsi",
                Some(Address::Drive {
                    controller,
                    bus,
                    target,
                    unit,
                }),
            ) => {
                if lsi.contains(controller) {
                    format!("scsi{controller}-{bus}-{unit}")
                } else {
                    format!("scsi{controller}-{bus}-{target}-{unit}")
                }
            }
            (
                b,
                Some(Address::Drive {
                    controller,
                    bus,
                    unit,
                    ..
                }),
            ) => {
                format!("{b}{controller}-{bus}-{unit}")
            }
            (b, _) => format!("{b}-disk{}", disk_index(&d.target_dev).unwrap_or(0)),
        };
        set(&mut d.info.alias, a);
    }
    for (i, n) in def.devices.interfaces.iter_mut().enumerate() {
        set(&mut n.info.alias, format!("net{i}"));
    }
    for (i, c) in def.devices.serials.iter_mut().enumerate() {
        set(&mut c.info.alias, format!("serial{i}"));
    }
    for (i, c) in def.devices.parallels.iter_mut().enumerate() {
        set(&mut c.info.alias, format!("parallel{i}"));
    }
    for (i, c) in def.devices.channels.iter_mut().enumerate() {
        set(&mut c.info.alias, format!("channel{i}"));
    }
    for (i, c) in def.devices.consoles.iter_mut().enumerate() {
        set(&mut c.info.alias, format!("console{i}"));
    }
    for (i, c) in def.devices.inputs.iter_mut().enumerate() {
        set(&mut c.info.alias, format!("input{i}"));
    }
    for (i, v) in def.devices.videos.iter_mut().enumerate() {
        set(&mut v.info.alias, format!("video{i}"));
    }
    for (i, r) in def.devices.rngs.iter_mut().enumerate() {
        set(&mut r.info.alias, format!("rng{i}"));
    }
    if let Some(b) = &mut def.devices.memballoon {
        if b.elem.attr("model") != Some("none") {
            set(&mut b.info.alias, "balloon0".to_string());
        }
    }
}

// ------------------------------------------------------------- builder

struct Builder<'a> {
    def: &'a DomainDef,
    args: Vec<String>,
    /// Aliases of PCI controllers by index.
    q35: bool,
}

impl Builder<'_> {
    fn arg(&mut self, a: impl Into<String>) {
        self.args.push(a.into());
    }
    fn opt(&mut self, o: &str, v: impl Into<String>) {
        self.args.push(o.to_string());
        self.args.push(v.into());
    }
    fn device(&mut self, o: Obj) {
        self.opt("-device", o.text());
    }

    fn pci_bus_alias(&self, bus: u32) -> String {
        if let Some(a) = self
            .def
            .devices
            .controllers
            .iter()
            .find(|c| c.ctype == "pci" && c.index == bus)
            .and_then(|c| c.info.alias.clone())
        {
            return a;
        }
        if bus == 0 && self.q35 {
            "pcie.0".into()
        } else {
            format!("pci.{bus}")
        }
    }

    /// Adds `bus` and `addr` (and `multifunction`) of a PCI address.
    fn pci_addr(&self, o: &mut Obj, addr: &Option<Address>) {
        if let Some(Address::Pci {
            bus,
            slot,
            function,
            multifunction,
            ..
        }) = addr
        {
            o.push_s("bus", self.pci_bus_alias(*bus));
            if *multifunction == Some(true) {
                o.push_b("multifunction", true);
            }
            if *function == 0 {
                o.push_s("addr", format!("0x{slot:x}"));
            } else {
                o.push_s("addr", format!("0x{slot:x}.0x{function:x}"));
            }
        }
    }
}

/// Per-device boot indexes from `<os><boot dev=...>` (libvirt turns them
/// into `bootindex` properties) or from `<boot order=...>` on devices.
struct BootIndex {
    disks: Vec<Option<u32>>,
    nets: Vec<Option<u32>>,
}

fn boot_indexes(def: &DomainDef) -> BootIndex {
    let mut b = BootIndex {
        disks: def
            .devices
            .disks
            .iter()
            .map(|d| d.info.boot_order)
            .collect(),
        nets: def
            .devices
            .interfaces
            .iter()
            .map(|n| n.info.boot_order)
            .collect(),
    };
    if b.disks.iter().chain(b.nets.iter()).any(Option::is_some) {
        return b;
    }
    let mut next = 1;
    for dev in &def.os.boot_devs {
        let pick = |want: &str| {
            def.devices
                .disks
                .iter()
                .position(|d| d.device == want || (want == "disk" && d.device == "lun"))
        };
        match dev.as_str() {
            "hd" => {
                if let Some(i) = pick("disk") {
                    if b.disks[i].is_none() {
                        b.disks[i] = Some(next);
                        next += 1;
                    }
                }
            }
            "cdrom" => {
                if let Some(i) = pick("cdrom") {
                    if b.disks[i].is_none() {
                        b.disks[i] = Some(next);
                        next += 1;
                    }
                }
            }
            "fd" => {
                if let Some(i) = pick("floppy") {
                    if b.disks[i].is_none() {
                        b.disks[i] = Some(next);
                        next += 1;
                    }
                }
            }
            "network" if !b.nets.is_empty() && b.nets[0].is_none() => {
                b.nets[0] = Some(next);
                next += 1;
            }
            _ => {}
        }
    }
    b
}

/// Builds QEMU's command line for `def` (defaults applied, addresses
/// assigned, aliases given by [`assign_aliases`]). `kvm` selects the
/// accelerator for `type='kvm'` domains.
pub fn build(def: &DomainDef, paths: &CmdPaths) -> Result<QemuCommand> {
    let binary =
        PathBuf::from(def.emulator.as_deref().ok_or_else(|| {
            Error::new(DOM, ErrorNumber::INTERNAL_ERROR, "domain has no emulator")
        })?);
    let q35 = is_q35(def);
    let mut b = Builder {
        def,
        args: Vec::new(),
        q35,
    };
    let machine = def
        .os
        .machine
        .clone()
        .ok_or_else(|| Error::new(DOM, ErrorNumber::INTERNAL_ERROR, "domain has no machine"))?;
    if !(machine.starts_with("pc") || machine == "q35") {
        return Err(unsupported(format!(
            "machine type '{machine}' is not supported by ironvirt's command line builder"
        )));
    }
    if def.os.os_type != "hvm" {
        return Err(unsupported(format!(
            "OS type '{}' is not supported",
            def.os.os_type
        )));
    }
    b.opt("-name", format!("guest={},debug-threads=on", def.name));
    b.arg("-S");
    b.opt(
        "-object",
        Obj::new()
            .s("qom-type", "secret")
            .s("id", "masterKey0")
            .s("format", "raw")
            .s("file", paths.master_key().to_string_lossy())
            .text(),
    );

    // Firmware.
    if let Some(l) = &def.os.loader {
        if l.loader_type.as_deref() == Some("pflash") || def.os.nvram.is_some() {
            return Err(unsupported("UEFI (pflash) firmware is not supported yet"));
        }
    }
    if def.os.kernel.is_some() {
        return Err(unsupported("direct kernel boot is not supported yet"));
    }

    // Machine.
    let usb_none = def
        .devices
        .controllers
        .iter()
        .any(|c| c.ctype == "usb" && c.model.as_deref() == Some("none"));
    let _ = usb_none;
    let mut m = format!("{machine},usb=off");
    if let Some(d) = def.memory_dump_core {
        m.push_str(if d {
            ",dump-guest-core=on"
        } else {
            ",dump-guest-core=off"
        });
    } else {
        m.push_str(",dump-guest-core=off");
    }
    m.push_str(",memory-backend=pc.ram");
    b.opt("-machine", m);
    b.opt("-accel", if def.virt_type == "kvm" { "kvm" } else { "tcg" });

    // CPU.
    let cpu = def.cpu.as_ref();
    let mode = attr(cpu, "mode").unwrap_or("custom");
    let cpu_arg = match mode {
        "host-passthrough" => {
            if def.virt_type != "kvm" {
                return Err(unsupported(
                    "CPU mode 'host-passthrough' is only supported with KVM",
                ));
            }
            let mut s = "host".to_string();
            if attr(cpu, "migratable") != Some("off") {
                s.push_str(",migratable=on");
            } else {
                s.push_str(",migratable=off");
            }
            Some(s)
        }
        "maximum" => Some("max".to_string()),
        "host-model" => return Err(unsupported(
            "CPU mode 'host-model' is not supported yet (use host-passthrough or a named model)",
        )),
        _ => match cpu.and_then(|c| child(c, "model")).map(text) {
            Some(model) if !model.is_empty() => {
                let mut s = model;
                for f in cpu.into_iter().flat_map(|c| c.elements()) {
                    if f.name != "feature" {
                        continue;
                    }
                    let name = f.attr("name").unwrap_or("");
                    match f.attr("policy").unwrap_or("require") {
                        "force" | "require" => s.push_str(&format!(",{name}=on")),
                        "disable" | "forbid" => s.push_str(&format!(",{name}=off")),
                        _ => {}
                    }
                }
                Some(s)
            }
            _ => None,
        },
    };
    if let Some(c) = cpu_arg {
        b.opt("-cpu", c);
    }

    // Memory.
    let mib = def.memory_kib / 1024;
    b.opt("-m", mib.to_string());
    b.opt(
        "-object",
        Obj::new()
            .s("qom-type", "memory-backend-ram")
            .s("id", "pc.ram")
            .i("size", (def.memory_kib * 1024) as i64)
            .text(),
    );
    b.opt("-overcommit", "mem-lock=off");

    // vCPUs.
    let cur = def.current_vcpus.unwrap_or(def.vcpus);
    let mut smp = cur.to_string();
    if cur != def.vcpus {
        smp.push_str(&format!(",maxcpus={}", def.vcpus));
    }
    match cpu.and_then(|c| child(c, "topology")) {
        Some(t) => {
            let g = |k: &str| t.attr(k).and_then(parse_num).unwrap_or(1);
            smp.push_str(&format!(
                ",sockets={},dies={},cores={},threads={}",
                g("sockets"),
                g("dies"),
                g("cores"),
                g("threads")
            ));
        }
        None => smp.push_str(&format!(",sockets={},cores=1,threads=1", def.vcpus)),
    }
    b.opt("-smp", smp);
    b.opt("-uuid", def.uuid.to_string());
    if def.devices.graphics.is_empty() {
        b.opt("-display", "none");
    }
    b.arg("-no-user-config");
    b.arg("-nodefaults");
    b.opt(
        "-chardev",
        format!(
            "socket,id=charmonitor,path={},server=on,wait=off",
            paths.monitor().to_string_lossy()
        ),
    );
    b.opt("-mon", "chardev=charmonitor,id=monitor,mode=control");

    // Clock.
    let clock = def.clock.as_ref();
    let offset = attr(clock, "offset").unwrap_or("utc");
    let mut rtc = match offset {
        "utc" => "base=utc".to_string(),
        "localtime" => "base=localtime".to_string(),
        o => {
            return Err(unsupported(format!(
                "clock offset '{o}' is not supported yet"
            )))
        }
    };
    let mut pit_delay = false;
    let mut no_hpet = false;
    for t in clock.into_iter().flat_map(|c| c.elements()) {
        if t.name != "timer" {
            continue;
        }
        match (t.attr("name"), t.attr("tickpolicy"), t.attr("present")) {
            (Some("rtc"), Some("catchup"), _) => rtc.push_str(",driftfix=slew"),
            (Some("pit"), Some("delay"), _) => pit_delay = true,
            (Some("hpet"), _, Some("no")) => no_hpet = true,
            _ => {}
        }
    }
    b.opt("-rtc", rtc);
    if pit_delay {
        b.opt("-global", "kvm-pit.lost_tick_policy=delay");
    }
    if no_hpet {
        b.arg("-no-hpet");
    }
    b.arg("-no-shutdown");
    let acpi = def
        .features
        .as_ref()
        .is_some_and(|f| f.elements().any(|e| e.name == "acpi"));
    if !acpi {
        b.arg("-no-acpi");
    }
    if let Some(pm) = &def.pm {
        let lpc = if q35 { "ICH9-LPC" } else { "PIIX4_PM" };
        for (el, prop) in [
            ("suspend-to-mem", "disable_s3"),
            ("suspend-to-disk", "disable_s4"),
        ] {
            if let Some(v) = attr(child(pm, el), "enabled") {
                let n = if v == "no" { 1 } else { 0 };
                b.opt("-global", format!("{lpc}.{prop}={n}"));
            }
        }
    }
    let mut boot = String::new();
    if let Some(menu) = &def.os.bootmenu {
        if let Some(e) = menu.enable {
            boot.push_str(if e { "menu=on," } else { "menu=off," });
        }
        if let Some(t) = menu.timeout {
            boot.push_str(&format!("splash-time={t},"));
        }
    }
    boot.push_str("strict=on");
    b.opt("-boot", boot);

    controllers(&mut b)?;
    disks(&mut b)?;
    interfaces(&mut b)?;
    chardevs(&mut b, paths)?;
    inputs(&mut b)?;
    audio_and_graphics(&mut b)?;
    videos(&mut b)?;
    others(&mut b)?;

    b.opt(
        "-sandbox",
        "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    );
    b.opt("-msg", "timestamp=on");

    let home = paths.domain_dir.to_string_lossy().to_string();
    let env = vec![
        ("LC_ALL".to_string(), "C".to_string()),
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into()),
        ),
        ("HOME".to_string(), home.clone()),
        ("XDG_DATA_HOME".to_string(), format!("{home}/.local/share")),
        ("XDG_CACHE_HOME".to_string(), format!("{home}/.cache")),
        ("XDG_CONFIG_HOME".to_string(), format!("{home}/.config")),
    ];
    Ok(QemuCommand {
        env,
        binary,
        args: b.args,
    })
}

fn controllers(b: &mut Builder<'_>) -> Result<()> {
    let def = b.def;
    for ctype in [
        "pci",
        "usb",
        "scsi",
        "ide",
        "sata",
        "fdc",
        "virtio-serial",
        "ccid",
    ] {
        for c in def.devices.controllers.iter().filter(|c| c.ctype == ctype) {
            let id = c.info.alias.clone().unwrap_or_default();
            let model = c.model.as_deref().unwrap_or("");
            let mut o = match (ctype, model) {
                ("pci", "pci-root" | "pcie-root") => continue,
                ("pci", "pcie-root-port") => {
                    let t = c.target.as_ref();
                    let port = attr(t, "port").and_then(parse_num).unwrap_or(0);
                    let chassis = attr(t, "chassis").and_then(parse_num).unwrap_or(0);
                    Obj::new()
                        .s("driver", "pcie-root-port")
                        .i("port", port as i64)
                        .i("chassis", chassis as i64)
                        .s("id", id)
                }
                ("pci", "pci-bridge") => {
                    let chassis = attr(c.target.as_ref(), "chassisNr")
                        .and_then(parse_num)
                        .unwrap_or(c.index as u64);
                    Obj::new()
                        .s("driver", "pci-bridge")
                        .i("chassis_nr", chassis as i64)
                        .s("id", id)
                }
                ("pci", "pcie-to-pci-bridge") => {
                    Obj::new().s("driver", "pcie-pci-bridge").s("id", id)
                }
                ("pci", "dmi-to-pci-bridge") => {
                    Obj::new().s("driver", "i82801b11-bridge").s("id", id)
                }
                ("usb", "none") => continue,
                ("usb", m) => {
                    let drv = match m {
                        "piix3-uhci" => "piix3-usb-uhci",
                        "piix4-uhci" => "piix4-usb-uhci",
                        "qemu-xhci" => "qemu-xhci",
                        "nec-xhci" => "nec-usb-xhci",
                        "ehci" => "usb-ehci",
                        "ich9-ehci1" => "ich9-usb-ehci1",
                        other => {
                            return Err(unsupported(format!(
                                "USB controller model '{other}' is not supported yet"
                            )))
                        }
                    };
                    let mut o = Obj::new().s("driver", drv);
                    for (k, p) in [("ports", "p2")] {
                        if let Some(n) = c.attrs.iter().find(|(a, _)| a == k) {
                            if let Some(v) = parse_num(&n.1) {
                                o.push_i(p, v as i64);
                                o.push_i("p3", v as i64);
                            }
                        }
                    }
                    o.s("id", id)
                }
                ("scsi", m) => {
                    let drv = match m {
                        "lsilogic" => "lsi",
                        "virtio-scsi" => "virtio-scsi-pci",
                        "lsisas1068" => "mptsas1068",
                        "lsisas1078" => "megasas",
                        other => {
                            return Err(unsupported(format!(
                                "SCSI controller model '{other}' is not supported yet"
                            )))
                        }
                    };
                    Obj::new().s("driver", drv).s("id", id)
                }
                ("ide", _) => continue,
                ("sata", _) => {
                    if b.q35 && c.index == 0 {
                        continue;
                    }
                    Obj::new().s("driver", "ahci").s("id", id)
                }
                ("fdc", _) => continue,
                ("virtio-serial", _) => {
                    let mut o = Obj::new().s("driver", "virtio-serial-pci").s("id", id);
                    if let Some(p) = c.attrs.iter().find(|(a, _)| a == "ports") {
                        if let Some(v) = parse_num(&p.1) {
                            o.push_i("max_ports", v as i64);
                        }
                    }
                    o
                }
                (t, m) => {
                    return Err(unsupported(format!(
                        "controller type '{t}' model '{m}' is not supported yet"
                    )))
                }
            };
            b.pci_addr(&mut o, &c.info.address);
            b.device(o);
        }
    }
    Ok(())
}

/// `cache` mode -> (direct, no-flush, write-cache).
fn cache_props(mode: &str) -> Result<(bool, bool, bool)> {
    Ok(match mode {
        "none" => (true, false, true),
        "writeback" => (false, false, true),
        "writethrough" => (false, false, false),
        "directsync" => (true, false, false),
        "unsafe" => (false, true, true),
        other => {
            return Err(unsupported(format!(
                "disk cache mode '{other}' is not supported"
            )))
        }
    })
}

fn disks(b: &mut Builder<'_>) -> Result<()> {
    let def = b.def;
    let boot = boot_indexes(def);
    let n = def.devices.disks.len();
    for (i, d) in def.devices.disks.iter().enumerate() {
        let node = n - i;
        let drv = d.driver.as_ref();
        let fmt = attr(drv, "type").unwrap_or("raw");
        let cache = match attr(drv, "cache").filter(|c| *c != "default") {
            Some(c) => Some(cache_props(c)?),
            None => None,
        };
        let discard = attr(drv, "discard");
        let src = d.source.as_ref();
        let path = match d.disk_type.as_str() {
            "file" => attr(src, "file"),
            "block" => attr(src, "dev"),
            t => {
                return Err(unsupported(format!(
                    "disk type '{t}' is not supported yet ('file' and 'block' are)"
                )))
            }
        };
        if d.device == "floppy" {
            return Err(unsupported("floppy disks are not supported yet"));
        }
        let readonly = d.readonly || d.device == "cdrom";
        let mut drive = None;
        if let Some(p) = path {
            let storage = format!("libvirt-{node}-storage");
            let format = format!("libvirt-{node}-format");
            let mut s = Obj::new()
                .s(
                    "driver",
                    if d.disk_type == "block" {
                        "host_device"
                    } else {
                        "file"
                    },
                )
                .s("filename", p)
                .s("node-name", storage.clone());
            if let Some((direct, noflush, _)) = cache {
                s.push_o(
                    "cache",
                    Obj::new().b("direct", direct).b("no-flush", noflush),
                );
            }
            s.push_b("auto-read-only", true);
            s.push_s("discard", "unmap");
            b.opt("-blockdev", s.text());
            let mut f = Obj::new()
                .s("node-name", format.clone())
                .b("read-only", readonly);
            if let Some(dm) = discard {
                f.push_s("discard", dm);
            }
            if let Some((direct, noflush, _)) = cache {
                f.push_o(
                    "cache",
                    Obj::new().b("direct", direct).b("no-flush", noflush),
                );
            }
            f.push_s("driver", fmt);
            f.push_s("file", storage);
            b.opt("-blockdev", f.text());
            drive = Some(format);
        }
        let id = d.info.alias.clone().unwrap_or_default();
        let bus = d.target_bus.as_deref().unwrap_or("ide");
        let cd = d.device == "cdrom";
        let mut o = Obj::new();
        match bus {
            "virtio" => {
                if cd {
                    return Err(unsupported("virtio CD-ROMs are not supported"));
                }
                o.push_s("driver", "virtio-blk-pci");
                b.pci_addr(&mut o, &d.info.address);
                if let Some(dr) = &drive {
                    o.push_s("drive", dr.clone());
                }
                o.push_s("id", id);
            }
            "ide" | "sata" => {
                o.push_s("driver", if cd { "ide-cd" } else { "ide-hd" });
                let (ctl, dbus, unit) = match d.info.address {
                    Some(Address::Drive {
                        controller,
                        bus,
                        unit,
                        ..
                    }) => (controller, bus, unit),
                    _ => (0, 0, 0),
                };
                if bus == "ide" {
                    o.push_s("bus", format!("ide.{dbus}"));
                    if !b.q35 {
                        o.push_i("unit", unit as i64);
                    }
                } else if b.q35 && ctl == 0 {
                    o.push_s("bus", format!("ide.{unit}"));
                } else {
                    o.push_s("bus", format!("sata{ctl}.{unit}"));
                }
                if let Some(dr) = &drive {
                    o.push_s("drive", dr.clone());
                }
                o.push_s("id", id);
            }
            "scsi" => {
                let (ctl, dbus, target, unit) = match d.info.address {
                    Some(Address::Drive {
                        controller,
                        bus,
                        target,
                        unit,
                    }) => (controller, bus, target, unit),
                    _ => (0, 0, 0, 0),
                };
                o.push_s("driver", if cd { "scsi-cd" } else { "scsi-hd" });
                o.push_s("bus", format!("scsi{ctl}.0"));
                let lsi = controller_model(def, "scsi", ctl) == Some("lsilogic");
                if lsi {
                    o.push_i("scsi-id", unit as i64);
                } else {
                    o.push_i("channel", dbus as i64);
                    o.push_i("scsi-id", target as i64);
                    o.push_i("lun", unit as i64);
                }
                o.push_s(
                    "device_id",
                    d.serial.clone().unwrap_or_else(|| format!("drive-{id}")),
                );
                if let Some(dr) = &drive {
                    o.push_s("drive", dr.clone());
                }
                o.push_s("id", id);
            }
            other => {
                return Err(unsupported(format!(
                    "disk bus '{other}' is not supported yet"
                )))
            }
        }
        if let Some(bi) = boot.disks[i] {
            o.push_i("bootindex", bi as i64);
        }
        if let Some((_, _, wc)) = cache {
            o.push_s("write-cache", if wc { "on" } else { "off" });
        }
        if let Some(s) = &d.serial {
            o.push_s("serial", s.clone());
        }
        b.device(o);
    }
    Ok(())
}

fn interfaces(b: &mut Builder<'_>) -> Result<()> {
    let def = b.def;
    let boot = boot_indexes(def);
    for (i, n) in def.devices.interfaces.iter().enumerate() {
        let id = n.info.alias.clone().unwrap_or_else(|| format!("net{i}"));
        let netdev = format!("host{id}");
        match n.iface_type.as_str() {
            "user" => b.opt(
                "-netdev",
                Obj::new().s("type", "user").s("id", netdev.clone()).text(),
            ),
            t => {
                return Err(unsupported(format!(
                    "interface type '{t}' is not supported yet (only 'user' networking needs no host setup)"
                )))
            }
        }
        let model = n.model.as_deref().unwrap_or("rtl8139");
        let drv = match model {
            "virtio" => "virtio-net-pci",
            "e1000" | "e1000e" | "rtl8139" | "vmxnet3" | "ne2k_pci" | "pcnet" | "i82559er" => model,
            other => other,
        };
        let mut o = Obj::new()
            .s("driver", drv)
            .s("netdev", netdev)
            .s("id", id)
            .s("mac", n.mac.to_string());
        if let Some(bi) = boot.nets[i] {
            o.push_i("bootindex", bi as i64);
        }
        b.pci_addr(&mut o, &n.info.address);
        b.device(o);
    }
    Ok(())
}

/// `-chardev` for a character device's host side.
fn chardev_arg(c: &Chardev, id: &str, paths: &CmdPaths) -> Result<String> {
    let src = c.sources.first();
    Ok(match c.chr_type.as_str() {
        "pty" => format!("pty,id={id}"),
        "null" => format!("null,id={id}"),
        "vc" => format!("vc,id={id}"),
        "file" => {
            let p = attr(src, "path").ok_or_else(|| unsupported("file chardev needs a path"))?;
            let mut s = format!("file,id={id},path={p}");
            if let Some(a) = attr(src, "append") {
                s.push_str(&format!(",append={a}"));
            }
            s
        }
        "unix" => {
            let p = match attr(src, "path") {
                Some(p) => p.to_string(),
                None => paths
                    .channel_dir
                    .join(c.target_name.as_deref().unwrap_or(id))
                    .to_string_lossy()
                    .to_string(),
            };
            let server = attr(src, "mode") != Some("connect");
            if server {
                format!("socket,id={id},path={p},server=on,wait=off")
            } else {
                format!("socket,id={id},path={p}")
            }
        }
        "tcp" => {
            let host = attr(src, "host").unwrap_or("127.0.0.1");
            let port = attr(src, "service").unwrap_or("0");
            let server = attr(src, "mode") == Some("bind");
            let mut s = format!("socket,id={id},host={host},port={port}");
            if c.protocol.as_deref() == Some("telnet") {
                s.push_str(",telnet=on");
            }
            if server {
                s.push_str(",server=on,wait=off");
            }
            s
        }
        t => {
            return Err(unsupported(format!(
                "character device type '{t}' is not supported yet"
            )))
        }
    })
}

fn chardevs(b: &mut Builder<'_>, paths: &CmdPaths) -> Result<()> {
    let def = b.def;
    for (i, s) in def.devices.serials.iter().enumerate() {
        let id = s.info.alias.clone().unwrap_or_else(|| format!("serial{i}"));
        let chr = format!("char{id}");
        let ttype = s.target_type.as_deref().unwrap_or("isa-serial");
        b.opt("-chardev", chardev_arg(s, &chr, paths)?);
        match ttype {
            "isa-serial" => {
                b.device(
                    Obj::new()
                        .s("driver", "isa-serial")
                        .s("chardev", chr)
                        .s("id", id)
                        .i("index", s.target_port.unwrap_or(i as u32) as i64),
                );
            }
            "pci-serial" => {
                let mut o = Obj::new()
                    .s("driver", "pci-serial")
                    .s("chardev", chr)
                    .s("id", id);
                b.pci_addr(&mut o, &s.info.address);
                b.device(o);
            }
            t => {
                return Err(unsupported(format!(
                    "serial target type '{t}' is not supported yet"
                )))
            }
        }
    }
    if !def.devices.parallels.is_empty() {
        return Err(unsupported("parallel ports are not supported yet"));
    }
    for (i, c) in def.devices.channels.iter().enumerate() {
        let id = c
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("channel{i}"));
        let chr = format!("char{id}");
        if c.target_type.as_deref() != Some("virtio") {
            return Err(unsupported(format!(
                "channel target type '{}' is not supported yet",
                c.target_type.as_deref().unwrap_or("")
            )));
        }
        b.opt("-chardev", chardev_arg(c, &chr, paths)?);
        let (ctl, bus, port) = match c.info.address {
            Some(Address::VirtioSerial {
                controller,
                bus,
                port,
            }) => (controller, bus, port.unwrap_or(i as u32 + 1)),
            _ => (0, 0, i as u32 + 1),
        };
        let mut o = Obj::new()
            .s("driver", "virtserialport")
            .s("bus", format!("virtio-serial{ctl}.{bus}"))
            .i("nr", port as i64)
            .s("chardev", chr)
            .s("id", id);
        if let Some(n) = &c.target_name {
            o.push_s("name", n.clone());
        }
        b.device(o);
    }
    for c in &def.devices.consoles {
        match c.target_type.as_deref() {
            None | Some("serial") => {}
            Some(t) => {
                return Err(unsupported(format!(
                    "console target type '{t}' is not supported yet"
                )))
            }
        }
    }
    Ok(())
}

fn inputs(b: &mut Builder<'_>) -> Result<()> {
    let def = b.def;
    for (i, inp) in def.devices.inputs.iter().enumerate() {
        let id = inp
            .info
            .alias
            .clone()
            .unwrap_or_else(|| format!("input{i}"));
        let bus = inp.bus.as_deref().unwrap_or("ps2");
        match bus {
            "ps2" => continue,
            "usb" => {
                let drv = match inp.input_type.as_str() {
                    "tablet" => "usb-tablet",
                    "mouse" => "usb-mouse",
                    "keyboard" => "usb-kbd",
                    t => {
                        return Err(unsupported(format!(
                            "USB input type '{t}' is not supported"
                        )))
                    }
                };
                let mut o = Obj::new().s("driver", drv).s("id", id);
                if let Some(Address::Usb { bus, port }) = &inp.info.address {
                    let ubus = def
                        .devices
                        .controllers
                        .iter()
                        .find(|c| c.ctype == "usb" && c.index == *bus)
                        .and_then(|c| c.info.alias.clone())
                        .unwrap_or_else(|| "usb".into());
                    o.push_s("bus", format!("{ubus}.0"));
                    if let Some(p) = port {
                        o.push_s("port", p.clone());
                    }
                }
                b.device(o);
            }
            "virtio" => {
                let drv = match inp.input_type.as_str() {
                    "tablet" => "virtio-tablet-pci",
                    "mouse" => "virtio-mouse-pci",
                    "keyboard" => "virtio-keyboard-pci",
                    t => {
                        return Err(unsupported(format!(
                            "virtio input type '{t}' is not supported"
                        )))
                    }
                };
                let mut o = Obj::new().s("driver", drv).s("id", id);
                b.pci_addr(&mut o, &inp.info.address);
                b.device(o);
            }
            other => {
                return Err(unsupported(format!(
                    "input bus '{other}' is not supported yet"
                )))
            }
        }
    }
    Ok(())
}

/// The address a VNC server listens on: the first `<listen>` address,
/// else libvirt's default (`vnc_listen` in qemu.conf: 127.0.0.1).
pub fn vnc_listen(g: &ironvirt_conf::Graphics) -> String {
    g.listens
        .first()
        .and_then(|l| l.attr("address"))
        .or_else(|| g.attr("listen"))
        .unwrap_or("127.0.0.1")
        .to_string()
}

fn audio_and_graphics(b: &mut Builder<'_>) -> Result<()> {
    let def = b.def;
    let mut audio_id = None;
    for a in &def.devices.audios {
        let id = a.elem.attr("id").unwrap_or("1");
        let t = a.elem.attr("type").unwrap_or("none");
        if t != "none" {
            return Err(unsupported(format!(
                "audio backend '{t}' is not supported yet"
            )));
        }
        b.opt(
            "-audiodev",
            Obj::new()
                .s("id", format!("audio{id}"))
                .s("driver", "none")
                .text(),
        );
        audio_id.get_or_insert(format!("audio{id}"));
    }
    for g in &def.devices.graphics {
        match g.gtype.as_str() {
            "vnc" => {
                let port = match g.attr("port").and_then(|p| p.parse::<i64>().ok()) {
                    Some(p) if p >= 5900 => p - 5900,
                    Some(p) if p >= 0 && g.attr("autoport") != Some("yes") => {
                        return Err(unsupported(format!("VNC port {p} is below 5900")))
                    }
                    _ => 0,
                };
                let listen = vnc_listen(g);
                let host = if listen.contains(':') {
                    format!("[{listen}]")
                } else {
                    listen
                };
                let mut s = format!("{host}:{port}");
                if g.attr("passwd").is_some() {
                    s.push_str(",password=on");
                }
                if let Some(a) = &audio_id {
                    s.push_str(&format!(",audiodev={a}"));
                }
                b.opt("-vnc", s);
            }
            "egl-headless" => {}
            t => {
                return Err(unsupported(format!(
                    "graphics type '{t}' is not supported yet"
                )))
            }
        }
    }
    Ok(())
}

fn model_attr<'a>(v: &'a ironvirt_conf::Video, k: &str) -> Option<&'a str> {
    v.model_attrs
        .iter()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.as_str())
}

fn videos(b: &mut Builder<'_>) -> Result<()> {
    let def = b.def;
    for (i, v) in def.devices.videos.iter().enumerate() {
        let id = v.info.alias.clone().unwrap_or_else(|| format!("video{i}"));
        let primary = i == 0;
        let heads = model_attr(v, "heads").and_then(parse_num).unwrap_or(1) as i64;
        let vram = model_attr(v, "vram").and_then(parse_num);
        let mut o = match v.model.as_str() {
            "none" => continue,
            "cirrus" => Obj::new().s("driver", "cirrus-vga").s("id", id),
            "vga" => Obj::new()
                .s("driver", "VGA")
                .s("id", id)
                .i("vgamem_mb", (vram.unwrap_or(16384) / 1024) as i64),
            "bochs" => Obj::new()
                .s("driver", "bochs-display")
                .s("id", id)
                .i("vgamem", (vram.unwrap_or(16384) * 1024) as i64),
            "virtio" => Obj::new()
                .s(
                    "driver",
                    if primary {
                        "virtio-vga"
                    } else {
                        "virtio-gpu-pci"
                    },
                )
                .s("id", id)
                .i("max_outputs", heads),
            "qxl" => {
                let ram = model_attr(v, "ram").and_then(parse_num).unwrap_or(65536);
                let vram = vram.unwrap_or(65536);
                let vram64 = model_attr(v, "vram64").and_then(parse_num).unwrap_or(0);
                let vgamem = model_attr(v, "vgamem").and_then(parse_num).unwrap_or(16384);
                Obj::new()
                    .s("driver", if primary { "qxl-vga" } else { "qxl" })
                    .s("id", id)
                    .i("max_outputs", heads)
                    .i("ram_size", (ram * 1024) as i64)
                    .i("vram_size", (vram * 1024) as i64)
                    .i("vram64_size_mb", (vram64 / 1024) as i64)
                    .i("vgamem_mb", (vgamem / 1024) as i64)
            }
            m => {
                return Err(unsupported(format!(
                    "video model '{m}' is not supported yet"
                )))
            }
        };
        b.pci_addr(&mut o, &v.info.address);
        b.device(o);
    }
    Ok(())
}

fn others(b: &mut Builder<'_>) -> Result<()> {
    let def = b.def;
    let d = &def.devices;
    for (what, empty) in [
        ("filesystem", d.filesystems.is_empty()),
        ("smartcard", d.smartcards.is_empty()),
        ("TPM", d.tpms.is_empty()),
        ("sound", d.sounds.is_empty()),
        ("host device", d.hostdevs.is_empty()),
        ("redirected device", d.redirdevs.is_empty()),
        ("hub", d.hubs.is_empty()),
        ("watchdog", d.watchdogs.is_empty()),
        ("shared memory", d.shmems.is_empty()),
        ("memory device", d.memories.is_empty()),
        ("crypto device", d.cryptos.is_empty()),
        ("lease", d.leases.is_empty()),
        ("panic device", d.panics.is_empty()),
        ("IOMMU", d.iommu.is_none()),
        ("vsock", d.vsock.is_none()),
    ] {
        if !empty {
            return Err(unsupported(format!("{what} devices are not supported yet")));
        }
    }
    if let Some(bal) = &d.memballoon {
        match bal.elem.attr("model") {
            Some("none") | None => {}
            Some("virtio") => {
                let mut o = Obj::new().s("driver", "virtio-balloon-pci").s(
                    "id",
                    bal.info.alias.clone().unwrap_or_else(|| "balloon0".into()),
                );
                if bal.elem.attr("autodeflate") == Some("on") {
                    o.push_b("deflate-on-oom", true);
                }
                if bal.elem.attr("freePageReporting") == Some("on") {
                    o.push_b("free-page-reporting", true);
                }
                b.pci_addr(&mut o, &bal.info.address);
                b.device(o);
            }
            Some(m) => {
                return Err(unsupported(format!(
                    "memballoon model '{m}' is not supported yet"
                )))
            }
        }
    }
    for (i, r) in d.rngs.iter().enumerate() {
        let id = r.info.alias.clone().unwrap_or_else(|| format!("rng{i}"));
        let obj = format!("obj{id}");
        let backend = child(&r.elem, "backend");
        match attr(backend, "model") {
            Some("random") => {
                let file = backend.map(text).filter(|t| !t.is_empty());
                b.opt(
                    "-object",
                    Obj::new()
                        .s("qom-type", "rng-random")
                        .s("id", obj.clone())
                        .s("filename", file.unwrap_or_else(|| "/dev/urandom".into()))
                        .text(),
                );
            }
            Some("builtin") => b.opt(
                "-object",
                Obj::new()
                    .s("qom-type", "rng-builtin")
                    .s("id", obj.clone())
                    .text(),
            ),
            m => {
                return Err(unsupported(format!(
                    "rng backend '{}' is not supported yet",
                    m.unwrap_or("")
                )))
            }
        }
        let mut o = Obj::new()
            .s("driver", "virtio-rng-pci")
            .s("rng", obj)
            .s("id", id);
        if let Some(rate) = child(&r.elem, "rate") {
            if let Some(bytes) = rate.attr("bytes").and_then(parse_num) {
                o.push_i("max-bytes", bytes as i64);
                o.push_i(
                    "period",
                    rate.attr("period").and_then(parse_num).unwrap_or(1000) as i64,
                );
            }
        }
        b.pci_addr(&mut o, &r.info.address);
        b.device(o);
    }
    Ok(())
}

/// The domain directory name libvirt uses: `domain-ID-NAME` (the name cut
/// to 20 characters).
pub fn domain_dir_name(id: i32, name: &str) -> String {
    let short: String = name.chars().take(20).collect();
    format!("domain-{id}-{short}")
}

/// Writes a new random master key (32 bytes, mode 0600).
pub fn write_master_key(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; 32];
    ironvirt_driver::fill_random(&mut key);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(&key)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_indexes() {
        assert_eq!(disk_index("vda"), Some(0));
        assert_eq!(disk_index("sdb"), Some(1));
        assert_eq!(disk_index("hdz"), Some(25));
        assert_eq!(disk_index("hdaa"), Some(26));
        assert_eq!(disk_index("xvdc"), Some(2));
        assert_eq!(disk_index("vd"), None);
        assert_eq!(disk_index("foo"), None);
    }

    #[test]
    fn quoting() {
        let c = QemuCommand {
            env: vec![("A".into(), "b c".into())],
            binary: "/usr/bin/q".into(),
            args: vec!["-x".into(), "{\"a\":1}".into(), "it's".into()],
        };
        assert_eq!(c.to_shell(), "A='b c' /usr/bin/q -x '{\"a\":1}' 'it'\\''s'");
    }

    #[test]
    fn json_order_is_kept() {
        let o = Obj::new().s("driver", "x").i("port", 16).b("m", true);
        assert_eq!(o.text(), r#"{"driver":"x","port":16,"m":true}"#);
    }
}
