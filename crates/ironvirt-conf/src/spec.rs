//! Declarative layout of XML parts that are carried as generic
//! [`Element`]s: which attributes and children libvirt knows, in the order
//! it writes them. Normalising an element against its [`Spec`] puts
//! attributes and children in that order and drops what libvirt drops.

use crate::dom::same;
use crate::generic::{Content, Element};

/// The layout of one element.
#[derive(Debug)]
pub struct Spec {
    /// Known attributes in output order.
    pub attrs: &'static [&'static str],
    /// Known children in output order, each with its own layout (`None`:
    /// kept as it is).
    pub children: &'static [(&'static str, Option<&'static Spec>)],
    /// Keep attributes and children that are not listed (after the known
    /// ones, in input order) instead of dropping them.
    pub keep_unknown: bool,
}

impl Spec {
    /// A layout keeping everything in input order.
    pub const ANY: Spec = Spec {
        attrs: &[],
        children: &[],
        keep_unknown: true,
    };
}

/// Position of `name` in `order`, `usize::MAX` when not listed.
fn rank<T>(order: &[(&str, T)], name: &str) -> usize {
    order
        .iter()
        .position(|(n, _)| same(n, name))
        .unwrap_or(usize::MAX)
}

/// Reorders `e` in place following `spec`.
pub fn normalize(e: &mut Element, spec: &Spec) {
    if !spec.attrs.is_empty() || !spec.keep_unknown {
        order_attrs(&mut e.attrs, spec);
    }
    if spec.children.is_empty() && spec.keep_unknown {
        return;
    }
    let has_text = e.content.iter().any(|c| matches!(c, Content::Text(_)));
    if has_text {
        return;
    }
    // Only elements from here on: a stable sort by the position of the
    // name in the layout puts them in libvirt's order.
    fn name_of(c: &Content) -> &str {
        match c {
            Content::Elem(x) => x.name.as_str(),
            Content::Text(_) => "",
        }
    }
    e.content.sort_by_key(|c| rank(spec.children, name_of(c)));
    if !spec.keep_unknown {
        let known = e
            .content
            .iter()
            .take_while(|c| rank(spec.children, name_of(c)) != usize::MAX)
            .count();
        e.content.truncate(known);
    }
    for c in e.content.iter_mut() {
        if let Content::Elem(x) = c {
            let r = rank(spec.children, &x.name);
            if let Some((_, Some(sub))) = spec.children.get(r) {
                normalize(x, sub);
            }
        }
    }
}

/// Puts the attributes listed in `spec` first, in its order (the first of
/// each name only); the others follow in document order when
/// `spec.keep_unknown`, else they are dropped.
fn order_attrs(attrs: &mut Vec<(String, String)>, spec: &Spec) {
    let pos = |k: &str| {
        spec.attrs
            .iter()
            .position(|n| same(n, k))
            .unwrap_or(usize::MAX)
    };
    let duplicates = attrs
        .iter()
        .enumerate()
        .any(|(i, (k, _))| attrs[..i].iter().any(|(p, _)| p == k));
    if duplicates {
        // Later attributes of the same name count as unknown ones.
        let mut old: Vec<Option<(String, String)>> =
            std::mem::take(attrs).into_iter().map(Some).collect();
        for name in spec.attrs {
            if let Some(slot) = old
                .iter_mut()
                .find(|slot| slot.as_ref().is_some_and(|(k, _)| k == name))
            {
                attrs.extend(slot.take());
            }
        }
        if spec.keep_unknown {
            attrs.extend(old.into_iter().flatten());
        }
        return;
    }
    attrs.sort_by_key(|(k, _)| pos(k));
    if !spec.keep_unknown {
        let known = attrs
            .iter()
            .take_while(|(k, _)| pos(k) != usize::MAX)
            .count();
        attrs.truncate(known);
    }
}

