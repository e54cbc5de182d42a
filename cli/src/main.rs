//! `hardmine`: the command-line face of the library (`hardmine --help`, and `--help` after each
//! command).

use anyhow::Context as _;
use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hardmine_cli::finetune::{self, method::Method, pretrain, tune, Options, Split};
use hardmine_cli::op::{Op, Path};
use hardmine_cli::{bench, compare, parity};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::process::ExitCode;

/// Detection losses and hard-example miners: the fine-tuning demo, figures, throughput and
/// the golden parity runner.
#[derive(Debug, Parser)]
#[command(name = "hardmine", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job: fine-tunes a pretrained one-stage detector's head on-line, one scene of
    /// 1 to 4 digits among 2,400 anchors per SGD step, once per loss or miner (and the
    /// box-loss ablation), and evaluates it COCO-style.
    ///
    /// Reports AP (IoU 0.50:0.95), AP50, AP75, AP75 with the anchors alone, recall at one false
    /// positive per scene, target AP before, source AP50 before and after (forgetting), wall
    /// time and state bytes.
    Finetune(FinetuneArgs),
    /// Pretrains the whole detector on the source domain (clean backgrounds, two digit sizes)
    /// and writes its weights file (the committed one is `data/pretrained.bin`).
    Pretrain(PretrainArgs),
    /// Picks each run's learning rate on the validation scenes from a fixed grid and writes the
    /// result file `finetune` uses (the committed one is `data/lr.json`).
    Tune(TuneArgs),
    /// Runs the fine-tuning job (f32 unless --path fixed) and writes SVG figures to DIR.
    ///
    /// The figures: training curves, per-run AP, one test scene with its ground truth and
    /// each method's detections, and focal loss against p_t.
    Plot(PlotArgs),
    /// Throughput of forward + gradient (selection for miners) in million elements per second.
    ///
    /// One thread: warm-up, then the median of at least R timed calls.
    Bench(BenchArgs),
    /// Runs golden cases (one JSON object a line) and prints one JSON line per case and batch.
    ///
    /// With --check, compares with each case's `expected` at the path's tolerance instead,
    /// printing one line per case and a closing `N passed, M failed, K skipped` (skipped: ops
    /// or paths this build does not have); exits non-zero on any failure.
    Parity(ParityArgs),
}

/// The fine-tuning job's options (`finetune`, `tune` and `plot`).
#[derive(Debug, Args)]
struct TrainArgs {
    /// Numeric path: f32, or fixed for Q15.16 end to end.
    #[arg(long, value_enum, default_value_t = Options::default().path)]
    path: Path,
    /// SGD steps (one scene each) per run.
    #[arg(long, default_value_t = Options::default().steps)]
    steps: usize,
    /// The first seed of the training scenes and the samplers.
    #[arg(long, default_value_t = Options::default().seed)]
    seed: u64,
    /// How many seeds to run (seed, seed + 1, ...).
    #[arg(long, default_value_t = Options::default().seeds)]
    seeds: usize,
    /// Evaluation scenes (target domain; as many source-domain scenes for forgetting).
    #[arg(long = "eval-scenes", default_value_t = Options::default().eval_scenes)]
    eval_scenes: usize,
    /// Evaluate on the test scenes (the default), or on the validation scenes (`tune`
    /// always uses these).
    #[arg(long, value_enum)]
    split: Option<Split>,
    /// One learning rate for every run (default: the tuned ones, data/lr.json).
    #[arg(long)]
    lr: Option<f64>,
    /// ASDN's joint-training learning rate for afast_asdn and afast (default: tuned).
    #[arg(long = "asdn-lr")]
    asdn_lr: Option<f64>,
    /// ASTN's learning rate for afast (default: tuned).
    #[arg(long = "astn-lr")]
    astn_lr: Option<f64>,
    /// Methods to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    methods: Vec<Method>,
    /// Leave out the box-loss ablation (focal with L1, ASL1 and GHM-R).
    #[arg(long = "no-ablation")]
    no_ablation: bool,
}

impl TrainArgs {
    fn options(&self) -> Options {
        Options {
            path: self.path,
            steps: self.steps,
            seed: self.seed,
            seeds: self.seeds,
            eval_scenes: self.eval_scenes,
            split: self.split.unwrap_or(Split::Test),
            lr: self.lr,
            asdn_lr: self.asdn_lr,
            astn_lr: self.astn_lr,
            methods: if self.methods.is_empty() {
                Options::default().methods
            } else {
                self.methods.clone()
            },
            ablation: !self.no_ablation,
        }
    }
}

