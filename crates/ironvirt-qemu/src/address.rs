//! Device address assignment of the QEMU driver, as libvirt does it when a
//! domain is defined: virtio-serial ports, PCI addresses (with the PCI
//! controllers a topology needs added on the way) and USB ports.
//!
//! # PCI
//!
//! Every device gets *connect flags*: what kind of slot it plugs into
//! (conventional PCI, PCI Express, or a specific controller type) and
//! whether the slot may be picked automatically. Every bus gets the flags
//! of what it accepts, from its controller model:
//!
//! | bus model | accepts | slots | auto |
//! |---|---|---|---|
//! | pci-root | PCI devices, pci-bridge, pci-expander-bus | 1–31 | yes |
//! | pcie-root | PCIe devices, root ports, dmi-to-pci-bridge, pcie-expander-bus | 1–31 | no |
//! | pci-bridge, pcie-to-pci-bridge | PCI devices, pci-bridge | 1–31 | yes |
//! | dmi-to-pci-bridge | PCI devices, pci-bridge | 0–31 | no |
//! | pcie-root-port, downstream port | PCIe devices, upstream port, pcie-to-pci-bridge | 0 | yes |
//!
//! Assignment runs twice. A *dry run* finds how many buses the devices
//! need: when no bus has a free compatible slot, a bus is added (a
//! pcie-root-port for PCIe devices, a pci-bridge for PCI devices, or on a
//! PCIe-only machine a pcie-root-port plus a pcie-to-pci-bridge). A new
//! q35 domain without PCI controllers of its own also gets one spare root
//! port for hotplug. The missing controllers are then added to the
//! definition, and the real pass assigns: chipset devices first (i440fx:
//! PIIX3 IDE at 00:01.1, USB at 00:01.2, primary video at slot 2; q35: SATA
//! at 00:1f.2, the first ICH9 USB2 set at 00:1d, a dmi-to-pci-bridge at
//! 00:1e, primary video at slot 1, ICH9 sound at 00:1b), then PCI
//! controllers (root ports share a slot, eight functions each), file
//! systems, interfaces, sound cards, other controllers, virtio disks, host
//! devices, balloon, RNGs, watchdogs, further videos, shmem, virtio inputs,
//! PCI serial ports, IOMMU, vsock, memory devices, crypto and panic
//! devices, each on the first bus with a free compatible slot.

use ironvirt_conf::{Address, Controller, DeviceInfo, Devices, DomainDef, Element, GenericDevice};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};

use crate::qemucaps::QemuCaps;

// Connect flags (what a device needs / what a bus accepts).
const HOTPLUGGABLE: u32 = 1 << 0;
const AUTOASSIGN: u32 = 1 << 1;
const PCI_DEVICE: u32 = 1 << 2;
const PCIE_DEVICE: u32 = 1 << 3;
const PCIE_ROOT_PORT: u32 = 1 << 4;
const PCIE_SWITCH_UPSTREAM_PORT: u32 = 1 << 5;
const PCIE_SWITCH_DOWNSTREAM_PORT: u32 = 1 << 6;
const DMI_TO_PCI_BRIDGE: u32 = 1 << 7;
const PCI_EXPANDER_BUS: u32 = 1 << 8;
const PCIE_EXPANDER_BUS: u32 = 1 << 9;
const PCI_BRIDGE: u32 = 1 << 10;
const PCIE_TO_PCI_BRIDGE: u32 = 1 << 11;
const AGGREGATE_SLOT: u32 = 1 << 12;
const INTEGRATED: u32 = 1 << 13;
const TYPES_MASK: u32 = PCI_DEVICE
    | PCIE_DEVICE
    | PCIE_ROOT_PORT
    | PCIE_SWITCH_UPSTREAM_PORT
    | PCIE_SWITCH_DOWNSTREAM_PORT
    | DMI_TO_PCI_BRIDGE
    | PCI_EXPANDER_BUS
    | PCIE_EXPANDER_BUS
    | PCI_BRIDGE
    | PCIE_TO_PCI_BRIDGE;
const TYPES_ENDPOINT: u32 = PCI_DEVICE | PCIE_DEVICE;
const SLOT_LAST: u32 = 31;

fn addr_err(code: ErrorNumber, msg: impl Into<String>) -> Error {
    Error::new(ErrorDomain::DOMAIN, code, msg)
}

fn internal(msg: impl Into<String>) -> Error {
    Error::new(ErrorDomain::QEMU, ErrorNumber::INTERNAL_ERROR, msg)
}

/// The PCI controller models.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PciModel {
    /// `pci-root`.
    PciRoot,
    /// `pcie-root`.
    PcieRoot,
    /// `pci-bridge`.
    PciBridge,
    /// `dmi-to-pci-bridge`.
    DmiToPciBridge,
    /// `pcie-to-pci-bridge`.
    PcieToPciBridge,
    /// `pcie-root-port`.
    PcieRootPort,
    /// `pcie-switch-upstream-port`.
    SwitchUpstreamPort,
    /// `pcie-switch-downstream-port`.
    SwitchDownstreamPort,
    /// `pci-expander-bus`.
    PciExpanderBus,
    /// `pcie-expander-bus`.
    PcieExpanderBus,
}

impl PciModel {
    /// From the `model` attribute.
    pub fn parse(s: &str) -> Option<PciModel> {
        Some(match s {
            "pci-root" => PciModel::PciRoot,
            "pcie-root" => PciModel::PcieRoot,
            "pci-bridge" => PciModel::PciBridge,
            "dmi-to-pci-bridge" => PciModel::DmiToPciBridge,
            "pcie-to-pci-bridge" => PciModel::PcieToPciBridge,
            "pcie-root-port" => PciModel::PcieRootPort,
            "pcie-switch-upstream-port" => PciModel::SwitchUpstreamPort,
            "pcie-switch-downstream-port" => PciModel::SwitchDownstreamPort,
            "pci-expander-bus" => PciModel::PciExpanderBus,
            "pcie-expander-bus" => PciModel::PcieExpanderBus,
            _ => return None,
        })
    }

    /// The `model` attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            PciModel::PciRoot => "pci-root",
            PciModel::PcieRoot => "pcie-root",
            PciModel::PciBridge => "pci-bridge",
            PciModel::DmiToPciBridge => "dmi-to-pci-bridge",
            PciModel::PcieToPciBridge => "pcie-to-pci-bridge",
            PciModel::PcieRootPort => "pcie-root-port",
            PciModel::SwitchUpstreamPort => "pcie-switch-upstream-port",
            PciModel::SwitchDownstreamPort => "pcie-switch-downstream-port",
            PciModel::PciExpanderBus => "pci-expander-bus",
            PciModel::PcieExpanderBus => "pcie-expander-bus",
        }
    }

    /// What the controller itself plugs into.
    fn connect_type(self) -> u32 {
        match self {
            PciModel::PciRoot | PciModel::PcieRoot => 0,
            PciModel::PciBridge => PCI_BRIDGE,
            PciModel::PciExpanderBus => PCI_EXPANDER_BUS,
            PciModel::PcieExpanderBus => PCIE_EXPANDER_BUS,
            PciModel::DmiToPciBridge => DMI_TO_PCI_BRIDGE,
            PciModel::PcieToPciBridge => PCIE_TO_PCI_BRIDGE,
            PciModel::PcieRootPort => PCIE_ROOT_PORT | AGGREGATE_SLOT,
            PciModel::SwitchUpstreamPort => PCIE_SWITCH_UPSTREAM_PORT,
            PciModel::SwitchDownstreamPort => PCIE_SWITCH_DOWNSTREAM_PORT,
        }
    }
}

/// A PCI address.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
struct PciAddr {
    domain: u32,
    bus: u32,
    slot: u32,
    function: u32,
    multi: Option<bool>,
}

impl PciAddr {
    fn text(&self) -> String {
        format!(
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.slot, self.function
        )
    }

    fn same_function(&self, o: &PciAddr) -> bool {
        self.domain == o.domain
            && self.bus == o.bus
            && self.slot == o.slot
            && self.function == o.function
    }

    fn to_address(self) -> Address {
        Address::Pci {
            domain: self.domain,
            bus: self.bus,
            slot: self.slot,
            function: self.function,
            multifunction: self.multi,
        }
    }
}

/// The PCI address of a device, when it has a complete one.
fn present(info: &DeviceInfo) -> Option<PciAddr> {
    match info.address {
        Some(Address::Pci {
            domain,
            bus,
            slot,
            function,
            multifunction,
        }) if (domain, bus, slot, function) != (0, 0, 0, 0) => Some(PciAddr {
            domain,
            bus,
            slot,
            function,
            multi: multifunction,
        }),
        _ => None,
    }
}

/// Whether the device still needs a PCI address: none at all, or a PCI
/// address with nothing in it.
fn wanted(info: &DeviceInfo) -> bool {
    match &info.address {
        None => true,
        Some(Address::Pci {
            domain,
            bus,
            slot,
            function,
            ..
        }) => (*domain, *bus, *slot, *function) == (0, 0, 0, 0),
        Some(_) => false,
    }
}

fn set_addr(info: &mut DeviceInfo, a: PciAddr) {
    info.address = Some(a.to_address());
}

#[derive(Clone, Copy, Default)]
struct Slot {
    functions: u8,
    aggregate: bool,
}

#[derive(Clone, Default)]
struct Bus {
    model: Option<PciModel>,
    flags: u32,
    min_slot: u32,
    max_slot: u32,
    slots: [Slot; 32],
}

