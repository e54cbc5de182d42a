//! The project's COCO figures against pycocotools (`tools/coco_check.py`): seeded random scenes
//! with jittered, duplicated and misclassified detections, false positives, score ties, exact
//! half-pixel IoUs, a class with no ground truth, a class with no detections and an image with
//! more than 100 detections of one class. Skipped (with a note) when `python3 -c "import
//! pycocotools"` fails, unless `HARDMINE_REQUIRE_PYCOCOTOOLS=1`, which makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use hardmine_cli::coco::{self, Detection, GroundTruth};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Config {
    seed: u64,
    images: usize,
    /// Coordinates and scores rounded to these steps (0: continuous).
    coord_step: f64,
    score_step: f64,
}

const CLASSES: usize = 10;
/// Has detections only.
const NO_GT: usize = 9;
/// Has ground truth only.
const NO_DET: usize = 8;
const SIZE: f64 = 128.0;

fn round_to(v: f64, step: f64) -> f64 {
    if step > 0.0 {
        (v / step).round() * step
    } else {
        v
    }
}

fn clip_box(b: [f64; 4], step: f64) -> [f64; 4] {
    let c = |v: f64| round_to(v.clamp(0.0, SIZE), step);
    let (x1, y1, x2, y2) = (c(b[0]), c(b[1]), c(b[2]), c(b[3]));
    [x1, y1, x2.max(x1), y2.max(y1)]
}

fn scenes(cfg: &Config) -> (Vec<GroundTruth>, Vec<Detection>) {
    let mut rng = Rng(cfg.seed);
    let mut gts = Vec::new();
    let mut dets = Vec::new();
    for image in 0..cfg.images {
        let score = |rng: &mut Rng, lo: f64, hi: f64| round_to(rng.range(lo, hi), cfg.score_step);
        for _ in 0..rng.below(7) {
            let class = rng.below(NO_GT);
            let (w, h) = (rng.range(4.0, 40.0), rng.range(4.0, 40.0));
            let (x, y) = (rng.range(0.0, SIZE - w), rng.range(0.0, SIZE - h));
            let b = clip_box([x, y, x + w, y + h], cfg.coord_step);
            gts.push(GroundTruth {
                image,
                class,
                bbox: b,
            });
            if class == NO_DET {
                continue;
            }
            // Found with probability 0.85, sometimes twice; sometimes also as the wrong class.
            let copies = usize::from(rng.unit() < 0.85) + usize::from(rng.unit() < 0.2);
            for _ in 0..copies {
                let j = rng.range(0.0, 0.3);
                let jit = |rng: &mut Rng, v: f64, s: f64| v + s * j * rng.range(-1.0, 1.0);
                let bb = clip_box(
                    [
                        jit(&mut rng, b[0], w),
                        jit(&mut rng, b[1], h),
                        jit(&mut rng, b[2], w),
                        jit(&mut rng, b[3], h),
                    ],
                    cfg.coord_step,
                );
                let s = score(&mut rng, 0.3, 1.0);
                dets.push(Detection {
                    image,
                    class,
                    bbox: bb,
                    score: s,
                });
            }
            if rng.unit() < 0.1 {
                let s = score(&mut rng, 0.0, 0.8);
                let other = (class + 1 + rng.below(NO_DET - 1)) % NO_DET;
                dets.push(Detection {
                    image,
                    class: other,
                    bbox: b,
                    score: s,
                });
            }
        }
        // Background false positives, any class but NO_DET.
        for _ in 0..rng.below(6) {
            let mut class = rng.below(CLASSES - 1);
            if class == NO_DET {
                class = NO_GT;
            }
            let (w, h) = (rng.range(2.0, 30.0), rng.range(2.0, 30.0));
            let (x, y) = (rng.range(0.0, SIZE - w), rng.range(0.0, SIZE - h));
            let s = score(&mut rng, 0.0, 0.7);
            dets.push(Detection {
                image,
                class,
                bbox: clip_box([x, y, x + w, y + h], cfg.coord_step),
                score: s,
            });
        }
        // Image 3: 150 detections of class 0 around its boxes (the cap of 100 applies).
        if image == 3 {
            let here: Vec<[f64; 4]> = gts
                .iter()
                .filter(|g| g.image == image)
                .map(|g| g.bbox)
                .collect();
            for k in 0..150 {
                let b = here
                    .get(k % here.len().max(1))
                    .copied()
                    .unwrap_or([10.0, 10.0, 30.0, 30.0]);
                let s = score(&mut rng, 0.0, 1.0);
                dets.push(Detection {
                    image,
                    class: 0,
                    bbox: clip_box(
                        [
                            b[0] + rng.range(-3.0, 3.0),
                            b[1] + rng.range(-3.0, 3.0),
                            b[2] + rng.range(-3.0, 3.0),
                            b[3] + rng.range(-3.0, 3.0),
                        ],
                        cfg.coord_step,
                    ),
                    score: s,
                });
            }
        }
    }
    // Present the detections in a shuffled image order: ties must still resolve alike.
    for i in (1..dets.len()).rev() {
        dets.swap(i, rng.below(i + 1));
    }
    (gts, dets)
}

