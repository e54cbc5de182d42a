//! # hardmine-device
//!
//! The on-device fine-tuning job: what the Cortex-M4 firmware (`firmware-finetune/`) runs
//! and what `hardmine finetune --config device` runs on the host, the same code on both, so
//! that their printed lines can be compared value for value. `no_std`, no allocation: every
//! buffer is a fixed-size array in the caller's frame ([`run`]'s).
//!
//! # The configuration
//! The CLI's detector ([`DetectorSpec::tiny`](hardmine_detect::DetectorSpec::tiny)) needs
//! about 600 KB to fine-tune its head; this one fits in 64 KiB of RAM:
//! - a [`CANVAS`] x [`CANVAS`] grey scene (40 x 40) of 1 to 3 digits ([`scene`]);
//! - a backbone of conv 1 -> 4 stride 2 and conv 4 -> 8 stride 2, frozen: a 10 x 10 x 8
//!   feature map at stride 4 (receptive field 7 px, 15 px with the head's 3 x 3);
//! - a RetinaNet head of two 3 x 3 convolutions, 8 -> 10 classes and 8 -> 4 deltas, one
//!   anchor per location (12 px, height / width 1.5): [`ANCHORS`] anchors, [`HEAD_PARAMS`]
//!   trainable parameters of [`PARAMS`];
//! - RetinaNet's assignment (IoU 0.5 / 0.4, low-quality matches) and coder, inference with
//!   score threshold 0.05, NMS 0.5 and at most [`MAX_PER_IMAGE`] detections per image.
//!
//! Pretrained on the source domain on the host ([`pretrain`], committed as
//! `data/device_pretrained.bin`, and its Q15.16 rounding `data/device_pretrained_q16.bin`),
//! fine-tuned on the target domain ([`train`]), evaluated with COCO's AP ([`eval`]).

#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used))]
#![cfg_attr(not(test), deny(clippy::expect_used, clippy::panic))]

#[cfg(test)]
extern crate std;

pub mod eval;
pub mod pretrain;
pub mod scene;
pub mod train;

use core::fmt::Write;
use hardmine::{Error, Q16};
use hardmine_detect::{
    Anchors, ConvSpec, DeltaXywhCoder, DetectorSpec, MaxIouAssigner, PostProcess,
};
pub use scene::{Digits, CANVAS};

/// Classes (digits).
pub const CLASSES: usize = 10;
/// Feature map side (stride 4).
pub const FEATURE: usize = CANVAS / 4;
/// Anchors: one per feature location.
pub const ANCHORS: usize = FEATURE * FEATURE;
/// Parameters of the whole network.
pub const PARAMS: usize = 40 + 296 + 730 + 292;
/// Parameters of the head (the fine-tuned ones).
pub const HEAD_PARAMS: usize = 730 + 292;
/// Feature values, `10 * 10 * 8`.
pub const FEATURES: usize = ANCHORS * 8;
/// The first backbone layer's output, `20 * 20 * 4`.
pub const ACTIVATIONS: usize = 20 * 20 * 4;
/// Detections kept per image.
pub const MAX_PER_IMAGE: usize = 16;
/// Anchor scale (times the stride, 12 px) and ratio (height / width).
pub const ANCHOR: (f64, f64) = (3.0, 1.5);

/// The packed digits (see [`scene`]).
pub const DIGITS: &[u8] = include_bytes!("../../data/device_digits.bin");
/// The pretrained weights, f32 (the CLI's weights format, `HMDET001`).
pub const PRETRAINED_F32: &[u8] = include_bytes!("../../data/device_pretrained.bin");
/// The pretrained weights rounded to Q15.16 (`HMDQ1601`, then the count, then i32 bits).
pub const PRETRAINED_Q16: &[u8] = include_bytes!("../../data/device_pretrained_q16.bin");

/// The detector's network.
pub fn spec() -> Result<DetectorSpec, Error> {
    let backbone = [ConvSpec::new(1, 4, 2)?, ConvSpec::new(4, 8, 2)?];
    DetectorSpec::new(CANVAS, CANVAS, 1, &backbone, 1, CLASSES)
}

/// Everything fixed about the detector, in `T`.
#[derive(Debug, Clone)]
pub struct Detector<T> {
    /// The network.
    pub spec: DetectorSpec,
    /// The anchors, `[ANCHORS * 4]`.
    pub anchors: [T; 4 * ANCHORS],
    /// RetinaNet's assignment.
    pub assigner: MaxIouAssigner<T>,
    /// The box coder.
    pub coder: DeltaXywhCoder<T>,
    /// Inference.
    pub post: PostProcess<T>,
}

