//! The daemon's configuration file, in libvirtd.conf's syntax:
//! `key = value` lines where a value is a quoted string, an integer or a
//! list `[ "a", "b" ]`; `#` starts a comment.

use std::collections::BTreeMap;
use std::path::Path;

/// A configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(i64),
    List(Vec<String>),
}

/// The parsed file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    values: BTreeMap<String, Value>,
}

impl Config {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file '{}': {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses configuration text.
    pub fn parse(text: &str) -> Result<Config, String> {
        let mut values = BTreeMap::new();
        let mut lines = text.lines().enumerate();
        while let Some((n, raw)) = lines.next() {
            let line = strip_comment(raw).trim().to_string();
            if line.is_empty() {
                continue;
            }
            let (key, val) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected 'key = value'", n + 1))?;
            let key = key.trim();
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("line {}: bad key '{key}'", n + 1));
            }
            let mut val = val.trim().to_string();
            if val.starts_with('[') {
                // lists may span lines
                let items = loop {
                    match parse_list(&val) {
                        Ok(Some(items)) => break items,
                        Ok(None) => {
                            let (_, more) = lines
                                .next()
                                .ok_or_else(|| format!("line {}: unterminated list", n + 1))?;
                            val.push(' ');
                            val.push_str(strip_comment(more).trim());
                        }
                        Err(e) => return Err(format!("line {}: {e}", n + 1)),
                    }
                };
                values.insert(key.to_string(), Value::List(items));
            } else if let Some(s) = unquote(&val) {
                values.insert(key.to_string(), Value::Str(s));
            } else if let Ok(i) = val.parse::<i64>() {
                values.insert(key.to_string(), Value::Int(i));
            } else {
                return Err(format!(
                    "line {}: value of '{key}' must be a quoted string, an integer or a list",
                    n + 1
                ));
            }
        }
        Ok(Config { values })
    }

    /// A string setting.
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.values.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// An integer setting.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.values.get(key) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    /// A list of strings.
    pub fn list(&self, key: &str) -> Option<&[String]> {
        match self.values.get(key) {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }

    /// An octal permission setting given as a string ("0770").
    pub fn perms(&self, key: &str) -> Result<Option<u32>, String> {
        match self.str(key) {
            None => Ok(None),
            Some(s) => u32::from_str_radix(s, 8)
                .map(Some)
                .map_err(|_| format!("{key}: '{s}' is not an octal mode")),
        }
    }
}

/// Parses `[ "a", 'b' ]` (the text starts with `[`); None when the list
/// goes on past the end of the text.
fn parse_list(s: &str) -> Result<Option<Vec<String>>, String> {
    let mut items = Vec::new();
    let mut it = s[1..].char_indices().peekable();
    let mut want_item = true;
    loop {
        match it.next() {
            None => return Ok(None),
            Some((_, c)) if c.is_whitespace() => {}
            Some((_, ']')) => return Ok(Some(items)),
            Some((_, ',')) if !want_item => want_item = true,
            Some((_, q @ ('"' | '\''))) if want_item => {
                let mut item = String::new();
                loop {
                    match it.next() {
                        None => return Ok(None),
                        Some((_, c)) if c == q => break,
                        Some((_, c)) => item.push(c),
                    }
                }
                items.push(item);
                want_item = false;
            }
            Some(_) => return Err("list items must be quoted strings separated by commas".into()),
        }
    }
}

fn strip_comment(s: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (_, Some(q)) if c == q => quote = None,
            ('#', None) => return &s[..i],
            _ => {}
        }
    }
    s
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        Some(s[1..s.len() - 1].to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libvirtd_conf_syntax() {
        let c = Config::parse("# c\nunix_sock_dir = \"/run/x\" # tail\nmax_clients = 50\nlisten_addr=['a', \"b\",\n \"c\"]\nunix_sock_rw_perms = \"0770\"\n").unwrap();
        assert_eq!(c.str("unix_sock_dir"), Some("/run/x"));
        assert_eq!(c.int("max_clients"), Some(50));
        assert_eq!(
            c.values.get("listen_addr"),
            Some(&Value::List(vec!["a".into(), "b".into(), "c".into()]))
        );
        assert_eq!(c.perms("unix_sock_rw_perms").unwrap(), Some(0o770));
        assert!(Config::parse("x y").is_err());
        assert!(Config::parse("x = bare").is_err());
        assert!(Config::parse("x = [\"a\"").is_err());
        assert!(Config::parse("x = [a]").is_err());
        assert!(Config::parse("x = [\"a\" \"b\"]").is_err());
        let c = Config::parse("l = [ \"C=GB,O=x,CN=[ab]*\", # c\n 'y' ]\nm = []\nn = [\"a\",]\n")
            .unwrap();
        assert_eq!(c.list("l").unwrap(), ["C=GB,O=x,CN=[ab]*", "y"]);
        assert_eq!(c.list("m").unwrap(), [] as [String; 0]);
        assert_eq!(c.list("n").unwrap(), ["a"]);
        let c = Config::parse("a = 'x#\"y' # c\nb = \"p#'q\"").unwrap();
        assert_eq!(c.str("a"), Some("x#\"y"));
        assert_eq!(c.str("b"), Some("p#'q"));
    }
}
