//! Small XML helpers shared by the models: a streaming writer that produces
//! libvirt's layout (2-space indentation, single-quoted attributes, elements
//! without content self-closed) and parse helpers over `roxmltree`.

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};
use roxmltree::Node;

/// Appends `s` escaped the way libvirt escapes both attribute values and
/// text: `<`, `>`, `&`, `'` and `"` become entities.
pub fn escape_into(out: &mut String, s: &str) {
    fn special(b: u8) -> bool {
        matches!(b, b'<' | b'>' | b'&' | b'\'' | b'"')
    }
    // Most values need no escaping at all.
    let Some(first) = s.bytes().position(special) else {
        out.push_str(s);
        return;
    };
    let mut last = 0;
    for (i, b) in s.bytes().enumerate().skip(first) {
        let rep = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'\'' => "&apos;",
            b'"' => "&quot;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

/// An integer formatted in decimal (as `Display` does), without the
/// formatting machinery.
pub(crate) trait Decimal: Copy {
    /// Writes the number to the end of `buf` and returns where it starts.
    fn write_decimal(self, buf: &mut [u8; 24]) -> usize;
}

fn write_u64(mut v: u64, buf: &mut [u8; 24]) -> usize {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return i;
        }
    }
}

macro_rules! decimal_unsigned {
    ($($t:ty),*) => {$(
        impl Decimal for $t {
            fn write_decimal(self, buf: &mut [u8; 24]) -> usize {
                write_u64(u64::from(self), buf)
            }
        }
    )*};
}
decimal_unsigned!(u8, u16, u32, u64);

macro_rules! decimal_signed {
    ($($t:ty),*) => {$(
        impl Decimal for $t {
            fn write_decimal(self, buf: &mut [u8; 24]) -> usize {
                let mut i = write_u64(i64::from(self).unsigned_abs(), buf);
                if self < 0 {
                    i -= 1;
                    buf[i] = b'-';
                }
                i
            }
        }
    )*};
}
decimal_signed!(i8, i16, i32, i64);

impl<T: Decimal> Decimal for &T {
    fn write_decimal(self, buf: &mut [u8; 24]) -> usize {
        (*self).write_decimal(buf)
    }
}

