//! Node description files (`test:///abs/path/node.xml`): a `<node>` document
//! with the host's CPU and memory and the domains it starts with, inline or
//! as `<domain file='...'/>` references relative to the file.

use crate::caps::default_node_info;
use ironvirt_driver::{DomainState, Error, ErrorDomain, ErrorNumber, NodeInfo, Result};
use roxmltree::{Document, Node};
use std::path::{Path, PathBuf};

/// The namespace of the test driver's extra domain elements.
pub const TEST_NS: &str = "http://libvirt.org/schemas/domain/test/1.0";

/// A domain listed in a node file, with the test driver's own settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeDomain {
    /// The `<domain>` document, namespaces in scope declared on its root.
    pub xml: String,
    /// `<test:runstate>`: the state the domain starts in (running if absent).
    pub runstate: i32,
    /// `<test:transient/>`.
    pub transient: bool,
    /// `<test:hasmanagedsave/>`.
    pub has_managed_save: bool,
}

/// What a node file describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFile {
    /// Host CPU and memory.
    pub info: NodeInfo,
    /// Domains in document order.
    pub domains: Vec<NodeDomain>,
}

fn xml_error(domain: ErrorDomain, detail: impl Into<String>) -> Error {
    Error::new(domain, ErrorNumber::XML_ERROR, detail)
}

/// `virXPathLong` on a child's text: `Ok(None)` when absent, an error when
/// present but not a number.
fn number(node: Node<'_, '_>, path: &[&str], what: &str) -> Result<Option<i64>> {
    let mut cur = node;
    for name in path {
        match cur
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == *name)
        {
            Some(c) => cur = c,
            None => return Ok(None),
        }
    }
    let text: String = cur
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    let t = text.trim();
    let parsed = if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()
    } else {
        t.parse::<i64>().ok()
    };
    match parsed {
        Some(v) => Ok(Some(v)),
        None => Err(xml_error(
            ErrorDomain::TEST,
            format!("invalid {what} value"),
        )),
    }
}

fn text_of(node: Node<'_, '_>, path: &[&str]) -> Option<String> {
    let mut cur = node;
    for name in path {
        cur = cur
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == *name)?;
    }
    Some(
        cur.descendants()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect(),
    )
}

/// Parses the node info like libvirt's test driver: each value overrides the
/// default, the CPU count is the product of the topology capped by `<active>`.
fn parse_node_info(root: Node<'_, '_>) -> Result<NodeInfo> {
    let mut info = default_node_info();
    let clamp = |v: i64| u32::try_from(v).unwrap_or(if v < 0 { 0 } else { u32::MAX });
    if let Some(v) = number(root, &["cpu", "nodes"], "node cpu nodes")? {
        info.nodes = clamp(v);
    }
    if let Some(v) = number(root, &["cpu", "sockets"], "node cpu sockets")? {
        info.sockets = clamp(v);
    }
    if let Some(v) = number(root, &["cpu", "cores"], "node cpu cores")? {
        info.cores = clamp(v);
    }
    if let Some(v) = number(root, &["cpu", "threads"], "node cpu threads")? {
        info.threads = clamp(v);
    }
    info.cpus = info
        .cores
        .wrapping_mul(info.threads)
        .wrapping_mul(info.sockets)
        .wrapping_mul(info.nodes);
    if let Some(v) = number(root, &["cpu", "active"], "node cpu active")? {
        if v < i64::from(info.cpus) {
            info.cpus = clamp(v);
        }
    }
    if let Some(v) = number(root, &["cpu", "mhz"], "node cpu mhz")? {
        info.mhz = clamp(v);
    }
    if let Some(model) = text_of(root, &["cpu", "model"]) {
        if model.len() >= 32 {
            return Err(Error::new(
                ErrorDomain::TEST,
                ErrorNumber::INTERNAL_ERROR,
                format!("Model {model} too big for destination"),
            ));
        }
        info.model = model;
    }
    if let Some(v) = number(root, &["memory"], "node memory")? {
        info.memory = u64::try_from(v).unwrap_or(0);
    }
    Ok(info)
}

