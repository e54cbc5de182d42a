//! The output of every miner: a set of selected indices, able to mask a gradient.

use crate::{check, Error, Real};
use heapless::binary_heap::{BinaryHeap, Min};
use heapless::Vec;

/// Up to `K` selected example indices, sorted ascending and distinct.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection<const K: usize> {
    indices: Vec<usize, K>,
}

impl<const K: usize> Selection<K> {
    /// An empty selection.
    pub const fn new() -> Self {
        Self {
            indices: Vec::new(),
        }
    }

    /// Builds a selection from indices in any order (the caller guarantees at most `K`,
    /// distinct), sorting them.
    pub(crate) fn from_unsorted(indices: Vec<usize, K>) -> Self {
        // Ascending through a min-heap: O(K log K) with no panic path (`slice::sort` keeps one
        // for inconsistent orderings).
        let mut heap: BinaryHeap<usize, Min, K> = BinaryHeap::new();
        for i in indices {
            let _ = heap.push(i);
        }
        let mut sorted = Vec::new();
        while let Some(i) = heap.pop() {
            let _ = sorted.push(i);
        }
        Self { indices: sorted }
    }

    /// The selected indices, ascending.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// How many were selected.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether nothing was selected.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Whether `index` was selected (binary search).
    pub fn contains(&self, index: usize) -> bool {
        self.indices.binary_search(&index).is_ok()
    }

    /// Zeroes every row of `grad` (rows of `row_len` values, one per example) that was not
    /// selected, so only the mined examples train.
    ///
    /// # Errors
    /// `InvalidParameter("row_len")` for 0; `LengthMismatch` unless `grad.len()` is a multiple
    /// of `row_len` covering every selected index.
    pub fn apply<T: Real>(&self, grad: &mut [T], row_len: usize) -> Result<(), Error> {
        check::parameter(row_len > 0, "row_len")?;
        let rows = grad.len() / row_len;
        check::length(rows * row_len, grad.len())?;
        if let Some(&last) = self.indices.last() {
            if last >= rows {
                return Err(Error::LengthMismatch {
                    expected: (last + 1) * row_len,
                    got: grad.len(),
                });
            }
        }
        let mut selected = self.indices.iter().peekable();
        for (i, row) in grad.chunks_exact_mut(row_len).enumerate() {
            if selected.next_if_eq(&&i).is_none() {
                row.iter_mut().for_each(|g| *g = T::ZERO);
            }
        }
        Ok(())
    }
}