/// Which detector `finetune` and `pretrain` run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Config {
    /// The CLI's detector (80 x 80 scenes, 2,400 anchors).
    Tiny,
    /// The on-device job (crate hardmine-device: 40 x 40 scenes, 100 anchors, 1,022 head
    /// parameters): prints exactly the lines the Cortex-M4 firmware prints, Q15.16 then f32;
    /// the other options do not apply.
    Device,
}

#[derive(Debug, Args)]
struct FinetuneArgs {
    /// The detector: the CLI's, or the on-device job's.
    #[arg(long, value_enum, default_value_t = Config::Tiny)]
    config: Config,
    #[command(flatten)]
    train: TrainArgs,
    /// One JSON line per (method, box loss, path, seed) instead of the table.
    #[arg(long)]
    json: bool,
    /// Also write the evaluation scenes' ground truth and each run's detections in COCO's JSON
    /// format to DIR: `ground_truth.json`, `<method>_<box loss>_<path>_seed<seed>.json`, and
    /// the project's figures for each as `....summary.json` (for `tools/coco_check.py`).
    #[arg(long = "coco-out", value_name = "DIR")]
    coco_out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct PretrainArgs {
    /// The detector. `device` writes data/device_digits.bin, data/device_pretrained.bin and
    /// data/device_pretrained_q16.bin into the directory of --out (its own step count and
    /// rate unless --steps/--lr are given).
    #[arg(long, value_enum, default_value_t = Config::Tiny)]
    config: Config,
    /// SGD steps, one source scene each (default 40,000; 100,000 for --config device).
    #[arg(long)]
    steps: Option<usize>,
    /// Peak learning rate (default 0.02; 0.005 for --config device).
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of the initial weights and the scenes.
    #[arg(long, default_value_t = pretrain::Options::default().seed)]
    seed: u64,
    /// The weights file to write.
    #[arg(long, value_name = "FILE", default_value = "data/pretrained.bin")]
    out: std::path::PathBuf,
}

#[derive(Debug, Args)]
struct TuneArgs {
    /// The detector. `device` searches each method's rate per path (Q15.16 and f32) on the
    /// device job's validation scenes and writes the table the device build reads (default
    /// --out device/src/rates.rs); the other options do not apply.
    #[arg(long, value_enum, default_value_t = Config::Tiny)]
    config: Config,
    #[command(flatten)]
    train: TrainArgs,
    /// The learning-rate file to update (this path's entries are replaced; default
    /// data/lr.json).
    #[arg(long, value_name = "FILE")]
    out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct PlotArgs {
    /// Folder to write the figures into.
    #[arg(long, value_name = "DIR")]
    out: std::path::PathBuf,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Op to measure (repeatable; default: all).
    #[arg(long, value_parser = AllOr::<Op>::parser())]
    op: Vec<AllOr<Op>>,
    /// Path to measure on (repeatable; default: all, the CPU paths).
    #[arg(long, value_parser = AllOr::<Path>::parser())]
    path: Vec<AllOr<Path>>,
    /// Elements per call (at least 1024).
    #[arg(long, default_value_t = 1 << 20)]
    n: usize,
    /// Timed calls, at least (the median is reported).
    #[arg(long, default_value_t = 7)]
    repeats: usize,
    /// One JSON line per measurement instead of the table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ParityArgs {
    /// Numeric path.
    #[arg(long, value_enum)]
    path: Path,
    /// Compare with each case's `expected` instead of printing results.
    #[arg(long)]
    check: bool,
    /// Case files (JSON lines).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<std::path::PathBuf>,
}

/// A value of `T`, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AllOr<T> {
    All,
    One(T),
}

impl<T: ValueEnum + Clone + Send + Sync + 'static> AllOr<T> {
    fn parser() -> impl TypedValueParser<Value = Self> {
        AllOrParser(std::marker::PhantomData)
    }

    /// The chosen values, in order; `default` when none or `all` is chosen.
    fn pick(chosen: &[Self], default: &[T]) -> Vec<T> {
        let ones: Option<Vec<T>> = chosen
            .iter()
            .map(|c| match c {
                AllOr::All => None,
                AllOr::One(v) => Some(v.clone()),
            })
            .collect();
        match ones {
            Some(v) if !v.is_empty() => v,
            _ => default.to_vec(),
        }
    }
}

