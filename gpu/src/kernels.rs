//! The CUDA C program: the kernels' sources (`gpu/kernels/*.cu`, one file a family) and the
//! names the Rust side and the kernels share. Each kind the kernels switch on is a Rust enum
//! whose discriminants are the C values; [`program`] defines every name for the C side from
//! here, so each value is written once.

use crate::MAX_GHM_BINS;
use core::fmt::Write as _;

/// Threads per block (a power of two: the reduction tree halves it; `THREADS` in C, the size
/// of `block_sum`'s shared tree).
pub(crate) const THREADS: u32 = 256;

/// The values of one radix-select digit (8 bits; `RADIX_DIGITS` in C).
pub(crate) const RADIX_DIGITS: usize = 256;

/// The slots per element of `check_inputs`' key: `CHECK_CODES * index + code` (`CHECK_CODES`
/// in C), more than any [`CheckCode`].
pub(crate) const CHECK_CODES: u64 = 4;

/// The sources in the order NVRTC compiles them as one program: the shared helpers first.
const SOURCES: [&str; 7] = [
    include_str!("../kernels/common.cu"),
    include_str!("../kernels/logistic.cu"),
    include_str!("../kernels/softmax.cu"),
    include_str!("../kernels/box.cu"),
    include_str!("../kernels/ghm.cu"),
    include_str!("../kernels/check.cu"),
    include_str!("../kernels/rank.cu"),
];

/// A kind the kernels switch on: a `#[repr(i32)]` enum, each variant with its C name, and the
/// conversion to the `int` a kernel takes.
macro_rules! kernel_kind {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal as $c:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(i32)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// Every kind under its C name.
            const C_NAMES: &'static [(&'static str, Self)] = &[$(($c, Self::$variant),)+];
        }

        impl From<$name> for i32 {
            fn from(kind: $name) -> i32 {
                kind as i32
            }
        }
    };
}

kernel_kind! {
    /// The loss of `box_loss`.
    pub(crate) enum BoxKernel {
        /// Smooth L1, its parameter beta.
        SmoothL1 = 0 as "BOX_SMOOTH_L1",
        /// ASL1, its parameter mu.
        Asl1 = 1 as "BOX_ASL1",
    }
}

kernel_kind! {
    /// The loss of `softmax_rows`.
    pub(crate) enum SoftmaxKernel {
        /// Softmax cross-entropy.
        CrossEntropy = 0 as "SOFTMAX_CROSS_ENTROPY",
        /// Softmax focal loss, with its alpha and gamma.
        Focal = 1 as "SOFTMAX_FOCAL",
    }
}

kernel_kind! {
    /// The GHM kind of `ghm_hist` and `ghm_apply` (`pub` in this private module only for
    /// the sealed [`DeviceKind`](crate::DeviceKind), which names it).
    pub enum GhmKernel {
        /// GHM-C: BCE on logits.
        Classification = 0 as "GHM_C",
        /// GHM-R: ASL1 on `x - t`, with its mu.
        Regression = 1 as "GHM_R",
    }
}

kernel_kind! {
    /// The first failing check of `check_inputs` at an element, the low part of its key.
    pub(crate) enum CheckCode {
        /// A non-finite weight, input or target.
        NonFinite = 0 as "CHECK_NON_FINITE",
        /// A binary target outside `[0, 1]`.
        InvalidTarget = 1 as "CHECK_INVALID_TARGET",
        /// A non-finite GHM label weight (checked after the target).
        LabelWeight = 2 as "CHECK_LABEL_WEIGHT",
    }
}

impl CheckCode {
    /// The code of a `check_inputs` key (`None` for a value no kernel writes).
    pub(crate) fn of_key(key: u64) -> Option<Self> {
        let code = key % CHECK_CODES;
        Self::C_NAMES
            .iter()
            .map(|&(_, c)| c)
            .find(|&c| u64::try_from(i32::from(c)).is_ok_and(|v| v == code))
    }
}

/// The whole program as NVRTC compiles it: the shared names defined, then [`SOURCES`] in
/// order.
pub(crate) fn program() -> String {
    let mut src = String::from("// Names shared with the Rust side (gpu/src/kernels.rs).\n");
    for (name, value) in [
        ("THREADS", u64::from(THREADS)),
        ("MAX_BINS", MAX_GHM_BINS as u64),
        ("RADIX_DIGITS", RADIX_DIGITS as u64),
        ("CHECK_CODES", CHECK_CODES),
    ] {
        define(&mut src, name, value);
    }
    define_kinds(&mut src, BoxKernel::C_NAMES);
    define_kinds(&mut src, SoftmaxKernel::C_NAMES);
    define_kinds(&mut src, GhmKernel::C_NAMES);
    define_kinds(&mut src, CheckCode::C_NAMES);
    for source in SOURCES {
        src.push_str(source);
    }
    src
}

/// `#define name value` on a line of `src`.
fn define(src: &mut String, name: &str, value: impl core::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = writeln!(src, "#define {name} {value}");
}

/// The definitions of every kind of one enum.
fn define_kinds<K: Copy + Into<i32>>(src: &mut String, kinds: &[(&str, K)]) {
    for &(name, kind) in kinds {
        define(src, name, kind.into());
    }
}

#[cfg(test)]
mod tests {
    use super::{program, CheckCode, CHECK_CODES, SOURCES};

    #[test]
    fn every_check_code_fits_a_key_slot_and_decodes() {
        for &(_, code) in CheckCode::C_NAMES {
            let value = u64::try_from(i32::from(code)).unwrap();
            assert!(value < CHECK_CODES);
            assert_eq!(CheckCode::of_key(CHECK_CODES * 12 + value), Some(code));
        }
        assert_eq!(CheckCode::of_key(CHECK_CODES - 1), None);
    }

    /// Every name the kernels use in capitals is defined, once, before the sources.
    #[test]
    fn the_program_defines_each_shared_name_once() {
        let program = program();
        let defined: Vec<&str> = program
            .lines()
            .filter_map(|l| l.strip_prefix("#define "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let mut unique = defined.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), defined.len(), "a name defined twice");
        for source in SOURCES {
            assert!(
                !source.contains("#define"),
                "names are defined by program()"
            );
            // The code's words in capitals (comments left out; `extern "C"` is no name) are
            // the shared names.
            let code = source.lines().map(|l| l.split("//").next().unwrap_or(""));
            for line in code {
                let words = line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
                let shared = |w: &&str| {
                    w.len() > 1
                        && w.starts_with(|c: char| c.is_ascii_uppercase())
                        && w.chars().all(|c| !c.is_ascii_lowercase())
                };
                for word in words.filter(shared) {
                    assert!(defined.contains(&word), "`{word}` used but not defined");
                }
            }
        }
        assert!(program.ends_with(SOURCES[SOURCES.len() - 1]));
    }
}
