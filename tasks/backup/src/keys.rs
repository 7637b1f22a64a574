//! Where a run's objects go in the backup bucket. Every key of a run is
//! under its run key, `backups/{name}/{run id}/`; source data under `data/`,
//! the manifest under `manifest.json` and `manifest/`, so no source key can
//! collide with the manifest.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// S3's longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Where a source object goes: `{run key}data/{key without the prefix}`.
/// Data lives under `data/` so no source key can collide with the manifest.
///
/// Source keys are whatever the source bucket holds, not validated input:
/// empty, `.` and `..` segments, `%`, `\` and control characters are
/// percent-encoded, so no backup key climbs out of its run when a restore
/// tool maps keys to paths (`\` is a separator on Windows), and distinct
/// source keys stay distinct.
///
/// Escaping can make a key longer than S3 allows (a 1024-byte source key
/// already is, once under the run key): such a key keeps as much of its
/// escaped text as fits and ends in `%~` and a SHA-256 digest of the whole
/// source key. Escaping writes `%` only as `%XX`, so a shortened key never
/// equals an escaped one, and the digest keeps long keys apart; the
/// manifest records every `source_key` for the way back.
pub fn data_key(run_key: &str, prefix: &str, source_key: &str) -> String {
    let relative = source_key.strip_prefix(prefix).unwrap_or(source_key);
    // One buffer for the whole key: this runs for every listed object.
    let mut escaped = String::with_capacity(relative.len());
    for (i, segment) in relative.split('/').enumerate() {
        if i > 0 {
            escaped.push('/');
        }
        match segment {
            // `/` itself cannot be in a segment: it marks an empty one.
            "" => escaped.push_str("%2F"),
            "." => escaped.push_str("%2E"),
            ".." => escaped.push_str("%2E%2E"),
            _ => {
                for c in segment.chars() {
                    if c == '%' || c == '\\' || c.is_control() {
                        let mut utf8 = [0u8; 4];
                        for b in c.encode_utf8(&mut utf8).bytes() {
                            let _ = write!(escaped, "%{b:02X}");
                        }
                    } else {
                        escaped.push(c);
                    }
                }
            }
        }
    }
    let head = format!("{run_key}data/");
    if head.len() + escaped.len() <= MAX_KEY_BYTES {
        return format!("{head}{escaped}");
    }
    let digest = hex::encode(Sha256::digest(relative.as_bytes()));
    let tail = format!("%~{}", &digest[..32]);
    // Shorter than `escaped`: only keys that do not fit get here.
    let mut cut = MAX_KEY_BYTES.saturating_sub(head.len() + tail.len());
    while !escaped.is_char_boundary(cut) {
        cut -= 1;
    }
    // Never half an escape: every `%` in `escaped` starts a `%XX`.
    if let Some(percent) = escaped[..cut].rfind('%')
        && cut - percent < 3
    {
        cut = percent;
    }
    format!("{head}{}{tail}", &escaped[..cut])
}

