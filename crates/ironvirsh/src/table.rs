//! Column-aligned tables laid out like virsh's: a leading space before every
//! cell, columns padded to their widest cell plus two spaces, a dashed line
//! under the header as wide as the columns plus three per column.

/// A table: the header row and the data rows.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

/// Replaces control characters (and `\x` sequences) by `\xNN` escapes, as
/// virsh does before measuring cell widths, and returns the display width.
fn safe_encode(s: &str) -> (String, usize) {
    let mut out = String::with_capacity(s.len());
    let mut width = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if (c == '\\' && chars.peek() == Some(&'x')) || c.is_ascii_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
            width += 4;
        } else if c.is_control() {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
                width += 4;
            }
        } else {
            out.push(c);
            width += char_width(c);
        }
    }
    (out, width)
}

/// Display width of a printable character: two for the wide East Asian
/// ranges, zero for combining marks, one otherwise.
fn char_width(c: char) -> usize {
    let u = c as u32;
    if (0x300..=0x36f).contains(&u) || (0x200b..=0x200f).contains(&u) {
        return 0;
    }
    let wide = (0x1100..=0x115f).contains(&u)
        || (0x2e80..=0xa4cf).contains(&u)
        || (0xac00..=0xd7a3).contains(&u)
        || (0xf900..=0xfaff).contains(&u)
        || (0xfe30..=0xfe4f).contains(&u)
        || (0xff00..=0xff60).contains(&u)
        || (0xffe0..=0xffe6).contains(&u)
        || (0x1f300..=0x1f64f).contains(&u)
        || (0x20000..=0x3fffd).contains(&u);
    if wide {
        2
    } else {
        1
    }
}

impl Table {
    /// A table with the given column names.
    pub fn new(header: &[&str]) -> Table {
        Table {
            rows: vec![header.iter().map(|s| s.to_string()).collect()],
        }
    }

    /// Appends a row; it must have as many cells as the header.
    pub fn add_row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text; without `header` only the data rows, measured
    /// without the header.
    pub fn render(&self, header: bool) -> String {
        let ncols = self.rows[0].len();
        let encoded: Vec<Vec<(String, usize)>> = self
            .rows
            .iter()
            .map(|r| r.iter().map(|c| safe_encode(c)).collect())
            .collect();
        let mut max = vec![0usize; ncols];
        for (i, row) in encoded.iter().enumerate() {
            if i == 0 && !header {
                continue;
            }
            for (j, (_, w)) in row.iter().enumerate() {
                max[j] = max[j].max(*w);
            }
        }
        let mut out = String::new();
        let print_row = |out: &mut String, row: &[(String, usize)]| {
            for (j, (text, w)) in row.iter().enumerate() {
                out.push(' ');
                out.push_str(text);
                if j + 1 < row.len() {
                    for _ in 0..(max[j] - w + 2) {
                        out.push(' ');
                    }
                }
            }
            out.push('\n');
        };
        if header {
            print_row(&mut out, &encoded[0]);
            for m in &max {
                for _ in 0..m + 3 {
                    out.push('-');
                }
            }
            out.push('\n');
        }
        for row in &encoded[1..] {
            print_row(&mut out, row);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_virsh_list() {
        let mut t = Table::new(&["Id", "Name", "State"]);
        t.add_row(vec!["1".into(), "test".into(), "running".into()]);
        assert_eq!(
            t.render(true),
            " Id   Name   State\n----------------------\n 1    test   running\n"
        );
        assert_eq!(t.render(false), " 1   test   running\n");
        let empty = Table::new(&["Id", "Name", "State"]);
        assert_eq!(
            empty.render(true),
            " Id   Name   State\n--------------------\n"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(safe_encode("a\tb"), ("a\\x09b".to_string(), 6));
        assert_eq!(safe_encode("\\x"), ("\\x5cx".to_string(), 5));
    }
}
