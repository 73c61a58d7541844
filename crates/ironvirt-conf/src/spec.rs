//! Declarative layout of XML parts that are carried as generic
//! [`Element`]s: which attributes and children libvirt knows, in the order
//! it writes them. Normalising an element against its [`Spec`] puts
//! attributes and children in that order and drops what libvirt drops.

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

/// Reorders `e` in place following `spec`.
pub fn normalize(e: &mut Element, spec: &Spec) {
    if !spec.attrs.is_empty() || !spec.keep_unknown {
        let mut attrs = Vec::with_capacity(e.attrs.len());
        for name in spec.attrs {
            if let Some(i) = e.attrs.iter().position(|(k, _)| k == name) {
                attrs.push(e.attrs.swap_remove_keep(i));
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
    let has_text = e.content.iter().any(|c| matches!(c, Content::Text(_)));
    if has_text {
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
    let mut out = Vec::with_capacity(old.len());
    for (name, sub) in spec.children {
        for slot in old.iter_mut() {
            if slot.as_ref().is_some_and(|x| x.name == *name) {
                if let Some(mut x) = slot.take() {
                    if let Some(s) = sub {
                        normalize(&mut x, s);
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

trait SwapRemoveKeep<T> {
    fn swap_remove_keep(&mut self, i: usize) -> T;
}

impl<T> SwapRemoveKeep<T> for Vec<T> {
    /// `remove` (order-preserving); named to make the intent obvious.
    fn swap_remove_keep(&mut self, i: usize) -> T {
        self.remove(i)
    }
}

/// Sorts `children` by the position of their names in `order`; names not
/// listed are dropped unless `keep_unknown`.
pub fn order_children(
    children: &mut Vec<Element>,
    order: &[(&str, Option<&Spec>)],
    keep_unknown: bool,
) {
    let mut old: Vec<Option<Element>> = children.drain(..).map(Some).collect();
    for (name, sub) in order {
        for slot in old.iter_mut() {
            if slot.as_ref().is_some_and(|x| x.name == *name) {
                if let Some(mut x) = slot.take() {
                    if let Some(s) = sub {
                        normalize(&mut x, s);
                    }
                    children.push(x);
                }
            }
        }
    }
    if keep_unknown {
        children.extend(old.into_iter().flatten());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
