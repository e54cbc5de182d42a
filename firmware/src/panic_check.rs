//! Panic-freedom, checked by the linker: the same workload, results folded into a volatile
//! sink (no formatting), and a panic handler that calls a symbol defined nowhere. The release
//! build links only if no panic path is reachable from the library's entry points it calls.
#![no_std]
#![no_main]

#[allow(dead_code)] // `run_laps` and its marks are the firmware's.
mod workload;

use core::ptr::{addr_of_mut, write_volatile};
use cortex_m_rt::entry;
use hardmine::Q16;

static mut SINK: u64 = 0;

#[entry]
fn main() -> ! {
    let mut fold = 0u64;
    let ok = workload::run::<Q16>(&mut |_, i, b| fold = fold.rotate_left(5) ^ b ^ i as u64)
        & workload::run::<f32>(&mut |_, i, b| fold = fold.rotate_left(5) ^ b ^ i as u64);
    // SAFETY: a single-threaded write to a static nothing else touches.
    unsafe { write_volatile(addr_of_mut!(SINK), fold ^ u64::from(ok)) };
    loop {
        cortex_m::asm::wfi();
    }
}

extern "C" {
    /// Deliberately undefined: referencing it from the panic handler makes any reachable
    /// panic a link error.
    fn hardmine_panic_path_is_reachable() -> !;
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: never called when the build links; see above.
    unsafe { hardmine_panic_path_is_reachable() }
}
