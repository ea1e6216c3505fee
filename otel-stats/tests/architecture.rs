//! The rule the source layout promises: the handlers (`otel/`, `metrics/`, `log/`) share
//! vocabulary through the modules below them (`semconv/`, `event/`, `rpc/`, ...), never
//! through each other, and nothing below them names a handler. Only the crate's face
//! (`lib.rs`, `stacks.rs`) puts handlers side by side.
//!
//! Read from the source: every `crate::` path outside comments, grouped imports included, is
//! resolved to the top-level module it reaches, through `lib.rs`'s re-exports for names used
//! from the root (`crate::OtelHandler` is `otel`).

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

const HANDLERS: [&str; 3] = ["otel", "metrics", "log"];
/// Files that may name every module: the crate root and its stack aliases.
const FACE: [&str; 2] = ["lib.rs", "stacks.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level module a file belongs to (`otel/handler.rs` is `otel`, `request.rs` is
/// `request`).
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// What the root re-exports: name -> the module it comes from (`pub use otel::{A, B};`).
fn root_names(lib: &str) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for statement in lib.split(';') {
        let statement = statement.trim();
        let Some(path) = statement.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        let items = rest.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.trim().rsplit("::").next().unwrap_or("");
            if !name.is_empty() {
                names.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    names
}

/// The first segment of every `crate::` path in `code` (`crate::{a::b, c}` gives `a`, `c`).
fn crate_paths(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let after = &code[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            // The group's top-level items, up to its closing brace.
            let mut depth = 0;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        found.push(ident(&group[i..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(after));
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

/// `text` without its comments (line comments, doc comments included): doc links may point
/// anywhere.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every (file, module it reaches) pair of the crate, the face excluded.
fn references() -> Vec<(PathBuf, String, String)> {
    let names = root_names(&fs::read_to_string(src().join("lib.rs")).unwrap());
    let mut references = Vec::new();
    for file in rust_files(&src()) {
        if FACE.iter().any(|face| file == src().join(face)) {
            continue;
        }
        let code = code_of(&fs::read_to_string(&file).unwrap());
        for first in crate_paths(&code) {
            let target = names.get(&first).cloned().unwrap_or(first);
            references.push((file.clone(), module_of(&file), target));
        }
    }
    references
}

#[test]
fn handlers_never_import_each_other_and_nothing_below_imports_a_handler() {
    let references = references();
    assert!(
        references.len() > 50,
        "the scan found too few crate:: paths to be reading the source: {}",
        references.len()
    );
    let broken: Vec<String> = references
        .iter()
        .filter(|(_, from, to)| HANDLERS.contains(&to.as_str()) && from != to)
        .map(|(file, from, to)| format!("{} ({from}) uses {to}", file.display()))
        .collect();
    assert!(broken.is_empty(), "{broken:#?}");
}

#[test]
fn the_scan_sees_grouped_imports_and_root_names() {
    let names = root_names("pub use otel::{OtelHandler, filters};\npub use log::LogHandler;");
    assert_eq!(names["OtelHandler"], "otel");
    assert_eq!(names["filters"], "otel");
    assert_eq!(names["LogHandler"], "log");
    let code = code_of(
        "use crate::{semconv::{self, GRPC}, OtelHandler};\n\
         // use crate::metrics::names;\n\
         let x = crate::log::line(1);",
    );
    assert_eq!(crate_paths(&code), ["semconv", "OtelHandler", "log"]);
}