impl Bus {
    fn set_model(&mut self, model: PciModel, hotplug: bool) {
        let hp = if hotplug { HOTPLUGGABLE } else { 0 };
        let (flags, min, max) = match model {
            PciModel::PciRoot => (
                AUTOASSIGN | PCI_DEVICE | PCI_BRIDGE | PCI_EXPANDER_BUS | hp,
                1,
                SLOT_LAST,
            ),
            PciModel::PciBridge | PciModel::PcieToPciBridge => {
                (AUTOASSIGN | PCI_DEVICE | PCI_BRIDGE | hp, 1, SLOT_LAST)
            }
            PciModel::PciExpanderBus => (AUTOASSIGN | PCI_DEVICE | PCI_BRIDGE | hp, 0, SLOT_LAST),
            PciModel::PcieRoot => (
                PCIE_DEVICE | PCIE_ROOT_PORT | DMI_TO_PCI_BRIDGE | PCIE_EXPANDER_BUS,
                1,
                SLOT_LAST,
            ),
            PciModel::DmiToPciBridge => (PCI_DEVICE | PCI_BRIDGE, 0, SLOT_LAST),
            PciModel::PcieRootPort | PciModel::SwitchDownstreamPort => (
                AUTOASSIGN | PCIE_DEVICE | PCIE_SWITCH_UPSTREAM_PORT | PCIE_TO_PCI_BRIDGE | hp,
                0,
                0,
            ),
            PciModel::SwitchUpstreamPort => (PCIE_SWITCH_DOWNSTREAM_PORT, 0, SLOT_LAST),
            PciModel::PcieExpanderBus => (PCIE_ROOT_PORT | DMI_TO_PCI_BRIDGE, 0, SLOT_LAST),
        };
        self.flags = flags;
        self.min_slot = min;
        self.max_slot = max;
        self.model = Some(model);
    }

    fn fully_reserved(&self) -> bool {
        (self.min_slot..=self.max_slot).all(|s| self.slots[s as usize].functions != 0)
    }
}

struct AddrSet {
    buses: Vec<Bus>,
    dry_run: bool,
    pcie_to_pci_bridge: bool,
}

fn flags_compatible(
    addr: &PciAddr,
    mut bus_flags: u32,
    mut dev_flags: u32,
    from_config: bool,
) -> std::result::Result<(), String> {
    let text = addr.text();
    if dev_flags & INTEGRATED != 0 {
        if addr.bus == 0 {
            bus_flags |= AUTOASSIGN;
        } else {
            return Err(format!(
                "The device at PCI address {text} needs to be an integrated device (bus=0)"
            ));
        }
    }
    if from_config {
        if bus_flags & TYPES_ENDPOINT != 0 {
            bus_flags |= TYPES_ENDPOINT;
        }
        if dev_flags & PCI_BRIDGE != 0 {
            dev_flags |= PCI_DEVICE;
        }
    } else if dev_flags & AUTOASSIGN != 0 && bus_flags & AUTOASSIGN == 0 {
        return Err(format!(
            "The device at PCI address {text} was auto-assigned this address, but the PCI controller with index='{}' doesn't allow auto-assignment",
            addr.bus
        ));
    }
    if dev_flags & HOTPLUGGABLE != 0 && bus_flags & HOTPLUGGABLE == 0 {
        return Err(format!(
            "The device at PCI address {text} requires hotplug capability, but the PCI controller with index='{}' doesn't support hotplug",
            addr.bus
        ));
    }
    if dev_flags & bus_flags & TYPES_MASK == 0 {
        let what = [
            (PCI_DEVICE, "standard PCI device"),
            (PCIE_DEVICE, "PCI Express device"),
            (PCIE_ROOT_PORT, "pcie-root-port"),
            (PCIE_SWITCH_UPSTREAM_PORT, "pcie-switch-upstream-port"),
            (PCIE_SWITCH_DOWNSTREAM_PORT, "pcie-switch-downstream-port"),
            (DMI_TO_PCI_BRIDGE, "dmi-to-pci-bridge"),
            (PCIE_TO_PCI_BRIDGE, "pcie-to-pci-bridge"),
            (PCI_EXPANDER_BUS, "pci-expander-bus"),
            (PCIE_EXPANDER_BUS, "pcie-expander-bus"),
            (PCI_BRIDGE, "pci-bridge"),
        ]
        .iter()
        .find(|(f, _)| dev_flags & f != 0)
        .map(|(_, s)| *s);
        return Err(match what {
            Some(w) => format!(
                "The device at PCI address {text} cannot be plugged into the PCI controller with index='{}'. It requires a controller that accepts a {w}.",
                addr.bus
            ),
            None => format!(
                "The device at PCI address {text} has unrecognized connection type flags 0x{:02x}",
                dev_flags & TYPES_MASK
            ),
        });
    }
    Ok(())
}

impl AddrSet {
    fn new(nbuses: usize, dry_run: bool, pcie_to_pci_bridge: bool) -> AddrSet {
        AddrSet {
            buses: vec![Bus::default(); nbuses],
            dry_run,
            pcie_to_pci_bridge,
        }
    }

    fn code(from_config: bool) -> ErrorNumber {
        if from_config {
            ErrorNumber::XML_ERROR
        } else {
            ErrorNumber::INTERNAL_ERROR
        }
    }

    fn validate(&self, addr: &PciAddr, flags: u32, from_config: bool) -> Result<()> {
        let code = Self::code(from_config);
        let text = addr.text();
        if self.buses.is_empty() {
            return Err(addr_err(code, "No PCI buses available"));
        }
        if addr.domain != 0 {
            return Err(addr_err(
                code,
                format!("Invalid PCI address {text}. Only PCI domain 0 is available"),
            ));
        }
        let Some(bus) = self.buses.get(addr.bus as usize) else {
            return Err(addr_err(
                code,
                format!(
                    "Invalid PCI address {text}. Only PCI buses up to {} are available",
                    self.buses.len() - 1
                ),
            ));
        };
        flags_compatible(addr, bus.flags, flags, from_config).map_err(|m| addr_err(code, m))?;
        if bus.min_slot > 0 && addr.slot < bus.min_slot {
            return Err(addr_err(
                code,
                format!(
                    "Invalid PCI address {text}. slot must be >= {}",
                    bus.min_slot
                ),
            ));
        }
        if addr.slot > bus.max_slot {
            return Err(addr_err(
                code,
                format!(
                    "Invalid PCI address {text}. slot must be <= {}",
                    bus.max_slot
                ),
            ));
        }
        if addr.function > 7 {
            return Err(addr_err(
                code,
                format!("Invalid PCI address {text}. function must be <= 7"),
            ));
        }
        Ok(())
    }

    /// Adds buses so that `addr.bus` exists, choosing the controller model
    /// from what the device needs (dry run only).
    fn grow(&mut self, addr: &mut PciAddr, flags: u32) -> Result<()> {
        let have = self.buses.len() as i64;
        let mut add = addr.bus as i64 - have + 1;
        if add <= 0 {
            return Ok(());
        }
        let model;
        let mut need_dmi = false;
        let mut need_pcie_to_pci = false;
        if flags & PCI_DEVICE != 0 {
            model = PciModel::PciBridge;
            let has_bridge_slot = self.buses.iter().any(|b| b.flags & PCI_BRIDGE != 0);
            if !has_bridge_slot {
                if self.pcie_to_pci_bridge {
                    need_pcie_to_pci = true;
                } else {
                    need_dmi = true;
                }
            }
            if (need_dmi || need_pcie_to_pci) && add == 1 {
                add += 1;
                addr.bus += 1;
            }
        } else if flags & (PCIE_DEVICE | PCIE_SWITCH_UPSTREAM_PORT) != 0 {
            model = PciModel::PcieRootPort;
        } else {
            return Err(internal(format!(
                "Cannot automatically add a new PCI bus for a device with connect flags {:02x}",
                flags
            )));
        }
        let mut i = self.buses.len();
        self.buses
            .resize(self.buses.len() + add as usize, Bus::default());
        if need_dmi {
            self.buses[i].set_model(PciModel::DmiToPciBridge, false);
            i += 1;
        }
        if need_pcie_to_pci {
            // A root port that only takes the bridge, so that the spare
            // hotplug root port is still added later.
            self.buses[i].set_model(PciModel::PcieRootPort, true);
            self.buses[i].flags = PCIE_TO_PCI_BRIDGE;
            i += 1;
            self.buses[i].set_model(PciModel::PcieToPciBridge, true);
            i += 1;
        }
        while i < self.buses.len() {
            self.buses[i].set_model(model, true);
            i += 1;
        }
        Ok(())
    }

    fn slot_in_use(&self, addr: &PciAddr) -> bool {
        self.buses
            .get(addr.bus as usize)
            .is_some_and(|b| b.slots[addr.slot as usize & 31].functions != 0)
    }

    fn reserve_internal(
        &mut self,
        addr: &mut PciAddr,
        flags: u32,
        from_config: bool,
    ) -> Result<()> {
        if self.dry_run {
            self.grow(addr, flags)?;
        }
        self.validate(addr, flags, from_config)?;
        let bus = &mut self.buses[addr.bus as usize];
        let slot = &mut bus.slots[addr.slot as usize];
        if slot.functions & (1 << addr.function) != 0 {
            return Err(addr_err(
                Self::code(from_config),
                format!("Attempted double use of PCI Address {}", addr.text()),
            ));
        }
        if slot.functions == 0 && flags & AGGREGATE_SLOT != 0 {
            slot.aggregate = true;
        }
        slot.functions |= 1 << addr.function;
        Ok(())
    }

    /// Reserves an address given in the configuration.
    fn reserve(&mut self, addr: &PciAddr, flags: u32) -> Result<()> {
        let mut a = *addr;
        self.reserve_internal(&mut a, flags, true)
    }

