//! Per-segment decoder rules: `(glob on the segment name, Format)` pairs, as the config file's
//! `[[shm.layout]]` tables give them. The first rule whose glob matches a segment's name gives
//! its format when the asked format is `auto`; an explicit format always wins.
//!
//! Globs: `*` matches any run of characters (also none), `?` exactly one, everything else
//! itself; a pattern without wildcards is an exact name. A leading `/` is ignored (segment
//! names are shown without it). Matching is linear-time backtracking over chars, bounded by
//! `pattern × name` steps, so no input can make it blow up.

use super::Format;

/// One rule: segments whose name matches `pattern` decode as `format`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatRule {
    pub pattern: String,
    pub format: Format,
    /// Where the rule was written (`forkscope.toml:12:9`), for messages.
    pub origin: String,
}

/// The first rule matching `name`, if any.
pub fn find<'a>(rules: &'a [FormatRule], name: &str) -> Option<&'a FormatRule> {
    rules.iter().find(|rule| glob_match(&rule.pattern, name))
}

/// The format to decode segment `name` with: `asked` unless it is `auto` and a rule matches.
pub fn effective<'a>(asked: &'a Format, rules: &'a [FormatRule], name: &str) -> &'a Format {
    match asked {
        Format::Auto => find(rules, name).map_or(asked, |rule| &rule.format),
        _ => asked,
    }
}

/// Whether `name` matches the glob `pattern` (`*`, `?`; a leading `/` of the pattern is
/// ignored).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern
        .strip_prefix('/')
        .unwrap_or(pattern)
        .chars()
        .collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, name index it took up to).
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p + 1, n));
                p += 1;
            }
            Some(&c) if c == '?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((after, taken)) => {
                    // Let the last `*` take one more character and try again.
                    p = after;
                    n = taken + 1;
                    star = Some((after, taken + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::shm::decode::typed::ElemType;

    #[test]
    fn globs() {
        assert!(glob_match("psm_*", "psm_1a2b3c4d"));
        assert!(glob_match("/psm_*", "psm_1a2b3c4d"));
        assert!(glob_match("psm_*", "psm_"));
        assert!(!glob_match("psm_*", "xpsm_1"));
        assert!(glob_match("counts", "counts"));
        assert!(!glob_match("counts", "counts2"));
        assert!(glob_match("forkscope-*-counts", "forkscope-123-counts"));
        assert!(!glob_match("forkscope-*-counts", "forkscope-123-count"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*", ""));
        assert!(glob_match("**a*b", "xxaxxb"));
        assert!(!glob_match("", "a"));
        assert!(glob_match("sem.é*", "sem.éx"));
    }

    #[test]
    fn first_match_wins_and_explicit_formats_win() {
        let rules = vec![
            FormatRule {
                pattern: "psm_*".into(),
                format: Format::Typed(ElemType::I64),
                origin: "a:1:1".into(),
            },
            FormatRule {
                pattern: "*".into(),
                format: Format::Hex,
                origin: "a:2:1".into(),
            },
        ];
        assert_eq!(
            effective(&Format::Auto, &rules, "psm_1"),
            &Format::Typed(ElemType::I64)
        );
        assert_eq!(effective(&Format::Auto, &rules, "other"), &Format::Hex);
        assert_eq!(effective(&Format::Auto, &[], "psm_1"), &Format::Auto);
        assert_eq!(
            effective(&Format::ShareableList, &rules, "psm_1"),
            &Format::ShareableList
        );
    }

    proptest::proptest! {
        #[test]
        fn glob_never_panics_and_star_matches_all(pattern in ".{0,40}", name in ".{0,60}") {
            let _ = glob_match(&pattern, &name);
            proptest::prop_assert!(glob_match("*", &name));
            if !name.contains(['*', '?']) && !name.starts_with('/') {
                proptest::prop_assert!(glob_match(&name, &name));
            }
        }
    }
}
