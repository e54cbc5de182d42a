//! `hardmine`: the command-line face of the library (`hardmine --help`, and `--help` after each
//! command).

use anyhow::Context as _;
use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hardmine_cli::finetune::{self, method::Method, Options};
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
    /// The main job: trains a 64-32-10 detector head on-line, one scene of 1,024 cells (one
    /// real handwritten digit among them) per SGD step, once per loss or miner.
    ///
    /// Reports test mAP, recall at one false positive per scene, the final training loss, the
    /// share of the loss carried by easy negatives, wall time and loss-state bytes.
    Finetune(FinetuneArgs),
    /// Runs the fine-tuning job (f32 unless --path fixed) and writes four SVG figures to DIR.
    ///
    /// The figures: focal loss against p_t, gradient norms with GHM-C weights, training
    /// curves, census.
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

/// The fine-tuning job's options (`finetune` and `plot`).
#[derive(Debug, Args)]
struct TrainArgs {
    /// Numeric path: f32, or fixed for Q15.16 end to end.
    #[arg(long, value_enum, default_value_t = Options::default().path)]
    path: Path,
    /// SGD steps (one scene each) per method.
    #[arg(long, default_value_t = Options::default().steps)]
    steps: usize,
    /// Seed of the weights, the scenes and every sampler.
    #[arg(long, default_value_t = Options::default().seed)]
    seed: u64,
    /// Test scenes.
    #[arg(long = "test-scenes", default_value_t = Options::default().test_scenes)]
    test_scenes: usize,
    /// Learning rate.
    #[arg(long, default_value_t = Options::default().lr)]
    lr: f64,
    /// Methods to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    methods: Vec<Method>,
}

impl TrainArgs {
    fn options(&self) -> Options {
        Options {
            path: self.path,
            steps: self.steps,
            seed: self.seed,
            test_scenes: self.test_scenes,
            lr: self.lr,
            methods: if self.methods.is_empty() {
                Options::default().methods
            } else {
                self.methods.clone()
            },
        }
    }
}

#[derive(Debug, Args)]
struct FinetuneArgs {
    #[command(flatten)]
    train: TrainArgs,
    /// One JSON line per method instead of the table.
    #[arg(long)]
    json: bool,
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
    let opts = a.train.options();
    let reports = finetune::run(&opts, &mut progress_bar())?;
    let mut out = Out::new();
    if a.json {
        for r in &reports {
            out.line(serde_json::to_string(r)?)?;
        }
        return Ok(true);
    }
    out.line(format_args!(
        "path {}, {} steps, seed {}, {} test scenes, positive rate {:.5}",
        opts.path,
        opts.steps,
        opts.seed,
        opts.test_scenes,
        reports.first().map_or(0.0, |r| r.positive_rate)
    ))?;
    out.table_head(&[
        "method",
        "test mAP",
        "recall @ 1 FP/scene",
        "train loss",
        "easy-neg loss share",
        "wall s",
        "state B",
    ])?;
    for r in &reports {
        out.line(format_args!(
            "| {} | {:.3} | {:.3} | {:.4} | {:.3} | {:.1} | {} |",
            r.method,
            r.map,
            r.recall_at_1fp,
            r.train_loss,
            r.easy_negative_share,
            r.wall_s,
            r.state_bytes
        ))?;
    }
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