    fn find_on_bus(bus: &Bus, a: &mut PciAddr, function: Option<u32>, flags: u32) -> bool {
        if flags_compatible(a, bus.flags, flags, false).is_err() {
            return false;
        }
        while a.slot <= bus.max_slot {
            let s = bus.slots[a.slot as usize];
            if s.functions == 0 {
                return true;
            }
            if flags & AGGREGATE_SLOT != 0 && s.aggregate {
                if s.functions & (1 << a.function) == 0 {
                    return true;
                }
                if function.is_none() {
                    while a.function < 8 {
                        if s.functions & (1 << a.function) == 0 {
                            return true;
                        }
                        a.function += 1;
                    }
                    a.function = 0;
                }
            }
            a.slot += 1;
        }
        false
    }

    fn next_addr(&mut self, flags: u32, function: Option<u32>) -> Result<PciAddr> {
        if self.buses.is_empty() {
            return Err(addr_err(ErrorNumber::XML_ERROR, "No PCI buses available"));
        }
        let mut a = PciAddr {
            function: function.unwrap_or(0),
            ..Default::default()
        };
        for b in 0..self.buses.len() {
            a.bus = b as u32;
            a.slot = self.buses[b].min_slot;
            if Self::find_on_bus(&self.buses[b], &mut a, function, flags) {
                return Ok(a);
            }
        }
        // Isolation groups are all the same here, so the second search
        // libvirt makes (empty buses of another group) finds nothing new.
        if self.dry_run {
            a.bus = self.buses.len() as u32;
            self.grow(&mut a, flags)?;
            a.slot = self.buses[a.bus as usize].min_slot;
            return Ok(a);
        }
        Err(internal("No more available PCI slots"))
    }

    /// Picks the next free compatible slot, reserves `function` (or
    /// function 0) on it and, outside a dry run, gives it to `info`.
    fn reserve_next(
        &mut self,
        info: &mut DeviceInfo,
        flags: u32,
        function: Option<u32>,
    ) -> Result<PciAddr> {
        let mut a = self.next_addr(flags, function)?;
        self.reserve_internal(&mut a, flags, false)?;
        if !self.dry_run {
            set_addr(info, a);
        }
        Ok(a)
    }
}

// ------------------------------------------------------------ devices

/// A device of the definition that may have an address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dev {
    Disk(usize),
    Controller(usize),
    Fs(usize),
    Net(usize),
    Sound(usize),
    Hostdev(usize),
    Video(usize),
    Watchdog(usize),
    Memballoon,
    Rng(usize),
    Shmem(usize),
    Input(usize),
    Serial(usize),
    Parallel(usize),
    Channel(usize),
    Console(usize),
    Smartcard(usize),
    Redirdev(usize),
    Hub(usize),
    Tpm(usize),
    Panic(usize),
    Memory(usize),
    Iommu,
    Vsock,
    Crypto(usize),
}

fn all_devices(d: &Devices) -> Vec<Dev> {
    let mut v = Vec::new();
    v.extend((0..d.disks.len()).map(Dev::Disk));
    v.extend((0..d.interfaces.len()).map(Dev::Net));
    v.extend((0..d.sounds.len()).map(Dev::Sound));
    v.extend((0..d.hostdevs.len()).map(Dev::Hostdev));
    v.extend((0..d.videos.len()).map(Dev::Video));
    v.extend((0..d.controllers.len()).map(Dev::Controller));
    v.extend((0..d.smartcards.len()).map(Dev::Smartcard));
    v.extend((0..d.serials.len()).map(Dev::Serial));
    v.extend((0..d.parallels.len()).map(Dev::Parallel));
    v.extend((0..d.channels.len()).map(Dev::Channel));
    v.extend((0..d.consoles.len()).map(Dev::Console));
    v.extend((0..d.inputs.len()).map(Dev::Input));
    v.extend((0..d.filesystems.len()).map(Dev::Fs));
    v.extend((0..d.watchdogs.len()).map(Dev::Watchdog));
    if d.memballoon.is_some() {
        v.push(Dev::Memballoon);
    }
    v.extend((0..d.hubs.len()).map(Dev::Hub));
    v.extend((0..d.shmems.len()).map(Dev::Shmem));
    v.extend((0..d.tpms.len()).map(Dev::Tpm));
    v.extend((0..d.panics.len()).map(Dev::Panic));
    v.extend((0..d.memories.len()).map(Dev::Memory));
    v.extend((0..d.redirdevs.len()).map(Dev::Redirdev));
    v.extend((0..d.rngs.len()).map(Dev::Rng));
    if d.iommu.is_some() {
        v.push(Dev::Iommu);
    }
    if d.vsock.is_some() {
        v.push(Dev::Vsock);
    }
    v.extend((0..d.cryptos.len()).map(Dev::Crypto));
    v
}

fn info(d: &Devices, dev: Dev) -> Option<&DeviceInfo> {
    Some(match dev {
        Dev::Disk(i) => &d.disks.get(i)?.info,
        Dev::Controller(i) => &d.controllers.get(i)?.info,
        Dev::Fs(i) => &d.filesystems.get(i)?.info,
        Dev::Net(i) => &d.interfaces.get(i)?.info,
        Dev::Sound(i) => &d.sounds.get(i)?.info,
        Dev::Hostdev(i) => &d.hostdevs.get(i)?.info,
        Dev::Video(i) => &d.videos.get(i)?.info,
        Dev::Watchdog(i) => &d.watchdogs.get(i)?.info,
        Dev::Memballoon => &d.memballoon.as_ref()?.info,
        Dev::Rng(i) => &d.rngs.get(i)?.info,
        Dev::Shmem(i) => &d.shmems.get(i)?.info,
        Dev::Input(i) => &d.inputs.get(i)?.info,
        Dev::Serial(i) => &d.serials.get(i)?.info,
        Dev::Parallel(i) => &d.parallels.get(i)?.info,
        Dev::Channel(i) => &d.channels.get(i)?.info,
        Dev::Console(i) => &d.consoles.get(i)?.info,
        Dev::Smartcard(i) => &d.smartcards.get(i)?.info,
        Dev::Redirdev(i) => &d.redirdevs.get(i)?.info,
        Dev::Hub(i) => &d.hubs.get(i)?.info,
        Dev::Tpm(i) => &d.tpms.get(i)?.info,
        Dev::Panic(i) => &d.panics.get(i)?.info,
        Dev::Memory(i) => &d.memories.get(i)?.info,
        Dev::Iommu => &d.iommu.as_ref()?.info,
        Dev::Vsock => &d.vsock.as_ref()?.info,
        Dev::Crypto(i) => &d.cryptos.get(i)?.info,
    })
}

fn info_mut(d: &mut Devices, dev: Dev) -> Option<&mut DeviceInfo> {
    Some(match dev {
        Dev::Disk(i) => &mut d.disks.get_mut(i)?.info,
        Dev::Controller(i) => &mut d.controllers.get_mut(i)?.info,
        Dev::Fs(i) => &mut d.filesystems.get_mut(i)?.info,
        Dev::Net(i) => &mut d.interfaces.get_mut(i)?.info,
        Dev::Sound(i) => &mut d.sounds.get_mut(i)?.info,
        Dev::Hostdev(i) => &mut d.hostdevs.get_mut(i)?.info,
        Dev::Video(i) => &mut d.videos.get_mut(i)?.info,
        Dev::Watchdog(i) => &mut d.watchdogs.get_mut(i)?.info,
        Dev::Memballoon => &mut d.memballoon.as_mut()?.info,
        Dev::Rng(i) => &mut d.rngs.get_mut(i)?.info,
        Dev::Shmem(i) => &mut d.shmems.get_mut(i)?.info,
        Dev::Input(i) => &mut d.inputs.get_mut(i)?.info,
        Dev::Serial(i) => &mut d.serials.get_mut(i)?.info,
        Dev::Parallel(i) => &mut d.parallels.get_mut(i)?.info,
        Dev::Channel(i) => &mut d.channels.get_mut(i)?.info,
        Dev::Console(i) => &mut d.consoles.get_mut(i)?.info,
        Dev::Smartcard(i) => &mut d.smartcards.get_mut(i)?.info,
        Dev::Redirdev(i) => &mut d.redirdevs.get_mut(i)?.info,
        Dev::Hub(i) => &mut d.hubs.get_mut(i)?.info,
        Dev::Tpm(i) => &mut d.tpms.get_mut(i)?.info,
        Dev::Panic(i) => &mut d.panics.get_mut(i)?.info,
        Dev::Memory(i) => &mut d.memories.get_mut(i)?.info,
        Dev::Iommu => &mut d.iommu.as_mut()?.info,
        Dev::Vsock => &mut d.vsock.as_mut()?.info,
        Dev::Crypto(i) => &mut d.cryptos.get_mut(i)?.info,
    })
}

/// Whether a USB controller model is part of an ICH9 USB2 set.
fn is_usb2(c: &Controller) -> bool {
    c.ctype == "usb"
        && matches!(
            c.model.as_deref(),
            Some("ich9-ehci1" | "ich9-uhci1" | "ich9-uhci2" | "ich9-uhci3")
        )
}

/// The machine-level facts PCI assignment depends on.
#[derive(Clone, Copy, Debug)]
pub struct Machine {
    /// An i440fx (`pc`) machine.
    pub i440fx: bool,
    /// A q35 machine.
    pub q35: bool,
}

struct Flags {
    pcie: u32,
    virtio: u32,
}

impl Flags {
    fn new(def: &DomainDef, qc: &QemuCaps) -> Flags {
        let pcie = if has_pcie_root(def) {
            PCIE_DEVICE | AUTOASSIGN
        } else {
            PCI_DEVICE | AUTOASSIGN
        };
        let virtio = if qc.has_type("virtio-blk-pci-transitional") {
            pcie
        } else {
            PCI_DEVICE | AUTOASSIGN
        };
        Flags { pcie, virtio }
    }
}

fn has_pcie_root(def: &DomainDef) -> bool {
    def.devices
        .controllers
        .iter()
        .any(|c| c.ctype == "pci" && c.index == 0 && c.model.as_deref() == Some("pcie-root"))
}

