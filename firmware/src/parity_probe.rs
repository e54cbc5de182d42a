//! The core's `small` option against the default build, on the target: the calls whose code
//! `small` changes (every element-wise pass, focal's power, GHM-C and GHM-R one-shot and
//! streamed, top-k and OHEM selection) over lengths around the block and chunk sizes (1 to
//! 1,100 elements, whole and partial blocks of 128 and 512), hard and mixed hard/soft targets,
//! several gammas, reductions and weights, on Q15.16 and f32. Each case prints
//! `parity PATH CASE LENGTH FOLD errors E`, a fold of the raw bits of every result and the
//! number of calls that failed (none should); `size.sh` runs it
//! built with and without `small` under QEMU and requires identical output.
#![no_std]
#![no_main]

#[allow(dead_code)]
mod workload;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use hardmine::{
    BceWithLogits, GhmC, GhmR, Ohem, Real, Reduction, SigmoidFocal, SplitMix64, TopK, Q16,
};
use workload::Path;

/// The longest case.
const MAX: usize = 1100;
/// The lengths tried: around the lane (8, 16), chunk (128) and block (128, 512) sizes.
const LENGTHS: [usize; 11] = [1, 5, 16, 17, 127, 128, 129, 300, 512, 513, MAX];

/// A fold of raw bits, and how many calls returned an `Err` (none should).
struct Fold(u64, u32);

