//! A compact, read-only XML tree the models are parsed from.
//!
//! Documents are read by a small scanner that understands the plain XML
//! domain definitions are made of: elements, attributes, text and
//! ordinary namespace declarations; no references, comments, processing
//! instructions, CDATA, declaration or DTD, ASCII names, no carriage
//! returns. Whenever it meets anything else, or anything malformed, the
//! document is parsed again by `roxmltree` (which also produces the error,
//! with its line and column) and its tree is copied. Both paths give the
//! same tree for the same document: the scanner only accepts documents
//! `roxmltree` accepts, and builds the tree `roxmltree` would (the tests
//! compare both on the fixtures and on corrupted copies of them).
//!
//! The scanner saves most of the parsing time: no text is copied, nodes
//! and attributes live in two vectors, and names are checked with a table.

use crate::xml;
use ironvirt_driver::Result;

/// "No node" in the links (the document node is never a child or sibling).
const NONE: u32 = 0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Root,
    Element,
    Text,
    /// Comments and processing instructions.
    Other,
}

#[derive(Clone, Copy, Debug)]
struct NodeData<'a> {
    kind: Kind,
    /// Local name of an element, content of a text node.
    name: &'a str,
    /// Namespace URI of an element.
    ns: Option<&'a str>,
    parent: u32,
    first_child: u32,
    next_sibling: u32,
    attrs: (u32, u32),
    nss: (u32, u32),
}

/// An attribute: namespace URI, local name, value.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Attr<'a> {
    ns: Option<&'a str>,
    name: &'a str,
    value: &'a str,
}

impl<'a> Attr<'a> {
    /// The namespace URI.
    pub(crate) fn namespace(&self) -> Option<&'a str> {
        self.ns
    }

    /// The local name.
    pub(crate) fn name(&self) -> &'a str {
        self.name
    }

    /// The (normalised) value.
    pub(crate) fn value(&self) -> &'a str {
        self.value
    }
}

/// An in-scope namespace: prefix (`None` for the default one) and URI.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ns<'a> {
    prefix: Option<&'a str>,
    uri: &'a str,
}

impl<'a> Ns<'a> {
    /// The prefix.
    pub(crate) fn name(&self) -> Option<&'a str> {
        self.prefix
    }

    /// The URI.
    pub(crate) fn uri(&self) -> &'a str {
        self.uri
    }
}

const XML_NS: Ns<'static> = Ns {
    prefix: Some("xml"),
    uri: "http://www.w3.org/XML/1998/namespace",
};

/// A parsed document.
pub(crate) struct Doc<'a> {
    nodes: Vec<NodeData<'a>>,
    attrs: Vec<Attr<'a>>,
    nss: Vec<Ns<'a>>,
}

/// A node of a [`Doc`].
#[derive(Clone, Copy)]
pub(crate) struct Node<'d, 'a> {
    doc: &'d Doc<'a>,
    id: u32,
}

/// An element's name: local name and namespace URI.
#[derive(Clone, Copy)]
pub(crate) struct TagName<'a> {
    name: &'a str,
    ns: Option<&'a str>,
}

impl<'a> TagName<'a> {
    /// The local name.
    pub(crate) fn name(&self) -> &'a str {
        self.name
    }

    /// The namespace URI.
    pub(crate) fn namespace(&self) -> Option<&'a str> {
        self.ns
    }
}

