//! Facts about the host, read from /proc, sysfs and /dev/kvm the way
//! libvirt reads them: node info, NUMA topology, caches, huge pages.

use std::path::Path;

use ironvirt_driver::NodeInfo;

fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_u64(path: impl AsRef<Path>) -> Option<u64> {
    read(path)?.parse().ok()
}

/// KVM's vCPU limit: `KVM_CAP_MAX_VCPUS`, else `KVM_CAP_NR_VCPUS`.
pub fn kvm_max_vcpus(kvm_device: &Path) -> Option<u32> {
    use std::os::fd::AsRawFd;
    const KVM_CHECK_EXTENSION: libc::c_ulong = 0xAE03;
    const KVM_CAP_NR_VCPUS: libc::c_ulong = 9;
    const KVM_CAP_MAX_VCPUS: libc::c_ulong = 66;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(kvm_device)
        .ok()?;
    for cap in [KVM_CAP_MAX_VCPUS, KVM_CAP_NR_VCPUS] {
        // SAFETY: KVM_CHECK_EXTENSION takes an integer argument and only
        // returns a value; the descriptor is open for the whole call.
        let r = unsafe { libc::ioctl(f.as_raw_fd(), KVM_CHECK_EXTENSION as _, cap) };
        if r > 0 {
            return Some(r as u32);
        }
    }
    None
}

/// Whether PCI passthrough with VFIO is possible (IOMMU groups exist).
pub fn vfio_supported() -> bool {
    Path::new("/dev/vfio/vfio").exists()
        && std::fs::read_dir("/sys/kernel/iommu_groups")
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
}

/// Whether an executable called `name` is on `$PATH`.
pub fn in_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

/// libvirt's name of the host architecture.
pub fn host_arch() -> String {
    match std::env::consts::ARCH {
        "x86" => "i686",
        "arm" => "armv7l",
        a => a,
    }
    .to_string()
}

/// One online CPU's topology.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuTopo {
    /// CPU id.
    pub id: u32,
    /// Socket.
    pub socket: u32,
    /// Die.
    pub die: u32,
    /// Core.
    pub core: u32,
    /// Thread siblings list (as sysfs writes it).
    pub siblings: String,
}

/// One NUMA cell.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Node id.
    pub id: u32,
    /// Memory in KiB.
    pub memory_kib: u64,
    /// Free huge pages and base pages: (size KiB, count).
    pub pages: Vec<(u64, u64)>,
    /// Distances to every node: (node, value).
    pub distances: Vec<(u32, u32)>,
    /// CPUs.
    pub cpus: Vec<CpuTopo>,
}

fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b.min(a + 65536));
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

fn cpu_topo(id: u32) -> CpuTopo {
    let base = format!("/sys/devices/system/cpu/cpu{id}/topology");
    CpuTopo {
        id,
        socket: read_u64(format!("{base}/physical_package_id")).unwrap_or(0) as u32,
        die: read_u64(format!("{base}/die_id")).unwrap_or(0) as u32,
        core: read_u64(format!("{base}/core_id")).unwrap_or(0) as u32,
        siblings: read(format!("{base}/thread_siblings_list")).unwrap_or_else(|| id.to_string()),
    }
}

/// Huge page sizes the kernel offers, in KiB.
pub fn huge_page_sizes() -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.strip_prefix("hugepages-")?
                        .strip_suffix("kB")?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// Base page size in KiB.
pub fn page_size_kib() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let r = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if r > 0 {
        r as u64 / 1024
    } else {
        4
    }
}

fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.split_once(key)?.1.trim_start_matches(':').trim();
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The NUMA cells (a single cell built from /proc when sysfs has none).
pub fn cells() -> Vec<Cell> {
    let page = page_size_kib();
    let huge = huge_page_sizes();
    let mut ids: Vec<u32> = read("/sys/devices/system/node/online")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default();
    ids.sort_unstable();
    let mut out = Vec::new();
    for id in &ids {
        let base = format!("/sys/devices/system/node/node{id}");
        let meminfo = read(format!("{base}/meminfo")).unwrap_or_default();
        let memory_kib = meminfo_kib(&meminfo, "MemTotal").unwrap_or(0);
        let mut pages = vec![(page, memory_kib / page.max(1))];
        for h in &huge {
            let n = read_u64(format!("{base}/hugepages/hugepages-{h}kB/nr_hugepages")).unwrap_or(0);
            pages.push((*h, n));
        }
        // Base pages exclude memory reserved as huge pages.
        let reserved: u64 = pages.iter().skip(1).map(|(s, n)| s * n).sum();
        pages[0].1 = memory_kib.saturating_sub(reserved) / page.max(1);
        let dist: Vec<u32> = read(format!("{base}/distance"))
            .map(|s| {
                s.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let distances = ids.iter().copied().zip(dist).collect();
        let cpus = read(format!("{base}/cpulist"))
            .map(|s| parse_cpu_list(&s))
            .unwrap_or_default();
        out.push(Cell {
            id: *id,
            memory_kib,
            pages,
            distances,
            cpus: cpus.into_iter().map(cpu_topo).collect(),
        });
    }
    if out.is_empty() {
        let meminfo = read("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo_kib(&meminfo, "MemTotal").unwrap_or(0);
        let cpus = read("/sys/devices/system/cpu/online")
            .map(|s| parse_cpu_list(&s))
            .unwrap_or_default();
        out.push(Cell {
            id: 0,
            memory_kib,
            pages: vec![(page, memory_kib / page.max(1))],
            distances: vec![],
            cpus: cpus.into_iter().map(cpu_topo).collect(),
        });
    }
    out
}

/// `virNodeGetInfo` as libvirt computes it on Linux.
pub fn node_info() -> NodeInfo {
    let cells = cells();
    let cpuinfo = read("/proc/cpuinfo").unwrap_or_default();
    let mhz = cpuinfo
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == "cpu MHz")
                .then(|| v.trim().parse::<f64>().ok())
                .flatten()
        })
        .or_else(|| {
            read_u64("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                .map(|k| k as f64 / 1000.0)
        })
        .unwrap_or(0.0);
    let cpus: Vec<&CpuTopo> = cells.iter().flat_map(|c| c.cpus.iter()).collect();
    let mut sockets: Vec<u32> = cpus.iter().map(|c| c.socket).collect();
    sockets.sort_unstable();
    sockets.dedup();
    let mut cores: Vec<(u32, u32)> = cpus.iter().map(|c| (c.socket, c.core)).collect();
    cores.sort_unstable();
    cores.dedup();
    let nodes = cells.len().max(1) as u32;
    let nsockets = (sockets.len() as u32).max(1);
    let ncores = (cores.len() as u32).max(1);
    let memory = cells.iter().map(|c| c.memory_kib).sum();
    NodeInfo {
        model: host_arch(),
        memory,
        cpus: cpus.len() as u32,
        mhz: mhz as u32,
        nodes,
        sockets: (nsockets / nodes).max(1),
        cores: ncores / nsockets,
        threads: (cpus.len() as u32 / ncores).max(1),
    }
}

/// One cache bank (`<cache><bank .../>`).
#[derive(Clone, Debug, PartialEq)]
pub struct CacheBank {
    /// Bank id.
    pub id: u32,
    /// Level.
    pub level: u32,
    /// `both`, `code` or `data`.
    pub kind: String,
    /// Size in KiB.
    pub size_kib: u64,
    /// CPUs sharing it.
    pub cpus: String,
}

/// Level 3 caches, which libvirt reports, one per bank.
pub fn cache_banks() -> Vec<CacheBank> {
    let mut out: Vec<CacheBank> = Vec::new();
    let online = read("/sys/devices/system/cpu/online")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default();
    for cpu in online {
        let Ok(rd) = std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{cpu}/cache")) else {
            continue;
        };
        let mut idx: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("level").exists())
            .collect();
        idx.sort();
        for p in idx {
            let level = read_u64(p.join("level")).unwrap_or(0) as u32;
            if level < 3 {
                continue;
            }
            let id = read_u64(p.join("id")).unwrap_or(0) as u32;
            if out.iter().any(|b| b.id == id && b.level == level) {
                continue;
            }
            let kind = match read(p.join("type")).as_deref() {
                Some("Data") => "data",
                Some("Instruction") => "code",
                _ => "both",
            };
            let size = read(p.join("size")).unwrap_or_default();
            let size_kib = size.trim_end_matches('K').parse().unwrap_or(0);
            out.push(CacheBank {
                id,
                level,
                kind: kind.to_string(),
                size_kib,
                cpus: read(p.join("shared_cpu_list")).unwrap_or_default(),
            });
        }
    }
    out
}

/// The host's name as `virConnectGetHostname` reports it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is passed.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if r != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
        assert_eq!(parse_cpu_list("x,3"), vec![3]);
    }

    #[test]
    fn meminfo_lines() {
        assert_eq!(
            meminfo_kib("Node 0 MemTotal:        4417748 kB\n", "MemTotal"),
            Some(4417748)
        );
        assert_eq!(
            meminfo_kib("MemTotal:       24684092 kB\n", "MemTotal"),
            Some(24684092)
        );
    }
}