/// Sorts `children` by the position of their names in `order`; names not
/// listed are dropped unless `keep_unknown`.
pub fn order_children(
    children: &mut Vec<Element>,
    order: &[(&str, Option<&Spec>)],
    keep_unknown: bool,
) {
    children.sort_by_key(|x| rank(order, &x.name));
    if !keep_unknown {
        let known = children
            .iter()
            .take_while(|x| rank(order, &x.name) != usize::MAX)
            .count();
        children.truncate(known);
    }
    for x in children.iter_mut() {
        if let Some((_, Some(sub))) = order.get(rank(order, &x.name)) {
            normalize(x, sub);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward form of [`normalize`]: take each listed
    /// attribute and child in turn.
    fn reference(e: &mut Element, spec: &Spec) {
        if !spec.attrs.is_empty() || !spec.keep_unknown {
            let mut attrs = Vec::new();
            for name in spec.attrs {
                if let Some(i) = e.attrs.iter().position(|(k, _)| k == name) {
                    attrs.push(e.attrs.remove(i));
                }
            }
            if spec.keep_unknown {
                attrs.append(&mut e.attrs);
            }
            e.attrs = attrs;
        }
        if spec.children.is_empty() && spec.keep_unknown {
            return;
        }
        if e.content.iter().any(|c| matches!(c, Content::Text(_))) {
            return;
        }
        let mut old: Vec<Option<Element>> = e
            .content
            .drain(..)
            .map(|c| match c {
                Content::Elem(x) => Some(x),
                Content::Text(_) => None,
            })
            .collect();
        let mut out = Vec::new();
        for (name, sub) in spec.children {
            for slot in old.iter_mut() {
                if slot.as_ref().is_some_and(|x| x.name == *name) {
                    if let Some(mut x) = slot.take() {
                        if let Some(s) = sub {
                            reference(&mut x, s);
                        }
                        out.push(Content::Elem(x));
                    }
                }
            }
        }
        if spec.keep_unknown {
            out.extend(old.into_iter().flatten().map(Content::Elem));
        }
        e.content = out;
    }

    #[test]
    fn same_as_taking_in_turn() {
        static SUB: Spec = Spec {
            attrs: &["b", "a"],
            children: &[],
            keep_unknown: false,
        };
        static KEEP: Spec = Spec {
            attrs: &["a", "b"],
            children: &[("x", Some(&SUB)), ("y", None)],
            keep_unknown: true,
        };
        static DROP: Spec = Spec {
            attrs: &["a", "b"],
            children: &[("x", Some(&SUB)), ("y", None)],
            keep_unknown: false,
        };
        for spec in [&KEEP, &DROP, &SUB, &Spec::ANY] {
            for xml in [
                "<e b='2' z='0' a='1'><y/><q/><x b='1' c='2' a='3'/><y k='1'/><x/></e>",
                "<e z='0'><q/><q/></e>",
                "<e a='1'>text<x/></e>",
                "<e/>",
            ] {
                let doc = roxmltree::Document::parse(xml).unwrap();
                let e = Element::from_node(doc.root_element(), false);
                let (mut a, mut b) = (e.clone(), e.clone());
                normalize(&mut a, spec);
                reference(&mut b, spec);
                assert_eq!(a, b, "{xml}");
            }
            // Repeated attribute names (only elements built in code have them).
            let mut e = Element {
                name: "e".into(),
                attrs: vec![
                    ("b".into(), "1".into()),
                    ("a".into(), "2".into()),
                    ("b".into(), "3".into()),
                    ("z".into(), "4".into()),
                ],
                ..Default::default()
            };
            let mut r = e.clone();
            normalize(&mut e, spec);
            reference(&mut r, spec);
            assert_eq!(e, r);
        }
        // order_children is normalize's child ordering on a list.
        let doc =
            roxmltree::Document::parse("<e><y/><q/><x b='1' a='2'/><y k='1'/><x/></e>").unwrap();
        let e = Element::from_node(doc.root_element(), false);
        for keep in [true, false] {
            let mut list: Vec<Element> = e.elements().cloned().collect();
            order_children(&mut list, KEEP.children, keep);
            let mut r = e.clone();
            reference(&mut r, if keep { &KEEP } else { &DROP });
            assert_eq!(list, r.elements().cloned().collect::<Vec<_>>());
        }
    }

    #[test]
    fn reorders_and_drops() {
        static S: Spec = Spec {
            attrs: &["a", "b"],
            children: &[("x", None), ("y", None)],
            keep_unknown: false,
        };
        let doc = roxmltree::Document::parse("<e b='2' z='0' a='1'><y/><q/><x/></e>").unwrap();
        let mut e = Element::from_node(doc.root_element(), false);
        normalize(&mut e, &S);
        let mut out = String::new();
        e.dump(&mut out, 0);
        assert_eq!(out, "<e a=\"1\" b=\"2\">\n  <x/>\n  <y/>\n</e>");
    }
}