impl<'a> Doc<'a> {
    /// The node with index `id`.
    fn node<'d>(&'d self, id: u32) -> Node<'d, 'a> {
        Node { doc: self, id }
    }

    /// The first element child of the document node.
    pub(crate) fn root_element<'d>(&'d self) -> Node<'d, 'a> {
        self.node(0)
            .children()
            .find(|n| n.is_element())
            .unwrap_or_else(|| self.node(0))
    }

    /// Copies a `roxmltree` document. Node indexes are kept, so
    /// [`Doc::node_of`] finds the copy of any of its nodes.
    pub(crate) fn from_rox(rdoc: &'a roxmltree::Document<'_>) -> Doc<'a> {
        let mut doc = Doc {
            nodes: Vec::new(),
            attrs: Vec::new(),
            nss: Vec::new(),
        };
        let link = |n: Option<roxmltree::Node<'_, '_>>| n.map_or(NONE, |x| x.id().get());
        let mut i = 0;
        while let Some(n) = rdoc.get_node(roxmltree::NodeId::new(i)) {
            let (kind, name, ns) = match n.node_type() {
                roxmltree::NodeType::Root => (Kind::Root, "", None),
                roxmltree::NodeType::Element => {
                    (Kind::Element, n.tag_name().name(), n.tag_name().namespace())
                }
                roxmltree::NodeType::Text => (Kind::Text, n.text().unwrap_or(""), None),
                _ => (Kind::Other, "", None),
            };
            let a0 = doc.attrs.len() as u32;
            let s0 = doc.nss.len() as u32;
            if kind == Kind::Element {
                for a in n.attributes() {
                    doc.attrs.push(Attr {
                        ns: a.namespace(),
                        name: a.name(),
                        value: a.value(),
                    });
                }
                for s in n.namespaces() {
                    doc.nss.push(Ns {
                        prefix: s.name(),
                        uri: s.uri(),
                    });
                }
            }
            doc.nodes.push(NodeData {
                kind,
                name,
                ns,
                parent: link(n.parent()),
                first_child: link(n.first_child()),
                next_sibling: link(n.next_sibling()),
                attrs: (a0, doc.attrs.len() as u32),
                nss: (s0, doc.nss.len() as u32),
            });
            i += 1;
        }
        doc
    }

    /// The copy of `n`, a node of the document this one was copied from
    /// with [`Doc::from_rox`].
    pub(crate) fn node_of<'d>(&'d self, n: roxmltree::Node<'_, '_>) -> Node<'d, 'a> {
        self.node(n.id().get())
    }
}

/// Parses `text` and calls `f` with the document; syntax errors are
/// reported as [`xml::parse_document`] reports them (`url` names the
/// document in the message).
pub(crate) fn with_document<R>(
    text: &str,
    url: &str,
    f: impl FnOnce(&Doc<'_>) -> Result<R>,
) -> Result<R> {
    if let Some(doc) = scan(text) {
        return f(&doc);
    }
    let rdoc = xml::parse_document(text, url)?;
    let doc = Doc::from_rox(&rdoc);
    f(&doc)
}

/// Calls `f` with the copy of a `roxmltree` node.
pub(crate) fn with_rox_node<R>(n: roxmltree::Node<'_, '_>, f: impl FnOnce(Node<'_, '_>) -> R) -> R {
    let doc = Doc::from_rox(n.document());
    f(doc.node_of(n))
}

impl<'d, 'a> Node<'d, 'a> {
    fn d(&self) -> &'d NodeData<'a> {
        &self.doc.nodes[self.id as usize]
    }

    fn link(&self, id: u32) -> Option<Node<'d, 'a>> {
        (id != NONE).then_some(Node { doc: self.doc, id })
    }

    /// Whether this is an element.
    pub(crate) fn is_element(&self) -> bool {
        self.d().kind == Kind::Element
    }

    /// Whether this is a text node.
    pub(crate) fn is_text(&self) -> bool {
        self.d().kind == Kind::Text
    }

    /// The element's name (empty for other nodes).
    pub(crate) fn tag_name(&self) -> TagName<'a> {
        let d = self.d();
        TagName {
            name: d.name,
            ns: d.ns,
        }
    }

    /// The text of a text node, or of an element's first child when that
    /// is a text node.
    pub(crate) fn text(&self) -> Option<&'a str> {
        let d = self.d();
        match d.kind {
            Kind::Text => Some(d.name),
            Kind::Element => self
                .link(d.first_child)
                .filter(|c| c.is_text())
                .map(|c| c.d().name),
            _ => None,
        }
    }

    /// The attributes in document order.
    pub(crate) fn attributes(&self) -> &'d [Attr<'a>] {
        let (a, b) = self.d().attrs;
        &self.doc.attrs[a as usize..b as usize]
    }

    /// The value of the attribute `name` without a namespace.
    pub(crate) fn attribute(&self, name: &str) -> Option<&'a str> {
        self.attributes()
            .iter()
            .find(|a| a.ns.is_none() && same(a.name, name))
            .map(|a| a.value)
    }

    /// The parent node.
    pub(crate) fn parent(&self) -> Option<Node<'d, 'a>> {
        if self.id == 0 {
            return None;
        }
        Some(Node {
            doc: self.doc,
            id: self.d().parent,
        })
    }

    /// The child nodes.
    pub(crate) fn children(&self) -> Children<'d, 'a> {
        Children {
            doc: self.doc,
            next: self.d().first_child,
        }
    }

    /// The namespaces in scope on an element, as `roxmltree` lists them
    /// (scanned documents declare none).
    pub(crate) fn namespaces(&self) -> impl Iterator<Item = Ns<'a>> + 'd {
        let d = self.d();
        self.doc.nss[d.nss.0 as usize..d.nss.1 as usize]
            .iter()
            .copied()
    }

    /// The prefix bound to `uri` here.
    pub(crate) fn lookup_prefix(&self, uri: &str) -> Option<&'a str> {
        if uri == XML_NS.uri {
            return XML_NS.prefix;
        }
        self.namespaces()
            .find(|n| n.uri == uri)
            .and_then(|n| n.prefix)
    }
}