impl Fold {
    fn new(seed: u64) -> Self {
        Fold(seed, 0)
    }
    fn add(&mut self, b: u64) {
        self.0 = (self.0.rotate_left(7) ^ b).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn all<T: Path>(&mut self, r: Result<T, hardmine::Error>, out: &[T]) {
        match r {
            Ok(v) => self.add(v.bits()),
            Err(_) => {
                self.add(u64::MAX);
                self.1 += 1;
            }
        }
        out.iter().for_each(|v| self.add(v.bits()));
    }
}

/// A value uniform in `[-12, 12)` on the Q15.16 grid (exact on both paths).
fn logit<T: Real>(rng: &mut SplitMix64) -> T {
    let raw = rng.below(24 << 16) as i64 - (12 << 16);
    T::from_f64(raw as f64 / 65536.0)
}

fn report(path: &str, case: &str, n: usize, f: &Fold) {
    hprintln!("parity {} {} {} {:x} errors {}", path, case, n, f.0, f.1);
}

/// Every case of one path.
fn cases<T: Path>(path: &str) {
    let mut rng = SplitMix64::new(7);
    let mut x = [T::ZERO; MAX];
    let mut hard = [T::ZERO; MAX];
    let mut mixed = [T::ZERO; MAX];
    let mut w = [T::ZERO; MAX];
    for i in 0..MAX {
        x[i] = logit(&mut rng);
        hard[i] = if rng.below(8) == 0 { T::ONE } else { T::ZERO };
        // A soft target in one element out of 40: some blocks hard, others soft.
        mixed[i] = if rng.below(40) == 0 {
            T::from_count(rng.below(17)).div_count(16)
        } else {
            hard[i]
        };
        // Weights in [0, 2), a few exactly 0 (masked for GHM).
        w[i] = T::from_count(rng.below(9)).div_count(4);
    }
    let mut out = [T::ZERO; MAX];
    let mut per = [T::ZERO; MAX];
    let gammas = [(0u64, 1u64), (1, 1), (3, 2), (2, 1), (3, 1)];
    for n in LENGTHS {
        let (x, w) = (&x[..n], &w[..n]);
        let (out, per) = (&mut out[..n], &mut per[..n]);
        for (tname, t) in [("hard", &hard[..n]), ("mixed", &mixed[..n])] {
            for (gi, &(gn, gd)) in gammas.iter().enumerate() {
                let mut f = Fold::new(gi as u64);
                if let Ok(focal) = SigmoidFocal::new(
                    T::from_count(1).div_count(4),
                    T::from_count(gn).div_count(gd as usize),
                ) {
                    for red in [Reduction::Mean, Reduction::Sum] {
                        let focal = focal.with_reduction(red);
                        f.all(focal.value_and_grad(x, t, out), out);
                        f.all(focal.value(x, t), &[]);
                    }
                    f.all(
                        focal
                            .with_reduction(Reduction::None)
                            .per_element(x, t, per)
                            .map(|()| T::ZERO),
                        per,
                    );
                    if let Ok(fa) = focal.with_avg_factor(T::from_count(n as u64).div_count(3)) {
                        f.all(fa.value_and_grad(x, t, out), out);
                    }
                }
                report(
                    path,
                    if tname == "hard" {
                        "focal_hard"
                    } else {
                        "focal_mixed"
                    },
                    n,
                    &f,
                );
            }
            let mut f = Fold::new(1);
            let bce = BceWithLogits::new();
            for red in [Reduction::Mean, Reduction::Sum] {
                let bce = bce.with_reduction(red);
                f.all(bce.value_and_grad(x, t, Some(w), out), out);
                f.all(bce.value_and_grad(x, t, None, out), out);
            }
            report(
                path,
                if tname == "hard" {
                    "bce_hard"
                } else {
                    "bce_mixed"
                },
                n,
                &f,
            );

            // GHM-C: one-shot (with and without label weights), then streamed in chunks of 100.
            let mut f = Fold::new(2);
            if let Ok(mut ghm) = GhmC::<T, 30>::new(30, T::from_count(3).div_count(4), T::ONE) {
                for _ in 0..2 {
                    f.all(ghm.value_and_grad(x, t, None, out), out);
                    f.all(ghm.value_and_grad(x, t, Some(w), out), out);
                }
                let mut hist = ghm.histogram();
                let ok = x
                    .chunks(100)
                    .zip(t.chunks(100))
                    .zip(w.chunks(100))
                    .all(|((xc, tc), wc)| ghm.observe(&mut hist, xc, tc, Some(wc)).is_ok());
                f.add(u64::from(ok));
                f.1 += u32::from(!ok);
                if let Ok(weights) = ghm.finish(&hist) {
                    for ((xc, tc), (wc, oc)) in x
                        .chunks(100)
                        .zip(t.chunks(100))
                        .zip(w.chunks(100).zip(out.chunks_mut(100)))
                    {
                        let r = ghm.apply(&weights, xc, tc, Some(wc), Some(oc));
                        f.all(r, oc);
                    }
                }
                ghm.density()
                    .ema()
                    .iter()
                    .for_each(|e| f.add(T::acc_bits(*e)));
            }
            report(
                path,
                if tname == "hard" {
                    "ghm_c_hard"
                } else {
                    "ghm_c_mixed"
                },
                n,
                &f,
            );
        }
        // GHM-R on (input - target) pairs: inputs x, targets the mixed targets times 4.
        let mut f = Fold::new(3);
        let mut tr = [T::ZERO; MAX];
        tr.iter_mut()
            .zip(&mixed)
            .for_each(|(d, &m)| *d = m * T::from_count(4));
        if let Ok(mut ghm) = GhmR::<T, 10>::new(T::from_count(1).div_count(50), 10, T::ZERO, T::ONE)
        {
            f.all(ghm.value_and_grad(x, &tr[..n], None, out), out);
            f.all(ghm.value_and_grad(x, &tr[..n], Some(w), out), out);
        }
        report(path, "ghm_r", n, &f);

        // Selection: OHEM and top-k over the focal losses (ties included: quantised copies).
        let mut f = Fold::new(4);
        if let Ok(focal) = SigmoidFocal::new(T::from_count(1).div_count(4), T::from_count(2)) {
            let _ = focal
                .with_reduction(Reduction::None)
                .per_element(x, &hard[..n], per);
        }
        let mut ties = [T::ZERO; MAX];
        ties.iter_mut()
            .zip(x.iter())
            .for_each(|(d, &v)| *d = T::from_count(v.abs().to_f64() as u64));
        for keys in [&per[..], &ties[..n]] {
            for k in [1usize, 3, 8, 16] {
                if let Ok(ohem) = Ohem::<T, 16>::new(k) {
                    match ohem.select(keys, None) {
                        Ok(s) => s.indices().iter().for_each(|&i| f.add(i as u64)),
                        Err(_) => {
                            f.add(u64::MAX);
                            f.1 += 1;
                        }
                    }
                }
                if let Ok(mut top) = TopK::<T, 16>::new(k) {
                    let ok = keys
                        .chunks(37)
                        .enumerate()
                        .all(|(c, kc)| top.extend(c * 37, kc).is_ok());
                    f.add(u64::from(ok));
                    f.1 += u32::from(!ok);
                    top.selection()
                        .indices()
                        .iter()
                        .for_each(|&i| f.add(i as u64));
                }
            }
        }
        report(path, "select", n, &f);
    }
}

#[entry]
fn main() -> ! {
    cases::<Q16>("q16");
    cases::<f32>("f32");
    hprintln!("parity done");
    debug::exit(debug::EXIT_SUCCESS);
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    hprintln!("panic");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
