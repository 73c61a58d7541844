//! Firmware descriptors (QEMU's `docs/interop/firmware.json` format) found
//! in the usual directories, used for `<os firmware=...>` and loader paths.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One firmware descriptor.
#[derive(Clone, Debug, PartialEq)]
pub struct Firmware {
    /// Descriptor file.
    pub path: PathBuf,
    /// Interface types (`uefi`, `bios`).
    pub interfaces: Vec<String>,
    /// Executable (flash or memory image).
    pub executable: String,
    /// NVRAM template, if any.
    pub nvram_template: Option<String>,
    /// (architecture, machine globs).
    pub targets: Vec<(String, Vec<String>)>,
    /// Whether it implements Secure Boot.
    pub secure_boot: bool,
}

/// Matches a QEMU machine glob (`pc-q35-*`) against a machine name.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len()
                && name.starts_with(pre)
                && glob_rest(post, &name[pre.len()..])
        }
    }
}

fn glob_rest(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return name.ends_with(pattern);
    }
    (0..=name.len()).any(|i| name.is_char_boundary(i) && glob(pattern, &name[i..]))
}

impl Firmware {
    /// Parses a descriptor; None when it is not usable.
    pub fn parse(path: &Path, text: &str) -> Option<Firmware> {
        let v: Value = serde_json::from_str(text).ok()?;
        let interfaces: Vec<String> = v
            .get("interface-types")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
        let mapping = v.get("mapping")?;
        let executable = mapping
            .pointer("/executable/filename")
            .or_else(|| mapping.get("filename"))
            .and_then(Value::as_str)?
            .to_string();
        let nvram_template = mapping
            .pointer("/nvram-template/filename")
            .and_then(Value::as_str)
            .map(str::to_string);
        let targets = v
            .get("targets")?
            .as_array()?
            .iter()
            .filter_map(|t| {
                let arch = t.get("architecture")?.as_str()?.to_string();
                let machines = t
                    .get("machines")?
                    .as_array()?
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                Some((arch, machines))
            })
            .collect();
        let secure_boot = v
            .get("features")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("secure-boot")));
        Some(Firmware {
            path: path.to_path_buf(),
            interfaces,
            executable,
            nvram_template,
            targets,
            secure_boot,
        })
    }

    /// Whether it is UEFI firmware.
    pub fn is_uefi(&self) -> bool {
        self.interfaces.iter().any(|i| i == "uefi")
    }

    /// Whether it is legacy BIOS firmware.
    pub fn is_bios(&self) -> bool {
        self.interfaces.iter().any(|i| i == "bios")
    }

    /// Whether it runs guests of `arch` on `machine`.
    pub fn matches(&self, arch: &str, machine: &str) -> bool {
        self.targets
            .iter()
            .any(|(a, ms)| a == arch && ms.iter().any(|m| glob(m, machine)))
    }
}

/// Loads the descriptors of `dirs`; a file name found in an earlier
/// directory hides the same name in later ones (as QEMU specifies), files
/// are taken in name order, unreadable or malformed files are skipped.
pub fn load(dirs: &[PathBuf]) -> Vec<Firmware> {
    let mut names: std::collections::BTreeMap<String, PathBuf> = std::collections::BTreeMap::new();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".json") {
                names.entry(name).or_insert_with(|| e.path());
            }
        }
    }
    let mut out = Vec::new();
    for path in names.values() {
        match std::fs::read_to_string(path) {
            Ok(text) => match Firmware::parse(path, &text) {
                Some(f) => out.push(f),
                None => {
                    tracing::warn!(file = %path.display(), "ignoring malformed firmware descriptor")
                }
            },
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read firmware descriptor")
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_descriptor_and_matches_globs() {
        let text = r#"{"interface-types":["uefi"],"mapping":{"device":"flash","executable":{"filename":"/usr/share/OVMF/OVMF_CODE.secboot.fd","format":"raw"},"nvram-template":{"filename":"/usr/share/OVMF/OVMF_VARS.fd","format":"raw"}},"targets":[{"architecture":"x86_64","machines":["pc-q35-*"]}],"features":["secure-boot","requires-smm"]}"#;
        let f = Firmware::parse(Path::new("/x.json"), text).expect("valid");
        assert!(f.is_uefi() && f.secure_boot);
        assert!(f.matches("x86_64", "pc-q35-7.2"));
        assert!(!f.matches("x86_64", "pc-i440fx-7.2"));
        assert!(!f.matches("aarch64", "pc-q35-7.2"));
        assert!(Firmware::parse(Path::new("/y.json"), "{").is_none());
        assert!(glob("*", "anything"));
        assert!(glob("pc-*-7.*", "pc-q35-7.2"));
    }
}