/// Iterator over a node's children.
pub(crate) struct Children<'d, 'a> {
    doc: &'d Doc<'a>,
    next: u32,
}

impl<'d, 'a> Iterator for Children<'d, 'a> {
    type Item = Node<'d, 'a>;

    fn next(&mut self) -> Option<Node<'d, 'a>> {
        if self.next == NONE {
            return None;
        }
        let n = Node {
            doc: self.doc,
            id: self.next,
        };
        self.next = n.d().next_sibling;
        Some(n)
    }
}

// ---------------------------------------------------------------- helpers

/// String equality for the short names of XML: a byte loop is much
/// cheaper than the `memcmp` call `==` makes for lengths not known at
/// compile time.
#[inline]
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// First element child called `name`.
pub(crate) fn child<'d, 'a>(node: Node<'d, 'a>, name: &str) -> Option<Node<'d, 'a>> {
    node.children()
        .find(|c| c.is_element() && same(c.tag_name().name(), name))
}

/// Element children called `name`.
pub(crate) fn children<'d, 'a: 'd, 'n>(
    node: Node<'d, 'a>,
    name: &'n str,
) -> impl Iterator<Item = Node<'d, 'a>> + 'n
where
    'd: 'n,
{
    node.children()
        .filter(move |c| c.is_element() && same(c.tag_name().name(), name))
}

/// Element children.
pub(crate) fn elements<'d, 'a>(node: Node<'d, 'a>) -> impl Iterator<Item = Node<'d, 'a>> + 'd {
    node.children().filter(|c| c.is_element())
}

/// The text content of an element (all text children concatenated).
pub(crate) fn text_of(node: Node<'_, '_>) -> String {
    let mut texts = node.children().filter(|c| c.is_text());
    let Some(first) = texts.next() else {
        return String::new();
    };
    let mut s = first.text().unwrap_or("").to_string();
    for c in texts {
        s.push_str(c.text().unwrap_or(""));
    }
    s
}

/// [`text_of`] without a copy when the element has at most one text child.
pub(crate) fn text_ref<'a>(node: Node<'_, 'a>) -> std::borrow::Cow<'a, str> {
    let mut texts = node.children().filter(|c| c.is_text());
    match (texts.next(), texts.next()) {
        (None, _) => "".into(),
        (Some(t), None) => t.text().unwrap_or("").into(),
        _ => text_of(node).into(),
    }
}

/// The text of child `name`, if the child exists.
pub(crate) fn child_text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(text_of)
}

