//! The examples in the docs are checked against the real types, so the docs stay true.
//!
//! - Every ```` ```toml ```` block of `docs/config.md` is written to a file in a temporary
//!   directory and read with `forkscope::config::load`, the loader `forkscope up` uses (unknown
//!   keys, bad values and all). Relative `cwd` directories a block names are created next to
//!   the file first, since an example describes the reader's project, not this repository.
//! - Every ```` ```json ```` block of `docs/events.md` holds one or more JSON objects (one per
//!   line, or one spread over several lines); each must parse as a `forkscope::model::Event`,
//!   and every key it writes must come back when that event is serialised again (a documented
//!   field the type does not have fails here, though serde would silently skip it).
//!
//! The convention for blocks that are not meant to be complete and valid: a second word in the
//! info string.
//! - ```` ```toml partial ```` / ```` ```json partial ````: a fragment; only its syntax is
//!   checked (it must be TOML / JSON).
//! - ```` ```toml invalid ```` / ```` ```json invalid ````: an example of an error; it must
//!   be rejected by the loader / by `Event`.
//!
//! Blocks without an info string (command synopses, error output) are not examples and are not
//! checked. A failure names the doc file and the line of the block.

use std::path::Path;

use forkscope::model::Event;
use serde_json::Value;

/// A fenced block of a markdown file.
struct Block {
    /// The info string's words after the language (`partial`, `invalid`).
    flags: Vec<String>,
    /// 1-based line of the first line inside the fence.
    first_line: usize,
    text: String,
}

/// The fenced blocks of `markdown` whose info string starts with `language`.
fn blocks(markdown: &str, language: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    let mut in_other = false;
    for (index, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            if let Some(block) = open.as_mut() {
                block.text.push_str(line);
                block.text.push('\n');
            }
            continue;
        };
        if let Some(block) = open.take() {
            found.push(block);
        } else if in_other {
            in_other = false;
        } else {
            let mut words = info.split_whitespace();
            if words.next() == Some(language) {
                open = Some(Block {
                    flags: words.map(str::to_string).collect(),
                    first_line: index + 2,
                    text: String::new(),
                });
            } else {
                in_other = true;
            }
        }
    }
    assert!(open.is_none() && !in_other, "an unclosed ``` fence");
    found
}

fn read_doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn check_flags(doc: &str, block: &Block) {
    for flag in &block.flags {
        assert!(
            flag == "partial" || flag == "invalid",
            "docs/{doc}:{}: unknown info-string word {flag:?} (partial or invalid)",
            block.first_line - 1
        );
    }
}

/// Creates the relative `cwd` directories of `[[pool]]`s under `dir`.
fn create_pool_dirs(text: &str, dir: &Path) {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return;
    };
    let pools = table.get("pool").and_then(toml::Value::as_array);
    for pool in pools.into_iter().flatten() {
        if let Some(cwd) = pool.get("cwd").and_then(toml::Value::as_str)
            && Path::new(cwd).is_relative()
            && !cwd.contains("..")
        {
            std::fs::create_dir_all(dir.join(cwd)).expect("create the example's cwd");
        }
    }
}

