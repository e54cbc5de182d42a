//! The computation the firmware runs and the host test repeats: one fixed batch through
//! sigmoid focal (value and gradient), GHM-C streamed in chunks over three batches, OHEM top-k
//! and one SGD step of a tiny linear head, on Q15.16 and on f32. Inputs are Q15.16 raw values
//! from a fixed seed, so both paths start from identical numbers. Every result is reported as
//! `(name, index, raw bits)`: Q15.16 as its i32 bits, f32 as its IEEE bits.
//!
//! Shared verbatim by `firmware/src/main.rs`, `firmware/src/panic_check.rs` and
//! `host-tests/tests/firmware.rs` (through `#[path]`), so it is plain `no_std` code without
//! indexing that could panic.

use hardmine::{GhmC, Ohem, Real, Reduction, SigmoidFocal, SplitMix64, Q16};

/// Elements in the batch.
pub const N: usize = 64;
/// Chunk size of the streamed GHM-C.
pub const CHUNK: usize = 16;
/// Inputs of the tiny head, and its outputs.
const IN: usize = 8;
const OUT: usize = 2;

/// A numeric path of the workload.
pub trait Path: Real {
    /// Raw bits of a value, for exact reporting.
    fn bits(self) -> u64;
    /// Raw bits of an accumulator value.
    fn acc_bits(a: Self::Acc) -> u64;
}

impl Path for Q16 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits() as u32)
    }
    fn acc_bits(a: hardmine::Q48) -> u64 {
        a.to_bits() as u64
    }
}

impl Path for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
    fn acc_bits(a: f64) -> u64 {
        a.to_bits()
    }
}

/// A Q15.16 raw value uniform in `[lo, hi)` (whole units) as `T`, exactly.
fn draw<T: Real>(rng: &mut SplitMix64, lo: i64, hi: i64) -> T {
    let span = ((hi - lo) as u64) << 16;
    let raw = (rng.below(span) as i64) + (lo << 16);
    // raw / 65536 exactly: an integer part and a 16-bit fraction, both exact in f32 and Q16.
    // The integer part is small (|raw >> 16| < 2^15), so `from_f64` is exact on every path.
    let whole = T::from_f64((raw >> 16) as f64);
    let frac = T::from_count((raw & 0xffff) as u64).div_count(1 << 16);
    whole + frac
}

/// The batch: logits uniform in `[-6, 4)` and hard targets, one in eight positive.
pub fn batch<T: Real>(rng: &mut SplitMix64) -> ([T; N], [T; N]) {
    let mut x = [T::ZERO; N];
    let mut t = [T::ZERO; N];
    for (xi, ti) in x.iter_mut().zip(t.iter_mut()) {
        *xi = draw(rng, -6, 4);
        *ti = if rng.below(8) == 0 { T::ONE } else { T::ZERO };
    }
    (x, t)
}