/// The text of `node` as a standalone document: namespaces declared on its
/// ancestors are declared again on it.
fn standalone(text: &str, node: Node<'_, '_>) -> String {
    let body = &text[node.range()];
    let tag_end = body.find('>').unwrap_or(body.len());
    let start_tag = &body[..tag_end];
    let mut decls = String::new();
    for ns in node.namespaces() {
        if ns.uri() == "http://www.w3.org/XML/1998/namespace" {
            continue;
        }
        let (needle, decl) = match ns.name() {
            Some(p) => (format!("xmlns:{p}="), format!(" xmlns:{p}='{}'", ns.uri())),
            None => ("xmlns=".to_string(), format!(" xmlns='{}'", ns.uri())),
        };
        if !start_tag.contains(&needle) {
            decls.push_str(&decl);
        }
    }
    if decls.is_empty() {
        return body.to_string();
    }
    // Insert right after `<qname`.
    let at = body
        .get(1..)
        .and_then(|rest| rest.find(|c: char| c.is_whitespace() || c == '>' || c == '/'))
        .map_or(body.len(), |i| i + 1);
    let mut out = String::with_capacity(body.len() + decls.len());
    out.push_str(&body[..at]);
    out.push_str(&decls);
    out.push_str(&body[at..]);
    out
}

fn test_elements<'a, 'i>(
    dom: Node<'a, 'i>,
    name: &'static str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    dom.children().filter(move |c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(TEST_NS)
    })
}

/// Reads the test driver's namespace elements of a domain.
fn node_domain(xml: String) -> Result<NodeDomain> {
    let doc = Document::parse(&xml).map_err(|e| xml_error(ErrorDomain::DOMAIN, e.to_string()))?;
    let root = doc.root_element();
    let transient = test_elements(root, "transient").next().is_some();
    let has_managed_save = test_elements(root, "hasmanagedsave").next().is_some();
    let runstate = match test_elements(root, "runstate").next() {
        None => DomainState::Running as i32,
        Some(n) => {
            let t: String = n
                .descendants()
                .filter(|n| n.is_text())
                .filter_map(|n| n.text())
                .collect();
            let v: u32 = t
                .trim()
                .parse()
                .map_err(|_| xml_error(ErrorDomain::TEST, "invalid runstate"))?;
            if v > DomainState::PmSuspended as u32 {
                return Err(xml_error(
                    ErrorDomain::TEST,
                    format!("runstate '{v}' out of range'"),
                ));
            }
            v as i32
        }
    };
    if transient && runstate == DomainState::Shutoff as i32 {
        return Err(xml_error(
            ErrorDomain::TEST,
            "transient domain cannot have runstate 'shutoff'",
        ));
    }
    if has_managed_save && runstate != DomainState::Shutoff as i32 {
        return Err(xml_error(
            ErrorDomain::TEST,
            "domain with managedsave data can only have runstate 'shutoff'",
        ));
    }
    Ok(NodeDomain {
        xml,
        runstate,
        transient,
        has_managed_save,
    })
}

fn relative_to(file: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new("/")).join(p)
    }
}

/// Parses a node document held in `text`; `file` is where it came from
/// (for relative `file=` references).
///
/// ```
/// use std::path::Path;
/// let n = ironvirt_test::node::parse_node("<node><cpu><mhz>6000</mhz></cpu></node>", Path::new("/n.xml")).unwrap();
/// assert_eq!(n.info.mhz, 6000);
/// assert!(n.domains.is_empty());
/// ```
pub fn parse_node(text: &str, file: &Path) -> Result<NodeFile> {
    let doc = Document::parse(text).map_err(|_| {
        xml_error(
            ErrorDomain::TEST,
            format!("failed to parse xml document '{}'", file.display()),
        )
    })?;
    let root = doc.root_element();
    if root.tag_name().name() != "node" {
        return Err(xml_error(
            ErrorDomain::XML,
            format!(
                "expecting root element of 'node', not '{}'",
                root.tag_name().name()
            ),
        ));
    }
    let info = parse_node_info(root)?;
    let mut domains = Vec::new();
    for d in root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "domain")
    {
        let xml = match d.attribute("file") {
            Some(f) => {
                let path = relative_to(file, f);
                std::fs::read_to_string(&path).map_err(|_| {
                    xml_error(
                        ErrorDomain::TEST,
                        format!("failed to parse xml document '{}'", path.display()),
                    )
                })?
            }
            None => standalone(text, d),
        };
        domains.push(node_domain(xml)?);
    }
    Ok(NodeFile { info, domains })
}