/// Appends `v` in decimal.
pub(crate) fn push_decimal(out: &mut String, v: impl Decimal) {
    let mut buf = [0u8; 24];
    let i = v.write_decimal(&mut buf);
    // Only ASCII digits and '-' were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `v` in lowercase hexadecimal, at least `width` digits.
pub(crate) fn push_hex(out: &mut String, v: u32, width: usize) {
    let mut buf = [0u8; 8];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = HEX[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 && buf.len() - i >= width {
            break;
        }
        if i == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends a UUID the way `Uuid`'s `Display` writes it.
pub(crate) fn push_uuid(out: &mut String, u: &ironvirt_driver::Uuid) {
    let mut buf = [0u8; 36];
    let mut j = 0;
    for (i, b) in u.0.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[j] = b'-';
            j += 1;
        }
        buf[j] = HEX[(b >> 4) as usize];
        buf[j + 1] = HEX[(b & 0xf) as usize];
        j += 2;
    }
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// Indentation for up to 32 levels at once.
const SPACES: &str = "                                                                ";

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Start tag still open (`<name attr='v'`): may self-close.
    Pending,
    /// Start tag closed, children written on their own lines.
    Children,
    /// Start tag closed, text written on the same line.
    Text,
}

/// Streaming writer. `start` opens an element, `attr` adds attributes while
/// the start tag is still open, `end` closes it (self-closing when nothing
/// was written inside).
pub struct Writer {
    buf: String,
    stack: Vec<(usize, State)>,
    /// Names of the open elements, back to back (`stack` holds their starts).
    names: String,
    /// Extra indentation (in levels) applied to every line.
    base: usize,
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer {
            buf: String::with_capacity(4096),
            stack: Vec::with_capacity(8),
            names: String::with_capacity(128),
            base: 0,
        }
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.buf
    }

    fn indent(&mut self) {
        let mut n = 2 * (self.stack.len() + self.base);
        while n > 0 {
            let k = n.min(SPACES.len());
            self.buf.push_str(&SPACES[..k]);
            n -= k;
        }
    }

    fn close_pending(&mut self) {
        if let Some(top) = self.stack.last_mut() {
            if top.1 == State::Pending {
                top.1 = State::Children;
                self.buf.push_str(">\n");
            }
        }
    }

    /// Opens `<name`.
    pub fn start(&mut self, name: &str) -> &mut Self {
        self.close_pending();
        self.indent();
        self.buf.push('<');
        self.buf.push_str(name);
        self.stack.push((self.names.len(), State::Pending));
        self.names.push_str(name);
        self
    }

    /// Opens `<name` (same as [`Writer::start`]).
    pub fn start_owned(&mut self, name: &str) -> &mut Self {
        self.start(name)
    }

    /// Ends the open start tag so that the element gets an end tag on its
    /// own line even when nothing is written inside (libvirt does this for
    /// `<devices>` and `<redirdev>`).
    pub fn force_open(&mut self) -> &mut Self {
        self.close_pending();
        self
    }

    /// Adds ` key='value'` to the open start tag.
    pub fn attr(&mut self, key: &str, value: impl AsRef<str>) -> &mut Self {
        self.buf.push(' ');
        self.buf.push_str(key);
        self.buf.push_str("='");
        escape_into(&mut self.buf, value.as_ref());
        self.buf.push('\'');
        self
    }

    /// Adds ` key='value'` when `value` is present.
    pub fn attr_opt<S: AsRef<str>>(&mut self, key: &str, value: Option<S>) -> &mut Self {
        if let Some(v) = value {
            self.attr(key, v);
        }
        self
    }

    /// Adds an attribute whose value is a `Display` (numbers).
    pub fn attr_num(&mut self, key: &str, value: impl std::fmt::Display) -> &mut Self {
        use std::fmt::Write;
        self.buf.push(' ');
        self.buf.push_str(key);
        self.buf.push_str("='");
        let _ = write!(self.buf, "{value}");
        self.buf.push('\'');
        self
    }

    /// [`Writer::attr_num`] for integers.
    pub(crate) fn attr_int(&mut self, key: &str, value: impl Decimal) -> &mut Self {
        self.buf.push(' ');
        self.buf.push_str(key);
        self.buf.push_str("='");
        push_decimal(&mut self.buf, value);
        self.buf.push('\'');
        self
    }

    /// [`Writer::attr_num_opt`] for integers.
    pub(crate) fn attr_int_opt(&mut self, key: &str, value: Option<impl Decimal>) -> &mut Self {
        if let Some(v) = value {
            self.attr_int(key, v);
        }
        self
    }

    /// Adds ` key='0x…'` with at least `width` hex digits.
    pub(crate) fn attr_hex(&mut self, key: &str, value: u32, width: usize) -> &mut Self {
        self.buf.push(' ');
        self.buf.push_str(key);
        self.buf.push_str("='0x");
        push_hex(&mut self.buf, value, width);
        self.buf.push('\'');
        self
    }

    /// Adds ` key='…'` with the value written by `f` straight into the
    /// output (it must need no escaping).
    pub(crate) fn attr_with(&mut self, key: &str, f: impl FnOnce(&mut String)) -> &mut Self {
        self.buf.push(' ');
        self.buf.push_str(key);
        self.buf.push_str("='");
        f(&mut self.buf);
        self.buf.push('\'');
        self
    }

    /// Writes text produced by `f` straight into the output (it must need
    /// no escaping) inside the open element.
    pub(crate) fn text_with(&mut self, f: impl FnOnce(&mut String)) -> &mut Self {
        self.raw_text("");
        f(&mut self.buf);
        self
    }

    /// Writes an integer as the text of the open element.
    pub(crate) fn text_int(&mut self, value: impl Decimal) -> &mut Self {
        self.text_with(|b| push_decimal(b, value))
    }

    /// Adds a numeric attribute when present.
    pub fn attr_num_opt<T: std::fmt::Display>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.attr_num(key, v);
        }
        self
    }

    /// Writes escaped text inside the open element (on the same line).
    pub fn text(&mut self, text: &str) -> &mut Self {
        if let Some(top) = self.stack.last_mut() {
            if top.1 == State::Pending {
                self.buf.push('>');
                top.1 = State::Text;
            }
        }
        escape_into(&mut self.buf, text);
        self
    }

    /// Writes raw (already well-formed) text inside the open element.
    pub fn raw_text(&mut self, text: &str) -> &mut Self {
        if let Some(top) = self.stack.last_mut() {
            if top.1 == State::Pending {
                self.buf.push('>');
                top.1 = State::Text;
            }
        }
        self.buf.push_str(text);
        self
    }

    /// Closes the innermost element.
    pub fn end(&mut self) -> &mut Self {
        if let Some((name_at, state)) = self.stack.pop() {
            match state {
                State::Pending => self.buf.push_str("/>\n"),
                State::Text | State::Children => {
                    if state == State::Children {
                        self.indent();
                    }
                    self.buf.push_str("</");
                    self.buf.push_str(&self.names[name_at..]);
                    self.buf.push_str(">\n");
                }
            }
            self.names.truncate(name_at);
        }
        self
    }

    /// `<name>text</name>` on one line.
    pub fn text_elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.start(name).text(text).end()
    }

    /// `<name>value</name>` for a number.
    pub fn num_elem(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        let s = value.to_string();
        self.start(name).text(&s).end()
    }

    /// `<name/>`.
    pub fn empty(&mut self, name: &str) -> &mut Self {
        self.start(name).end()
    }

    /// Writes pre-formatted lines (each ending with a newline) indented to
    /// the current depth. Used for content kept verbatim.
    pub fn raw_lines(&mut self, lines: &str) {
        self.close_pending();
        for line in lines.split_inclusive('\n') {
            self.indent();
            self.buf.push_str(line);
        }
        if !lines.is_empty() && !lines.ends_with('\n') {
            self.buf.push('\n');
        }
    }
}

