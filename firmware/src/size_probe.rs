//! The library alone, as the smallest integration links it: focal (loss and gradient), GHM-C
//! (loss and gradient of one batch) and OHEM (top-k selection) on one path, no formatting.
//! `firmware/size.sh` builds it with and without the calls (feature `calls`), on each path
//! (feature `f32` or `q16`), with and without the core's `small` option (feature `small`), and
//! reports the flash difference: the library's code and tables, libm and compiler-builtins
//! included. Inputs come from RAM through volatile reads and results go to a volatile sink, so
//! neither build can fold anything away; both builds read and fold the same inputs.
#![no_std]
#![no_main]

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use cortex_m_rt::entry;

#[cfg(all(feature = "f32", not(feature = "q16")))]
type T = f32;
#[cfg(all(feature = "q16", not(feature = "f32")))]
type T = hardmine::Q16;
#[cfg(not(any(feature = "f32", feature = "q16")))]
compile_error!("size_probe needs feature `f32` or `q16`");
#[cfg(all(feature = "f32", feature = "q16"))]
compile_error!("size_probe takes one path: feature `f32` or `q16`");

/// Elements per call.
const N: usize = 64;

/// The batch (logits, targets), written by nothing: the loads are volatile.
static mut INPUT: [[u32; N]; 2] = [[0; N]; 2];
/// How many elements a call takes (at most `N`), read at run time so that no call's length is
/// a constant the optimiser could specialise the library for.
static mut LEN: usize = N;
/// Where results go.
static mut SINK: u32 = 0;

/// The raw bits of a value, folded into the sink.
fn bits(v: T) -> u32 {
    #[cfg(feature = "f32")]
    {
        v.to_bits()
    }
    #[cfg(feature = "q16")]
    {
        v.to_bits() as u32
    }
}

/// A value from raw bits.
fn value(b: u32) -> T {
    #[cfg(feature = "f32")]
    {
        f32::from_bits(b)
    }
    #[cfg(feature = "q16")]
    {
        hardmine::Q16::from_bits(b as i32)
    }
}

fn sink(v: u32) {
    // SAFETY: single-threaded; nothing else touches SINK.
    unsafe {
        write_volatile(
            addr_of_mut!(SINK),
            read_volatile(addr_of!(SINK)).rotate_left(5) ^ v,
        )
    };
}

#[entry]
fn main() -> ! {
    let mut x = [value(0); N];
    let mut t = [value(0); N];
    for (i, (xi, ti)) in x.iter_mut().zip(t.iter_mut()).enumerate() {
        // SAFETY: volatile reads of a static nothing writes concurrently.
        let (a, b) = unsafe {
            let p = addr_of!(INPUT) as *const u32;
            (read_volatile(p.add(i)), read_volatile(p.add(N + i)))
        };
        *xi = value(a);
        *ti = value(b);
    }
    // SAFETY: a volatile read of a static nothing writes concurrently.
    let len = unsafe { read_volatile(addr_of!(LEN)) }.min(N);
    calls(x.get(..len).unwrap_or(&[]), t.get(..len).unwrap_or(&[]));
    loop {
        cortex_m::asm::wfi();
    }
}

/// The library's calls: focal, GHM-C, OHEM.
#[cfg(feature = "calls")]
fn calls(x: &[T], t: &[T]) {
    use hardmine::{GhmC, Ohem, Real, Reduction, SigmoidFocal};
    let mut grad = [T::ZERO; N];
    let mut per = [T::ZERO; N];
    let n = x.len();
    let (grad, per) = (
        grad.get_mut(..n).unwrap_or(&mut []),
        per.get_mut(..n).unwrap_or(&mut []),
    );
    if let Ok(focal) = SigmoidFocal::new(T::from_count(1).div_count(4), T::from_count(2)) {
        let focal = focal.with_reduction(Reduction::Sum);
        match focal.value_and_grad(x, t, grad) {
            Ok(l) => sink(bits(l)),
            Err(_) => sink(1),
        }
        if focal
            .with_reduction(Reduction::None)
            .per_element(x, t, per)
            .is_err()
        {
            sink(2);
        }
    }
    if let Ok(mut ghm) = GhmC::<T, 30>::new(30, T::from_count(3).div_count(4), T::ONE) {
        match ghm.value_and_grad(x, t, None, grad) {
            Ok(l) => sink(bits(l)),
            Err(_) => sink(3),
        }
    }
    if let Ok(ohem) = Ohem::<T, 16>::new(8) {
        match ohem.select(per, None) {
            Ok(s) => s.indices().iter().for_each(|&i| sink(i as u32)),
            Err(_) => sink(4),
        }
    }
    grad.iter().chain(per.iter()).for_each(|&g| sink(bits(g)));
}

/// Without the library: the same inputs, folded.
#[cfg(not(feature = "calls"))]
fn calls(x: &[T], t: &[T]) {
    x.iter().chain(t).for_each(|&v| sink(bits(v)));
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {
        cortex_m::asm::wfi();
    }
}
