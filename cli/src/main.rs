//! `hardmine`: the command-line face of the library.
//!
//! ```text
//! hardmine parity --path {f64|f32|fixed|gpu} [--check] FILE...
//! ```

use hardmine_cli::finetune::{self, method::Method};
use hardmine_cli::{compare, parity};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::process::ExitCode;

const USAGE: &str = "usage:
  hardmine finetune [--path f32|fixed] [--steps N] [--seed S] [--test-scenes N] [--lr X]
                    [--methods m1,m2,...] [--json]
      The main job: trains a 64-32-10 detector head on-line, one scene of 1,024 cells (one
      real handwritten digit among them) per SGD step, once per loss or miner, and reports
      test mAP, recall at one false positive per scene, the final training loss, the share of
      the loss carried by easy negatives, wall time and loss-state bytes. Methods: bce,
      balanced, ohem, sohem, focal, ghm_c, afast, distribution_ce (default: all).
  hardmine plot --out DIR [finetune options]
      Runs the fine-tuning job (f32 unless --path fixed) and writes four SVG figures to DIR:
      focal loss against p_t, gradient norms with GHM-C weights, training curves, census.
  hardmine bench [--op OP|all] [--path f32|f64|fixed|gpu|all] [--n N] [--repeats R] [--json]
      Throughput of forward + gradient (selection for miners) in million elements per second,
      one thread: warm-up, then the median of at least R (default 7) timed calls. Ops: bce,
      focal, focal_labels, softmax_ce, softmax_focal, smooth_l1, ghm_c, ghm_r, ohem, ohem_nms,
      balanced, sohem (default all); N defaults to 2^20.
  hardmine parity --path {f64|f32|fixed|gpu} [--check] FILE...
      Runs golden cases (one JSON object a line) and prints one JSON line per case and batch.
      --check compares with each case's `expected` at the path's tolerance instead, printing
      one line per case and a closing `N passed, M failed, K skipped` (skipped: ops or paths
      this build does not have); exits non-zero on any failure.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("parity") => parity_command(&args[1..]),
        Some("finetune") => finetune_command(&args[1..]),
        Some("plot") => plot_command(&args[1..]),
        Some("bench") => bench_command(&args[1..]),
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
                        if [
                            "not supported",
                            "not in this build",
                            "no CUDA",
                            "no GPU kernel",
                        ]
                        .iter()
                        .any(|k| why.contains(k))
                        {
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

fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, String> {
    it.next()
        .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: `{text}` is not a valid number"))
}

/// Parses the options shared by `finetune` and `plot`; returns the remaining arguments.
pub(crate) fn finetune_options(
    args: &[String],
) -> Result<(finetune::Options, bool, Vec<String>), String> {
    let mut opts = finetune::Options::default();
    let mut json = false;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--path" => {
                opts.path = match value(&mut it, arg)?.as_str() {
                    "f32" => finetune::Path::F32,
                    "fixed" => finetune::Path::Fixed,
                    p => return Err(format!("finetune runs on f32 or fixed, not `{p}`")),
                }
            }
            "--steps" => opts.steps = number(value(&mut it, arg)?, arg)?,
            "--seed" => opts.seed = number(value(&mut it, arg)?, arg)?,
            "--test-scenes" => opts.test_scenes = number(value(&mut it, arg)?, arg)?,
            "--lr" => opts.lr = number(value(&mut it, arg)?, arg)?,
            "--methods" => {
                opts.methods = value(&mut it, arg)?
                    .split(',')
                    .map(|m| Method::parse(m).ok_or_else(|| format!("unknown method `{m}`")))
                    .collect::<Result<_, _>>()?
            }
            "--json" => json = true,
            other => rest.push(other.to_string()),
        }
    }
    if opts.steps == 0 || opts.test_scenes == 0 {
        return Err("--steps and --test-scenes must be at least 1".into());
    }
    if !(opts.lr.is_finite() && opts.lr > 0.0) {
        return Err("--lr must be a positive number".into());
    }
    Ok((opts, json, rest))
}

/// Progress on stderr, only when it is a terminal.
pub(crate) fn progress_bar() -> impl FnMut(&str, usize, usize) + Send {
    let tty = std::io::stderr().is_terminal();
    move |method: &str, step: usize, steps: usize| {
        if tty {
            let done = (step + 1) * 30 / steps.max(1);
            eprint!(
                "\r{method:>16} [{}{}] {}/{steps}   ",
                "#".repeat(done),
                " ".repeat(30 - done.min(30)),
                step + 1
            );
            if step + (steps / 50).max(1) >= steps {
                eprint!("\r{:72}\r", "");
            }
        }
    }
}

