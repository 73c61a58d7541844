//! Top-level parts of `<domain>` kept as generic elements, normalised to
//! libvirt's layout: `<features>`, `<cpu>`, `<clock>`, `<memtune>`,
//! `<memoryBacking>`, `<cputune>`, `<numatune>`, `<pm>`.

use crate::generic::{Content, Element};
use crate::spec::{self, Spec};
use crate::units;
use crate::xml::{self, Writer};
use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};

/// Parses a libvirt bitmap (`1-4,^3,6`) into sorted bit numbers.
pub fn parse_bitmap(s: &str) -> Option<Vec<u32>> {
    let mut set = std::collections::BTreeSet::new();
    let mut neg = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return None;
        }
        if let Some(n) = part.strip_prefix('^') {
            neg.push(n.trim().parse::<u32>().ok()?);
            continue;
        }
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u32 = a.trim().parse().ok()?;
                let b: u32 = b.trim().parse().ok()?;
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(part.parse::<u32>().ok()?);
            }
        }
    }
    for n in neg {
        set.remove(&n);
    }
    Some(set.into_iter().collect())
}

/// Formats bits the way libvirt's `virBitmapFormat` does (`1-2,4,6`).
pub fn format_bitmap(bits: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bits.len() {
        let start = bits[i];
        let mut end = start;
        while i + 1 < bits.len() && bits[i + 1] == end + 1 {
            i += 1;
            end = bits[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// Canonicalises a bitmap attribute; a malformed one is an XML error.
pub fn canon_bitmap(value: &str, what: &str) -> Result<String> {
    match parse_bitmap(value) {
        Some(b) if !b.is_empty() => Ok(format_bitmap(&b)),
        _ => {
            let _ = what;
            Err(Error::new(
                ErrorDomain::NONE,
                ErrorNumber::INVALID_ARG,
                format!("Failed to parse bitmap '{value}'"),
            ))
        }
    }
}

fn canon_attr(e: &mut Element, name: &str, what: &str) -> Result<()> {
    for (k, v) in e.attrs.iter_mut() {
        if k == name {
            *v = canon_bitmap(v, what)?;
        }
    }
    Ok(())
}

fn children_mut(e: &mut Element) -> impl Iterator<Item = &mut Element> {
    e.content.iter_mut().filter_map(|c| match c {
        Content::Elem(x) => Some(x),
        Content::Text(_) => None,
    })
}

fn text(e: &Element) -> String {
    e.content
        .iter()
        .filter_map(|c| match c {
            Content::Text(t) => Some(t.as_str()),
            Content::Elem(_) => None,
        })
        .collect()
}

/// Rewrites a scaled size element (`<hard_limit unit='G'>1</hard_limit>`)
/// in KiB.
fn to_kib(e: &mut Element) -> Result<()> {
    let t = text(e);
    let v = xml::parse_u64(t.trim()).ok_or_else(|| {
        Error::new(
            ErrorDomain::XML,
            ErrorNumber::XML_ERROR,
            format!(
                "Invalid value '{t}' for element or attribute './{}[1]'",
                e.name
            ),
        )
    })?;
    let kib = units::memory_kib(v, e.attr("unit").unwrap_or(""))?;
    e.attrs = vec![("unit".into(), "KiB".into())];
    e.content = vec![Content::Text(kib.to_string())];
    Ok(())
}

const FEATURE_ORDER: &[&str] = &[
    "acpi",
    "apic",
    "pae",
    "hap",
    "viridian",
    "privnet",
    "hyperv",
    "kvm",
    "pvspinlock",
    "capabilities",
    "pmu",
    "vmport",
    "gic",
    "smm",
    "ioapic",
    "hpt",
    "vmcoreinfo",
    "htm",
    "nested-hv",
    "msrs",
    "ccf-assist",
    "xen",
    "cfpc",
    "sbbc",
    "ibs",
    "tcg",
];
const HYPERV_ORDER: &[&str] = &[
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
    "emsr_bitmap",
    "xmm_input",
];
const KVM_ORDER: &[&str] = &[
    "hidden",
    "hint-dedicated",
    "poll-control",
    "pv-ipi",
    "dirty-ring",
];

fn missing_state(name: &str) -> Error {
    Error::new(
        ErrorDomain::XML,
        ErrorNumber::XML_ERROR,
        format!("Missing required attribute 'state' in element '{name}'"),
    )
}

fn order_by(e: &mut Element, order: &[&str]) {
    let mut kids: Vec<Element> = std::mem::take(&mut e.content)
        .into_iter()
        .filter_map(|c| match c {
            Content::Elem(x) => Some(x),
            Content::Text(_) => None,
        })
        .collect();
    kids.sort_by_key(|k| {
        order
            .iter()
            .position(|o| *o == k.name)
            .unwrap_or(usize::MAX)
    });
    e.content = kids.into_iter().map(Content::Elem).collect();
}

/// Normalises `<features>`: libvirt's feature order, `state='on'` where
/// libvirt defaults it, unknown features rejected.
pub fn normalize_features(f: &mut Element) -> Result<()> {
    let mut kept = Vec::new();
    for c in std::mem::take(&mut f.content) {
        let Content::Elem(mut e) = c else { continue };
        if !FEATURE_ORDER.contains(&e.name.as_str()) {
            return Err(xml::unsupported(format!("unexpected feature '{}'", e.name)));
        }
        match e.name.as_str() {
            "hap" | "pmu" | "vmport" | "smm" | "pvspinlock" | "vmcoreinfo"
                if e.attr("state").is_none() =>
            {
                e.attrs.insert(0, ("state".into(), "on".into()));
            }
            "htm" | "nested-hv" | "ccf-assist" if e.attr("state").is_none() => {
                return Err(missing_state(&e.name));
            }
            "hyperv" => {
                if e.attr("mode").is_none() {
                    e.attrs.insert(0, ("mode".into(), "custom".into()));
                }
                for c in children_mut(&mut e) {
                    if c.attr("state").is_none() {
                        return Err(missing_state(&c.name));
                    }
                }
                order_by(&mut e, HYPERV_ORDER);
            }
            "kvm" => {
                for c in children_mut(&mut e) {
                    if c.attr("state").is_none() {
                        return Err(missing_state(&c.name));
                    }
                }
                order_by(&mut e, KVM_ORDER);
            }
            "ioapic" if e.attr("driver").is_none() => continue,
            "tcg" => {
                for c in children_mut(&mut e) {
                    if c.name == "tb-cache" {
                        to_kib(c)?;
                    }
                }
                if e.content.is_empty() {
                    continue;
                }
            }
            "hpt" => {
                for c in children_mut(&mut e) {
                    if c.name == "maxpagesize" {
                        to_kib(c)?;
                    }
                }
            }
            "capabilities" if e.attr("policy").is_none() && e.content.is_empty() => continue,
            _ => {}
        }
        kept.push(e);
    }
    kept.sort_by_key(|k| {
        FEATURE_ORDER
            .iter()
            .position(|o| *o == k.name)
            .unwrap_or(usize::MAX)
    });
    f.content = kept.into_iter().map(Content::Elem).collect();
    f.attrs.clear();
    Ok(())
}

/// Writes `<features>` (hyperv, kvm and xen keep an end tag when empty).
pub fn write_features(w: &mut Writer, f: &Element) {
    w.start("features");
    for e in f.elements() {
        if e.content.is_empty() && matches!(e.name.as_str(), "hyperv" | "kvm" | "xen") {
            w.start_owned(&e.name);
            for (k, v) in &e.attrs {
                w.attr(k, v);
            }
            w.force_open().end();
        } else {
            e.write(w);
        }
    }
    w.end();
}

static CPU_MODEL: Spec = Spec {
    attrs: &["fallback", "vendor_id"],
    children: &[],
    keep_unknown: false,
};
static CPU_TOPOLOGY: Spec = Spec {
    attrs: &["sockets", "dies", "clusters", "cores", "threads"],
    children: &[],
    keep_unknown: false,
};
static CPU_FEATURE: Spec = Spec {
    attrs: &["policy", "name"],
    children: &[],
    keep_unknown: false,
};
static CPU_CELL: Spec = Spec {
    attrs: &["id", "cpus", "memory", "unit", "memAccess", "discard"],
    children: &[
        ("distances", None),
        ("cache", None),
        ("interconnects", None),
    ],
    keep_unknown: false,
};
static CPU_NUMA: Spec = Spec {
    attrs: &[],
    children: &[("cell", Some(&CPU_CELL))],
    keep_unknown: false,
};
static CPU: Spec = Spec {
    attrs: &["mode", "match", "check", "migratable"],
    children: &[
        ("model", Some(&CPU_MODEL)),
        ("vendor", None),
        ("topology", Some(&CPU_TOPOLOGY)),
        ("cache", None),
        ("maxphysaddr", None),
        ("feature", Some(&CPU_FEATURE)),
        ("numa", Some(&CPU_NUMA)),
    ],
    keep_unknown: false,
};

/// Normalises `<cpu>` with libvirt's defaults (mode custom and match exact
/// with a model, fallback allow, topology dies 1, feature policy require).
pub fn normalize_cpu(c: &mut Element) -> Result<()> {
    let has_model = c.elements().any(|e| e.name == "model");
    if c.attr("mode").is_none() {
        c.attrs.push(("mode".into(), "custom".into()));
    }
    if c.attr("mode") != Some("custom") {
        c.attrs.retain(|(k, _)| k != "match");
    }
    if c.attr("mode") == Some("custom") && c.attr("match").is_none() && has_model {
        c.attrs.push(("match".into(), "exact".into()));
    }
    for e in children_mut(c) {
        match e.name.as_str() {
            "model" if e.attr("fallback").is_none() => {
                e.attrs.push(("fallback".into(), "allow".into()));
            }
            "topology" if e.attr("dies").is_none() => {
                e.attrs.push(("dies".into(), "1".into()));
            }
            "feature" if e.attr("policy").is_none() => {
                e.attrs.push(("policy".into(), "require".into()));
            }
            "numa" => {
                for cell in children_mut(e) {
                    canon_attr(cell, "cpus", "cpus")?;
                    if let Some(m) = cell.attr("memory") {
                        let v = xml::parse_u64(m)
                            .ok_or_else(|| xml::xml_err(format!("Invalid 'memory' value '{m}'")))?;
                        let kib = units::memory_kib(v, cell.attr("unit").unwrap_or(""))?;
                        cell.attrs.retain(|(k, _)| k != "memory" && k != "unit");
                        cell.attrs.push(("memory".into(), kib.to_string()));
                        cell.attrs.push(("unit".into(), "KiB".into()));
                    }
                }
            }
            _ => {}
        }
    }
    spec::normalize(c, &CPU);
    // A bare <cpu> (custom mode, nothing inside) is dropped by libvirt.
    Ok(())
}

static TIMER: Spec = Spec {
    attrs: &[
        "name",
        "present",
        "tickpolicy",
        "track",
        "frequency",
        "mode",
    ],
    children: &[("catchup", None)],
    keep_unknown: false,
};
static CLOCK: Spec = Spec {
    attrs: &["offset", "timezone", "adjustment", "basis"],
    children: &[("timer", Some(&TIMER))],
    keep_unknown: false,
};

/// Normalises `<clock>`.
pub fn normalize_clock(c: &mut Element) {
    if c.attr("offset").is_none() {
        c.attrs.insert(0, ("offset".into(), "utc".into()));
    }
    spec::normalize(c, &CLOCK);
}

static MEMTUNE: Spec = Spec {
    attrs: &[],
    children: &[
        ("hard_limit", None),
        ("soft_limit", None),
        ("min_guarantee", None),
        ("swap_hard_limit", None),
    ],
    keep_unknown: false,
};

/// Normalises `<memtune>` (order, sizes in KiB).
pub fn normalize_memtune(m: &mut Element) -> Result<()> {
    for c in children_mut(m) {
        to_kib(c)?;
    }
    spec::normalize(m, &MEMTUNE);
    Ok(())
}

static MEMORY_BACKING: Spec = Spec {
    attrs: &[],
    children: &[
        ("hugepages", None),
        ("nosharepages", None),
        ("locked", None),
        ("source", None),
        ("access", None),
        ("allocation", None),
        ("discard", None),
    ],
    keep_unknown: false,
};

/// Normalises `<memoryBacking>`.
pub fn normalize_memory_backing(m: &mut Element) {
    spec::normalize(m, &MEMORY_BACKING);
}

static CPUTUNE: Spec = Spec {
    attrs: &[],
    children: &[
        ("shares", None),
        ("period", None),
        ("quota", None),
        ("global_period", None),
        ("global_quota", None),
        ("emulator_period", None),
        ("emulator_quota", None),
        ("iothread_period", None),
        ("iothread_quota", None),
        ("vcpupin", None),
        ("emulatorpin", None),
        ("iothreadpin", None),
        ("emulatorsched", None),
        ("vcpusched", None),
        ("iothreadsched", None),
        ("cachetune", None),
        ("memorytune", None),
    ],
    keep_unknown: false,
};

/// Normalises `<cputune>` (order, canonical cpusets).
pub fn normalize_cputune(c: &mut Element) -> Result<()> {
    for e in children_mut(c) {
        canon_attr(e, "cpuset", "cpuset")?;
    }
    spec::normalize(c, &CPUTUNE);
    Ok(())
}

static NUMATUNE: Spec = Spec {
    attrs: &[],
    children: &[("memory", None), ("memnode", None)],
    keep_unknown: false,
};

/// Normalises `<numatune>`.
pub fn normalize_numatune(n: &mut Element) -> Result<()> {
    for e in children_mut(n) {
        canon_attr(e, "nodeset", "nodeset")?;
    }
    spec::normalize(n, &NUMATUNE);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_like_libvirt() {
        assert_eq!(canon_bitmap("1-4,^3,6", "cpuset").unwrap(), "1-2,4,6");
        assert_eq!(canon_bitmap("2,3", "cpuset").unwrap(), "2-3");
        assert_eq!(canon_bitmap("0", "cpuset").unwrap(), "0");
        assert!(canon_bitmap("a", "cpuset").is_err());
        assert!(canon_bitmap("", "cpuset").is_err());
    }
}