#[test]
fn every_toml_example_of_config_md_loads() {
    let doc = read_doc("config.md");
    let found = blocks(&doc, "toml");
    assert!(!found.is_empty(), "docs/config.md has no ```toml block");
    for block in &found {
        check_flags("config.md", block);
        let at = block.first_line;
        if block.flags.iter().any(|f| f == "partial") {
            if let Err(err) = toml::from_str::<toml::Table>(&block.text) {
                panic!("docs/config.md:{at}: a partial block that is not TOML: {err}");
            }
            continue;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        create_pool_dirs(&block.text, dir.path());
        let file = dir.path().join("forkscope.toml");
        std::fs::write(&file, &block.text).expect("write the example");
        let loaded = forkscope::config::load(&file, true);
        let invalid = block.flags.iter().any(|f| f == "invalid");
        match (loaded, invalid) {
            (Ok(_), false) | (Err(_), true) => {}
            (Ok(_), true) => panic!("docs/config.md:{at}: a block marked invalid loads"),
            (Err(err), false) => {
                let line = err.located().map_or(at, |located| at + located.line - 1);
                panic!("docs/config.md:{line}: the example does not load: {err}");
            }
        }
    }
}

/// The JSON values of `text` with the 0-based line each starts on.
fn json_values(text: &str) -> Result<Vec<(usize, &str)>, (usize, serde_json::Error)> {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut start = 0;
    loop {
        let item = stream.next();
        let end = stream.byte_offset();
        match item {
            None => return Ok(values),
            Some(Err(err)) => return Err((err.line().saturating_sub(1), err)),
            Some(Ok(_)) => {
                let raw = &text[start..end];
                let leading = raw.len() - raw.trim_start().len();
                let line = text[..start + leading].matches('\n').count();
                values.push((line, raw.trim()));
                start = end;
            }
        }
    }
}

/// Keys of `written` (recursively) that are missing from `reread`.
fn missing_keys(written: &Value, reread: &Value, path: &str, missing: &mut Vec<String>) {
    match (written, reread) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => missing_keys(value, other, &here, missing),
                    None => missing.push(here),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                missing_keys(x, y, &format!("{path}[{index}]"), missing);
            }
        }
        _ => {}
    }
}

#[test]
fn every_json_example_of_events_md_is_an_event() {
    let doc = read_doc("events.md");
    let found = blocks(&doc, "json");
    assert!(
        found.len() > 10,
        "docs/events.md has too few ```json blocks"
    );
    for block in &found {
        check_flags("events.md", block);
        let values = match json_values(&block.text) {
            Ok(values) => values,
            Err((line, err)) => {
                if block.flags.iter().any(|f| f == "invalid") {
                    continue;
                }
                panic!(
                    "docs/events.md:{}: not JSON: {err}",
                    block.first_line + line
                );
            }
        };
        if block.flags.iter().any(|f| f == "partial") {
            continue;
        }
        let invalid = block.flags.iter().any(|f| f == "invalid");
        for (line, raw) in values {
            let at = block.first_line + line;
            match (serde_json::from_str::<Event>(raw), invalid) {
                (Err(_), true) => {}
                (Ok(_), true) => panic!("docs/events.md:{at}: a block marked invalid parses"),
                (Err(err), false) => panic!("docs/events.md:{at}: not an Event: {err}\n{raw}"),
                (Ok(event), false) => {
                    let written: Value = serde_json::from_str(raw).expect("parsed above");
                    let reread = serde_json::to_value(&event).expect("serialise an Event");
                    let mut missing = Vec::new();
                    missing_keys(&written, &reread, "", &mut missing);
                    assert!(
                        missing.is_empty(),
                        "docs/events.md:{at}: keys the Event type does not have: {missing:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn blocks_finds_fences_with_their_lines_and_flags() {
    let markdown = "a\n```toml\nx = 1\n```\n```\nno\n```\n```json invalid\n{\n```\n";
    let toml_blocks = blocks(markdown, "toml");
    assert_eq!(toml_blocks.len(), 1);
    assert_eq!(toml_blocks[0].first_line, 3);
    assert_eq!(toml_blocks[0].text, "x = 1\n");
    let json_blocks = blocks(markdown, "json");
    assert_eq!(json_blocks.len(), 1);
    assert_eq!(json_blocks[0].flags, vec!["invalid".to_string()]);
    assert_eq!(json_blocks[0].first_line, 9);
}

#[test]
fn json_values_gives_each_value_its_line() {
    let values = json_values("{\"a\":1}\n{\"b\":\n 2}\n\n{\"c\":3}\n").expect("json");
    let lines: Vec<usize> = values.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, vec![0, 1, 4]);
}
