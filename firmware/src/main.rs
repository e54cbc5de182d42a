//! The firmware: runs the workload on Q15.16 and f32 and prints every result over semihosting
//! as `path name index bits`, then the stack high-water mark of the workload (painted stack)
//! and the state sizes of GHM-C and OHEM on this target.
#![no_std]
#![no_main]

mod icount;
mod workload;

use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use hardmine::{GhmC, Ohem, TopK, Q16};

const PAINT: u32 = 0xDEAD_BEEF;

extern "C" {
    /// End of .bss/.data: the lowest address the stack may grow to (cortex-m-rt).
    static mut __sheap: u32;
}

/// Paints the free stack below the current stack pointer (keeping a margin).
fn paint() {
    let bottom = addr_of_mut!(__sheap) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = bottom;
    while p + 4 <= sp - 256 {
        // SAFETY: [bottom, sp - 256) is unused stack memory, word aligned.
        unsafe { write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes of stack used since `paint`, measured from the stack pointer at `paint`.
fn high_water(sp_at_paint: usize) -> usize {
    let bottom = addr_of!(__sheap) as usize;
    let mut p = bottom;
    // SAFETY: reads of painted stack memory below the live stack pointer.
    while p < sp_at_paint && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    sp_at_paint - p
}

#[entry]
fn main() -> ! {
    let Some(p) = cortex_m::Peripherals::take() else {
        hprintln!("peripherals taken");
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    };
    // The wrap handling, checked: a known loop counted with a 4,096-tick period (dozens of
    // wraps) must give what the calibration's full period gives.
    let short = icount::Icount::start_with_reload(p.SYST, 0xFFF);
    let ((), wrapped) = short.measure(|| icount::spin(1_000_000));
    let ic = icount::Icount::start(short.free());
    let ((), full) = ic.measure(|| icount::spin(1_000_000));
    let (cal_i, cal_t) = ic.calibration();
    hprintln!(
        "icount tick {} instructions (calibration {} instructions in {} ticks), overhead {}",
        ic.instructions_per_tick(),
        cal_i,
        cal_t,
        ic.overhead()
    );
    hprintln!(
        "icount spin 2000000: {} full period, {} wrapping",
        full,
        wrapped
    );
    // Stack of the workload alone: a run with a reporter that only folds the bits.
    let sp = cortex_m::register::msp::read() as usize;
    paint();
    let mut fold = 0u64;
    let ok_quiet = workload::run::<Q16>(&mut |_, i, b| fold = fold.rotate_left(5) ^ b ^ i as u64)
        && workload::run::<f32>(&mut |_, i, b| fold = fold.rotate_left(5) ^ b ^ i as u64);
    let stack = high_water(sp);

    let ok = workload::run::<Q16>(&mut |name, i, b| hprintln!("q16 {} {} {:x}", name, i, b))
        && workload::run::<f32>(&mut |name, i, b| hprintln!("f32 {} {} {:x}", name, i, b));
    hprintln!("stack {}", stack);
    hprintln!(
        "state ghm_c_q16_30 {}",
        core::mem::size_of::<GhmC<Q16, 30>>()
    );
    hprintln!(
        "state ohem_q16_64 {}",
        core::mem::size_of::<Ohem<Q16, 64>>() + core::mem::size_of::<TopK<Q16, 64>>()
    );
    hprintln!("checksum {:x}", fold);
    hprintln!("done {}", ok && ok_quiet);
    debug::exit(if ok && ok_quiet {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
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
