//! The on-device fine-tuning program: the `hardmine-device` job (the pretrained detector's AP
//! on the test scenes, then each method's fine-tuning and AP) on Q15.16 and on f32, printed
//! over semihosting exactly as `hardmine finetune --config device` prints it on the host,
//! then what only the device measures: instructions per fine-tuning step (SysTick under
//! `qemu-system-arm -icount shift=0`, `firmware/src/icount.rs`) and the stack high-water mark
//! (painted stack). A library error is printed as an `error` line and the program exits with
//! a failure status; so does a hard fault (a stack overflowing the 64 KiB of RAM).
#![no_std]
#![no_main]

#[path = "../../firmware/src/icount.rs"]
mod icount;

use core::fmt::Write;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use cortex_m_rt::{entry, exception, ExceptionFrame};
use cortex_m_semihosting::{debug, hprint, hprintln};
use hardmine::Q16;
use hardmine_device::{train, Clock, Digits, Measured};

const PAINT: u32 = 0xDEAD_BEEF;

extern "C" {
    /// End of .bss/.data: the lowest address the stack may grow to (cortex-m-rt).
    static mut __sheap: u32;
    /// The initial stack pointer: the end of RAM (cortex-m-rt).
    static _stack_start: u32;
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

/// Bytes of stack used since reset (from the top of RAM to the lowest word no longer
/// painted); and whether the paint's lowest word was overwritten (the stack reached the end of
/// RAM's static part).
fn high_water(sp_at_paint: usize) -> (usize, bool) {
    let bottom = addr_of!(__sheap) as usize;
    let top = addr_of!(_stack_start) as usize;
    let mut p = bottom;
    // SAFETY: reads of painted stack memory below the live stack pointer.
    while p < sp_at_paint && unsafe { read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    (top - p, p == bottom)
}

/// Semihosting's stdout as a `fmt::Write`.
struct Semihosting;

impl Write for Semihosting {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        hprint!("{}", s);
        Ok(())
    }
}

/// The instruction counter as the job's clock.
struct Instructions<'a>(&'a icount::Icount);

impl Clock for Instructions<'_> {
    fn now(&mut self) -> u64 {
        self.0.now()
    }
}

fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    loop {
        cortex_m::asm::wfi();
    }
}

/// Instructions per step of each method of one path.
fn report(path: &str, m: &Measured) {
    for (method, n) in train::METHODS.iter().zip(m.train_ticks.iter()) {
        hprintln!(
            "instructions {} {} steps {} total {} per_step {}",
            path,
            method.name(),
            train::STEPS,
            n,
            n / train::STEPS as u64
        );
    }
}

#[entry]
fn main() -> ! {
    let sp = cortex_m::register::msp::read() as usize;
    paint();
    let Some(p) = cortex_m::Peripherals::take() else {
        hprintln!("error peripherals taken");
        exit(false)
    };
    let ic = icount::Icount::start(p.SYST);
    let (cal_i, cal_t) = ic.calibration();
    hprintln!(
        "icount tick {} instructions (calibration {} instructions in {} ticks)",
        ic.instructions_per_tick(),
        cal_i,
        cal_t
    );
    let digits = match Digits::new(hardmine_device::DIGITS) {
        Ok(d) => d,
        Err(e) => {
            hprintln!("error digits: {}", e);
            exit(false)
        }
    };
    let lr_scale = if cfg!(feature = "diverge") { 1e6 } else { 1.0 };
    let mut out = Semihosting;
    let mut clock = Instructions(&ic);
    let header = hardmine_device::header(&mut out);
    let q = hardmine_device::run::<Q16>(&mut out, &mut clock, &digits, lr_scale);
    let f = match q {
        Ok(_) => Some(hardmine_device::run::<f32>(
            &mut out, &mut clock, &digits, lr_scale,
        )),
        Err(_) => None,
    };
    let (stack, overflow) = high_water(sp);
    let mut ok = header.is_ok();
    match q {
        Ok(m) => report("q16", &m),
        Err(_) => ok = false,
    }
    match f {
        Some(Ok(m)) => report("f32", &m),
        _ => ok = false,
    }
    hprintln!("stack {}", stack);
    if overflow {
        hprintln!("error stack overflow: the paint is gone to the end of static RAM");
        ok = false;
    }
    hprintln!("done {}", ok);
    exit(ok)
}

#[exception]
unsafe fn HardFault(_: &ExceptionFrame) -> ! {
    hprintln!("error hard fault (a stack past the 64 KiB of RAM?)");
    exit(false)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    hprintln!("error panic");
    exit(false)
}