/// A mark of [`run_laps`]: a measured part starts, or ends having processed `elements`
/// elements with the named method.
#[derive(Clone, Copy, Debug)]
pub enum Lap {
    Start,
    End(&'static str, usize),
}

/// Runs the workload on `T`, reporting through `report(name, index, bits)`. Returns false if a
/// library call failed (it never should on these inputs).
pub fn run<T: Path>(report: &mut dyn FnMut(&str, usize, u64)) -> bool {
    run_laps::<T>(report, &mut |_| {})
}

/// [`run`], marking through `lap` where the library's focal (loss and gradient), GHM-C (each
/// batch: histogram, weights, loss and gradient) and OHEM (the selection alone, over the
/// per-element focal losses) calls start and end; reporting happens outside the marks.
pub fn run_laps<T: Path>(
    report: &mut dyn FnMut(&str, usize, u64),
    lap: &mut dyn FnMut(Lap),
) -> bool {
    let mut rng = SplitMix64::new(42);
    let (x, t) = batch::<T>(&mut rng);

    // Sigmoid focal: loss and gradient.
    let Ok(focal) = SigmoidFocal::new(T::from_count(1).div_count(4), T::from_count(2)) else {
        return false;
    };
    let focal = focal.with_reduction(Reduction::Sum);
    let mut grad = [T::ZERO; N];
    lap(Lap::Start);
    let Ok(loss) = focal.value_and_grad(&x, &t, &mut grad) else {
        return false;
    };
    lap(Lap::End("focal", N));
    report("focal_loss", 0, loss.bits());
    for (i, g) in grad.iter().enumerate() {
        report("focal_grad", i, g.bits());
    }

    // GHM-C streamed in chunks, three batches (the logits shift a little each batch).
    let Ok(mut ghm) = GhmC::<T, 30>::new(30, T::from_count(3).div_count(4), T::ONE) else {
        return false;
    };
    for batch in 0..3usize {
        let shift = T::from_count(batch as u64).div_count(2);
        let mut xb = x;
        xb.iter_mut().for_each(|v| *v = *v + shift);
        lap(Lap::Start);
        let mut hist = ghm.histogram();
        // Chunk iterators are walked with `next()`, never `zip` (zip's length divides by the
        // chunk size: a panic path the optimiser cannot always remove).
        let mut tcs = t.chunks(CHUNK);
        for xc in xb.chunks(CHUNK) {
            let Some(tc) = tcs.next() else { break };
            if ghm.observe(&mut hist, xc, tc, None).is_err() {
                return false;
            }
        }
        let Ok(weights) = ghm.finish(&hist) else {
            return false;
        };
        let mut total = T::ZERO;
        let (mut tcs, mut gcs) = (t.chunks(CHUNK), grad.chunks_mut(CHUNK));
        for xc in xb.chunks(CHUNK) {
            let (Some(tc), Some(gc)) = (tcs.next(), gcs.next()) else {
                break;
            };
            match ghm.apply(&weights, xc, tc, None, Some(gc)) {
                Ok(l) => total = total + l,
                Err(_) => return false,
            }
        }
        lap(Lap::End("ghm_c", N));
        report("ghm_loss", batch, total.bits());
        for (i, g) in grad.iter().enumerate() {
            report("ghm_grad", batch * N + i, g.bits());
        }
    }
    for (i, e) in ghm.density().ema().iter().enumerate() {
        report("ghm_ema", i, T::acc_bits(*e));
    }

    // OHEM: the 8 hardest examples by focal loss.
    let mut per = [T::ZERO; N];
    if focal
        .with_reduction(Reduction::None)
        .per_element(&x, &t, &mut per)
        .is_err()
    {
        return false;
    }
    let Ok(ohem) = Ohem::<T, 16>::new(8) else {
        return false;
    };
    lap(Lap::Start);
    let Ok(picked) = ohem.select(&per, None) else {
        return false;
    };
    lap(Lap::End("ohem", N));
    for (i, &idx) in picked.indices().iter().enumerate() {
        report("ohem", i, idx as u64);
    }

    // One SGD step of a linear head: 8 samples of 8 features -> 2 logits, BCE.
    let mut w = [T::ZERO; IN * OUT];
    w.iter_mut().for_each(|v| *v = draw(&mut rng, -1, 1));
    let mut logits = [T::ZERO; IN * OUT];
    let mut targets = [T::ZERO; IN * OUT];
    let mut tgs = targets.chunks_mut(OUT);
    for (s, l) in logits.chunks_mut(OUT).enumerate() {
        let Some(tg) = tgs.next() else { break };
        let feats = x.get(s * IN..(s + 1) * IN).unwrap_or(&[]);
        let mut rows = w.chunks(IN);
        for (o, tv) in l.iter_mut().zip(tg.iter_mut()) {
            let wr = rows.next().unwrap_or(&[]);
            *o = feats
                .iter()
                .zip(wr)
                .fold(T::ZERO, |a, (&f, &wv)| a + f * wv);
            *tv = if s % OUT == 0 { T::ONE } else { T::ZERO };
        }
    }
    let mut dl = [T::ZERO; IN * OUT];
    let bce = hardmine::BceWithLogits::new().with_reduction(Reduction::Mean);
    let Ok(step_loss) = bce.value_and_grad(&logits, &targets, None, &mut dl) else {
        return false;
    };
    let lr = T::from_count(1).div_count(10);
    let mut dw = [T::ZERO; IN * OUT];
    for (s, g) in dl.chunks(OUT).enumerate() {
        let feats = x.get(s * IN..(s + 1) * IN).unwrap_or(&[]);
        let mut rows = dw.chunks_mut(IN);
        for gk in g {
            let Some(dwr) = rows.next() else { break };
            for (d, &f) in dwr.iter_mut().zip(feats) {
                *d = *d + *gk * f;
            }
        }
    }
    for (wv, d) in w.iter_mut().zip(dw) {
        *wv = *wv - lr * d;
    }
    report("sgd_loss", 0, step_loss.bits());
    for (i, wv) in w.iter().enumerate() {
        report("sgd_weight", i, wv.bits());
    }
    true
}
