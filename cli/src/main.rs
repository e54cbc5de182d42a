//! `hardmine`: the command-line face of the library.
//!
//! ```text
//! hardmine parity --path {f64|f32|fixed|gpu} [--check] FILE...
//! ```

use hardmine_cli::{compare, parity};
use std::io::{BufRead, BufReader, Write};
use std::process::ExitCode;

const USAGE: &str = "usage:
  hardmine parity --path {f64|f32|fixed|gpu} [--check] FILE...
      Runs golden cases (one JSON object a line) and prints one JSON line per case and batch.
      --check compares with each case's `expected` at the path's tolerance instead, printing
      one line per case and a closing `N passed, M failed, K skipped` (skipped: ops or paths
      this build does not have); exits non-zero on any failure.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("parity") => parity_command(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(true)
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

fn parity_command(args: &[String]) -> Result<bool, String> {
    let mut path = None;
    let mut check = false;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--path" => {
                let p = it.next().ok_or("--path needs a value")?;
                path = Some(
                    parity::Path::parse(p).ok_or_else(|| format!("unknown path `{p}`\n{USAGE}"))?,
                );
            }
            "--check" => check = true,
            f => files.push(f.to_string()),
        }
    }
    let path = path.ok_or_else(|| format!("--path is required\n{USAGE}"))?;
    if files.is_empty() {
        return Err(format!("no case files given\n{USAGE}"));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    for file in &files {
        let reader = BufReader::new(std::fs::File::open(file).map_err(|e| format!("{file}: {e}"))?);
        for (n, line) in reader.lines().enumerate() {
            let line = line.map_err(|e| format!("{file}: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let case: serde_json::Value = match serde_json::from_str(&line) {
                Ok(case) => case,
                Err(e) => {
                    let msg = format!("{file}:{}: invalid JSON: {e}", n + 1);
                    writeln!(out, "{}", serde_json::json!({ "id": null, "error": msg }))
                        .map_err(|e| e.to_string())?;
                    failed += 1;
                    continue;
                }
            };
            let lines = parity::run_case(&case, path);
            if check {
                let id = case.get("id").and_then(|v| v.as_str()).unwrap_or("?");
                if let [only] = lines.as_slice() {
                    if let Some(why) = only.get("error").and_then(|e| e.as_str()) {
                        if why.contains("not supported") || why.contains("not in this build") {
                            skipped += 1;
                            writeln!(out, "skip  {id}: {why}").map_err(|e| e.to_string())?;
                            continue;
                        }
                    }
                }
                match compare::check_case(&case, &lines, path) {
                    Ok(()) => {
                        passed += 1;
                        writeln!(out, "ok    {id}")
                    }
                    Err(why) => {
                        failed += 1;
                        writeln!(out, "FAIL  {id}: {why}")
                    }
                }
                .map_err(|e| e.to_string())?;
            } else {
                for l in lines {
                    writeln!(out, "{l}").map_err(|e| e.to_string())?;
                }
            }
        }
    }
    if check {
        writeln!(out, "{passed} passed, {failed} failed, {skipped} skipped")
            .map_err(|e| e.to_string())?;
    }
    Ok(failed == 0)
}
