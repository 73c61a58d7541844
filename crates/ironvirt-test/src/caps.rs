//! The host description of the test driver: node info, NUMA cells and the
//! capabilities XML, as libvirt's test driver reports them.

use ironvirt_driver::NodeInfo;
use std::fmt::Write;

/// The CPU model the test driver reports.
pub const TEST_MODEL: &str = "i686";
/// The emulator path in the guest capabilities.
pub const TEST_EMULATOR: &str = "/usr/bin/test-hv";
/// The security model of the test driver.
pub const SECURITY_MODEL: &str = "testSecurity";
/// The label every active domain carries.
pub const SECURITY_LABEL: &str = "libvirt-test";

/// Page sizes (KiB) the test host advertises.
const PAGE_SIZES: [u64; 4] = [4, 8, 2048, 1024 * 1024];

/// One host CPU in a NUMA cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellCpu {
    /// CPU number.
    pub id: u32,
    /// Socket it sits in.
    pub socket_id: u32,
    /// Core number within the socket.
    pub core_id: u32,
}

/// A NUMA cell of the test host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// Memory in KiB.
    pub mem: u64,
    /// Free memory in KiB.
    pub free_mem: u64,
    /// CPUs of the cell.
    pub cpus: Vec<CellCpu>,
}

/// The node info of `test:///default` (and the starting point of a custom
/// node file): 16 i686 CPUs at 1400 MHz, 3 GiB.
///
/// ```
/// assert_eq!(ironvirt_test::caps::default_node_info().cpus, 16);
/// ```
pub fn default_node_info() -> NodeInfo {
    NodeInfo {
        model: TEST_MODEL.to_string(),
        memory: 1024 * 1024 * 3,
        cpus: 16,
        mhz: 1400,
        nodes: 2,
        sockets: 2,
        cores: 2,
        threads: 2,
    }
}

/// The two NUMA cells of `test:///default`: 8 CPUs each, 2 and 4 GiB.
///
/// ```
/// let cells = ironvirt_test::caps::default_cells();
/// assert_eq!((cells.len(), cells[1].mem), (2, 4194304));
/// ```
pub fn default_cells() -> Vec<Cell> {
    (0..2u32)
        .map(|i| Cell {
            mem: u64::from(i + 1) * 2048 * 1024,
            free_mem: u64::from(i + 1) * 1024 * 1024,
            cpus: (0..8u32)
                .map(|j| CellCpu {
                    id: i * 8 + j,
                    socket_id: i,
                    core_id: j,
                })
                .collect(),
        })
        .collect()
}

/// The capabilities XML for a host with `cells`, laid out as libvirt's
/// `virCapabilitiesFormatXML` lays out the test driver's capabilities.
///
/// ```
/// let xml = ironvirt_test::caps::capabilities_xml(&ironvirt_test::caps::default_cells());
/// assert!(xml.contains("<model>testSecurity</model>"));
/// ```
pub fn capabilities_xml(cells: &[Cell]) -> String {
    let mut s = String::with_capacity(4096);
    s.push_str("<capabilities>\n\n  <host>\n    <cpu>\n      <arch>i686</arch>\n");
    s.push_str("      <features>\n        <pae/>\n        <nonpae/>\n      </features>\n");
    for p in PAGE_SIZES {
        let _ = writeln!(s, "      <pages unit='KiB' size='{p}'/>");
    }
    s.push_str("    </cpu>\n    <power_management/>\n    <iommu support='no'/>\n");
    s.push_str("    <topology>\n");
    let _ = writeln!(s, "      <cells num='{}'>", cells.len());
    for (i, cell) in cells.iter().enumerate() {
        let _ = writeln!(s, "        <cell id='{i}'>");
        let _ = writeln!(s, "          <memory unit='KiB'>{}</memory>", cell.mem);
        // The first page size of cell 1 is the host's second page size;
        // the huge page sizes follow with nothing available.
        let first = if i == 1 { PAGE_SIZES[1] } else { PAGE_SIZES[0] };
        let _ = writeln!(
            s,
            "          <pages unit='KiB' size='{first}'>{}</pages>",
            cell.mem / first
        );
        for p in &PAGE_SIZES[2..] {
            let _ = writeln!(s, "          <pages unit='KiB' size='{p}'>0</pages>");
        }
        let _ = writeln!(s, "          <cpus num='{}'>", cell.cpus.len());
        for c in &cell.cpus {
            let _ = writeln!(
                s,
                "            <cpu id='{}' socket_id='{}' die_id='0' core_id='{}' siblings='{}'/>",
                c.id, c.socket_id, c.core_id, c.id
            );
        }
        s.push_str("          </cpus>\n        </cell>\n");
    }
    s.push_str("      </cells>\n    </topology>\n");
    let _ = write!(s, "    <secmodel>\n      <model>{SECURITY_MODEL}</model>\n      <doi></doi>\n    </secmodel>\n");
    s.push_str("  </host>\n\n");
    for os in ["hvm", "xen"] {
        let _ = write!(
            s,
            "  <guest>\n    <os_type>{os}</os_type>\n    <arch name='i686'>\n      <wordsize>32</wordsize>\n      \
             <emulator>{TEST_EMULATOR}</emulator>\n      <domain type='test'/>\n    </arch>\n    <features>\n      \
             <pae/>\n      <nonpae/>\n    </features>\n  </guest>\n\n"
        );
    }
    s.push_str("</capabilities>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_caps_have_two_cells_of_eight_cpus() {
        let x = capabilities_xml(&default_cells());
        assert!(x.starts_with("<capabilities>\n\n  <host>\n"));
        assert!(x.contains("<cells num='2'>"));
        assert!(x.contains("<pages unit='KiB' size='8'>524288</pages>"));
        assert!(x.contains("<cpu id='15' socket_id='1' die_id='0' core_id='7' siblings='15'/>"));
        assert!(x.ends_with("</capabilities>\n"));
        assert!(roxmltree::Document::parse(&x).is_ok());
    }

    #[test]
    fn no_cells_keeps_the_empty_cells_element() {
        let x = capabilities_xml(&[]);
        assert!(x.contains("      <cells num='0'>\n      </cells>\n"));
    }
}