// ---------------------------------------------------------------- parsing

/// `VIR_ERR_XML_ERROR` in the `VIR_FROM_DOMAIN` domain.
pub fn xml_err(detail: impl Into<String>) -> Error {
    Error::new(ErrorDomain::DOMAIN, ErrorNumber::XML_ERROR, detail)
}

/// `VIR_ERR_CONFIG_UNSUPPORTED` in the `VIR_FROM_DOMAIN` domain.
pub fn unsupported(detail: impl Into<String>) -> Error {
    Error::new(ErrorDomain::DOMAIN, ErrorNumber::CONFIG_UNSUPPORTED, detail)
}

/// `VIR_ERR_INTERNAL_ERROR` in the `VIR_FROM_DOMAIN` domain.
pub fn internal(detail: impl Into<String>) -> Error {
    Error::new(ErrorDomain::DOMAIN, ErrorNumber::INTERNAL_ERROR, detail)
}

/// `VIR_ERR_INVALID_ARG` in the `VIR_FROM_DOMAIN` domain.
pub fn invalid_arg(detail: impl Into<String>) -> Error {
    Error::new(ErrorDomain::DOMAIN, ErrorNumber::INVALID_ARG, detail)
}

/// Parses a document the way libvirt's `virXMLParse` does and reports a
/// syntax error as `VIR_ERR_XML_DETAIL` (`VIR_FROM_XML`).
///
/// libvirt prints libxml2's wording, e.g.
/// `(domain_definition):2: Couldn't find end of Start Tag domain line 1`
/// followed by the offending line and a caret. We cannot reproduce
/// libxml2's wording; the message keeps libvirt's `(url):LINE:` prefix and
/// then our parser's description with line and column.
pub fn parse_document<'a>(xml: &'a str, url: &str) -> Result<roxmltree::Document<'a>> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(xml, opts).map_err(|e| {
        let pos = e.pos();
        let line_text = xml
            .lines()
            .nth(pos.row.saturating_sub(1) as usize)
            .unwrap_or("");
        let caret = "-".repeat(pos.col.saturating_sub(1) as usize);
        let msg = format!("({url}):{}: {e}\n{line_text}\n{caret}^", pos.row);
        Error::new(ErrorDomain::DOMAIN, ErrorNumber::XML_DETAIL, msg)
    })
}

/// First element child called `name`.
pub fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

/// Element children called `name`.
pub fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.is_element() && c.tag_name().name() == name)
}

/// Element children.
pub fn elements<'a, 'i: 'a>(node: Node<'a, 'i>) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(|c| c.is_element())
}

/// The text content of an element (all text children concatenated).
pub fn text_of(node: Node<'_, '_>) -> String {
    let mut s = String::new();
    for c in node.children() {
        if c.is_text() {
            s.push_str(c.text().unwrap_or(""));
        }
    }
    s
}

/// The text of child `name`, if the child exists.
pub fn child_text(node: Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(text_of)
}

/// An attribute as an owned string.
pub fn attr(node: Node<'_, '_>, name: &str) -> Option<String> {
    node.attribute(name).map(str::to_string)
}

/// An attribute of child `child_name`.
pub fn child_attr(node: Node<'_, '_>, child_name: &str, name: &str) -> Option<String> {
    child(node, child_name).and_then(|c| attr(c, name))
}

/// Parses an unsigned integer the way libvirt's `virStrToLong_ui`/`ull` do:
/// decimal (or 0x hex / 0 octal prefixes when `base0`), surrounding blanks
/// not allowed, must consume everything.
pub fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim();
    if t.is_empty() || t.starts_with('-') {
        return None;
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    t.parse::<u64>().ok()
}

/// Parses a `u32`.
pub fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// Parses an `i64` (a leading minus sign allowed).
pub fn parse_i64(s: &str) -> Option<i64> {
    let t = s.trim();
    t.parse::<i64>().ok()
}

/// Parses an unsigned attribute; a malformed value is `VIR_ERR_XML_ERROR`
/// with `what` as the description.
pub fn attr_u32(node: Node<'_, '_>, name: &str, what: &str) -> Result<Option<u32>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => parse_u32(v)
            .map(Some)
            .ok_or_else(|| bad_unsigned(name, what_or(node, what), v)),
    }
}

