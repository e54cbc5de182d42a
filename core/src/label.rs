//! Integer class labels, as detection heads pass them.

/// An integer class label. A negative label means "no label" (ignored by softmax losses,
/// background for sigmoid losses); for sigmoid losses any label at or above the number of
/// classes is background too (mmdetection uses `num_classes`).
pub trait ClassLabel: Copy + private::Sealed {
    /// The label as an index, or `None` when it is negative.
    fn index(self) -> Option<usize>;
}

mod private {
    pub trait Sealed {}
}

macro_rules! impl_label {
    ($($t:ty),*) => {$(
        impl private::Sealed for $t {}
        impl ClassLabel for $t {
            #[inline]
            fn index(self) -> Option<usize> {
                // Every integer type here widens to i128 exactly.
                let v = self as i128;
                (v >= 0).then(|| usize::try_from(v).unwrap_or(usize::MAX))
            }
        }
    )*};
}

impl_label!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// The class a label names among `classes`, or `None` for background.
#[inline]
pub(crate) fn class_of<L: ClassLabel>(label: L, classes: usize) -> Option<usize> {
    label.index().filter(|&c| c < classes)
}

#[cfg(test)]
mod tests {
    use super::{class_of, ClassLabel};

    #[test]
    fn negative_is_none_and_large_saturates() {
        assert_eq!((-1i32).index(), None);
        assert_eq!(3u16.index(), Some(3));
        assert_eq!(i64::MAX.index(), usize::try_from(i64::MAX).ok());
        assert_eq!(class_of(4i32, 4), None);
        assert_eq!(class_of(3i32, 4), Some(3));
    }
}
