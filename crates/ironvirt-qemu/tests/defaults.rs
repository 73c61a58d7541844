//! Differential test of the QEMU driver's define-time defaults: each input
//! is defined on the reference libvirtd and on an in-process `QemuDriver`
//! (real emulator, temporary state directory), and `dumpxml --inactive` of
//! both must be the same text. Differences that remain are listed, each
//! with its reason, in `known_differences`.
//!
//! Needs the reference daemon on /run/libvirt-ref/libvirt-sock (the
//! project's test command starts it); set IRONVIRT_NO_REFERENCE=1 to skip.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ironvirt_driver::Driver;
use ironvirt_qemu::{QemuConfig, QemuDriver};

const SOCK: &str = "/run/libvirt-ref/libvirt-sock";
const REAL_QEMU: &str = "/usr/bin/qemu-system-x86_64";

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

fn virsh(args: &[&str]) -> std::result::Result<String, String> {
    let uri = format!("qemu+unix:///system?socket={SOCK}");
    let out = Command::new("virsh")
        .args(["-c", &uri])
        .args(args)
        .output()
        .map_err(|e| format!("run virsh: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Removes the domain from the reference daemon when dropped.
struct RefDomain(String);

impl Drop for RefDomain {
    fn drop(&mut self) {
        let _ = virsh(&["undefine", "--nvram", &self.0]);
        let _ = virsh(&["undefine", &self.0]);
    }
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/defaults")
}

/// The inputs: (case name, domain XML with a unique name).
fn inputs(prefix: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    names.sort();
    for p in names {
        let case = p.file_stem().expect("stem").to_string_lossy().into_owned();
        let xml = std::fs::read_to_string(&p)
            .expect("read")
            .replace("NAME-", &format!("{prefix}-"));
        out.push((case, xml));
    }
    // virt-install's output for the test driver, turned into KVM guests.
    let conf =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ironvirt-conf/tests/fixtures/domain");
    let mut vi: Vec<PathBuf> = std::fs::read_dir(&conf)
        .expect("conf fixtures")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("virtinst-") && n.ends_with(".xml") && !n.ends_with(".expected.xml")
        })
        .collect();
    vi.sort();
    for p in vi {
        let case = p.file_stem().expect("stem").to_string_lossy().into_owned();
        let xml = std::fs::read_to_string(&p)
            .expect("read")
            .replace("type=\"test\"", "type=\"kvm\"")
            .replace("arch=\"i686\"", "arch=\"x86_64\"")
            .replace("/usr/bin/test-hv", REAL_QEMU)
            .replace("<name>", &format!("<name>{prefix}-"));
        out.push((case, xml));
    }
    out
}

/// Differences we keep, with why: (case, diff line as `-` reference or
/// `+` ours followed by the trimmed line, reason). A refusal's message is
/// compared as a line too (`!` reference, `?` ours).
fn known_differences() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut v = Vec::new();
    const IDE: &str = "both refuse IDE on q35 as an unsupported configuration; ironvirt \
                       words it from the domain capabilities";
    v.push((
        "q35-ide-refused",
        "!unsupported configuration: IDE controllers are unsupported for this QEMU binary or machine type",
        IDE,
    ));
    v.push((
        "q35-ide-refused",
        "?unsupported configuration: disk bus 'ide' is not supported by emulator '/usr/bin/qemu-system-x86_64' for machine 'pc-q35-7.2', arch 'x86_64', virt type 'kvm'",
        IDE,
    ));
    v
}

/// Line-by-line comparison: returns the lines of a minimal diff.
fn diff(reference: &str, ours: &str) -> Vec<String> {
    let a: Vec<&str> = reference.lines().collect();
    let b: Vec<&str> = ours.lines().collect();
    // Longest common subsequence table.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+{}", b[j]));
            j += 1;
        } else {
            out.push(format!("-{}", a[i]));
            i += 1;
        }
    }
    out
}

/// What defining a case gave: the inactive XML, or the refusal message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Xml(String),
    Refused(String),
}

fn expected_dir() -> PathBuf {
    fixtures().join("expected")
}

