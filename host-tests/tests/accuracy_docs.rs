//! Every accuracy bound a doc states equals the constant of the tolerance table it names: the
//! core's doc comments and the README quote a bound as ``VALUE [UNIT] (`NAME`)``, and `NAME`
//! is a constant of `tolerance.rs`, the one the enforcing test reads.

use hardmine_host_tests::tolerance::TABLE;
use std::path::{Path, PathBuf};

/// One quoted bound: where, the constant's name and the value the text gives.
#[derive(Debug)]
struct Quote {
    at: String,
    name: String,
    value: Option<f64>,
}

/// The files whose prose states accuracy: the core's sources and the README.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("core/src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("core/src is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A file's text with comment markers removed and lines joined, so a quote may wrap.
fn prose(text: &str) -> String {
    text.lines()
        .map(|l| {
            let l = l.trim_start();
            let l = l
                .strip_prefix("//!")
                .or_else(|| l.strip_prefix("///"))
                .or_else(|| l.strip_prefix("//"))
                .unwrap_or(l);
            l.trim()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `name` looks like a bound's constant (upper case, a bound's suffix).
fn is_bound_name(name: &str) -> bool {
    let shaped = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    shaped
        && ["_ULP", "_LSB", "_REL", "_FRAC"]
            .iter()
            .any(|s| name.ends_with(s))
}

/// The number a quote gives just before ``(`NAME`)``: the last token, or the one before it
/// when the last is a unit (`ULP`, `LSB`, `relative`, ...).
fn value_before(text: &str) -> Option<f64> {
    let mut tokens = text.split_whitespace().rev().take(2);
    let parse = |t: &str| {
        t.trim_matches(|c: char| c == '*' || c == ',' || c == '(')
            .parse::<f64>()
            .ok()
    };
    let last = tokens.next()?;
    parse(last).or_else(|| tokens.next().and_then(parse))
}

/// Every ``(`NAME`)`` quote of a bound in `text`.
fn quotes(file: &str, text: &str) -> Vec<Quote> {
    let text = prose(text);
    let mut found = Vec::new();
    let mut rest = text.as_str();
    let mut offset = 0;
    while let Some(i) = rest.find("(`") {
        let after = &rest[i + 2..];
        if let Some(end) = after.find('`') {
            let name = &after[..end];
            let closed = after[end..].starts_with("`)") || after[end..].starts_with("`;");
            if closed && is_bound_name(name) {
                let before = &text[..offset + i];
                let start = before.char_indices().rev().nth(60).map_or(0, |(k, _)| k);
                found.push(Quote {
                    at: format!("{file}: ...{}", &before[start..]),
                    name: name.to_string(),
                    value: value_before(before),
                });
            }
        }
        offset += i + 2;
        rest = &text[offset..];
    }
    found
}

#[test]
fn every_quoted_bound_equals_its_constant() {
    let mut all = Vec::new();
    for path in documents() {
        let text = std::fs::read_to_string(&path).expect("a readable document");
        let file = path.display().to_string();
        assert!(
            !text.contains("`tolerance.rs`, row"),
            "{file} cites a row of tolerance.rs by a name the table does not have"
        );
        all.extend(quotes(&file, &text));
    }
    let mut bad = Vec::new();
    for q in &all {
        match (TABLE.iter().find(|(n, _)| *n == q.name), q.value) {
            (None, _) => bad.push(format!("{}: no constant `{}` in the table", q.at, q.name)),
            (Some(_), None) => bad.push(format!("{}: no value quoted for `{}`", q.at, q.name)),
            (Some(&(_, want)), Some(got)) => {
                if (got - want).abs() > 1e-6 * want.abs() {
                    bad.push(format!("{}: quotes {got} for `{}` = {want}", q.at, q.name));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // The docs quote the core's bounds; a parser that finds none proves nothing.
    assert!(all.len() >= 20, "only {} quotes found", all.len());
    for name in [
        "F32_REL",
        "KERNEL_F32_ULP",
        "FIXED_KERNEL_LSB",
        "FIXED_LOGISTIC_LSB",
    ] {
        assert!(
            all.iter().any(|q| q.name == name),
            "`{name}` is never quoted"
        );
    }
}

#[test]
fn the_parser_reads_values_units_and_wrapped_lines() {
    let text = "/// max error 3 ULP (`KERNEL_F32_ULP`), and\n/// 1e-5\n/// relative (`F32_REL`).";
    let q = quotes("t", text);
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].value, Some(3.0));
    assert_eq!(q[1].value, Some(1e-5));
    // A wrong value or an unknown name is caught.
    let q = quotes(
        "t",
        "/// 2 ULP (`KERNEL_F32_ULP`) and 1 ULP (`NO_SUCH_ULP`)",
    );
    assert_eq!(q[0].value, Some(2.0));
    assert_eq!(q[1].name, "NO_SUCH_ULP");
    assert!(!TABLE.iter().any(|(n, _)| *n == "NO_SUCH_ULP"));
}
