//! Instruction counting on the Cortex-M4 under `qemu-system-arm -icount shift=0`.
//!
//! With `-icount shift=0`, QEMU's virtual clock advances exactly 1 ns per executed guest
//! instruction, so SysTick, clocked from the emulated core clock, counts instructions, not time:
//! one tick is a fixed number of instructions (on mps2-an386 the 25 MHz core clock makes it 40).
//! [`Icount::start`] measures that factor with a loop of known instruction count (inline
//! assembly, 2 instructions per iteration) instead of assuming it. Without `-icount` the figures
//! are real time in disguise and mean nothing; the numbers are instructions, never cycles.
//!
//! SysTick's counter is 24 bits. Wraps are counted by the SysTick exception handler this module
//! defines (so the including program must not define its own `SysTick` handler) and combined
//! with the current count inside a critical section, pending wrap included, so readings are
//! monotonic however long the measured span.
//!
//! Resolution: one tick (40 instructions). Measure spans of thousands of instructions, or
//! repeat the measured work, and divide.
//!
//! Depends only on `cortex-m` and `cortex-m-rt`, so other firmware crates include it with
//! `#[path = "../../firmware/src/icount.rs"] mod icount;`.
//!
//! ```ignore
//! let p = cortex_m::Peripherals::take().unwrap();
//! let ic = icount::Icount::start(p.SYST);
//! let (result, instructions) = ic.measure(|| work());
//! ```
#![allow(dead_code)]

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

/// Largest SysTick reload value: the counter is 24 bits.
pub const MAX_RELOAD: u32 = 0x00FF_FFFF;

/// Loop iterations of the calibration (2 instructions each).
const CALIBRATION_ITERATIONS: u32 = 4_000_000;

/// SysTick wraps (reload events) since [`Icount::start`], counted by the exception handler.
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Runs exactly `2 * iterations` instructions (`subs`, `bne` per iteration) plus the few that
/// load the count and enter the loop. `iterations` must be at least 1 (0 is treated as 1).
#[inline(never)]
pub fn spin(iterations: u32) {
    let n = iterations.max(1);
    // SAFETY: a register-only countdown loop; it touches no memory and no stack.
    unsafe {
        core::arch::asm!(
            "1:",
            "subs {n}, {n}, #1",
            "bne 1b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

/// An instruction counter on SysTick.
pub struct Icount {
    syst: SYST,
    /// Ticks per SysTick period (reload + 1).
    period: u64,
    /// Ticks at start.
    origin: u64,
    /// Calibration: this many instructions took `cal_ticks` ticks.
    cal_instructions: u64,
    cal_ticks: u64,
    /// Instructions of an empty [`Icount::measure`], subtracted from every measurement.
    overhead: u64,
}

impl Icount {
    /// Starts SysTick on the core clock with the full 24-bit period, counts its wraps, and
    /// calibrates the instructions per tick.
    pub fn start(syst: SYST) -> Icount {
        Icount::start_with_reload(syst, MAX_RELOAD)
    }

    /// As [`Icount::start`] with a shorter period (`reload` is clamped to 1..=2^24 - 1): more
    /// wraps, for testing the wrap handling. The count is the same whatever the period.
    pub fn start_with_reload(mut syst: SYST, reload: u32) -> Icount {
        let reload = reload.clamp(1, MAX_RELOAD);
        syst.disable_interrupt();
        syst.disable_counter();
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(reload);
        syst.clear_current();
        SCB::clear_pendst();
        WRAPS.store(0, Ordering::Relaxed);
        syst.enable_interrupt();
        syst.enable_counter();
        // Let the counter leave the cleared value 0 (its first reload) before the origin.
        while SYST::get_current() == 0 {}
        let mut ic = Icount {
            syst,
            period: u64::from(reload) + 1,
            origin: 0,
            cal_instructions: 1,
            cal_ticks: 1,
            overhead: 0,
        };
        ic.origin = ic.ticks();
        ic.calibrate();
        ic
    }

    /// Ticks since an arbitrary origin, monotonic: wraps times the period plus the elapsed
    /// count of the current period, with a wrap that is pending but not yet handled included.
    pub fn ticks(&self) -> u64 {
        cortex_m::interrupt::free(|_| {
            let mut wraps = u64::from(WRAPS.load(Ordering::Relaxed));
            let mut current = SYST::get_current();
            if SCB::is_pendst_pending() {
                // A wrap the handler has not counted yet: it happened before or after the read
                // above, so read again, now certainly after it.
                current = SYST::get_current();
                wraps += 1;
            }
            let elapsed = (self.period - 1).saturating_sub(u64::from(current));
            wraps * self.period + elapsed
        })
    }

    /// Instructions since start (resolution: one tick).
    pub fn now(&self) -> u64 {
        self.to_instructions(self.ticks().saturating_sub(self.origin))
    }

    /// Converts a tick count to instructions with the calibrated factor.
    pub fn to_instructions(&self, ticks: u64) -> u64 {
        (ticks * self.cal_instructions + self.cal_ticks / 2) / self.cal_ticks
    }

    /// Instructions spent in `f`, less the overhead of an empty measurement; and `f`'s result.
    pub fn measure<R>(&self, f: impl FnOnce() -> R) -> (R, u64) {
        let t0 = self.ticks();
        let r = f();
        let t1 = self.ticks();
        let n = self.to_instructions(t1.saturating_sub(t0));
        (r, n.saturating_sub(self.overhead))
    }

    /// Instructions per SysTick tick, rounded (40 on mps2-an386 under `-icount shift=0`).
    pub fn instructions_per_tick(&self) -> u64 {
        (self.cal_instructions + self.cal_ticks / 2) / self.cal_ticks
    }

    /// The calibration: `(instructions, ticks)` of the known loop.
    pub fn calibration(&self) -> (u64, u64) {
        (self.cal_instructions, self.cal_ticks)
    }

    /// Instructions of an empty [`Icount::measure`] (subtracted from every measurement).
    pub fn overhead(&self) -> u64 {
        self.overhead
    }

    /// Gives SysTick back, stopped.
    pub fn free(mut self) -> SYST {
        self.syst.disable_interrupt();
        self.syst.disable_counter();
        self.syst
    }

    /// Ticks of `spin(n)` with the same reading around it as `measure`.
    fn spin_ticks(&self, n: u32) -> u64 {
        let t0 = self.ticks();
        spin(n);
        self.ticks().saturating_sub(t0)
    }

    /// Measures the instructions per tick: the difference of two spins of known length cancels
    /// the reading and call overhead, leaving exactly `2 * CALIBRATION_ITERATIONS` instructions.
    fn calibrate(&mut self) {
        let short = self.spin_ticks(1);
        let long = self.spin_ticks(CALIBRATION_ITERATIONS + 1);
        self.cal_instructions = 2 * u64::from(CALIBRATION_ITERATIONS);
        self.cal_ticks = long.saturating_sub(short).max(1);
        // The overhead of an empty measurement, averaged over many, in instructions.
        let reps = 64u64;
        let mut total = 0u64;
        for _ in 0..reps {
            let t0 = self.ticks();
            let t1 = self.ticks();
            total += t1.saturating_sub(t0);
        }
        self.overhead = self.to_instructions(total) / reps;
    }
}
