//! Differential test: our `domcapabilities` and `capabilities` against the
//! reference libvirtd's, element by element, attribute by attribute, enum
//! value by enum value. Differences that remain on purpose are listed (with
//! the reason) in `known_difference`.
//!
//! Needs the reference daemon on /run/libvirt-ref/libvirt-sock (the
//! project's test command starts it); set IRONVIRT_NO_REFERENCE=1 to skip.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use ironvirt_driver::Driver;
use ironvirt_qemu::{QemuConfig, QemuDriver};

const SOCK: &str = "/run/libvirt-ref/libvirt-sock";

fn reference_available() -> bool {
    if std::env::var_os("IRONVIRT_NO_REFERENCE").is_some_and(|v| v == "1") {
        return false;
    }
    assert!(
        Path::new(SOCK).exists(),
        "reference libvirtd socket {SOCK} is missing: start the reference daemon, or set IRONVIRT_NO_REFERENCE=1"
    );
    true
}

fn virsh(args: &[&str]) -> String {
    let uri = format!("qemu+unix:///system?socket={SOCK}");
    let out = Command::new("virsh")
        .args(["-c", &uri])
        .args(args)
        .output()
        .expect("run virsh");
    assert!(
        out.status.success(),
        "virsh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// Every element as one line: its path (with the `name`/`id` attributes
/// of its ancestors), its attributes and its text.
fn flatten(xml: &str) -> BTreeSet<String> {
    let doc = roxmltree::Document::parse(xml).expect("well-formed XML");
    let mut out = BTreeSet::new();
    fn walk(n: roxmltree::Node<'_, '_>, prefix: &str, out: &mut BTreeSet<String>) {
        let mut id = n.tag_name().name().to_string();
        for key in ["name", "id", "type"] {
            if let Some(v) = n.attribute(key) {
                if !(n.tag_name().name() == "model" && key == "name") {
                    id.push_str(&format!("[{key}={v}]"));
                }
            }
        }
        let path = format!("{prefix}/{id}");
        let mut attrs: Vec<String> = n
            .attributes()
            .map(|a| format!("{}={}", a.name(), a.value()))
            .collect();
        attrs.sort();
        let text: String = n
            .children()
            .filter(|c| c.is_text())
            .filter_map(|c| c.text())
            .collect::<String>();
        out.insert(format!("{path} {{{}}} '{}'", attrs.join(","), text.trim()));
        for c in n.children().filter(|c| c.is_element()) {
            walk(c, &path, out);
        }
    }
    walk(doc.root_element(), "", &mut out);
    out
}

/// Differences we keep, with why.
fn known_difference(line: &str) -> bool {
    // The host-model CPU: libvirt describes the host CPU with its own CPU
    // model database (cpu_map) and CPUID signatures; ironvirt picks the
    // QEMU model needing the fewest added/removed features, so the base
    // model and the feature list differ.
    if line.contains("/mode[name=host-model]/") {
        return true;
    }
    // Custom CPU models: libvirt filters QEMU's list through cpu_map (it
    // lacks KnightsMill and Denverton) and takes vendors from it (none for
    // the generic qemu64/kvm64/pentium/486 models); ironvirt lists QEMU's
    // unversioned models with the vendor QEMU gives them.
    if line.contains("/mode[name=custom]/model") {
        return true;
    }
    // The host CPU of the capabilities: same reason as host-model, plus the
    // TSC counter, which libvirt reads through a KVM vCPU.
    if line.starts_with("/capabilities/host/cpu/")
        && !line.starts_with("/capabilities/host/cpu/arch")
        && !line.starts_with("/capabilities/host/cpu/topology")
        && !line.starts_with("/capabilities/host/cpu/pages")
        && !line.starts_with("/capabilities/host/cpu/signature")
        && !line.starts_with("/capabilities/host/cpu/microcode")
        && !line.starts_with("/capabilities/host/cpu/maxphysaddr")
    {
        return true;
    }
    // The host UUID is random per daemon start when there is no SMBIOS.
    if line.starts_with("/capabilities/host/uuid") {
        return true;
    }
    // The memory of a NUMA cell (and so its base page count) changes from
    // one moment to the next on this host (memory is hot-plugged).
    if line.starts_with("/capabilities/host/topology/cells/cell[id=0]/pages")
        || line.starts_with("/capabilities/host/topology/cells/cell[id=0]/memory")
    {
        return true;
    }
    false
}

fn compare(what: &str, reference: &str, ours: &str) {
    let r = flatten(reference);
    let o = flatten(ours);
    let missing: Vec<&String> = r.difference(&o).filter(|l| !known_difference(l)).collect();
    let extra: Vec<&String> = o.difference(&r).filter(|l| !known_difference(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: differs from the reference\nonly in reference:\n  {}\nonly in ours:\n  {}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// emulator, arch, machine, virttype
type DomcapsArgs<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn driver(state: &Path) -> std::sync::Arc<QemuDriver> {
    QemuDriver::new(QemuConfig::new(state, true)).expect("driver")
}

#[test]
fn domcapabilities_match_reference() {
    if !reference_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = driver(tmp.path());
    let cases: &[(&[&str], DomcapsArgs<'_>)] = &[
        (&[], (None, None, None, None)),
        (&["--machine", "q35"], (None, None, Some("q35"), None)),
        (&["--virttype", "qemu"], (None, None, None, Some("qemu"))),
        (&["--virttype", "kvm"], (None, None, None, Some("kvm"))),
        (&["--arch", "x86_64"], (None, Some("x86_64"), None, None)),
        (
            &["--emulatorbin", common::REAL_QEMU],
            (Some(common::REAL_QEMU), None, None, None),
        ),
        (&["--arch", "i686"], (None, Some("i686"), None, None)),
    ];
    for (args, (emu, arch, machine, virt)) in cases {
        let mut a = vec!["domcapabilities"];
        a.extend_from_slice(args);
        let reference = virsh(&a);
        let ours = drv
            .get_domain_capabilities(*emu, *arch, *machine, *virt, 0)
            .expect("domcaps");
        compare(&format!("domcapabilities {args:?}"), &reference, &ours);
    }
}

#[test]
fn capabilities_match_reference() {
    if !reference_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = driver(tmp.path());
    let reference = virsh(&["capabilities"]);
    let ours = drv.get_capabilities().expect("caps");
    compare("capabilities", &reference, &ours);
}

#[test]
fn nodeinfo_matches_reference() {
    if !reference_available() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let ni = driver(tmp.path()).node_get_info().expect("nodeinfo");
    let reference = virsh(&["nodeinfo"]);
    let field = |k: &str| {
        reference
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(field("CPU model:"), ni.model);
    assert_eq!(field("CPU(s):"), ni.cpus.to_string());
    assert_eq!(field("CPU frequency:"), ni.mhz.to_string());
    assert_eq!(field("CPU socket(s):"), ni.sockets.to_string());
    assert_eq!(field("Core(s) per socket:"), ni.cores.to_string());
    assert_eq!(field("Thread(s) per core:"), ni.threads.to_string());
    assert_eq!(field("NUMA cell(s):"), ni.nodes.to_string());
    // Memory is hot-plugged on this host, so the total moves between two
    // reads; the source (NUMA node meminfo, not /proc/meminfo) is what is
    // checked, within 10%.
    let reference_mem: u64 = field("Memory size:").parse().expect("memory");
    assert!(
        ni.memory.abs_diff(reference_mem) * 10 <= reference_mem,
        "{} vs {reference_mem}",
        ni.memory
    );
}