/// An attribute as an owned string.
pub(crate) fn attr(node: Node<'_, '_>, name: &str) -> Option<String> {
    node.attribute(name).map(str::to_string)
}

/// An attribute of child `child_name`.
pub(crate) fn child_attr(node: Node<'_, '_>, child_name: &str, name: &str) -> Option<String> {
    child(node, child_name).and_then(|c| attr(c, name))
}

fn what_or<'a>(node: Node<'_, 'a>, what: &'a str) -> &'a str {
    if what.is_empty() {
        node.tag_name().name()
    } else {
        what
    }
}

/// Parses an unsigned attribute; a malformed value is `VIR_ERR_XML_ERROR`
/// with `what` as the description.
pub(crate) fn attr_u32(node: Node<'_, '_>, name: &str, what: &str) -> Result<Option<u32>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => xml::parse_u32(v)
            .map(Some)
            .ok_or_else(|| xml::bad_unsigned(name, what_or(node, what), v)),
    }
}

/// Parses a signed attribute.
pub(crate) fn attr_i64(node: Node<'_, '_>, name: &str, what: &str) -> Result<Option<i64>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => xml::parse_i64(v)
            .map(Some)
            .ok_or_else(|| xml::bad_signed(name, what_or(node, what), v)),
    }
}

/// `on`/`off` (and `yes`/`no`) tri-state attributes.
pub(crate) fn attr_onoff(node: Node<'_, '_>, name: &str) -> Result<Option<bool>> {
    xml::onoff_value(node.attribute(name), name, node.tag_name().name())
}

// ---------------------------------------------------------------- scanner

const NAME_START: u8 = 1;
const NAME: u8 = 2;
const SPACE: u8 = 4;
/// Ends a run of plain text: `<`, `>` (for `]]>`), `&`, control
/// characters but tab and newline, and 0xEF (U+FFFE and U+FFFF start so).
const TEXT_STOP: u8 = 8;
/// Ends a run of plain attribute value: quotes, `<`, `&`, control
/// characters (tabs and newlines are normalised in values) and 0xEF.
const ATTR_STOP: u8 = 16;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut v = 0;
        if c.is_ascii_alphabetic() || c == b'_' {
            v |= NAME_START | NAME;
        }
        if c.is_ascii_digit() || c == b'-' || c == b'.' {
            v |= NAME;
        }
        if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
            v |= SPACE;
        }
        if c == b'<'
            || c == b'>'
            || c == b'&'
            || c == 0xef
            || (c < 0x20 && c != b'\t' && c != b'\n')
        {
            v |= TEXT_STOP;
        }
        if c == b'\'' || c == b'"' || c == b'<' || c == b'&' || c == 0xef || c < 0x20 {
            v |= ATTR_STOP;
        }
        t[i] = v;
        i += 1;
    }
    t
}

#[inline]
fn class(c: u8) -> u8 {
    CLASS[c as usize]
}

/// The first index from `i` whose byte has none of `bits` (`b.len()` when
/// there is none).
fn skip_class(b: &[u8], i: usize, bits: u8) -> usize {
    match b.get(i..) {
        Some(rest) => {
            i + rest
                .iter()
                .position(|&c| class(c) & bits == 0)
                .unwrap_or(rest.len())
        }
        None => b.len(),
    }
}

/// The first index from `i` whose byte has one of `bits`.
fn find_class(b: &[u8], i: usize, bits: u8) -> Option<usize> {
    Some(i + b.get(i..)?.iter().position(|&c| class(c) & bits != 0)?)
}

fn skip_spaces(b: &[u8], i: usize) -> usize {
    skip_class(b, i, SPACE)
}

/// Whether `b[i..]` (starting with 0xEF) encodes a character other than
/// U+FFFE and U+FFFF, which are not XML characters.
fn xml_char_at_ef(b: &[u8], i: usize) -> bool {
    !(b.get(i + 1) == Some(&0xbf) && matches!(b.get(i + 2), Some(0xbe | 0xbf)))
}