fn has_pci_root(def: &DomainDef) -> bool {
    def.devices
        .controllers
        .iter()
        .any(|c| c.ctype == "pci" && c.index == 0 && c.model.as_deref() == Some("pci-root"))
}

fn elem_child_attr<'a>(e: &'a Element, child: &str, attr: &str) -> Option<&'a str> {
    e.elements()
        .find(|c| c.name == child)
        .and_then(|c| c.attr(attr))
}

/// What a device plugs into (0: not a PCI device).
fn connect_flags(d: &Devices, dev: Dev, f: &Flags) -> u32 {
    let pci = PCI_DEVICE | AUTOASSIGN;
    let transitional = |m: Option<&str>, otherwise: u32| {
        if m == Some("virtio-transitional") {
            pci
        } else {
            otherwise
        }
    };
    match dev {
        Dev::Controller(i) => {
            let c = &d.controllers[i];
            let m = c.model.as_deref();
            match c.ctype.as_str() {
                "pci" => m
                    .and_then(PciModel::parse)
                    .map_or(0, PciModel::connect_type),
                "sata" | "ide" => pci,
                "usb" => match m {
                    Some("none" | "qusb1" | "qusb2") => 0,
                    Some("nec-xhci" | "qemu-xhci") => f.pcie,
                    _ => pci,
                },
                "scsi" => match m {
                    None | Some("ncr53c90") => 0,
                    Some("virtio-scsi" | "virtio-non-transitional") => f.virtio,
                    Some(_) => pci,
                },
                "virtio-serial" => transitional(m, f.virtio),
                _ => 0,
            }
        }
        Dev::Fs(i) => {
            let e = &d.filesystems[i].elem;
            match elem_child_attr(e, "driver", "type") {
                None | Some("path" | "handle") => transitional(e.attr("model"), f.virtio),
                Some("virtiofs") => f.virtio,
                Some(_) => 0,
            }
        }
        Dev::Net(i) => {
            let n = &d.interfaces[i];
            if n.iface_type == "hostdev" {
                return 0;
            }
            match n.model.as_deref() {
                Some("usb-net") => 0,
                Some("virtio" | "virtio-non-transitional") => f.virtio,
                Some("virtio-transitional") => pci,
                Some("e1000e" | "igb") | None => f.pcie,
                Some(_) => pci,
            }
        }
        Dev::Sound(i) => match d.sounds[i].attr("model") {
            Some("es1370" | "ac97" | "ich6" | "ich9") => pci,
            _ => 0,
        },
        Dev::Disk(i) => {
            let disk = &d.disks[i];
            if disk.target_bus.as_deref() == Some("virtio") {
                transitional(disk.model.as_deref(), f.virtio)
            } else {
                0
            }
        }
        Dev::Hostdev(i) => {
            let h = &d.hostdevs[i].elem;
            if h.attr("mode").unwrap_or("subsystem") != "subsystem" {
                return 0;
            }
            match h.attr("type") {
                Some("pci" | "mdev") => f.pcie,
                Some("scsi_host") => transitional(h.attr("model"), f.virtio),
                _ => 0,
            }
        }
        Dev::Memballoon => match d.memballoon.as_ref().and_then(|m| m.attr("model")) {
            Some("virtio-transitional") => pci,
            Some("virtio" | "virtio-non-transitional") => f.virtio,
            _ => 0,
        },
        Dev::Rng(i) => transitional(d.rngs[i].attr("model"), f.virtio),
        Dev::Watchdog(i) => {
            if d.watchdogs[i].attr("model") == Some("i6300esb") {
                pci
            } else {
                0
            }
        }
        Dev::Video(i) => match d.videos[i].model.as_str() {
            "virtio" => f.virtio,
            "vga" | "cirrus" | "vmvga" | "xen" | "vbox" | "qxl" | "parallels" => pci,
            "bochs" => f.pcie,
            _ => 0,
        },
        Dev::Shmem(_) => pci,
        Dev::Input(i) => {
            let inp = &d.inputs[i];
            if inp.bus.as_deref() == Some("virtio") {
                transitional(inp.model.as_deref(), f.virtio)
            } else {
                0
            }
        }
        Dev::Serial(i) => {
            if d.serials[i].target_type.as_deref() == Some("pci-serial") {
                pci
            } else {
                0
            }
        }
        Dev::Iommu => match d.iommu.as_ref().and_then(|m| m.attr("model")) {
            Some("virtio") => f.virtio | INTEGRATED,
            _ => 0,
        },
        Dev::Vsock => transitional(d.vsock.as_ref().and_then(|m| m.attr("model")), f.virtio),
        Dev::Memory(i) => match d.memories[i].attr("model") {
            Some("virtio-pmem" | "virtio-mem") => f.virtio,
            _ => 0,
        },
        Dev::Crypto(_) => pci,
        Dev::Panic(i) => match d.panics[i].attr("model") {
            Some("pvpanic") => pci | INTEGRATED,
            _ => 0,
        },
        Dev::Parallel(_)
        | Dev::Channel(_)
        | Dev::Console(_)
        | Dev::Smartcard(_)
        | Dev::Redirdev(_)
        | Dev::Hub(_)
        | Dev::Tpm(_) => 0,
    }
}

/// Builds the address set of the current definition with `nbuses` buses
/// and reserves every address the configuration already gives.
fn create_set(def: &DomainDef, qc: &QemuCaps, nbuses: usize, dry_run: bool) -> Result<AddrSet> {
    let mut set = AddrSet::new(nbuses, dry_run, qc.has_type("pcie-pci-bridge"));
    let mut pcie_root = false;
    for c in def.devices.controllers.iter().filter(|c| c.ctype == "pci") {
        let idx = c.index as usize;
        if idx >= set.buses.len() {
            return Err(internal(format!(
                "Inappropriate new pci controller index {idx} exceeds addrs array length"
            )));
        }
        let model = c
            .model
            .as_deref()
            .and_then(PciModel::parse)
            .ok_or_else(|| internal("PCI controller model was not set correctly"))?;
        let hotplug = controller_target_attr(c, "hotplug") != Some("off");
        set.buses[idx].set_model(model, hotplug);
        if model == PciModel::PcieRoot {
            pcie_root = true;
        }
    }
    if let Some(b0) = set.buses.first_mut() {
        if b0.model.is_none() {
            b0.set_model(PciModel::PciRoot, true);
        }
    }
    let default_model = if pcie_root {
        PciModel::PcieRootPort
    } else {
        PciModel::PciBridge
    };
    for b in set.buses.iter_mut().skip(1) {
        if b.model.is_none() {
            b.set_model(default_model, true);
        }
    }
    let flags = Flags::new(def, qc);
    for dev in all_devices(&def.devices) {
        let Some(inf) = info(&def.devices, dev) else {
            continue;
        };
        let Some(addr) = present(inf) else {
            continue;
        };
        let mut fl = connect_flags(&def.devices, dev, &flags);
        if fl == 0 {
            fl = PCI_DEVICE;
        }
        // The PIIX3 IDE and USB functions of slot 1 are reserved with the
        // chipset, not here.
        if let Dev::Controller(i) = dev {
            let c = &def.devices.controllers[i];
            if addr.domain == 0 && addr.bus == 0 && addr.slot == 1 {
                let piix3 = (c.ctype == "ide" && c.index == 0 && addr.function == 1)
                    || (c.ctype == "usb"
                        && c.index == 0
                        && matches!(c.model.as_deref(), None | Some("piix3-uhci"))
                        && addr.function == 2);
                if piix3 {
                    if set.buses.first().is_some_and(|b| b.flags & PCI_DEVICE == 0) {
                        return Err(internal(
                            "Bus 0 must be PCI for integrated PIIX3 USB or IDE controllers",
                        ));
                    }
                    continue;
                }
            }
        }
        set.reserve(&addr, fl)?;
    }
    Ok(set)
}

fn controller_target_attr<'a>(c: &'a Controller, name: &str) -> Option<&'a str> {
    c.target.as_ref().and_then(|t| t.attr(name))
}

fn reserve_piix3(def: &mut DomainDef, set: &mut AddrSet, f: &Flags) -> Result<()> {
    let flags = AUTOASSIGN | PCI_DEVICE;
    let ide = PciAddr {
        slot: 1,
        function: 1,
        ..Default::default()
    };
    let usb = PciAddr {
        slot: 1,
        function: 2,
        ..Default::default()
    };
    for c in def.devices.controllers.iter_mut() {
        let target = if c.ctype == "ide" && c.index == 0 {
            (ide, "Primary IDE controller must have PCI address 0:0:1.1")
        } else if c.ctype == "usb"
            && c.index == 0
            && matches!(c.model.as_deref(), None | Some("piix3-uhci"))
        {
            (
                usb,
                "PIIX3 USB controller at index 0 must have PCI address 0:0:1.2",
            )
        } else {
            continue;
        };
        match present(&c.info) {
            Some(a) if !a.same_function(&target.0) => return Err(internal(target.1)),
            Some(_) => {}
            None => set_addr(&mut c.info, target.0),
        }
        if !set.buses.is_empty() {
            set.reserve(&target.0, flags)?;
        }
    }
    if !set.buses.is_empty() {
        for function in [0, 3] {
            set.reserve(
                &PciAddr {
                    slot: 1,
                    function,
                    ..Default::default()
                },
                flags,
            )?;
        }
    }
    primary_video(def, set, 2, flags, f)
}