fn finetune_command(args: &[String]) -> Result<bool, String> {
    let (opts, json, rest) = finetune_options(args)?;
    if let Some(unknown) = rest.first() {
        return Err(format!("unknown argument `{unknown}`\n{USAGE}"));
    }
    let reports = finetune::run(&opts, &mut progress_bar())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let w = |e: std::io::Error| e.to_string();
    if json {
        for r in &reports {
            let line = serde_json::json!({
                "method": r.method, "path": r.path, "steps": r.steps, "seed": opts.seed,
                "map": r.map, "positive_rate": r.positive_rate, "recall_at_1fp": r.recall_at_1fp,
                "train_loss": r.train_loss, "easy_negative_share": r.easy_negative_share,
                "wall_s": r.wall_s, "state_bytes": r.state_bytes,
            });
            writeln!(out, "{line}").map_err(w)?;
        }
    } else {
        writeln!(
            out,
            "path {}, {} steps, seed {}, {} test scenes, positive rate {:.5}",
            opts.path.name(),
            opts.steps,
            opts.seed,
            opts.test_scenes,
            reports.first().map_or(0.0, |r| r.positive_rate)
        )
        .map_err(w)?;
        writeln!(out, "| method | test mAP | recall @ 1 FP/scene | train loss | easy-neg loss share | wall s | state B |").map_err(w)?;
        writeln!(out, "|---|---|---|---|---|---|---|").map_err(w)?;
        for r in &reports {
            writeln!(
                out,
                "| {} | {:.3} | {:.3} | {:.4} | {:.3} | {:.1} | {} |",
                r.method,
                r.map,
                r.recall_at_1fp,
                r.train_loss,
                r.easy_negative_share,
                r.wall_s,
                r.state_bytes
            )
            .map_err(w)?;
        }
    }
    Ok(true)
}

fn plot_command(args: &[String]) -> Result<bool, String> {
    let (opts, _, rest) = finetune_options(args)?;
    let mut out = None;
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => out = Some(value(&mut it, arg)?.clone()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    let dir = out.ok_or_else(|| format!("--out DIR is required\n{USAGE}"))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in hardmine_cli::plot::run(std::path::Path::new(&dir), &opts, &mut progress_bar())? {
        writeln!(out, "{path}").map_err(|e| format!("writing the results: {e}"))?;
    }
    Ok(true)
}

fn bench_command(args: &[String]) -> Result<bool, String> {
    let (mut ops, mut paths) = (Vec::new(), Vec::new());
    let (mut n, mut repeats, mut json) = (1usize << 20, 7usize, false);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--op" => ops.push(value(&mut it, arg)?.clone()),
            "--path" => paths.push(value(&mut it, arg)?.clone()),
            "--n" => n = number(value(&mut it, arg)?, arg)?,
            "--repeats" => repeats = number(value(&mut it, arg)?, arg)?,
            "--json" => json = true,
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    if ops.is_empty() || ops.iter().any(|o| o == "all") {
        ops = hardmine_cli::bench::OPS
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    if paths.is_empty() || paths.iter().any(|p| p == "all") {
        paths = hardmine_cli::bench::PATHS
            .iter()
            .map(|s| s.to_string())
            .collect();
    }
    if n < 1024 {
        return Err("--n must be at least 1024".into());
    }
    // Written through a locked handle: a closed pipe (`| head`) is an error, not a panic.
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let w = |e: std::io::Error| format!("writing the results: {e}");
    if !json {
        let fused = if hardmine::FUSED_MULTIPLY_ADD {
            "fused multiply-adds"
        } else {
            "no fused multiply-add"
        };
        writeln!(
            out,
            "Built for {}; {fused}.\n",
            hardmine_cli::bench::vector_isa()
        )
        .map_err(w)?;
        writeln!(out, "| op | path | n | Melem/s | ns/elem | state bytes |").map_err(w)?;
        writeln!(out, "|---|---|---|---|---|---|").map_err(w)?;
    }
    for op in &ops {
        for path in &paths {
            let m = hardmine_cli::bench::measure(op, path, n, repeats)?;
            if json {
                let line = serde_json::json!({
                    "op": m.op, "path": m.path, "n": m.n, "melem_per_s": m.melem_per_s,
                    "ns_per_elem": m.ns_per_elem, "state_bytes": m.state_bytes,
                });
                writeln!(out, "{line}").map_err(w)?;
            } else {
                writeln!(
                    out,
                    "| {} | {} | {} | {:.1} | {:.2} | {} |",
                    m.op, m.path, m.n, m.melem_per_s, m.ns_per_elem, m.state_bytes
                )
                .map_err(w)?;
            }
        }
    }
    Ok(true)
}