/// Parses an unsigned 64-bit attribute.
pub fn attr_u64(node: Node<'_, '_>, name: &str, what: &str) -> Result<Option<u64>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => parse_u64(v)
            .map(Some)
            .ok_or_else(|| bad_unsigned(name, what_or(node, what), v)),
    }
}

/// Parses a signed attribute.
pub fn attr_i64(node: Node<'_, '_>, name: &str, what: &str) -> Result<Option<i64>> {
    match node.attribute(name) {
        None => Ok(None),
        Some(v) => parse_i64(v)
            .map(Some)
            .ok_or_else(|| bad_signed(name, what_or(node, what), v)),
    }
}

fn what_or<'a>(node: Node<'a, '_>, what: &'a str) -> &'a str {
    if what.is_empty() {
        node.tag_name().name()
    } else {
        what
    }
}

/// `on`/`off` (and `yes`/`no`) tri-state attributes, libvirt's
/// `virTristateSwitch`/`virTristateBool`.
pub fn attr_onoff(node: Node<'_, '_>, name: &str) -> Result<Option<bool>> {
    onoff_value(node.attribute(name), name, node.tag_name().name())
}

/// The value of an `on`/`off` (`yes`/`no`) attribute `name` of `elem`.
pub(crate) fn onoff_value(value: Option<&str>, name: &str, elem: &str) -> Result<Option<bool>> {
    match value {
        None => Ok(None),
        Some("on") | Some("yes") => Ok(Some(true)),
        Some("off") | Some("no") => Ok(Some(false)),
        Some(v) => Err(xml_err(format!(
            "Invalid value for attribute '{name}' in element '{elem}': '{v}'."
        ))),
    }
}

/// A malformed unsigned attribute.
pub(crate) fn bad_unsigned(name: &str, elem: &str, v: &str) -> Error {
    xml_err(format!(
        "Invalid value for attribute '{name}' in element '{elem}': '{v}'. Expected non-negative integer value"
    ))
}

/// A malformed signed attribute.
pub(crate) fn bad_signed(name: &str, elem: &str, v: &str) -> Error {
    xml_err(format!(
        "Invalid value for attribute '{name}' in element '{elem}': '{v}'. Expected integer value"
    ))
}

/// `on`/`off` text for a switch.
pub fn onoff(v: bool) -> &'static str {
    if v {
        "on"
    } else {
        "off"
    }
}

/// `yes`/`no` text for a boolean.
pub fn yesno(v: bool) -> &'static str {
    if v {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_self_closes_and_indents() {
        let mut w = Writer::new();
        w.start("a").attr("x", "1'<");
        w.start("b").end();
        w.start("c").text("t&").end();
        w.end();
        assert_eq!(
            w.finish(),
            "<a x='1&apos;&lt;'>\n  <b/>\n  <c>t&amp;</c>\n</a>\n"
        );
    }

    #[test]
    fn numbers_like_display() {
        let mut s = String::new();
        for v in [0u64, 7, 10, 99, 1234567890, u64::MAX] {
            s.clear();
            push_decimal(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        for v in [0i64, -1, 42, i64::MIN, i64::MAX] {
            s.clear();
            push_decimal(&mut s, v);
            assert_eq!(s, v.to_string());
        }
        for (v, w) in [
            (0u32, 4),
            (0x1f, 2),
            (0xabc, 1),
            (0, 1),
            (u32::MAX, 2),
            (5, 8),
        ] {
            s.clear();
            push_hex(&mut s, v, w);
            assert_eq!(s, format!("{v:0w$x}"));
        }
        let u = ironvirt_driver::Uuid([
            0x28, 0x88, 0x92, 0x32, 0x26, 0x25, 0x4e, 0xfe, 0x85, 0x36, 0xc2, 0x42, 0x51, 0xae,
            0xd9, 0x3a,
        ]);
        s.clear();
        push_uuid(&mut s, &u);
        assert_eq!(s, u.to_string());
        let mut w = Writer::new();
        w.start("a")
            .attr_int("n", -3i32)
            .attr_hex("h", 0xa, 2)
            .text_int(5u32);
        w.end();
        assert_eq!(w.finish(), "<a n='-3' h='0x0a'>5</a>\n");
    }

    #[test]
    fn syntax_error_is_xml_detail() {
        let e = parse_document("<domain", "domain_definition").unwrap_err();
        assert_eq!(e.code, ErrorNumber::XML_DETAIL);
        assert_eq!(e.domain, ErrorDomain::DOMAIN);
        assert!(
            e.message.starts_with("(domain_definition):1: "),
            "{}",
            e.message
        );
    }
}