/// Puts the primary video at `slot` of bus 0 when that slot is free.
fn primary_video(
    def: &mut DomainDef,
    set: &mut AddrSet,
    slot: u32,
    flags: u32,
    f: &Flags,
) -> Result<()> {
    let Some(v) = def.devices.videos.first() else {
        return Ok(());
    };
    if v.model == "none" || v.model == "ramfb" || !wanted(&v.info) {
        return Ok(());
    }
    let tmp = PciAddr {
        slot,
        ..Default::default()
    };
    set.validate(&tmp, flags, true)?;
    if set.slot_in_use(&tmp) {
        let fl = connect_flags(&def.devices, Dev::Video(0), f);
        set.reserve_next(&mut def.devices.videos[0].info, fl, None)?;
    } else {
        set.reserve(&tmp, flags)?;
        set_addr(&mut def.devices.videos[0].info, tmp);
    }
    Ok(())
}

fn reserve_q35(def: &mut DomainDef, set: &mut AddrSet, f: &Flags) -> Result<()> {
    let flags = PCIE_DEVICE;
    let sata = PciAddr {
        slot: 0x1f,
        function: 2,
        ..Default::default()
    };
    for i in 0..def.devices.controllers.len() {
        let c = &def.devices.controllers[i];
        match c.ctype.as_str() {
            "sata" if c.index == 0 => match present(&c.info) {
                Some(a) if !a.same_function(&sata) => {
                    return Err(internal(
                        "Primary SATA controller must have PCI address 0:0:1f.2",
                    ))
                }
                Some(_) => {}
                None => set_addr(&mut def.devices.controllers[i].info, sata),
            },
            "usb" if c.model.as_deref() == Some("ich9-uhci1") && c.info.address.is_none() => {
                let mut tmp = PciAddr {
                    slot: 0x1d,
                    ..Default::default()
                };
                let mut assign = !set.slot_in_use(&tmp);
                if !assign {
                    tmp.slot = 0x1a;
                    assign = !set.slot_in_use(&tmp);
                }
                if assign {
                    set.reserve(&tmp, flags)?;
                    tmp.multi = Some(true);
                    set_addr(&mut def.devices.controllers[i].info, tmp);
                }
            }
            "pci"
                if c.model.as_deref() == Some("dmi-to-pci-bridge") && c.info.address.is_none() =>
            {
                let tmp = PciAddr {
                    slot: 0x1e,
                    ..Default::default()
                };
                if !set.slot_in_use(&tmp) {
                    set.reserve(&tmp, flags)?;
                    set_addr(&mut def.devices.controllers[i].info, tmp);
                }
            }
            _ => {}
        }
    }
    if !set.buses.is_empty() {
        for function in [0, 3] {
            set.reserve(
                &PciAddr {
                    slot: 0x1f,
                    function,
                    ..Default::default()
                },
                flags,
            )?;
        }
    }
    primary_video(def, set, 1, flags, f)?;
    let audio = PciAddr {
        slot: 0x1b,
        ..Default::default()
    };
    if !set.slot_in_use(&audio) {
        if let Some(s) = def
            .devices
            .sounds
            .iter_mut()
            .find(|s| s.attr("model") == Some("ich9") && wanted(&s.info))
        {
            set.reserve(&audio, flags)?;
            set_addr(&mut s.info, audio);
        }
    }
    Ok(())
}

fn reserve_chipset(
    def: &mut DomainDef,
    qc: &QemuCaps,
    set: &mut AddrSet,
    m: Machine,
) -> Result<()> {
    let f = Flags::new(def, qc);
    if m.i440fx {
        reserve_piix3(def, set, &f)?;
    }
    if m.q35 {
        reserve_q35(def, set, &f)?;
    }
    Ok(())
}

/// Gives every device that wants one a PCI address, in libvirt's order.
fn assign_slots(def: &mut DomainDef, qc: &QemuCaps, set: &mut AddrSet) -> Result<()> {
    let f = Flags::new(def, qc);
    let next = |def: &mut DomainDef, set: &mut AddrSet, dev: Dev| -> Result<()> {
        let fl = connect_flags(&def.devices, dev, &f);
        if let Some(inf) = info_mut(&mut def.devices, dev) {
            set.reserve_next(inf, fl, None)?;
        }
        Ok(())
    };
    let wants = |def: &DomainDef, dev: Dev| info(&def.devices, dev).is_some_and(wanted);

    // PCI controllers.
    for i in 0..def.devices.controllers.len() {
        let c = &def.devices.controllers[i];
        if c.ctype != "pci" {
            continue;
        }
        if matches!(c.model.as_deref(), Some("pci-root" | "pcie-root")) || !wanted(&c.info) {
            continue;
        }
        next(def, set, Dev::Controller(i))?;
    }
    for i in 0..def.devices.filesystems.len() {
        if wants(def, Dev::Fs(i)) {
            next(def, set, Dev::Fs(i))?;
        }
    }
    for i in 0..def.devices.interfaces.len() {
        if def.devices.interfaces[i].iface_type == "hostdev" || !wants(def, Dev::Net(i)) {
            continue;
        }
        next(def, set, Dev::Net(i))?;
    }
    for i in 0..def.devices.sounds.len() {
        if !wants(def, Dev::Sound(i)) {
            continue;
        }
        if matches!(
            def.devices.sounds[i].attr("model"),
            Some("sb16" | "pcspk" | "usb")
        ) {
            continue;
        }
        next(def, set, Dev::Sound(i))?;
    }
    // Other controllers (SCSI, USB, virtio-serial, SATA, further IDE).
    for i in 0..def.devices.controllers.len() {
        let c = &def.devices.controllers[i];
        match c.ctype.as_str() {
            "pci" | "fdc" | "ccid" => continue,
            "usb" if c.model.as_deref() == Some("none") => continue,
            "ide" if c.index == 0 => continue,
            "scsi" if c.model.as_deref() == Some("ncr53c90") => continue,
            _ => {}
        }
        if !wanted(&c.info) {
            continue;
        }
        if is_usb2(c) {
            let found = def
                .devices
                .controllers
                .iter()
                .find(|o| is_usb2(o) && o.index == c.index && present(&o.info).is_some())
                .and_then(|o| present(&o.info));
            let (function, multi) = match c.model.as_deref() {
                Some("ich9-ehci1") => (7, None),
                Some("ich9-uhci1") => (0, Some(true)),
                Some("ich9-uhci2") => (1, None),
                _ => (2, None),
            };
            let fl = connect_flags(&def.devices, Dev::Controller(i), &f);
            match found {
                Some(base) => {
                    let a = PciAddr {
                        function,
                        multi,
                        ..base
                    };
                    set.reserve(&a, fl)?;
                    set_addr(&mut def.devices.controllers[i].info, a);
                }
                None => {
                    let info = &mut def.devices.controllers[i].info;
                    let mut a = set.reserve_next(info, fl, Some(function))?;
                    if !set.dry_run {
                        a.multi = multi;
                        set_addr(info, a);
                    }
                }
            }
        } else {
            next(def, set, Dev::Controller(i))?;
        }
    }
    for i in 0..def.devices.disks.len() {
        let d = &def.devices.disks[i];
        if d.target_bus.as_deref() != Some("virtio") || present(&d.info).is_some() {
            continue;
        }
        match &d.info.address {
            Some(Address::Other(e)) if matches!(e.attr("type"), Some("ccw" | "virtio-mmio")) => {
                continue
            }
            _ => {}
        }
        if !wanted(&d.info) {
            return Err(Error::new(
                ErrorDomain::QEMU,
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!(
                    "virtio disk cannot have an address of type '{}'",
                    address_type(d.info.address.as_ref())
                ),
            ));
        }
        next(def, set, Dev::Disk(i))?;
    }
    for i in 0..def.devices.hostdevs.len() {
        let h = &def.devices.hostdevs[i];
        if !wanted(&h.info) || h.elem.attr("mode").unwrap_or("subsystem") != "subsystem" {
            continue;
        }
        let ok = match h.elem.attr("type") {
            Some("pci" | "scsi_host") => true,
            Some("mdev") => h.elem.attr("model") == Some("vfio-pci"),
            _ => false,
        };
        if ok {
            next(def, set, Dev::Hostdev(i))?;
        }
    }
    if def
        .devices
        .memballoon
        .as_ref()
        .is_some_and(|m| m.attr("model") != Some("none") && wanted(&m.info))
    {
        next(def, set, Dev::Memballoon)?;
    }
    for i in 0..def.devices.rngs.len() {
        if wants(def, Dev::Rng(i)) {
            next(def, set, Dev::Rng(i))?;
        }
    }
    for i in 0..def.devices.watchdogs.len() {
        if def.devices.watchdogs[i].attr("model") == Some("i6300esb")
            && wants(def, Dev::Watchdog(i))
        {
            next(def, set, Dev::Watchdog(i))?;
        }
    }
    for i in 0..def.devices.videos.len() {
        let v = &def.devices.videos[i];
        if v.model == "none" || v.model == "ramfb" || !wanted(&v.info) {
            continue;
        }
        next(def, set, Dev::Video(i))?;
    }
    for i in 0..def.devices.shmems.len() {
        if wants(def, Dev::Shmem(i)) {
            next(def, set, Dev::Shmem(i))?;
        }
    }
    for i in 0..def.devices.inputs.len() {
        if def.devices.inputs[i].bus.as_deref() == Some("virtio") && wants(def, Dev::Input(i)) {
            next(def, set, Dev::Input(i))?;
        }
    }
    for i in 0..def.devices.serials.len() {
        if def.devices.serials[i].target_type.as_deref() == Some("pci-serial")
            && wants(def, Dev::Serial(i))
        {
            next(def, set, Dev::Serial(i))?;
        }
    }
    if def
        .devices
        .iommu
        .as_ref()
        .is_some_and(|i| i.attr("model") == Some("virtio") && wanted(&i.info))
    {
        next(def, set, Dev::Iommu)?;
    }
    if def.devices.vsock.as_ref().is_some_and(|v| wanted(&v.info)) {
        next(def, set, Dev::Vsock)?;
    }
    for i in 0..def.devices.memories.len() {
        if matches!(
            def.devices.memories[i].attr("model"),
            Some("virtio-pmem" | "virtio-mem")
        ) && wants(def, Dev::Memory(i))
        {
            next(def, set, Dev::Memory(i))?;
        }
    }
    for i in 0..def.devices.cryptos.len() {
        if wants(def, Dev::Crypto(i)) {
            next(def, set, Dev::Crypto(i))?;
        }
    }
    for i in 0..def.devices.panics.len() {
        if def.devices.panics[i].attr("model") == Some("pvpanic") && wants(def, Dev::Panic(i)) {
            next(def, set, Dev::Panic(i))?;
        }
    }
    Ok(())
}

