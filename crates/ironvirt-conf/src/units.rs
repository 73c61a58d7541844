//! Scaled integers (`<memory unit='MiB'>`), as libvirt's `virScaleInteger`
//! understands them.

use ironvirt_driver::{Error, ErrorDomain, ErrorNumber, Result};

/// The multiplier for a unit suffix, with `default` for an empty suffix.
///
/// Accepted: `b`, `byte`, `bytes`; `k`/`M`/`G`/`T`/`P`/`E` alone or followed
/// by `iB` (powers of 1024) or `B` (powers of 1000); case-insensitive.
/// Anything else is `VIR_ERR_INVALID_ARG` "unknown suffix 'X'" from
/// `VIR_FROM_NONE`, as libvirt reports it.
pub fn unit_scale(suffix: &str, default: u64) -> Result<u64> {
    if suffix.is_empty() {
        return Ok(default);
    }
    let lower = suffix.to_ascii_lowercase();
    if lower == "b" || lower == "byte" || lower == "bytes" {
        return Ok(1);
    }
    let bad = || {
        Error::new(
            ErrorDomain::NONE,
            ErrorNumber::INVALID_ARG,
            format!("unknown suffix '{suffix}'"),
        )
    };
    let rest = &lower[1..];
    let base: u64 = match rest {
        "" | "ib" => 1024,
        "b" => 1000,
        _ => return Err(bad()),
    };
    let power = match lower.as_bytes()[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        b'e' => 6,
        _ => return Err(bad()),
    };
    Ok(base.pow(power))
}

/// `value` × the unit's scale, limited to `limit` (bytes). Overflow is
/// `VIR_ERR_OVERFLOW` "value too large: VALUEUNIT" from `VIR_FROM_NONE`.
pub fn scale(value: u64, unit: &str, default: u64, limit: u64) -> Result<u64> {
    let s = unit_scale(unit, default)?;
    if value != 0 && value > limit / s {
        return Err(Error::new(
            ErrorDomain::NONE,
            ErrorNumber::OVERFLOW,
            format!("value too large: {value}{unit}"),
        ));
    }
    Ok(value * s)
}

/// Parses a memory size given in `unit` (KiB when empty) and returns it in
/// KiB, rounding partial KiB up as libvirt does. The limit is the largest
/// size in bytes a signed 64-bit value can hold.
pub fn memory_kib(value: u64, unit: &str) -> Result<u64> {
    let bytes = scale(value, unit, 1024, i64::MAX as u64)?;
    Ok(bytes.div_ceil(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Figures measured with virsh on libvirt 9.0's test driver.
    #[test]
    fn memory_units_match_libvirt() {
        assert_eq!(memory_kib(1, "b").unwrap(), 1);
        assert_eq!(memory_kib(1, "bytes").unwrap(), 1);
        assert_eq!(memory_kib(1, "KB").unwrap(), 1);
        assert_eq!(memory_kib(1, "MB").unwrap(), 977);
        assert_eq!(memory_kib(1, "GB").unwrap(), 976563);
        assert_eq!(memory_kib(1, "TB").unwrap(), 976562500);
        assert_eq!(memory_kib(1, "M").unwrap(), 1024);
        assert_eq!(memory_kib(1, "GiB").unwrap(), 1048576);
        assert_eq!(memory_kib(1, "P").unwrap(), 1099511627776);
        assert_eq!(memory_kib(1, "E").unwrap(), 1125899906842624);
        assert_eq!(
            memory_kib(9007199254740991, "KiB").unwrap(),
            9007199254740991
        );
    }

    #[test]
    fn overflow_and_bad_suffix() {
        let e = memory_kib(9007199254740992, "KiB").unwrap_err();
        assert_eq!(e.code, ErrorNumber::OVERFLOW);
        assert_eq!(
            e.message,
            "numerical overflow: value too large: 9007199254740992KiB"
        );
        let e = memory_kib(16, "E").unwrap_err();
        assert_eq!(e.message, "numerical overflow: value too large: 16E");
        let e = memory_kib(1, "Z").unwrap_err();
        assert_eq!(e.code, ErrorNumber::INVALID_ARG);
        assert_eq!(e.domain, ErrorDomain::NONE);
        assert_eq!(e.message, "invalid argument: unknown suffix 'Z'");
    }
}