/// Where an HTTP export goes: `{run key}data/{file name}`, `export` by
/// default. `file_name` is validated by [`BackupRequest::validate`] (1 to
/// 128 of `A-Z a-z 0-9 - _ .`, not starting with `.`), so it is one safe
/// segment.
pub fn export_key(run_key: &str, file_name: Option<&str>) -> String {
    format!("{run_key}data/{}", file_name.unwrap_or("export"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const RUN: &str = "backups/crm/20261124T000000Z/";

    #[test]
    fn data_keys_stay_inside_their_run() {
        for (source, expected) in [
            ("daily/a.json", "data/a.json"),
            ("daily/sub/b.json", "data/sub/b.json"),
            (
                "daily/../../manifest.json",
                "data/%2E%2E/%2E%2E/manifest.json",
            ),
            ("daily/./x", "data/%2E/x"),
            ("daily//x", "data/%2F/x"),
            ("daily/", "data/%2F"),
            ("daily/a\u{0}b\nc", "data/a%00b%0Ac"),
            ("daily/100%.csv", "data/100%25.csv"),
            ("daily/Łódź.csv", "data/Łódź.csv"),
            ("daily/..hidden", "data/..hidden"),
            ("daily/..\\..\\win.ini", "data/..%5C..%5Cwin.ini"),
        ] {
            assert_eq!(
                data_key(RUN, "daily/", source),
                format!("{RUN}{expected}"),
                "{source:?}"
            );
        }
    }

    #[test]
    fn hostile_source_keys_never_escape_or_collide() {
        let hostile = [
            "..",
            ".",
            "",
            "/",
            "//",
            "../x",
            "x/..",
            "./x",
            "a/../../b",
            "%2E%2E",
            "%00",
            "\u{0}",
            "\u{7f}",
            "a\rb",
            "/leading",
            "trailing/",
            "a//b",
            "manifest.json",
            "..\\..\\x",
            "%5C",
        ];
        let mut seen = std::collections::BTreeMap::new();
        for source in hostile {
            let key = data_key(RUN, "", source);
            assert_safe_key(&key, &format!("{RUN}data/"));
            // A trailing empty segment, which `assert_safe_key` allows.
            assert!(!key.ends_with('/'), "{source:?} → {key}");
            if let Some(other) = seen.insert(key.clone(), source) {
                panic!("{other:?} and {source:?} both map to {key}");
            }
        }
    }

    /// What every backup key must be, whatever the source key was.
    pub(crate) fn assert_safe_key(key: &str, run_key: &str) {
        assert!(
            key.len() <= MAX_KEY_BYTES,
            "{} bytes: {key:.80}…",
            key.len()
        );
        assert!(key.starts_with(run_key), "{key:.80}… is outside {run_key}");
        assert!(!key.starts_with('/'), "{key:.80}");
        assert!(!key.contains("//"), "{key:.80}");
        assert!(!key.contains('\\'), "{key:.80}");
        assert!(!key.chars().any(char::is_control), "{key:?}");
        for segment in key.split('/').skip(1) {
            assert!(
                !matches!(segment, "." | ".."),
                "{key:.80}: segment {segment:?}"
            );
        }
    }

    #[test]
    fn long_source_keys_are_shortened_distinctly() {
        let long = |c: &str, n: usize| format!("daily/{}", c.repeat(n));
        let sources = [
            long("a", 1018),                    // 1024 bytes with the prefix
            long("a", 1017) + "b",              // differs only at the end
            long("\u{1}", 1018),                // triples when escaped
            long("ä", 509),                     // two bytes a character
            long("%", 400),                     // %25 each
            long("a/", 509),                    // many segments
            long("../", 339),                   // many `..`
            long("ab", 100) + &long("😀", 200), // four-byte characters
        ];
        let mut seen = std::collections::BTreeMap::new();
        for source in &sources {
            let key = data_key(RUN, "daily/", source);
            assert_safe_key(&key, &format!("{RUN}data/"));
            assert!(key.contains("%~"), "{key:.80}");
            assert_eq!(key, data_key(RUN, "daily/", source), "deterministic");
            if let Some(other) = seen.insert(key.clone(), source) {
                panic!("{other:.40} and {source:.40} both map to {key:.80}");
            }
        }
        // A short key that spells the marker is escaped, so it cannot be
        // mistaken for (or collide with) a shortened one.
        let spelled = data_key(RUN, "", "%~0123456789abcdef0123456789abcdef");
        assert!(spelled.ends_with("data/%25~0123456789abcdef0123456789abcdef"));
        // A key that fits is left whole.
        let fits = "x".repeat(MAX_KEY_BYTES - RUN.len() - "data/".len());
        assert_eq!(data_key(RUN, "", &fits), format!("{RUN}data/{fits}"));
        let over = format!("{fits}y");
        assert!(data_key(RUN, "", &over).contains("%~"));
    }

    #[test]
    fn generated_hostile_source_keys_give_safe_keys() {
        // Every combination of up to four hostile pieces: plain tables
        // rather than a property test, so each case is reproducible as is.
        const PIECES: &[&str] = &[
            "..", ".", "/", "%", "%2e%2e", "\\", "\u{0}", "\n", "\u{7f}", "\u{85}", "ä",
            "\u{202E}", "．．", "∕", "a", "",
        ];
        let mut seen = std::collections::HashMap::new();
        let n = PIECES.len();
        for i in 0..n.pow(4) {
            let source: String = (0..4).map(|d| PIECES[(i / n.pow(d)) % n]).collect();
            let key = data_key(RUN, "", &source);
            assert_safe_key(&key, &format!("{RUN}data/"));
            if let Some(other) = seen.insert(key.clone(), source.clone()) {
                assert_eq!(other, source, "two sources map to {key}");
            }
        }
    }

    #[test]
    fn export_keys() {
        assert_eq!(export_key(RUN, None), format!("{RUN}data/export"));
        assert_eq!(
            export_key(RUN, Some("crm.ndjson")),
            format!("{RUN}data/crm.ndjson")
        );
    }
}