fn address_type(a: Option<&Address>) -> String {
    match a {
        None => "none".into(),
        Some(Address::Pci { .. }) => "pci".into(),
        Some(Address::Drive { .. }) => "drive".into(),
        Some(Address::VirtioSerial { .. }) => "virtio-serial".into(),
        Some(Address::Ccid { .. }) => "ccid".into(),
        Some(Address::Usb { .. }) => "usb".into(),
        Some(Address::Isa { .. }) => "isa".into(),
        Some(Address::Other(e)) => e.attr("type").unwrap_or("").to_string(),
    }
}

/// Marks function 0 of every slot with more functions in use as
/// multifunction (unless the configuration says otherwise).
fn set_all_multi(d: &mut Devices) {
    let devs = all_devices(d);
    let others: Vec<PciAddr> = devs
        .iter()
        .filter_map(|dev| info(d, *dev).and_then(pci_of))
        .filter(|a| a.function != 0)
        .collect();
    for dev in devs {
        if let Some(inf) = info_mut(d, dev) {
            if let Some(Address::Pci {
                domain,
                bus,
                slot,
                function: 0,
                multifunction,
            }) = &mut inf.address
            {
                if multifunction.is_none()
                    && others
                        .iter()
                        .any(|o| o.domain == *domain && o.bus == *bus && o.slot == *slot)
                {
                    *multifunction = Some(true);
                }
            }
        }
    }
}

fn pci_of(i: &DeviceInfo) -> Option<PciAddr> {
    match i.address {
        Some(Address::Pci {
            domain,
            bus,
            slot,
            function,
            multifunction,
        }) => Some(PciAddr {
            domain,
            bus,
            slot,
            function,
            multi: multifunction,
        }),
        _ => None,
    }
}

fn set_target_attr(c: &mut Controller, name: &str, value: String) {
    const ORDER: &[&str] = &[
        "chassisNr",
        "chassis",
        "port",
        "busNr",
        "hotplug",
        "index",
        "memReserve",
    ];
    let t = c.target.get_or_insert_with(|| Element {
        name: "target".into(),
        ..Default::default()
    });
    if t.attr(name).is_some() {
        return;
    }
    t.attrs.push((name.to_string(), value));
    let pos = |k: &str| ORDER.iter().position(|a| *a == k).unwrap_or(usize::MAX);
    t.attrs.sort_by_key(|(k, _)| pos(k));
}