#[derive(Clone)]
struct AllOrParser<T>(std::marker::PhantomData<T>);

impl<T: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for AllOrParser<T> {
    type Value = AllOr<T>;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<AllOr<T>, clap::Error> {
        if value == "all" {
            return Ok(AllOr::All);
        }
        EnumValueParser::<T>::new()
            .parse_ref(cmd, arg, value)
            .map(AllOr::One)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let values = T::value_variants()
            .iter()
            .filter_map(ValueEnum::to_possible_value);
        Some(Box::new(
            std::iter::once(PossibleValue::new("all")).chain(values),
        ))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parity(a) => parity_command(&a),
        Command::Finetune(a) => finetune_command(&a),
        Command::Pretrain(a) => pretrain_command(&a),
        Command::Tune(a) => tune_command(&a),
        Command::Plot(a) => plot_command(&a),
        Command::Bench(a) => bench_command(&a),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

/// Standard output, locked: a closed pipe (`| head`) is an error, not a panic.
struct Out(std::io::StdoutLock<'static>);

impl Out {
    fn new() -> Self {
        Out(std::io::stdout().lock())
    }

    fn line(&mut self, text: impl std::fmt::Display) -> anyhow::Result<()> {
        writeln!(self.0, "{text}").context("writing the results")
    }

    /// A markdown table's header row and rule.
    fn table_head(&mut self, columns: &[&str]) -> anyhow::Result<()> {
        self.line(format_args!("| {} |", columns.join(" | ")))?;
        self.line(format_args!("|{}", "---|".repeat(columns.len())))
    }
}

fn parity_command(a: &ParityArgs) -> anyhow::Result<bool> {
    let mut out = Out::new();
    let (mut passed, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    for file in &a.files {
        let name = file.display();
        let reader = BufReader::new(std::fs::File::open(file).with_context(|| format!("{name}"))?);
        for (n, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("{name}"))?;
            if line.trim().is_empty() {
                continue;
            }
            let parsed = match parity::parse_line(&line) {
                Ok(parsed) => parsed,
                Err(e) => {
                    let error = format!("{name}:{}: invalid JSON: {e}", n + 1);
                    out.line(serde_json::to_string(&hardmine_cli::case::ErrorLine {
                        id: (),
                        error,
                    })?)?;
                    failed += 1;
                    continue;
                }
            };
            let result = parity::run_parsed(&parsed, a.path);
            if !a.check {
                for l in parity::lines(&parsed.id, &result) {
                    out.line(l)?;
                }
                continue;
            }
            let id = parsed.label();
            match &result {
                Err(e) if parity::Unsupported::is(e) => {
                    skipped += 1;
                    out.line(format_args!("skip  {id}: {e:#}"))?;
                }
                _ => {
                    let expected = parsed
                        .case
                        .as_ref()
                        .map(|c| c.expectations())
                        .unwrap_or_default();
                    match compare::check(&expected, &result, a.path) {
                        Ok(()) => {
                            passed += 1;
                            out.line(format_args!("ok    {id}"))?;
                        }
                        Err(why) => {
                            failed += 1;
                            out.line(format_args!("FAIL  {id}: {why}"))?;
                        }
                    }
                }
            }
        }
    }
    if a.check {
        out.line(format_args!(
            "{passed} passed, {failed} failed, {skipped} skipped"
        ))?;
    }
    Ok(failed == 0)
}

/// Progress on stderr, only when it is a terminal.
fn progress_bar() -> impl FnMut(&str, usize, usize) + Send {
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

fn finetune_command(a: &FinetuneArgs) -> anyhow::Result<bool> {
    if a.config == Config::Device {
        print!("{}", finetune::device::run(1.0)?);
        return Ok(true);
    }
    let opts = a.train.options();
    let reports = finetune::run(&opts, &mut progress_bar())?;
    if let Some(dir) = &a.coco_out {
        finetune::coco_out(dir, &opts, &reports)?;
    }
    let mut out = Out::new();
    if a.json {
        for r in &reports {
            out.line(serde_json::to_string(r)?)?;
        }
        return Ok(true);
    }
    let Some(first) = reports.first() else {
        return Ok(true);
    };
    out.line(format_args!(
        "path {}, {} steps, {} seed(s) from {}, {} {} scenes, positive anchors {:.4}%",
        opts.path,
        opts.steps,
        opts.seeds,
        opts.seed,
        opts.eval_scenes,
        match opts.split {
            Split::Test => "test",
            Split::Val => "validation",
        },
        100.0 * first.positive_rate
    ))?;
    out.line(format_args!(
        "pretrained: target AP {:.3} (AP50 {:.3}), source AP50 {:.3}\n",
        first.ap_before, first.ap50_before, first.ap_source_before
    ))?;
    out.table_head(&[
        "method",
        "box loss",
        "seed",
        "lr",
        "AP",
        "AP50",
        "AP75",
        "AP75 anchors",
        "recall @ 1 FP",
        "source AP50 after",
        "ms/step",
        "wall s",
        "state B",
    ])?;
    for r in &reports {
        if let Some(why) = &r.diverged {
            out.line(format_args!(
                "| {} | {} | {} | {} | {why} |",
                r.method, r.box_loss, r.seed, r.lr
            ))?;
            continue;
        }
        out.line(format_args!(
            "| {} | {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} | {:.1} | {} |",
            r.method,
            r.box_loss,
            r.seed,
            r.lr,
            r.ap,
            r.ap50,
            r.ap75,
            r.ap75_anchors_only,
            r.recall_at_1fp,
            r.ap_source_after,
            r.ms_per_step,
            r.wall_s,
            r.state_bytes
        ))?;
    }
    Ok(true)
}

fn pretrain_command(a: &PretrainArgs) -> anyhow::Result<bool> {
    if a.config == Config::Device {
        let d = hardmine_device::pretrain::Options::default();
        let opts = hardmine_device::pretrain::Options {
            steps: a.steps.unwrap_or(d.steps),
            lr: a.lr.unwrap_or(d.lr),
            seed: a.seed,
        };
        let dir = a.out.parent().unwrap_or(std::path::Path::new("."));
        let mut bar = progress_bar();
        let line = finetune::device::pretrain_files(&opts, dir, &mut |s, n| bar("pretrain", s, n))?;
        Out::new().line(line)?;
        return Ok(true);
    }
    let opts = pretrain::Options {
        steps: a.steps.unwrap_or(pretrain::Options::default().steps),
        lr: a.lr.unwrap_or(pretrain::Options::default().lr),
        seed: a.seed,
        ..pretrain::Options::default()
    };
    if hardmine::FUSED_MULTIPLY_ADD {
        eprintln!(
            "note: this build fuses multiply-adds, so its weights differ in the last bits from \
             the committed data/pretrained.bin (made by a build without, the plain x86-64 \
             release build)"
        );
    }
    let mut bar = progress_bar();
    let result = pretrain::run(&opts, &mut |step, steps| bar("pretrain", step, steps))?;
    let bytes = finetune::weights::encode(&result.params)?;
    std::fs::write(&a.out, &bytes).with_context(|| a.out.display().to_string())?;
    let mut out = Out::new();
    out.line(format_args!(
        "{}: {} parameters ({} bytes); source validation AP {:.3}, AP50 {:.3}; final loss {:.4}",
        a.out.display(),
        result.params.len(),
        bytes.len(),
        result.ap,
        result.ap50,
        result.train_loss
    ))?;
    Ok(true)
}

fn tune_device_command(a: &TuneArgs) -> anyhow::Result<bool> {
    use finetune::device;
    let out_path = a
        .out
        .clone()
        .unwrap_or_else(|| "device/src/rates.rs".into());
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let tty = std::io::stderr().is_terminal();
    let rows = device::tune(threads, &|done, n| {
        if tty {
            eprint!("\r{:>16} {done}/{n}   ", "device tune");
            if done == n {
                eprint!("\r{:72}\r", "");
            }
        }
    })?;
    let base = device::pretrained_val()?;
    std::fs::write(&out_path, device::rates_file(&rows, &base)?)
        .with_context(|| out_path.display().to_string())?;
    let mut out = Out::new();
    let mut head = vec!["path".to_owned(), "method".to_owned()];
    head.extend(device::GRID.iter().map(|lr| format!("lr {lr}")));
    head.push("chosen".to_owned());
    out.table_head(&head.iter().map(String::as_str).collect::<Vec<_>>())?;
    for r in &rows {
        let cells: Vec<String> = r
            .val
            .iter()
            .map(|v| v.map_or("diverged".to_owned(), |v| format!("{:.3}", v.ap50)))
            .collect();
        out.line(format_args!(
            "| {} | {} | {} | {} |",
            r.path,
            r.method.name(),
            cells.join(" | "),
            r.lr
        ))?;
    }
    out.line(format_args!(
        "(device job: validation AP50 after fine-tuning; pretrained q16 {:.3}, f32 {:.3}; \
         written to {})",
        base[0].ap50,
        base[1].ap50,
        out_path.display()
    ))?;
    Ok(true)
}

fn tune_command(a: &TuneArgs) -> anyhow::Result<bool> {
    if a.config == Config::Device {
        return tune_device_command(a);
    }
    if a.train.split == Some(Split::Test) {
        anyhow::bail!("tune picks learning rates on the validation scenes, never the test ones");
    }
    if a.train.lr.is_some()
        || a.train.asdn_lr.is_some()
        || a.train.astn_lr.is_some()
        || a.train.seeds != 1
    {
        anyhow::bail!("tune searches the learning rate on one seed: --lr and --seeds do not apply");
    }
    let opts = a.train.options();
    let rows = tune::run(&opts, &mut progress_bar())?;
    let out_path = a.out.clone().unwrap_or_else(|| "data/lr.json".into());
    let existing = match std::fs::read_to_string(&out_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| out_path.display().to_string()),
    };
    std::fs::write(&out_path, tune::merged(&existing, &rows)?)
        .with_context(|| out_path.display().to_string())?;
    let mut out = Out::new();
    let mut head = vec!["run".to_owned()];
    head.extend(tune::GRID.iter().map(|lr| format!("lr {lr}")));
    head.push("chosen".to_owned());
    out.table_head(&head.iter().map(String::as_str).collect::<Vec<_>>())?;
    for r in &rows {
        let cells: Vec<String> = r
            .val_ap
            .iter()
            .map(|(_, ap)| ap.map_or("diverged".to_owned(), |ap| format!("{ap:.3}")))
            .collect();
        out.line(format_args!(
            "| {} | {} | {} |",
            r.run,
            cells.join(" | "),
            r.lr
        ))?;
    }
    // The adversaries' grids, the detector's rate fixed at the chosen one.
    for r in &rows {
        if let Some(adv) = &r.adversary {
            let cells: Vec<String> = adv
                .val_ap
                .iter()
                .map(|(_, ap)| ap.map_or("diverged".to_owned(), |ap| format!("{ap:.3}")))
                .collect();
            let chosen = adv.astn_lr.unwrap_or(adv.asdn_lr);
            out.line(format_args!(
                "| {} ({} at lr {}) | {} | {} |",
                r.run,
                adv.grid,
                r.lr,
                cells.join(" | "),
                chosen
            ))?;
        }
    }
    out.line(format_args!(
        "(validation AP, {} path; written to {})",
        opts.path,
        out_path.display()
    ))?;
    Ok(true)
}

fn plot_command(a: &PlotArgs) -> anyhow::Result<bool> {
    let opts = a.train.options();
    let mut out = Out::new();
    for path in hardmine_cli::plot::run(&a.out, &opts, &mut progress_bar())? {
        out.line(path)?;
    }
    Ok(true)
}

fn bench_command(a: &BenchArgs) -> anyhow::Result<bool> {
    let ops = AllOr::pick(&a.op, &bench::OPS);
    let paths = AllOr::pick(&a.path, &bench::PATHS);
    if a.n < bench::MIN_N {
        anyhow::bail!("--n must be at least {}", bench::MIN_N);
    }
    let mut out = Out::new();
    if !a.json {
        let fused = if hardmine::FUSED_MULTIPLY_ADD {
            "fused multiply-adds"
        } else {
            "no fused multiply-add"
        };
        out.line(format_args!(
            "Built for {}; {fused}.\n",
            bench::vector_isa()
        ))?;
        out.table_head(&["op", "path", "n", "Melem/s", "ns/elem", "state bytes"])?;
    }
    for &op in &ops {
        for &path in &paths {
            let m = bench::measure(op, path, a.n, a.repeats)?;
            if a.json {
                out.line(serde_json::to_string(&m)?)?;
            } else {
                out.line(format_args!(
                    "| {} | {} | {} | {:.1} | {:.2} | {} |",
                    m.op, m.path, m.n, m.melem_per_s, m.ns_per_elem, m.state_bytes
                ))?;
            }
        }
    }
    Ok(true)
}