/// An ASCII name without a prefix at `i`: its end, or `None` when there
/// is none.
#[inline]
fn name_end(b: &[u8], i: usize) -> Option<usize> {
    if class(*b.get(i)?) & NAME_START == 0 {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() && class(b[j]) & NAME != 0 {
        j += 1;
    }
    Some(j)
}

fn new_node(kind: Kind, name: &str) -> NodeData<'_> {
    NodeData {
        kind,
        name,
        ns: None,
        parent: NONE,
        first_child: NONE,
        next_sibling: NONE,
        attrs: (0, 0),
        nss: (0, 0),
    }
}

/// An open node while scanning: index, last child, prefix of its name.
type Open<'a> = (u32, u32, &'a str);

/// Adds `n` as the last child of the innermost open node.
fn append<'a>(doc: &mut Doc<'a>, open: &mut [Open<'a>], mut n: NodeData<'a>) -> u32 {
    let id = doc.nodes.len() as u32;
    if let Some((parent, last, _)) = open.last_mut() {
        n.parent = *parent;
        if *last == NONE {
            doc.nodes[*parent as usize].first_child = id;
        } else {
            doc.nodes[*last as usize].next_sibling = id;
        }
        *last = id;
    }
    doc.nodes.push(n);
    id
}

/// A name at `i`, with or without a prefix: prefix (empty when none),
/// local name and end.
#[inline]
fn qname<'a>(text: &'a str, b: &[u8], i: usize) -> Option<(&'a str, &'a str, usize)> {
    let e1 = name_end(b, i)?;
    if b.get(e1) != Some(&b':') {
        return Some(("", &text[i..e1], e1));
    }
    let e2 = name_end(b, e1 + 1)?;
    if b.get(e2) == Some(&b':') {
        return None;
    }
    Some((&text[i..e1], &text[e1 + 1..e2], e2))
}

const XMLNS_URI: &str = "http://www.w3.org/2000/xmlns/";

/// The URI bound to `prefix` in `nss`.
fn lookup_ns<'a>(nss: &[Ns<'a>], prefix: Option<&str>) -> Option<&'a str> {
    nss.iter().find(|n| n.prefix == prefix).map(|n| n.uri)
}

/// The namespaces in scope on an element declaring `decls` whose parent
/// has `parent` in scope: the declared ones in order, then the parent's
/// not declared again. `None` for declarations roxmltree rejects or that
/// are unusual.
fn scope_of<'a>(
    doc: &mut Doc<'a>,
    decls: &mut Vec<(Option<&'a str>, &'a str)>,
    parent: (u32, u32),
) -> Option<(u32, u32)> {
    if decls.is_empty() {
        return Some(parent);
    }
    for (k, (p, uri)) in decls.iter().enumerate() {
        if uri.is_empty()
            || *uri == XML_NS.uri
            || *uri == XMLNS_URI
            || *p == Some("xml")
            || *p == Some("xmlns")
            || decls[..k].iter().any(|d| d.0 == *p)
        {
            return None;
        }
    }
    let s0 = doc.nss.len();
    if s0 > 60_000 {
        return None;
    }
    doc.nss
        .extend(decls.drain(..).map(|(prefix, uri)| Ns { prefix, uri }));
    for j in parent.0 as usize..parent.1 as usize {
        let inherited = doc.nss[j];
        if !doc.nss[s0..].iter().any(|n| n.prefix == inherited.prefix) {
            doc.nss.push(inherited);
        }
    }
    Some((s0 as u32, doc.nss.len() as u32))
}