/// Reads and parses the node file at `path`.
///
/// ```
/// let e = ironvirt_test::node::load_node(std::path::Path::new("/nonexistent.xml")).unwrap_err();
/// assert_eq!(e.to_string(), "XML error: failed to parse xml document '/nonexistent.xml'");
/// ```
pub fn load_node(path: &Path) -> Result<NodeFile> {
    let text = std::fs::read_to_string(path).map_err(|_| {
        xml_error(
            ErrorDomain::TEST,
            format!("failed to parse xml document '{}'", path.display()),
        )
    })?;
    parse_node(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: &str = "<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\
        <domain type='test'><name>a</name><test:runstate>5</test:runstate></domain>\
        <domain type='test'><name>b</name><test:transient/></domain>\
        <cpu><mhz>6000</mhz><model>i986</model><active>50</active><nodes>4</nodes>\
        <sockets>4</sockets><cores>4</cores><threads>2</threads></cpu><memory>8192000</memory></node>";

    #[test]
    fn node_info_and_domains() {
        let n = parse_node(NODE, Path::new("/x/node.xml")).unwrap();
        assert_eq!(n.info.model, "i986");
        assert_eq!(n.info.cpus, 50);
        assert_eq!(n.info.mhz, 6000);
        assert_eq!(
            (n.info.nodes, n.info.sockets, n.info.cores, n.info.threads),
            (4, 4, 4, 2)
        );
        assert_eq!(n.info.memory, 8192000);
        assert_eq!(n.domains.len(), 2);
        assert_eq!(n.domains[0].runstate, 5);
        assert!(!n.domains[0].transient);
        assert!(n.domains[1].transient);
        assert_eq!(n.domains[1].runstate, 1);
        // The standalone text still parses: the prefix is declared again.
        assert!(n.domains[0].xml.contains("xmlns:test="));
        assert!(Document::parse(&n.domains[0].xml).is_ok());
    }

    #[test]
    fn bad_values_are_errors() {
        let e =
            parse_node("<node><cpu><mhz>x</mhz></cpu></node>", Path::new("/n.xml")).unwrap_err();
        assert_eq!(e.to_string(), "XML error: invalid node cpu mhz value");
        let e = parse_node("<foo/>", Path::new("/n.xml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "XML error: expecting root element of 'node', not 'foo'"
        );
        assert_eq!(e.domain, ErrorDomain::XML);
        let e = parse_node("<node", Path::new("/n.xml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "XML error: failed to parse xml document '/n.xml'"
        );
        let e = parse_node(
            "<node xmlns:t='http://libvirt.org/schemas/domain/test/1.0'><domain><t:transient/><t:runstate>5</t:runstate></domain></node>",
            Path::new("/n.xml"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "XML error: transient domain cannot have runstate 'shutoff'"
        );
    }

    #[test]
    fn file_references_are_relative_to_the_node_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("d.xml"),
            "<domain type='test'><name>f</name></domain>",
        )
        .unwrap();
        let node = dir.path().join("node.xml");
        std::fs::write(&node, "<node><domain file='d.xml'/></node>").unwrap();
        let n = load_node(&node).unwrap();
        assert_eq!(
            n.domains[0].xml,
            "<domain type='test'><name>f</name></domain>"
        );
        assert!(load_node(&dir.path().join("missing.xml")).is_err());
    }
}
