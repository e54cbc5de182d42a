//! Panic-freedom of the fine-tuning program, checked by the linker: the same job on both
//! paths (scene generation, backbone, assignment, every method's fine-tuning, post-processing,
//! AP, the report's integer formatting) into a writer that folds the text into a volatile
//! sink, and a panic handler that calls a symbol defined nowhere. The release build links
//! only if no panic path is reachable.
#![no_std]
#![no_main]

use core::fmt::Write;
use core::ptr::{addr_of_mut, write_volatile};
use cortex_m_rt::entry;
use hardmine::Q16;
use hardmine_device::{Digits, NoClock};

static mut SINK: u32 = 0;

struct Fold(u32);

impl Write for Fold {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            self.0 = self.0.rotate_left(5) ^ u32::from(b);
        }
        Ok(())
    }
}

#[entry]
fn main() -> ! {
    let mut out = Fold(0);
    let mut ok = hardmine_device::header(&mut out).is_ok();
    if let Ok(digits) = Digits::new(hardmine_device::DIGITS) {
        ok &= hardmine_device::run::<Q16>(&mut out, &mut NoClock, &digits, 1.0).is_ok();
        ok &= hardmine_device::run::<f32>(&mut out, &mut NoClock, &digits, 1.0).is_ok();
        if let Err(e) = hardmine_device::run::<f32>(&mut out, &mut NoClock, &digits, 1e6) {
            ok &= write!(out, "{e}").is_ok();
        }
    }
    // SAFETY: a single-threaded write to a static nothing else touches.
    unsafe { write_volatile(addr_of_mut!(SINK), out.0 ^ u32::from(ok)) };
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
