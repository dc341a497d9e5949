//! Parsers for flag values: sizes, durations, key=value pairs, directory
//! grants. Each error names the flag's expected form.

use std::path::PathBuf;
use std::time::Duration;

/// `4096`, `64KiB`, `512MiB`, `2GiB`, `4Gi`, `100M`, `1G`, `1.5GB` (binary units: a
/// memory limit is a power-of-two kind of thing, so K/M/G mean KiB/MiB/GiB).
pub fn size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 =
        num.parse().map_err(|_| format!("invalid size {s:?}: expected a number with an optional unit, e.g. 512MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        // Binary multiples, whichever way they are written (Kubernetes
        // writes `Ki`, `Mi`, `Gi`).
        "k" | "kb" | "kib" | "ki" => 1 << 10,
        "m" | "mb" | "mib" | "mi" => 1 << 20,
        "g" | "gb" | "gib" | "gi" => 1 << 30,
        "t" | "tb" | "tib" | "ti" => 1 << 40,
        other => {
            return Err(format!("invalid size {s:?}: unknown unit {other:?} (use B, KiB, MiB, GiB)"));
        }
    };
    let bytes = n * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("invalid size {s:?}: must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// `30s`, `500ms`, `2m`, `1h`, `1.5s`; a bare number is seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 30s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!("invalid duration {s:?}: unknown unit {other:?} (use ms, s, m, h)"));
        }
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(format!("invalid duration {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `KEY=VALUE`, or `KEY` alone: this process's value of `KEY`, as `docker
/// run -e KEY` and `wasmtime run --env KEY` take it (the job still sees
/// nothing it was not given by name).
pub fn env_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        None if !s.is_empty() => match std::env::var(s) {
            Ok(v) => Ok((s.to_string(), v)),
            Err(_) => Err(format!("invalid --env {s:?}: {s} is not set here (give {s}=VALUE)")),
        },
        _ => Err(format!("invalid --env {s:?}: expected KEY=VALUE, or KEY to pass this process's value")),
    }
}

/// `HOST::GUEST`, or `HOST` alone (visible at the same path).
pub fn dir_grant(s: &str) -> Result<(PathBuf, String), String> {
    let (host, guest) = match s.split_once("::") {
        Some((h, g)) => (h, g),
        None => (s, s),
    };
    if host.is_empty() || guest.is_empty() {
        return Err(format!("invalid --dir {s:?}: expected HOST_DIR::GUEST_DIR"));
    }
    let path = PathBuf::from(host);
    if !path.is_dir() {
        return Err(format!("invalid --dir {s:?}: {host} is not a directory"));
    }
    Ok((path, guest.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size("4096"), Ok(4096));
        assert_eq!(size("64KiB"), Ok(64 << 10));
        assert_eq!(size("512M"), Ok(512 << 20));
        assert_eq!(size("1.5GiB"), Ok(3 << 29));
        assert_eq!(size("4Gi"), Ok(4 << 30));
        assert_eq!(size("256Mi"), Ok(256 << 20));
        assert!(size("lots").is_err());
        assert!(size("5 parsecs").is_err());
        assert!(size("0").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert!(duration("soon").is_err());
        assert!(duration("-1s").is_err());
    }

    #[test]
    fn pairs_and_grants() {
        assert_eq!(env_pair("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(env_pair("=x").is_err());
        assert!(env_pair("").is_err());
        // A name alone takes this process's value (PATH is set wherever
        // tests run), or is refused when there is none.
        assert_eq!(env_pair("PATH"), Ok(("PATH".into(), std::env::var("PATH").unwrap())));
        let unset = env_pair("WRAY_TEST_SURELY_UNSET_VARIABLE").unwrap_err();
        assert!(unset.contains("WRAY_TEST_SURELY_UNSET_VARIABLE is not set here"), "{unset}");
        assert!(dir_grant("/definitely/not/here::/data").is_err());
        assert_eq!(dir_grant("/tmp::/data").unwrap().1, "/data");
    }
}