impl<T: Path> Detector<T> {
    /// The device's detector.
    ///
    /// # Errors
    /// Never on this configuration; `InvalidParameter("config")` if the sizes above
    /// disagree with the network's.
    pub fn new() -> Result<Self, Error> {
        let spec = spec()?;
        let ok = spec.params_len() == PARAMS
            && spec.head_params().len() == HEAD_PARAMS
            && spec.features_len() == FEATURES
            && spec.activations_len() == ACTIVATIONS
            && spec.anchors_len() == ANCHORS
            && spec.feature_hw() == (FEATURE, FEATURE);
        if !ok {
            return Err(Error::InvalidParameter("config"));
        }
        let gen = Anchors::new(
            T::from_count(4),
            &[T::from_f64(ANCHOR.0)],
            &[T::from_f64(ANCHOR.1)],
        )?;
        let mut anchors = [T::ZERO; 4 * ANCHORS];
        gen.write(FEATURE, FEATURE, &mut anchors)?;
        Ok(Self {
            spec,
            anchors,
            assigner: MaxIouAssigner::retinanet(),
            coder: DeltaXywhCoder::new(),
            post: PostProcess::retinanet(),
        })
    }

    /// The image size decoding clips to.
    pub fn image(&self) -> [T; 2] {
        let side = T::from_count(CANVAS as u64);
        [side, side]
    }
}

/// A numeric path of the job: [`Q16`] or `f32`.
pub trait Path: hardmine_detect::Scalar {
    /// Its name in the report.
    const NAME: &'static str;
    /// The raw bits of a value (Q15.16's i32, f32's IEEE).
    fn bits(self) -> u32;
    /// The committed pretrained weights on this path, into `out` (`PARAMS`).
    ///
    /// # Errors
    /// `InvalidParameter("weights")` for a file that is not the network's.
    fn pretrained(out: &mut [Self]) -> Result<(), Error>;
}

/// The `u32` words of a weights file with magic `magic` and `PARAMS` values.
fn words<'a>(bytes: &'a [u8], magic: &[u8; 8]) -> Result<impl Iterator<Item = u32> + 'a, Error> {
    let bad = Error::InvalidParameter("weights");
    let (Some(m), Some(count)) = (bytes.get(..8), bytes.get(8..12)) else {
        return Err(bad);
    };
    let count = count
        .iter()
        .rev()
        .fold(0usize, |a, &b| (a << 8) | usize::from(b));
    let body = bytes.get(12..).unwrap_or(&[]);
    if m != magic || count != PARAMS || body.len() != 4 * PARAMS {
        return Err(bad);
    }
    Ok(body
        .chunks_exact(4)
        .map(|b| b.iter().rev().fold(0u32, |a, &v| (a << 8) | u32::from(v))))
}

impl Path for Q16 {
    const NAME: &'static str = "q16";
    fn bits(self) -> u32 {
        self.to_bits() as u32
    }
    fn pretrained(out: &mut [Self]) -> Result<(), Error> {
        if out.len() != PARAMS {
            return Err(Error::LengthMismatch {
                expected: PARAMS,
                got: out.len(),
            });
        }
        for (o, w) in out.iter_mut().zip(words(PRETRAINED_Q16, b"HMDQ1601")?) {
            *o = Q16::from_bits(w as i32);
        }
        Ok(())
    }
}

impl Path for f32 {
    const NAME: &'static str = "f32";
    fn bits(self) -> u32 {
        self.to_bits()
    }
    fn pretrained(out: &mut [Self]) -> Result<(), Error> {
        if out.len() != PARAMS {
            return Err(Error::LengthMismatch {
                expected: PARAMS,
                got: out.len(),
            });
        }
        for (o, w) in out.iter_mut().zip(words(PRETRAINED_F32, b"HMDET001")?) {
            *o = f32::from_bits(w);
            if !o.is_finite() {
                return Err(Error::InvalidParameter("weights"));
            }
        }
        Ok(())
    }
}

/// `v` in thousandths, rounded half up, as `0.412` (no float formatting: the firmware's
/// panic-freedom proof links this).
pub struct Fixed3(pub f64);

impl core::fmt::Display for Fixed3 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let v = self.0;
        let neg = v < 0.0;
        let m = if neg { -v } else { v };
        // Saturating float-to-int cast: NaN is 0.
        let t = (m * 1000.0 + 0.5) as u64;
        write!(
            f,
            "{}{}.{:03}",
            if neg { "-" } else { "" },
            t / 1000,
            t % 1000
        )
    }
}

/// Why a run stopped: the path, the method, the step and the library's error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Failure {
    /// The path's name.
    pub path: &'static str,
    /// The method's name (`pretrained` for the evaluation before fine-tuning).
    pub method: &'static str,
    /// The step (0 for an evaluation).
    pub step: usize,
    /// The error.
    pub error: Error,
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "error {} {} step {}: {}",
            self.path, self.method, self.step, self.error
        )
    }
}