/// The recorded reference outcome of a case (measured by
/// `define_defaults_match_reference`, written with IRONVIRT_REGEN_DEFAULTS=1):
/// `stage` is "" for the input, ".redefined" for libvirt's output of it
/// defined again.
fn recorded(case: &str, stage: &str) -> Option<Outcome> {
    let d = expected_dir();
    if let Ok(x) = std::fs::read_to_string(d.join(format!("{case}{stage}.xml"))) {
        return Some(Outcome::Xml(x));
    }
    std::fs::read_to_string(d.join(format!("{case}{stage}.error")))
        .ok()
        .map(|e| Outcome::Refused(e.trim_end().to_string()))
}

fn record(case: &str, stage: &str, o: &Outcome) {
    let d = expected_dir();
    std::fs::create_dir_all(&d).expect("mkdir expected");
    let _ = std::fs::remove_file(d.join(format!("{case}{stage}.xml")));
    let _ = std::fs::remove_file(d.join(format!("{case}{stage}.error")));
    match o {
        Outcome::Xml(x) => std::fs::write(d.join(format!("{case}{stage}.xml")), x),
        Outcome::Refused(e) => {
            std::fs::write(d.join(format!("{case}{stage}.error")), format!("{e}\n"))
        }
    }
    .expect("write expected");
}

/// Compares one case; returns the failure text, if any, and notes which
/// known differences were met.
fn compare(
    case: &str,
    reference: &Outcome,
    ours: &Outcome,
    known: &[(&str, &str, &str)],
    used: &mut [bool],
) -> Option<String> {
    let mut keep = |l: &String| {
        let (sign, rest) = l.split_at(1);
        let line = format!("{sign}{}", rest.trim());
        match known.iter().position(|(c, k, _)| *c == case && *k == line) {
            Some(i) => {
                used[i] = true;
                false
            }
            None => true,
        }
    };
    match (reference, ours) {
        (Outcome::Xml(r), Outcome::Xml(o)) => {
            let d: Vec<String> = diff(r.trim_end(), o.trim_end())
                .into_iter()
                .filter(|l| keep(l))
                .collect();
            (!d.is_empty()).then(|| format!("{case}:\n  {}", d.join("\n  ")))
        }
        (Outcome::Refused(r), Outcome::Refused(o)) => {
            if r == o {
                return None;
            }
            let d: Vec<String> = [format!("!{r}"), format!("?{o}")]
                .into_iter()
                .filter(|l| keep(l))
                .collect();
            (!d.is_empty()).then(|| format!("{case}: refused differently:\n  {}", d.join("\n  ")))
        }
        (Outcome::Xml(_), Outcome::Refused(o)) => {
            Some(format!("{case}: refused by ours only: {o}"))
        }
        (Outcome::Refused(r), Outcome::Xml(_)) => {
            Some(format!("{case}: refused by the reference only: {r}"))
        }
    }
}

fn finish(what: &str, failures: Vec<String>, known: &[(&str, &str, &str)], used: &[bool]) {
    let stale: Vec<String> = known
        .iter()
        .zip(used)
        .filter(|(_, u)| !**u)
        .map(|((c, l, _), _)| format!("{c}: {l}"))
        .collect();
    assert!(
        failures.is_empty(),
        "{what}: dumpxml --inactive differs (-reference +ours; !reference ?ours refusals):\n{}",
        failures.join("\n")
    );
    assert!(
        stale.is_empty(),
        "{what}: these known differences no longer occur, remove them from known_differences():\n  {}",
        stale.join("\n  ")
    );
}

fn our_outcome(drv: &QemuDriver, xml: &str) -> Outcome {
    match drv
        .domain_define_xml(xml, 0)
        .and_then(|d| drv.domain_get_xml_desc(&d, ironvirt_driver::xml_flags::INACTIVE))
    {
        Ok(x) => Outcome::Xml(x),
        Err(e) => Outcome::Refused(e.message),
    }
}

/// Defines `xml` on the reference daemon and dumps it back.
fn reference_outcome(dir: &Path, case: &str, xml: &str) -> Outcome {
    let file = dir.join(format!("{case}.xml"));
    std::fs::write(&file, xml).expect("write input");
    let name = ironvirt_conf::DomainDef::parse(xml)
        .expect("input parses")
        .name;
    match virsh(&["define", &file.to_string_lossy()]).and_then(|_| {
        let _guard = RefDomain(name.clone());
        virsh(&["dumpxml", "--inactive", &name])
    }) {
        Ok(x) => Outcome::Xml(x),
        // virsh prints "error: Failed to define ...", then the message.
        Err(e) => Outcome::Refused(
            e.lines()
                .filter_map(|l| l.strip_prefix("error: "))
                .next_back()
                .unwrap_or("")
                .to_string(),
        ),
    }
}