/// Reads a document made only of elements, attributes and plain text,
/// with namespace declarations of the ordinary kind. `None` means "not
/// such a document or not well-formed": the caller then parses it with
/// `roxmltree`.
pub(crate) fn scan(text: &str) -> Option<Doc<'_>> {
    let b = text.as_bytes();
    if b.len() >= u32::MAX as usize {
        return None;
    }
    let mut doc = Doc {
        nodes: Vec::with_capacity(b.len() / 16 + 4),
        attrs: Vec::with_capacity(b.len() / 40 + 4),
        nss: Vec::new(),
    };
    doc.nodes.push(new_node(Kind::Root, ""));
    // Open nodes, the document node first.
    let mut open: Vec<Open<'_>> = Vec::with_capacity(16);
    open.push((0, NONE, ""));
    // Namespace declarations of the current start tag, and its prefixed
    // attributes (index, prefix).
    let mut decls: Vec<(Option<&str>, &str)> = Vec::new();
    let mut prefixed: Vec<(usize, &str)> = Vec::new();

    let mut i = skip_spaces(b, 0);
    // Only an element may start the document here.
    if b.get(i) != Some(&b'<') {
        return None;
    }
    'element: loop {
        // A start tag at `i`.
        let (prefix, name, name_stop) = qname(text, b, i + 1)?;
        if prefix == "xml" || prefix == "xmlns" {
            return None;
        }
        i = name_stop;
        let a0 = doc.attrs.len();
        let closed = loop {
            let had_space = i < b.len() && class(b[i]) & SPACE != 0;
            i = skip_spaces(b, i);
            match *b.get(i)? {
                b'/' => {
                    if b.get(i + 1) != Some(&b'>') {
                        return None;
                    }
                    i += 2;
                    break true;
                }
                b'>' => {
                    i += 1;
                    break false;
                }
                _ => {
                    if !had_space {
                        return None;
                    }
                    let (aprefix, aname, an_end) = qname(text, b, i)?;
                    i = skip_spaces(b, an_end);
                    if b.get(i) != Some(&b'=') {
                        return None;
                    }
                    i = skip_spaces(b, i + 1);
                    let quote = *b.get(i)?;
                    if quote != b'\'' && quote != b'"' {
                        return None;
                    }
                    i += 1;
                    let v0 = i;
                    loop {
                        i = find_class(b, i, ATTR_STOP)?;
                        match b[i] {
                            c if c == quote => break,
                            b'\'' | b'"' => i += 1,
                            0xef if xml_char_at_ef(b, i) => i += 1,
                            _ => return None,
                        }
                    }
                    let value = &text[v0..i];
                    i += 1;
                    if aprefix.is_empty() && aname == "xmlns" {
                        decls.push((None, value));
                    } else if aprefix == "xmlns" {
                        decls.push((Some(aname), value));
                    } else {
                        // The `xml` prefix and repeated names (with or
                        // without a namespace): roxmltree's job.
                        if aprefix == "xml" || doc.attrs[a0..].iter().any(|a| same(a.name, aname)) {
                            return None;
                        }
                        if !aprefix.is_empty() {
                            prefixed.push((doc.attrs.len(), aprefix));
                        }
                        doc.attrs.push(Attr {
                            ns: None,
                            name: aname,
                            value,
                        });
                    }
                }
            }
        };
        // Namespaces in scope: the ones declared here, then the parent's
        // that are not declared again (the document node has none).
        let mut nss = open.last().map_or((0, 0), |t| doc.nodes[t.0 as usize].nss);
        let mut ns = None;
        if !decls.is_empty() || nss.0 != nss.1 || !prefix.is_empty() || !prefixed.is_empty() {
            nss = scope_of(&mut doc, &mut decls, nss)?;
            let scope = &doc.nss[nss.0 as usize..nss.1 as usize];
            ns = if prefix.is_empty() {
                lookup_ns(scope, None)
            } else {
                Some(lookup_ns(scope, Some(prefix))?)
            };
            for &(k, p) in &prefixed {
                doc.attrs[k].ns = Some(lookup_ns(scope, Some(p))?);
            }
            prefixed.clear();
        }
        let mut elem = new_node(Kind::Element, name);
        elem.ns = ns;
        elem.nss = nss;
        elem.attrs = (a0 as u32, doc.attrs.len() as u32);
        let id = append(&mut doc, &mut open, elem);
        if !closed {
            open.push((id, NONE, prefix));
        }
        // Content until the next start tag (or the end of the root).
        while open.len() > 1 {
            let t0 = i;
            loop {
                i = find_class(b, i, TEXT_STOP)?;
                match b[i] {
                    b'<' => break,
                    b'>' if !(i >= t0 + 2 && &b[i - 2..i] == b"]]") => i += 1,
                    0xef if xml_char_at_ef(b, i) => i += 1,
                    _ => return None,
                }
            }
            if i > t0 {
                append(&mut doc, &mut open, new_node(Kind::Text, &text[t0..i]));
            }
            match *b.get(i + 1)? {
                b'/' => {
                    let (p, n, n1) = qname(text, b, i + 2)?;
                    let (top, _, top_prefix) = open.pop()?;
                    if !same(p, top_prefix) || !same(n, doc.nodes[top as usize].name) {
                        return None;
                    }
                    i = skip_spaces(b, n1);
                    if b.get(i) != Some(&b'>') {
                        return None;
                    }
                    i += 1;
                }
                b'!' | b'?' => return None,
                _ => continue 'element,
            }
        }
        break;
    }
    // Only blanks may follow the root element here.
    if skip_spaces(b, i) != b.len() {
        return None;
    }
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both trees, node by node.
    fn same_tree(text: &str) {
        let fast = scan(text).unwrap_or_else(|| panic!("not scanned: {text}"));
        let rdoc = match roxmltree::Document::parse_with_options(
            text,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        ) {
            Ok(d) => d,
            Err(e) => panic!("scanned, but roxmltree says {e}: {text:?}"),
        };
        let slow = Doc::from_rox(&rdoc);
        assert_eq!(fast.nodes.len(), slow.nodes.len(), "{text}");
        for (a, b) in fast.nodes.iter().zip(&slow.nodes) {
            assert_eq!(
                (
                    a.kind,
                    a.name,
                    a.ns,
                    a.parent,
                    a.first_child,
                    a.next_sibling
                ),
                (
                    b.kind,
                    b.name,
                    b.ns,
                    b.parent,
                    b.first_child,
                    b.next_sibling
                ),
                "{text}"
            );
            let fa: Vec<_> = fast.attrs[a.attrs.0 as usize..a.attrs.1 as usize]
                .iter()
                .map(|x| (x.ns, x.name, x.value))
                .collect();
            let sa: Vec<_> = slow.attrs[b.attrs.0 as usize..b.attrs.1 as usize]
                .iter()
                .map(|x| (x.ns, x.name, x.value))
                .collect();
            assert_eq!(fa, sa, "{text}");
        }
        for id in 0..fast.nodes.len() as u32 {
            let (f, s) = (fast.node(id), slow.node(id));
            let fns: Vec<_> = f.namespaces().map(|n| (n.name(), n.uri())).collect();
            let sns: Vec<_> = s.namespaces().map(|n| (n.name(), n.uri())).collect();
            assert_eq!(fns, sns, "{text}");
            assert_eq!(f.lookup_prefix("u"), s.lookup_prefix("u"));
            assert_eq!(f.text(), s.text());
            assert_eq!(f.parent().map(|p| p.id), s.parent().map(|p| p.id));
        }
    }

    #[test]
    fn scanned_trees_are_roxmltree_trees() {
        for text in [
            "<a/>",
            " \n<a x='1' y=\"2\">t<b/>u<c z = '>'  >v</c ></a>\n ",
            "<domain type='kvm'>\n  <name>n\u{e9}\u{1F600}</name>\n  <x a='\"' b=\"'\"/>\n</domain>",
            "<a>]]</a>",
            "<a><b><c/></b>text</a>",
            "<a xmlns='u'/>",
            "<a xmlns:p='u'><p:b p:x='1' y='2'/><c xmlns='v' xmlns:p='w'><p:d/></c></a>",
            "<a><m:b xmlns:m='http://x/' xmlns='http://y/'><m:c m:k='v'><d/></m:c></m:b></a>",
            "<a p:x='1' xmlns:p='u' xmlns:q='u' q:y='2'/>",
        ] {
            same_tree(text);
        }
    }

    #[test]
    fn fixtures_scan_like_roxmltree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let mut scanned = 0;
        for sub in ["domain", "domain-invalid", "caps"] {
            for e in std::fs::read_dir(dir.join(sub)).expect("fixtures") {
                let p = e.expect("entry").path();
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                if scan(&text).is_some() {
                    same_tree(&text);
                    scanned += 1;
                } else if let Ok(rdoc) = roxmltree::Document::parse(&text) {
                    // Whatever is not scanned has namespaces, references,
                    // comments, CDATA, a declaration or a DTD.
                    assert!(
                        rdoc.descendants()
                            .any(|n| !n.is_element() && !n.is_text() && !n.is_root())
                            || text.contains('&')
                            || text.contains("xmlns")
                            || text.contains("<?xml")
                            || text.contains("<!"),
                        "{} not scanned",
                        p.display()
                    );
                }
            }
        }
        assert!(scanned > 10, "{scanned}");
    }

    /// Whatever the scanner accepts, roxmltree accepts too, with the same
    /// tree: checked on cut and corrupted fixtures.
    #[test]
    fn scanner_accepts_no_more_than_roxmltree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/domain");
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("fixtures")
            .map(|e| e.expect("entry").path())
            .filter(|p| !p.to_string_lossy().ends_with(".expected.xml"))
            .collect();
        names.sort();
        const PICKS: &[&str] = &[
            "<", ">", "/", "=", "'", "\"", "&", ";", " ", "\n", "\r", "\t", ":", "x", "0", "-",
            "!", "?", "]", "\u{1}", "\u{e9}", "\u{ffff}", "xmlns", "xmlns:", "xml:", "]]>",
        ];
        let mut seed: u32 = 0x9e37_79b9;
        for p in &names {
            let text = std::fs::read_to_string(p).expect("fixture");
            for cut in (0..text.len()).step_by(11) {
                if let Some(t) = text.get(..cut) {
                    if scan(t).is_some() {
                        same_tree(t);
                    }
                }
            }
            for _ in 0..800 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (seed >> 8) as usize % text.len();
                let pick = PICKS[(seed as usize >> 3) % PICKS.len()];
                let (Some(a), Some(b)) = (text.get(..at), text.get(at + 1..)) else {
                    continue;
                };
                let t = format!("{a}{pick}{b}");
                if scan(&t).is_some() {
                    same_tree(&t);
                }
            }
        }
    }

    #[test]
    fn everything_else_goes_to_roxmltree() {
        for text in [
            "",
            "   ",
            "<?xml version='1.0'?><a/>",
            "<!-- c --><a/>",
            "<a><!-- c --></a>",
            "<a><![CDATA[x]]></a>",
            "<a>&amp;</a>",
            "<a x='&lt;'/>",
            "<a x='1\n2'/>",
            "<a>x\r\ny</a>",
            "<a p:x='1'/>",
            "<a xmlns:p='u'><q:b/></a>",
            "<a xmlns:p='u' xmlns:p='v'/>",
            "<a xmlns:p=''/>",
            "<a xmlns:xml='http://www.w3.org/XML/1998/namespace'/>",
            "<a xml:lang='en'/>",
            "<a xmlns:p='u' p:x='1' x='2'/>",
            "<p:a xmlns:p='u'></a>",
            "<a:b:c/>",
            "<a x='1' x='2'/>",
            "<a x='1'y='2'/>",
            "<a></b>",
            "<a>",
            "<a/><b/>",
            "<a/>x",
            "<a>]]></a>",
            "<a>\u{1}</a>",
            "<a>\u{FFFF}</a>",
            "<a x='<'/>",
            "<\u{e9}/>",
            "\u{feff}<a/>",
            "<a><?pi x?></a>",
            "<!DOCTYPE a><a/>",
        ] {
            assert!(scan(text).is_none(), "scanned: {text:?}");
        }
    }
}