/// A clock the firmware reads around each method's training (instructions on the device; the
/// host passes one that returns 0).
pub trait Clock {
    /// The current count.
    fn now(&mut self) -> u64;
}

/// A clock that always reads 0.
pub struct NoClock;

impl Clock for NoClock {
    fn now(&mut self) -> u64 {
        0
    }
}

/// What [`run`] measured besides what it printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Measured {
    /// Per method (in [`train::METHODS`] order): the clock's count over its training.
    pub train_ticks: [u64; train::METHODS.len()],
}

/// The whole job on path `T`: the pretrained detector's AP on the test scenes, then for each
/// method of [`train::METHODS`] [`train::STEPS`] steps of fine-tuning and the AP again, each
/// as a line on `out`:
///
/// ```text
/// q16 pretrained ap50 0.412 3fda5e353f7ced91 ap 0.203 3fc9fbe76c8b4396
/// q16 focal loss 0.123 00001f7c weights 9a1f03c2 ap50 0.580 ... ap 0.300 ...
/// ```
/// (loss: the mean of the last 20 steps' losses, its raw bits; weights: a fold of the
/// fine-tuned head's raw bits; AP values in f64 bits).
///
/// # Errors
/// The first library error, with where it happened (also written to `out` as an `error`
/// line), or `fmt::Error` from `out` as `InvalidParameter("output")`.
// Not inlined, nor are `fine_tune` and `evaluate_on`: each path's and each phase's buffers
// get their own frame, reused by the next (the 64 KiB budget counts on it).
#[inline(never)]
pub fn run<T: Path>(
    out: &mut dyn Write,
    clock: &mut dyn Clock,
    digits: &Digits<'_>,
    lr_scale: f64,
) -> Result<Measured, Failure> {
    let fail = |method, step, error| Failure {
        path: T::NAME,
        method,
        step,
        error,
    };
    let out_err = |_| fail("output", 0, Error::InvalidParameter("output"));
    let det = Detector::<T>::new().map_err(|e| fail("config", 0, e))?;
    // One copy of the weights in RAM: each method starts from the flash's again.
    let mut params = [T::ZERO; PARAMS];
    T::pretrained(&mut params).map_err(|e| fail("weights", 0, e))?;
    let mut bufs = train::Buffers::<T>::new();
    let before = eval::evaluate(&det, &params, digits, &mut bufs, &mut |_| {})
        .map_err(|e| fail("pretrained", 0, e))?;
    writeln!(
        out,
        "{} pretrained ap50 {} {:016x} ap {} {:016x}",
        T::NAME,
        Fixed3(before.ap50),
        before.ap50.to_bits(),
        Fixed3(before.ap),
        before.ap.to_bits()
    )
    .map_err(out_err)?;
    let mut measured = Measured::default();
    for (method, ticks) in train::METHODS.iter().zip(measured.train_ticks.iter_mut()) {
        T::pretrained(&mut params).map_err(|e| fail("weights", 0, e))?;
        let t0 = clock.now();
        let trained = train::fine_tune(&det, &mut params, digits, *method, lr_scale, &mut bufs);
        *ticks = clock.now().wrapping_sub(t0);
        let loss = match trained {
            Ok(l) => l,
            Err((step, e)) => {
                let f = fail(method.name(), step, e);
                writeln!(out, "{f}").map_err(out_err)?;
                return Err(f);
            }
        };
        let after = match eval::evaluate(&det, &params, digits, &mut bufs, &mut |_| {}) {
            Ok(s) => s,
            Err(e) => {
                let f = fail(method.name(), train::STEPS, e);
                writeln!(out, "{f}").map_err(out_err)?;
                return Err(f);
            }
        };
        let fold = params
            .get(det.spec.head_params())
            .unwrap_or(&[])
            .iter()
            .fold(0u32, |a, p| a.rotate_left(5) ^ p.bits());
        writeln!(
            out,
            "{} {} loss {} {:08x} weights {:08x} ap50 {} {:016x} ap {} {:016x}",
            T::NAME,
            method.name(),
            Fixed3(loss.to_f64()),
            loss.bits(),
            fold,
            Fixed3(after.ap50),
            after.ap50.to_bits(),
            Fixed3(after.ap),
            after.ap.to_bits()
        )
        .map_err(out_err)?;
    }
    Ok(measured)
}

/// The configuration line both sides print first.
///
/// # Errors
/// `out`'s.
pub fn header(out: &mut dyn Write) -> core::fmt::Result {
    writeln!(
        out,
        "device config canvas {CANVAS} anchors {ANCHORS} params {PARAMS} head {HEAD_PARAMS} \
         steps {} test_scenes {} methods {}",
        train::STEPS,
        eval::TEST_SCENES,
        train::METHODS.len()
    )
}
