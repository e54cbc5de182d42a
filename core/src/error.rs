//! The one error type every fallible entry point returns.

use core::fmt;

/// Why a call was refused. Nothing the call owned was changed when this is returned
/// (moving averages, histograms, counters); output slices may be partly written.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Error {
    /// Two slices that must agree in length do not.
    LengthMismatch {
        /// The length the call needed.
        expected: usize,
        /// The length it was given.
        got: usize,
    },
    /// A NaN or infinite value (logit, target, weight, loss, box or feature) at `index`
    /// of the slice it came from.
    NonFinite {
        /// Position of the offending element.
        index: usize,
    },
    /// A target outside what the loss accepts: a binary target outside `[0, 1]`, or a class
    /// label at or above the number of classes where labels must name a class.
    InvalidTarget {
        /// Position of the offending element.
        index: usize,
    },
    /// A box whose corners are inverted (`x2 < x1` or `y2 < y1`).
    InvalidBox {
        /// Position of the offending box (not of its first coordinate).
        index: usize,
    },
    /// A hyper-parameter outside its domain; the payload names it.
    InvalidParameter(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::LengthMismatch { expected, got } => {
                write!(f, "length mismatch: expected {expected}, got {got}")
            }
            Error::NonFinite { index } => write!(f, "non-finite value at index {index}"),
            Error::InvalidTarget { index } => write!(f, "invalid target at index {index}"),
            Error::InvalidBox { index } => write!(f, "inverted box at index {index}"),
            Error::InvalidParameter(name) => write!(f, "invalid parameter `{name}`"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn display_names_the_problem() {
        let mut buf = [0u8; 64];
        let mut w = Buf {
            buf: &mut buf,
            len: 0,
        };
        core::fmt::write(&mut w, format_args!("{}", Error::InvalidParameter("gamma"))).ok();
        assert_eq!(&w.buf[..w.len], b"invalid parameter `gamma`");
    }

    struct Buf<'a> {
        buf: &'a mut [u8],
        len: usize,
    }

    impl core::fmt::Write for Buf<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.len + s.len();
            self.buf[self.len..end].copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
}