/// Each input against the reference daemon, and libvirt's output of it
/// defined again (which holds every address and controller already: it
/// checks that given addresses are kept, and libvirt's reordering of
/// controllers on parse). Also checks that the outcomes recorded for
/// `define_defaults_match_recorded_reference` are what the reference
/// gives today.
#[test]
fn define_defaults_match_reference() {
    if !reference_available() {
        return;
    }
    let regen = std::env::var_os("IRONVIRT_REGEN_DEFAULTS").is_some_and(|v| v == "1");
    let prefix = format!("ivq{}", std::process::id());
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = QemuDriver::new(QemuConfig::new(tmp.path(), true)).expect("driver");
    let known = known_differences();
    let mut used = vec![false; known.len()];
    let mut failures = Vec::new();
    let generic = |o: &Outcome| match o {
        Outcome::Xml(x) => Outcome::Xml(x.replace(&format!("{prefix}-"), "NAME-")),
        Outcome::Refused(e) => {
            Outcome::Refused(e.replace(&tmp.path().to_string_lossy().to_string(), "DIR"))
        }
    };
    for (case, xml) in inputs(&prefix) {
        let mut stages = vec![("", xml)];
        let mut i = 0;
        while i < stages.len() {
            let (stage, input) = stages[i].clone();
            i += 1;
            let reference = reference_outcome(tmp.path(), &case, &input);
            let ours = our_outcome(&drv, &input);
            if regen {
                record(&case, stage, &generic(&reference));
            } else if recorded(&case, stage) != Some(generic(&reference)) {
                failures.push(format!(
                    "{case}{stage}: the recorded reference outcome under tests/fixtures/defaults/expected is missing or outdated; rerun with IRONVIRT_REGEN_DEFAULTS=1"
                ));
            }
            if let Some(f) = compare(&case, &reference, &ours, &known, &mut used) {
                failures.push(format!("{stage} {f}"));
            }
            if let (Outcome::Xml(x), "") = (&reference, stage) {
                stages.push((".redefined", x.clone()));
            }
        }
    }
    finish("reference libvirtd", failures, &known, &used);
}

/// The same inputs against the outcomes recorded from the reference
/// daemon, with the emulator's replies replayed: runs anywhere.
#[test]
fn define_defaults_match_recorded_reference() {
    let tmp = tempfile::tempdir().expect("tmp");
    let drv = common::replay_driver(tmp.path(), common::replay(std::time::Duration::ZERO));
    let fake = tmp.path().join("bin/qemu-system-x86_64");
    let fake = fake.to_string_lossy().to_string();
    let known = known_differences();
    let mut used = vec![false; known.len()];
    let mut failures = Vec::new();
    let cases = inputs("NAME");
    assert!(cases.len() >= 30, "inputs missing: {}", cases.len());
    let ours = |xml: &str| match our_outcome(&drv, &xml.replace(REAL_QEMU, &fake)) {
        Outcome::Xml(x) => Outcome::Xml(x.replace(&fake, REAL_QEMU)),
        Outcome::Refused(e) => Outcome::Refused(e.replace(&fake, REAL_QEMU)),
    };
    for (case, xml) in cases {
        if case.contains("tpm-emulator") && ironvirt_qemu::host::in_path("swtpm") {
            // Recorded on a host without swtpm, which the emulator
            // backend needs.
            continue;
        }
        let reference = recorded(&case, "").unwrap_or_else(|| {
            panic!("no recorded outcome for {case}: run define_defaults_match_reference with IRONVIRT_REGEN_DEFAULTS=1")
        });
        if let Some(f) = compare(&case, &reference, &ours(&xml), &known, &mut used) {
            failures.push(f);
        }
        if let Outcome::Xml(r) = &reference {
            let again = recorded(&case, ".redefined")
                .unwrap_or_else(|| panic!("no recorded redefinition outcome for {case}"));
            if let Some(f) = compare(&case, &again, &ours(r), &known, &mut used) {
                failures.push(format!(".redefined {f}"));
            }
        }
    }
    finish("recorded reference", failures, &known, &used);
}