/// `strtol` base 0 as libvirt reads controller target numbers.
fn parse_num(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, t) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t),
    };
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if t.len() > 1 && t.starts_with('0') {
        i64::from_str_radix(&t[1..], 8).ok()?
    } else {
        t.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Fills what libvirt derives for PCI controllers once they have
/// addresses: the QEMU device name, chassis and port numbers.
fn controller_defaults(def: &mut DomainDef, qc: &QemuCaps) -> Result<()> {
    let lowest_bus_nr = def
        .devices
        .controllers
        .iter()
        .filter(|c| c.ctype == "pci")
        .filter_map(|c| controller_target_attr(c, "busNr").and_then(parse_num))
        .filter(|n| *n >= 0)
        .min()
        .unwrap_or(256);
    for c in def
        .devices
        .controllers
        .iter_mut()
        .filter(|c| c.ctype == "pci")
    {
        let Some(model) = c.model.as_deref().and_then(PciModel::parse) else {
            continue;
        };
        if c.model_name.is_none() {
            c.model_name = match model {
                PciModel::PciBridge => Some("pci-bridge"),
                PciModel::DmiToPciBridge => Some("i82801b11-bridge"),
                PciModel::PcieToPciBridge => Some("pcie-pci-bridge"),
                PciModel::PcieRootPort => Some(if qc.has_type("pcie-root-port") {
                    "pcie-root-port"
                } else {
                    "ioh3420"
                }),
                PciModel::SwitchUpstreamPort => Some("x3130-upstream"),
                PciModel::SwitchDownstreamPort => Some("xio3130-downstream"),
                PciModel::PciExpanderBus => Some("pxb"),
                PciModel::PcieExpanderBus => Some("pxb-pcie"),
                PciModel::PciRoot | PciModel::PcieRoot => None,
            }
            .map(str::to_string);
        }
        let addr = pci_of(&c.info).unwrap_or_default();
        let idx = c.index;
        match model {
            PciModel::PciBridge => set_target_attr(c, "chassisNr", idx.to_string()),
            PciModel::PcieRootPort => {
                set_target_attr(c, "chassis", idx.to_string());
                set_target_attr(
                    c,
                    "port",
                    format!("0x{:x}", (addr.slot << 3) + addr.function),
                );
            }
            PciModel::SwitchDownstreamPort => {
                set_target_attr(c, "chassis", idx.to_string());
                set_target_attr(c, "port", format!("0x{:x}", addr.slot));
            }
            PciModel::PciExpanderBus | PciModel::PcieExpanderBus
                if controller_target_attr(c, "busNr").is_none() =>
            {
                if lowest_bus_nr <= 2 {
                    return Err(Error::new(
                            ErrorDomain::QEMU,
                            ErrorNumber::CONFIG_UNSUPPORTED,
                            format!(
                                "No free busNr lower than current lowest busNr is available to auto-assign to bus {}. Must be manually assigned",
                                addr.bus
                            ),
                        ));
                }
                set_target_attr(c, "busNr", (lowest_bus_nr - 2).to_string());
            }
            _ => {}
        }
        if model == PciModel::PciBridge && idx <= addr.bus {
            return Err(Error::new(
                ErrorDomain::QEMU,
                ErrorNumber::CONFIG_UNSUPPORTED,
                format!(
                    "PCI controller at index {idx} (0x{idx:02x}) has bus='0x{:02x}', but index must be larger than bus",
                    addr.bus
                ),
            ));
        }
    }
    Ok(())
}

/// Appends `<controller type='pci' index=idx model=model/>` unless one
/// with that index exists. Returns whether it was added.
fn maybe_add_pci_controller(def: &mut DomainDef, idx: u32, model: PciModel) -> bool {
    if def
        .devices
        .controllers
        .iter()
        .any(|c| c.ctype == "pci" && c.index == idx)
    {
        return false;
    }
    let mut c = Controller::implicit("pci", idx);
    c.model = Some(model.as_str().to_string());
    def.devices.controllers.push(c);
    true
}

/// Assigns PCI addresses (libvirt's `qemuDomainAssignPCIAddresses`).
fn assign_pci(def: &mut DomainDef, qc: &QemuCaps, m: Machine) -> Result<()> {
    let max_idx: i64 = def
        .devices
        .controllers
        .iter()
        .filter(|c| c.ctype == "pci")
        .map(|c| i64::from(c.index))
        .max()
        .unwrap_or(-1);
    let mut nbuses = (max_idx + 1) as usize;
    if nbuses > 0 {
        // Dry run: how many buses do the devices need?
        let mut set = create_set(def, qc, nbuses, true)?;
        reserve_chipset(def, qc, &mut set, m)?;
        if has_pci_root(def) && !set.buses.iter().all(Bus::fully_reserved) {
            // A slot for a future pci-bridge.
            let mut dummy = DeviceInfo::default();
            set.reserve_next(&mut dummy, AUTOASSIGN | PCI_DEVICE, None)?;
        }
        assign_slots(def, qc, &mut set)?;
        if max_idx <= 0 && set.buses.len() as i64 > max_idx + 1 && has_pcie_root(def) {
            // One spare root port for hotplug.
            let mut dummy = DeviceInfo::default();
            set.reserve_next(&mut dummy, AUTOASSIGN | PCIE_DEVICE, None)?;
        }
        let mut i = 1;
        while i < set.buses.len() {
            let Some(model) = set.buses[i].model else {
                i += 1;
                continue;
            };
            if maybe_add_pci_controller(def, i as u32, model)
                && model != PciModel::PciRoot
                && model != PciModel::PcieRoot
            {
                let mut dummy = DeviceInfo::default();
                set.reserve_next(&mut dummy, model.connect_type(), None)?;
            }
            i += 1;
        }
        nbuses = set.buses.len();
    }
    let mut set = create_set(def, qc, nbuses, false)?;
    if m.i440fx || m.q35 {
        reserve_chipset(def, qc, &mut set, m)?;
        assign_slots(def, qc, &mut set)?;
        set_all_multi(&mut def.devices);
        controller_defaults(def, qc)?;
    }
    Ok(())
}

// ------------------------------------------------------- virtio-serial

const DEFAULT_VIRTIO_SERIAL_PORTS: u32 = 31;

struct VsController {
    idx: u32,
    ports: Vec<bool>,
}

fn vs_complete(info: &DeviceInfo) -> Option<(u32, u32)> {
    match info.address {
        Some(Address::VirtioSerial {
            controller,
            port: Some(p),
            ..
        }) if p != 0 => Some((controller, p)),
        _ => None,
    }
}

fn vs_add_controller(set: &mut Vec<VsController>, c: &Controller) -> Result<()> {
    let ports = c
        .attrs
        .iter()
        .find(|(k, _)| k == "ports")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(DEFAULT_VIRTIO_SERIAL_PORTS);
    if set.iter().any(|x| x.idx == c.index) {
        return Err(internal(format!(
            "virtio serial controller with index {} already exists in the address set",
            c.index
        )));
    }
    let pos = set
        .iter()
        .position(|x| x.idx > c.index)
        .unwrap_or(set.len());
    set.insert(
        pos,
        VsController {
            idx: c.index,
            ports: vec![false; ports as usize],
        },
    );
    Ok(())
}

fn vs_reserve(set: &mut [VsController], controller: u32, port: u32) -> Result<()> {
    let Some(c) = set.iter_mut().find(|c| c.idx == controller) else {
        return Err(addr_err(
            ErrorNumber::XML_ERROR,
            format!("virtio serial controller {controller} is missing"),
        ));
    };
    match c.ports.get_mut(port as usize) {
        None => Err(addr_err(
            ErrorNumber::XML_ERROR,
            format!("virtio serial controller {controller} does not have port {port}"),
        )),
        Some(true) => Err(addr_err(
            ErrorNumber::XML_ERROR,
            format!("virtio serial port {port} on controller {controller} is already occupied"),
        )),
        Some(b) => {
            *b = true;
            Ok(())
        }
    }
}

/// Assigns virtio-serial ports to virtio consoles (port 0 is theirs; the
/// address is not recorded) and channels (from port 1), adding
/// virtio-serial controllers when all are full.
fn assign_virtio_serial(def: &mut DomainDef) -> Result<()> {
    let mut set: Vec<VsController> = Vec::new();
    for c in def
        .devices
        .controllers
        .iter()
        .filter(|c| c.ctype == "virtio-serial")
    {
        vs_add_controller(&mut set, c)?;
    }
    for dev in all_devices(&def.devices) {
        if let Some((ctl, port)) = info(&def.devices, dev).and_then(vs_complete) {
            vs_reserve(&mut set, ctl, port)?;
        }
    }
    let targets: Vec<(Dev, bool)> = (0..def.devices.consoles.len())
        .filter(|i| def.devices.consoles[*i].target_type.as_deref() == Some("virtio"))
        .map(|i| (Dev::Console(i), true))
        .chain(
            (0..def.devices.channels.len())
                .filter(|i| def.devices.channels[*i].target_type.as_deref() == Some("virtio"))
                .map(|i| (Dev::Channel(i), false)),
        )
        .collect();
    for (dev, allow_zero) in targets {
        let Some(inf) = info(&def.devices, dev) else {
            continue;
        };
        if vs_complete(inf).is_some() {
            continue;
        }
        let given_controller = match inf.address {
            Some(Address::VirtioSerial { controller, .. }) => Some(controller),
            _ => None,
        };
        let (controller, port) = match given_controller {
            Some(ctl) if !allow_zero => {
                let c = set.iter().find(|c| c.idx == ctl).ok_or_else(|| {
                    internal(format!("virtio-serial controller {ctl} not available"))
                })?;
                let p = c
                    .ports
                    .iter()
                    .enumerate()
                    .skip(1)
                    .find(|(_, used)| !**used)
                    .map(|(p, _)| p as u32)
                    .ok_or_else(|| {
                        addr_err(
                            ErrorNumber::XML_ERROR,
                            format!("Unable to find a free port on virtio-serial controller {ctl}"),
                        )
                    })?;
                (ctl, p)
            }
            _ => {
                if set.is_empty() {
                    return Err(internal("no virtio-serial controllers are available"));
                }
                let start = if allow_zero { 0 } else { 1 };
                let found = set.iter().find_map(|c| {
                    c.ports
                        .iter()
                        .enumerate()
                        .skip(start)
                        .find(|(_, used)| !**used)
                        .map(|(p, _)| (c.idx, p as u32))
                });
                match found {
                    Some(x) => x,
                    None => {
                        let mut idx = 0;
                        while def
                            .devices
                            .controllers
                            .iter()
                            .any(|c| c.ctype == "virtio-serial" && c.index == idx)
                        {
                            idx += 1;
                        }
                        let c = Controller::implicit("virtio-serial", idx);
                        vs_add_controller(&mut set, &c)?;
                        def.devices.controllers.push(c);
                        (idx, start as u32)
                    }
                }
            }
        };
        vs_reserve(&mut set, controller, port)?;
        if !allow_zero {
            if let Some(inf) = info_mut(&mut def.devices, dev) {
                inf.address = Some(Address::VirtioSerial {
                    controller,
                    bus: 0,
                    port: Some(port),
                });
            }
        }
    }
    Ok(())
}

// ----------------------------------------------------------------- USB

const USB_HUB_PORTS: usize = 8;
const USB_MAX_PORT_DEPTH: usize = 4;

#[derive(Default)]
struct Hub {
    used: Vec<bool>,
    hubs: Vec<Option<Hub>>,
}

impl Hub {
    fn new(n: usize) -> Hub {
        Hub {
            used: vec![false; n],
            hubs: (0..n).map(|_| None).collect(),
        }
    }

    /// A free port at or below this hub: its path from here.
    fn free_port(&self, level: usize) -> Option<Vec<u32>> {
        if let Some(p) = self.used.iter().position(|u| !u) {
            return Some(vec![p as u32 + 1]);
        }
        if level >= USB_MAX_PORT_DEPTH - 1 {
            return None;
        }
        for (i, h) in self.hubs.iter().enumerate() {
            if let Some(h) = h {
                if let Some(mut rest) = h.free_port(level + 1) {
                    rest.insert(0, i as u32 + 1);
                    return Some(rest);
                }
            }
        }
        None
    }
}

fn usb_ports(c: &Controller) -> usize {
    let ports_attr = || {
        c.attrs
            .iter()
            .find(|(k, _)| k == "ports")
            .and_then(|(_, v)| v.parse::<usize>().ok())
    };
    match c.model.as_deref() {
        None | Some("piix3-uhci" | "piix4-uhci" | "vt82c686b-uhci") => 2,
        Some("ehci" | "ich9-ehci1") => 6,
        Some("pci-ohci") => 3,
        Some("nec-xhci" | "qemu-xhci") => ports_attr().unwrap_or(4),
        Some("qusb1" | "qusb2") => ports_attr().unwrap_or(8),
        _ => 0,
    }
}

fn parse_port(p: Option<&str>) -> Vec<u32> {
    p.map(|s| {
        s.split('.')
            .map(|x| x.trim().parse::<u32>().unwrap_or(0))
            .collect()
    })
    .unwrap_or_default()
}

fn port_valid(path: &[u32]) -> bool {
    path.first().is_some_and(|p| *p != 0)
}

fn port_text(path: &[u32]) -> String {
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

struct UsbSet {
    buses: Vec<Option<Hub>>,
}

impl UsbSet {
    /// The hub holding the last port of `path` on `bus`, and that port's
    /// index.
    fn find(&mut self, bus: u32, path: &[u32]) -> Result<(&mut Hub, usize)> {
        let ptext = port_text(path);
        let mut hub = self
            .buses
            .get_mut(bus as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| addr_err(ErrorNumber::XML_ERROR, format!("Missing USB bus {bus}")))?;
        let (last, walk) = path
            .split_last()
            .ok_or_else(|| addr_err(ErrorNumber::XML_ERROR, "empty USB port"))?;
        for p in walk {
            let i = (*p as usize).wrapping_sub(1);
            if i >= hub.used.len() {
                return Err(addr_err(
                    ErrorNumber::XML_ERROR,
                    format!("port {p} out of range in USB address bus: {bus} port: {ptext}"),
                ));
            }
            hub = hub.hubs[i].as_mut().ok_or_else(|| {
                addr_err(
                    ErrorNumber::XML_ERROR,
                    format!("there is no hub at port {p} in USB address bus: {bus} port: {ptext}"),
                )
            })?;
        }
        let t = (*last as usize).wrapping_sub(1);
        if t >= hub.used.len() {
            return Err(addr_err(
                ErrorNumber::XML_ERROR,
                format!("requested USB port {ptext} not present on USB bus {bus}"),
            ));
        }
        Ok((hub, t))
    }

    fn reserve(&mut self, bus: u32, path: &[u32]) -> Result<()> {
        let (hub, t) = self.find(bus, path)?;
        if hub.used[t] {
            return Err(addr_err(
                ErrorNumber::XML_ERROR,
                format!("Duplicate USB address bus {bus} port {}", port_text(path)),
            ));
        }
        hub.used[t] = true;
        Ok(())
    }

    fn add_hub(&mut self, bus: u32, path: &[u32]) -> Result<()> {
        let (hub, t) = self.find(bus, path)?;
        if hub.hubs[t].is_some() {
            return Err(addr_err(
                ErrorNumber::XML_ERROR,
                format!("Duplicate USB hub on bus {bus} port {}", port_text(path)),
            ));
        }
        hub.used[t] = true;
        hub.hubs[t] = Some(Hub::new(USB_HUB_PORTS));
        Ok(())
    }

    /// A free port: on `bus` when given, else on the first bus with one.
    fn assign(&mut self, bus: Option<u32>) -> Result<(u32, Vec<u32>)> {
        let buses: Vec<u32> = match bus {
            Some(b) => {
                if self
                    .buses
                    .get(b as usize)
                    .and_then(Option::as_ref)
                    .is_none()
                {
                    return Err(addr_err(
                        ErrorNumber::XML_ERROR,
                        format!(
                            "USB bus {b} requested but no controller with that index is present"
                        ),
                    ));
                }
                vec![b]
            }
            None => (0..self.buses.len() as u32).collect(),
        };
        for b in buses {
            let Some(hub) = self.buses[b as usize].as_ref() else {
                continue;
            };
            if let Some(path) = hub.free_port(0) {
                self.reserve(b, &path)?;
                return Ok((b, path));
            }
        }
        Err(addr_err(ErrorNumber::INTERNAL_ERROR, "No free USB ports"))
    }
}

/// The devices that plug into USB ports, in libvirt's order.
fn usb_devices(d: &Devices, with_hubs: bool) -> Vec<Dev> {
    let mut v = Vec::new();
    if with_hubs {
        v.extend(
            (0..d.hubs.len())
                .filter(|i| d.hubs[*i].attr("type") == Some("usb"))
                .map(Dev::Hub),
        );
    }
    v.extend(
        (0..d.hostdevs.len())
            .filter(|i| {
                let e = &d.hostdevs[*i].elem;
                e.attr("mode").unwrap_or("subsystem") == "subsystem"
                    && e.attr("type") == Some("usb")
            })
            .map(Dev::Hostdev),
    );
    v.extend(
        (0..d.disks.len())
            .filter(|i| d.disks[*i].target_bus.as_deref() == Some("usb"))
            .map(Dev::Disk),
    );
    v.extend(
        (0..d.controllers.len())
            .filter(|i| d.controllers[*i].ctype == "ccid")
            .map(Dev::Controller),
    );
    v.extend(
        (0..d.inputs.len())
            .filter(|i| d.inputs[*i].bus.as_deref() == Some("usb"))
            .map(Dev::Input),
    );
    v.extend(
        (0..d.serials.len())
            .filter(|i| d.serials[*i].target_type.as_deref() == Some("usb-serial"))
            .map(Dev::Serial),
    );
    v.extend(
        (0..d.sounds.len())
            .filter(|i| d.sounds[*i].attr("model") == Some("usb"))
            .map(Dev::Sound),
    );
    v.extend(
        (0..d.redirdevs.len())
            .filter(|i| d.redirdevs[*i].attr("bus") == Some("usb"))
            .map(Dev::Redirdev),
    );
    v
}

/// (bus, port path) of a USB address; `None` for other address types.
fn usb_addr(info: &DeviceInfo) -> Option<Option<(u32, Vec<u32>)>> {
    match &info.address {
        None => Some(None),
        Some(Address::Usb { bus, port }) => Some(Some((*bus, parse_port(port.as_deref())))),
        Some(_) => None,
    }
}

/// Assigns USB ports (libvirt's `qemuDomainAssignUSBAddresses` for a new
/// domain), adding hubs when the controllers have too few ports.
fn assign_usb(def: &mut DomainDef) -> Result<()> {
    let d = &mut def.devices;
    let count = usb_devices(d, true).len();
    let available: usize = d
        .controllers
        .iter()
        .filter(|c| c.ctype == "usb")
        .map(usb_ports)
        .sum::<usize>()
        + d.hubs
            .iter()
            .filter(|h| h.attr("type") == Some("usb"))
            .count()
            * USB_HUB_PORTS;
    let has_usb = d
        .controllers
        .iter()
        .any(|c| c.ctype == "usb" && c.model.as_deref() != Some("none"));
    if count > 0 && !has_usb {
        return Err(Error::new(
            ErrorDomain::QEMU,
            ErrorNumber::CONFIG_UNSUPPORTED,
            "USB is disabled for this domain, but USB devices are present in the domain XML",
        ));
    }
    if count > available {
        let needed = (count - available + 1).div_ceil(USB_HUB_PORTS - 1);
        for _ in 0..needed {
            d.hubs.push(GenericDevice {
                elem: Element {
                    name: "hub".into(),
                    attrs: vec![("type".into(), "usb".into())],
                    ..Default::default()
                },
                info: DeviceInfo::default(),
            });
        }
    }
    let mut set = UsbSet { buses: Vec::new() };
    for c in d.controllers.iter().filter(|c| c.ctype == "usb") {
        let n = usb_ports(c);
        if n == 0 {
            continue;
        }
        let idx = c.index as usize;
        if set.buses.len() <= idx {
            set.buses.resize_with(idx + 1, || None);
        } else if set.buses[idx].is_some() {
            return Err(addr_err(
                ErrorNumber::XML_ERROR,
                format!("Duplicate USB controllers with index {idx}"),
            ));
        }
        set.buses[idx] = Some(Hub::new(n));
    }
    for h in d.hubs.iter().filter(|h| h.attr("type") == Some("usb")) {
        if let Some(Some((bus, path))) = usb_addr(&h.info) {
            if port_valid(&path) {
                set.add_hub(bus, &path)?;
            }
        }
    }
    for dev in usb_devices(d, false) {
        if let Some(Some((bus, path))) = info(d, dev).and_then(usb_addr) {
            if port_valid(&path) {
                set.reserve(bus, &path)?;
            }
        }
    }
    // Hubs first, so that devices can use their ports.
    for i in 0..d.hubs.len() {
        if d.hubs[i].attr("type") != Some("usb") {
            continue;
        }
        let bus = match usb_addr(&d.hubs[i].info) {
            Some(Some((_, path))) if port_valid(&path) => continue,
            Some(Some((bus, _))) => Some(bus),
            Some(None) => None,
            None => {
                return Err(addr_err(
                    ErrorNumber::XML_ERROR,
                    "Wrong address type for USB hub",
                ))
            }
        };
        let (bus, path) = set.assign(bus)?;
        d.hubs[i].info.address = Some(Address::Usb {
            bus,
            port: Some(port_text(&path)),
        });
        set.add_hub_after_reserve(bus, &path)?;
    }
    for dev in usb_devices(d, false) {
        let bus = match info(d, dev).and_then(usb_addr) {
            None => continue,
            Some(Some((_, path))) if port_valid(&path) => continue,
            Some(Some((bus, _))) => Some(bus),
            Some(None) => None,
        };
        let (bus, path) = set.assign(bus)?;
        if let Some(inf) = info_mut(d, dev) {
            inf.address = Some(Address::Usb {
                bus,
                port: Some(port_text(&path)),
            });
        }
    }
    Ok(())
}

impl UsbSet {
    /// Puts a hub on a port that was just reserved for it.
    fn add_hub_after_reserve(&mut self, bus: u32, path: &[u32]) -> Result<()> {
        let (hub, t) = self.find(bus, path)?;
        hub.hubs[t] = Some(Hub::new(USB_HUB_PORTS));
        Ok(())
    }
}

/// Assigns every address libvirt assigns when a domain is defined.
pub fn assign(def: &mut DomainDef, qc: &QemuCaps, m: Machine) -> Result<()> {
    assign_virtio_serial(def)?;
    assign_pci(def, qc, m)?;
    assign_usb(def)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_ports_aggregate_eight_per_slot() {
        let mut set = AddrSet::new(1, false, true);
        set.buses[0].set_model(PciModel::PcieRoot, true);
        let mut got = Vec::new();
        for _ in 0..10 {
            let mut i = DeviceInfo::default();
            let a = set
                .reserve_next(&mut i, PciModel::PcieRootPort.connect_type(), None)
                .expect("slot");
            got.push((a.slot, a.function));
        }
        assert_eq!(got[0], (1, 0));
        assert_eq!(got[7], (1, 7));
        assert_eq!(got[8], (2, 0));
        assert_eq!(got[9], (2, 1));
    }

    #[test]
    fn pcie_root_refuses_autoassigned_endpoints_and_dry_run_grows() {
        let mut set = AddrSet::new(1, true, true);
        set.buses[0].set_model(PciModel::PcieRoot, true);
        let mut i = DeviceInfo::default();
        let a = set
            .reserve_next(&mut i, PCIE_DEVICE | AUTOASSIGN, None)
            .expect("grows");
        assert_eq!((a.bus, a.slot), (1, 0));
        assert_eq!(set.buses[1].model, Some(PciModel::PcieRootPort));
        assert!(i.address.is_none(), "a dry run assigns nothing");
        // A conventional PCI device on a PCIe-only machine needs a root
        // port and a pcie-to-pci-bridge.
        let a = set
            .reserve_next(&mut i, PCI_DEVICE | AUTOASSIGN, None)
            .expect("grows");
        assert_eq!((a.bus, a.slot), (3, 1));
        assert_eq!(set.buses[2].flags, PCIE_TO_PCI_BRIDGE);
        assert_eq!(set.buses[3].model, Some(PciModel::PcieToPciBridge));
    }

    #[test]
    fn double_use_is_refused() {
        let mut set = AddrSet::new(1, false, false);
        set.buses[0].set_model(PciModel::PciRoot, true);
        let a = PciAddr {
            slot: 3,
            ..Default::default()
        };
        set.reserve(&a, PCI_DEVICE).expect("first");
        let e = set.reserve(&a, PCI_DEVICE).expect_err("second");
        assert!(e.message.contains("double use"), "{e}");
        let bad = PciAddr {
            slot: 0,
            ..Default::default()
        };
        let e = set.reserve(&bad, PCI_DEVICE).expect_err("slot 0");
        assert!(e.message.contains("slot must be >= 1"), "{e}");
    }

    #[test]
    fn usb_hub_ports() {
        let mut set = UsbSet {
            buses: vec![Some(Hub::new(2))],
        };
        let (_, p) = set.assign(None).expect("port");
        assert_eq!(p, vec![1]);
        // Make port 2 a hub: the next ports are 2.1, 2.2, ...
        set.add_hub(0, &[2]).expect("hub");
        assert_eq!(set.assign(None).expect("port").1, vec![2, 1]);
        assert_eq!(set.assign(Some(0)).expect("port").1, vec![2, 2]);
        assert!(set.assign(Some(1)).is_err());
    }

    #[test]
    fn target_numbers() {
        assert_eq!(parse_num("0x10"), Some(16));
        assert_eq!(parse_num("010"), Some(8));
        assert_eq!(parse_num("-1"), Some(-1));
        assert_eq!(parse_num("x"), None);
    }
}
