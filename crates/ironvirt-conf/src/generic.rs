//! A generic XML element, for content libvirt keeps as it is (the children
//! of `<metadata>`) and for parts we carry through without a typed model.

use crate::dom::{self, Node};
use crate::xml::{escape_into, Writer};

/// An element with its attributes (in document order), text and children.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Element {
    /// Qualified name as written (`prefix:local` or `local`).
    pub name: String,
    /// Namespace declarations written on this element: (prefix, uri);
    /// an empty prefix is the default namespace.
    pub namespaces: Vec<(String, String)>,
    /// Attributes as (qualified name, value).
    pub attrs: Vec<(String, String)>,
    /// Content in order.
    pub content: Vec<Content>,
}

/// A piece of an element's content.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Content {
    /// Text (never whitespace-only: blanks between elements are dropped).
    Text(String),
    /// A child element.
    Elem(Element),
}

fn qname(node: Node<'_, '_>) -> String {
    let tag = node.tag_name();
    match tag.namespace().and_then(|ns| node.lookup_prefix(ns)) {
        Some(p) if !p.is_empty() => format!("{p}:{}", tag.name()),
        _ => tag.name().to_string(),
    }
}

impl Element {
    /// Copies `node` and everything below it. Namespace declarations made
    /// on `node` itself are kept; when `root_ns` is set, the namespace the
    /// element uses is declared on it even when an ancestor declared it (as
    /// libvirt does for `<metadata>` children).
    pub fn from_node(node: roxmltree::Node<'_, '_>, root_ns: bool) -> Element {
        dom::with_rox_node(node, |n| Element::from_dom(n, root_ns))
    }

    /// [`Element::from_node`] for a node of our own tree.
    pub(crate) fn from_dom(node: Node<'_, '_>, root_ns: bool) -> Element {
        let node_attrs = node.attributes();
        let plain = !root_ns
            && node.tag_name().namespace().is_none()
            && node_attrs.iter().all(|a| a.namespace().is_none());
        let mut namespaces = Vec::new();
        if !plain {
            let parent_ns: Vec<_> = node
                .parent()
                .map(|p| p.namespaces().collect())
                .unwrap_or_default();
            for ns in node.namespaces() {
                let declared_here = !parent_ns
                    .iter()
                    .any(|p| p.name() == ns.name() && p.uri() == ns.uri());
                if declared_here {
                    namespaces.push((ns.name().unwrap_or("").to_string(), ns.uri().to_string()));
                }
            }
            if root_ns {
                if let Some(uri) = node.tag_name().namespace() {
                    let prefix = node.lookup_prefix(uri).unwrap_or("").to_string();
                    if !namespaces.iter().any(|(p, _)| *p == prefix) {
                        namespaces.push((prefix, uri.to_string()));
                    }
                }
            }
            namespaces.retain(|(p, _)| p != "xml");
        }
        let attrs = node_attrs
            .iter()
            .map(|a| {
                let name = match a.namespace().and_then(|ns| node.lookup_prefix(ns)) {
                    Some(p) if !p.is_empty() => format!("{p}:{}", a.name()),
                    _ => a.name().to_string(),
                };
                (name, a.value().to_string())
            })
            .collect();
        let mut content = Vec::new();
        for c in node.children() {
            if c.is_element() {
                content.push(Content::Elem(Element::from_dom(c, false)));
            } else if c.is_text() {
                let t = c.text().unwrap_or("");
                if !t.trim().is_empty() {
                    content.push(Content::Text(t.to_string()));
                }
            }
        }
        Element {
            name: qname(node),
            namespaces,
            attrs,
            content,
        }
    }

    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| dom::same(k, name))
            .map(|(_, v)| v.as_str())
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.content.iter().filter_map(|c| match c {
            Content::Elem(e) => Some(e),
            Content::Text(_) => None,
        })
    }

    fn has_text(&self) -> bool {
        self.content.iter().any(|c| matches!(c, Content::Text(_)))
    }

    fn write_start(&self, out: &mut String, quote: char) {
        out.push('<');
        out.push_str(&self.name);
        for (p, uri) in &self.namespaces {
            out.push_str(" xmlns");
            if !p.is_empty() {
                out.push(':');
                out.push_str(p);
            }
            out.push('=');
            out.push(quote);
            escape_attr(out, uri, quote);
            out.push(quote);
        }
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            out.push(quote);
            escape_attr(out, v, quote);
            out.push(quote);
        }
    }

    /// Formats the element the way libxml2's `xmlNodeDump` does with
    /// formatting on (double-quoted attributes; children on their own lines
    /// unless the element holds text), starting at `depth` levels of
    /// 2-space indentation. No trailing newline.
    pub fn dump(&self, out: &mut String, depth: usize) {
        self.write_start(out, '"');
        if self.content.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        let inline = self.has_text();
        for c in &self.content {
            match c {
                Content::Text(t) => escape_text(out, t),
                Content::Elem(e) => {
                    if inline {
                        e.dump_inline(out);
                    } else {
                        out.push('\n');
                        for _ in 0..=depth {
                            out.push_str("  ");
                        }
                        e.dump(out, depth + 1);
                    }
                }
            }
        }
        if !inline {
            out.push('\n');
            for _ in 0..depth {
                out.push_str("  ");
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    fn dump_inline(&self, out: &mut String) {
        self.write_start(out, '"');
        if self.content.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.content {
            match c {
                Content::Text(t) => escape_text(out, t),
                Content::Elem(e) => e.dump_inline(out),
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// Formats the element in libvirt's own style (single quotes, elements
    /// without content self-closed) through `w`.
    pub fn write(&self, w: &mut Writer) {
        w.start(&self.name);
        for (p, uri) in &self.namespaces {
            if p.is_empty() {
                w.attr("xmlns", uri);
            } else {
                w.attr(&format!("xmlns:{p}"), uri);
            }
        }
        for (k, v) in &self.attrs {
            w.attr(k, v);
        }
        if self.has_text() {
            for c in &self.content {
                match c {
                    Content::Text(t) => {
                        w.text(t);
                    }
                    Content::Elem(e) => {
                        let mut s = String::new();
                        e.dump_inline(&mut s);
                        w.raw_text(&s.replace('"', "'"));
                    }
                }
            }
        } else {
            for e in self.elements() {
                e.write(w);
            }
        }
        w.end();
    }
}

fn escape_attr(out: &mut String, s: &str, quote: char) {
    if quote == '\'' {
        escape_into(out, s);
        return;
    }
    // libxml2's attribute escaping: < > & " and control characters.
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

fn escape_text(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}