fn pycocotools_available() -> bool {
    Command::new("python3")
        .args(["-c", "import pycocotools"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hardmine-coco-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn check_with_pycocotools(name: &str, cfg: &Config) {
    let (gts, dets) = scenes(cfg);
    let summary = coco::evaluate(cfg.images, CLASSES, &gts, &dets).unwrap();
    // The set-up exercises what it claims.
    assert_eq!(summary.per_class_ap[NO_GT], -1.0);
    assert_eq!(summary.per_class_ap[NO_DET], 0.0);
    assert!(
        summary.detections < dets.len(),
        "the cap of 100 was not reached"
    );
    assert!(summary.ap > 0.05 && summary.ap < 0.95, "{summary:?}");

    let dir = work_dir(name);
    let names: Vec<String> = (0..CLASSES).map(|k| format!("digit{k}")).collect();
    let (gt_path, dt_path, sum_path) = (
        dir.join("gt.json"),
        dir.join("dt.json"),
        dir.join("summary.json"),
    );
    coco::write_ground_truth(&gt_path, cfg.images, 128, 128, &gts, &names).unwrap();
    coco::write_detections(&dt_path, &dets).unwrap();
    std::fs::write(&sum_path, serde_json::to_string(&summary).unwrap()).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/coco_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([&gt_path, &dt_path, &sum_path])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "[{name}] {} images, {} gts, {} dets\n{stdout}{stderr}",
        cfg.images,
        gts.len(),
        dets.len()
    );
    assert!(out.status.success(), "coco_check.py failed on {name}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn agrees_with_pycocotools() {
    if !pycocotools_available() {
        let required = std::env::var("HARDMINE_REQUIRE_PYCOCOTOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "HARDMINE_REQUIRE_PYCOCOTOOLS=1 but python3 cannot import pycocotools"
        );
        println!("skipped: python3 cannot import pycocotools (pip install pycocotools)");
        return;
    }
    let configs = [
        (
            "continuous",
            Config {
                seed: 17,
                images: 50,
                coord_step: 0.0,
                score_step: 0.0,
            },
        ),
        (
            "ties-half-pixels",
            Config {
                seed: 1717,
                images: 50,
                coord_step: 0.5,
                score_step: 1.0 / 16.0,
            },
        ),
        (
            "integer-300",
            Config {
                seed: 99,
                images: 300,
                coord_step: 1.0,
                score_step: 0.01,
            },
        ),
    ];
    for (name, cfg) in &configs {
        check_with_pycocotools(name, cfg);
    }
}

#[test]
fn empty_detections_agree_with_pycocotools() {
    // pycocotools' loadRes cannot take []: the script builds an empty result set instead.
    if !pycocotools_available() {
        let required = std::env::var("HARDMINE_REQUIRE_PYCOCOTOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "HARDMINE_REQUIRE_PYCOCOTOOLS=1 but no pycocotools"
        );
        println!("skipped: python3 cannot import pycocotools");
        return;
    }
    let gts = [GroundTruth {
        image: 0,
        class: 1,
        bbox: [1.0, 2.0, 5.0, 9.0],
    }];
    let summary = coco::evaluate(2, 2, &gts, &[]).unwrap();
    assert_eq!((summary.ap, summary.per_class_ap[0]), (0.0, -1.0));
    let dir = work_dir("empty");
    coco::write_ground_truth(&dir.join("gt.json"), 2, 16, 16, &gts, &["a", "b"]).unwrap();
    coco::write_detections(&dir.join("dt.json"), &[]).unwrap();
    std::fs::write(dir.join("s.json"), serde_json::to_string(&summary).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/coco_check.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([dir.join("gt.json"), dir.join("dt.json"), dir.join("s.json")])
        .output()
        .unwrap();
    println!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `hardmine finetune --coco-out DIR`: the files pycocotools reads give the project's AP, for
/// real detections of two trained runs.
#[test]
fn finetune_coco_out_agrees_with_pycocotools() {
    let dir = work_dir("finetune");
    let out = Command::new(env!("CARGO_BIN_EXE_hardmine"))
        .args([
            "finetune",
            "--steps",
            "20",
            "--methods",
            "focal,distribution_ce",
            "--no-ablation",
            "--eval-scenes",
            "40",
            "--lr",
            "0.001",
            "--json",
            "--coco-out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let gt = dir.join("ground_truth.json");
    assert!(gt.exists());
    for line in &lines {
        let name = format!(
            "{}_{}_{}_seed{}",
            line["method"].as_str().unwrap(),
            line["box_loss"].as_str().unwrap(),
            line["path"].as_str().unwrap(),
            line["seed"]
        );
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.summary.json"))).unwrap(),
        )
        .unwrap();
        // The summary written for pycocotools holds the report's own figures.
        for key in ["ap", "ap50", "ap75", "recall_at_1fp"] {
            assert_eq!(summary[key], line[key], "{name}: {key}");
        }
        if !pycocotools_available() {
            continue;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/coco_check.py");
        let run = Command::new("python3")
            .arg(&script)
            .arg(&gt)
            .arg(dir.join(format!("{name}.json")))
            .arg(dir.join(format!("{name}.summary.json")))
            .output()
            .unwrap();
        println!("{name}\n{}", String::from_utf8_lossy(&run.stdout));
        assert!(run.status.success(), "coco_check.py failed on {name}");
    }
    if !pycocotools_available() {
        let required = std::env::var("HARDMINE_REQUIRE_PYCOCOTOOLS").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "HARDMINE_REQUIRE_PYCOCOTOOLS=1 but no pycocotools"
        );
        println!("skipped the pycocotools half: python3 cannot import pycocotools");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
