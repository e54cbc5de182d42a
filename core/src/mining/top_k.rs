//! Streaming selection of the `k` largest keys in a fixed-capacity heap.
//!
//! ```text
//! order:  a before b  <=>  key_a > key_b, or key_a = key_b and index_a < index_b
//! push:   O(log k); a full heap replaces its worst entry when the new one comes before it
//! memory: K entries, whatever the stream's length
//! ```
//! Ties go to the lower index, so the result is a deterministic function of the input.
//!
//! # Errors
//! `new`: `InvalidParameter("k")` unless `1 <= k <= K`. `push`/`extend`: `NonFinite` for a NaN
//! or infinite key; `extend` checks the whole slice first, so the heap is unchanged after an
//! `Err`.

use super::selection::Selection;
#[cfg(not(feature = "small"))]
use crate::kernel::blocks;
use crate::{check, Error, Real};
use core::cmp::Ordering;
use heapless::binary_heap::{BinaryHeap, Min};
use heapless::Vec;

/// A key with its example index, ordered so that "greater" means "selected first".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ranked<T> {
    pub key: T,
    pub index: usize,
}

impl<T: Real> Ranked<T> {
    /// Whether `self` comes before `other` in selection order.
    #[inline]
    pub fn before(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Greater
    }
}

impl<T: Real> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Real> Eq for Ranked<T> {}

impl<T: Real> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Real> Ord for Ranked<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Keys are validated finite, so `partial_cmp` is total here.
        match self.key.partial_cmp(&other.key) {
            Some(Ordering::Equal) | None => other.index.cmp(&self.index),
            Some(o) => o,
        }
    }
}

/// The `k <= K` largest keys seen so far, with their indices.
///
/// # Examples
/// ```
/// use hardmine::TopK;
/// let mut top = TopK::<f32, 4>::new(2)?;
/// top.extend(0, &[0.5, 3.0, 1.0, 3.0])?;
/// assert_eq!(top.selection().indices(), &[1, 3]);
/// # Ok::<(), hardmine::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TopK<T: Real, const K: usize> {
    k: usize,
    heap: BinaryHeap<Ranked<T>, Min, K>,
}

impl<T: Real, const K: usize> TopK<T, K> {
    /// An empty selector of the `k` largest keys.
    ///
    /// # Errors
    /// `InvalidParameter("k")` unless `1 <= k <= K`.
    pub fn new(k: usize) -> Result<Self, Error> {
        check::parameter((1..=K).contains(&k), "k")?;
        Ok(Self {
            k,
            heap: BinaryHeap::new(),
        })
    }

    /// How many keys are kept (at most `k`).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no key has been kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.heap.clear();
    }

    /// Offers a validated entry.
    #[inline]
    pub(crate) fn offer(&mut self, entry: Ranked<T>) {
        if self.heap.len() < self.k {
            // Cannot fail: len < k <= K.
            let _ = self.heap.push(entry);
        } else if self.heap.peek().is_some_and(|worst| entry.before(worst)) {
            // Only a winner pays for the sift (a `PeekMut` sifts when dropped).
            if let Some(mut worst) = self.heap.peek_mut() {
                *worst = entry;
            }
        }
    }

    /// The least key that could enter now (an equal key may still win on a lower index):
    /// the worst kept key once the heap is full, `None` while it has room.
    #[inline]
    pub(crate) fn entry_key(&self) -> Option<T> {
        if self.heap.len() < self.k {
            None
        } else {
            self.heap.peek().map(|w| w.key)
        }
    }

    /// Offers the key of example `index`.
    ///
    /// # Errors
    /// `NonFinite { index }` for a NaN or infinite key; nothing changes then.
    pub fn push(&mut self, index: usize, key: T) -> Result<(), Error> {
        self.offer(Ranked {
            key: check::finite(key, index)?,
            index,
        });
        Ok(())
    }

    /// Offers every key of `keys`, as examples `first, first + 1, ...`.
    ///
    /// # Errors
    /// `NonFinite` (the index into `keys`) for a NaN or infinite key; the heap is unchanged.
    pub fn extend(&mut self, first: usize, keys: &[T]) -> Result<(), Error> {
        check::all_finite(keys)?;
        self.offer_all(first, keys);
        Ok(())
    }

    /// Offers validated keys as examples `first, first + 1, ...`. Once the heap is full, a key
    /// below its worst cannot enter, so chunks of eight are screened against that key with
    /// one branch-free comparison each and only a chunk holding a candidate is offered.
    pub(crate) fn offer_all(&mut self, first: usize, keys: &[T]) {
        #[cfg(not(feature = "small"))]
        const LANES: usize = 8;
        let fill = self.k.saturating_sub(self.heap.len()).min(keys.len());
        let (head, rest) = keys.split_at(fill);
        for (i, &key) in head.iter().enumerate() {
            self.offer(Ranked {
                key,
                index: first.saturating_add(i),
            });
        }
        let Some(mut worst) = self.heap.peek().map(|w| w.key) else {
            return;
        };
        let offer_chunk = |top: &mut Self, start: usize, chunk: &[T], worst: &mut T| {
            for (i, &key) in chunk.iter().enumerate() {
                // `>=`: an equal key may still win on a lower index.
                if key >= *worst {
                    top.offer(Ranked {
                        key,
                        index: first.saturating_add(start + i),
                    });
                    *worst = top.heap.peek().map_or(key, |w| w.key);
                }
            }
        };
        // `small`: no screening; the screen only skips chunks none of whose keys could enter,
        // so the selection is the same.
        #[cfg(feature = "small")]
        offer_chunk(self, fill, rest, &mut worst);
        #[cfg(not(feature = "small"))]
        {
            let (whole, (at, tail)) = blocks::lanes_of::<T, LANES>(rest);
            for (start, chunk) in whole {
                // A whole chunk is screened by one branch-free test.
                if chunk.iter().fold(false, |any, &key| any | (key >= worst)) {
                    offer_chunk(self, fill + start, chunk, &mut worst);
                }
            }
            offer_chunk(self, fill + at, tail, &mut worst);
        }
    }

    /// The kept entries, best first.
    pub(crate) fn sorted(&self) -> Vec<Ranked<T>, K> {
        // Pops of a copy of the heap (worst first), reversed: a sort with no panic path
        // (`slice::sort` keeps one for inconsistent orderings).
        let mut heap = self.heap.clone();
        let mut v: Vec<Ranked<T>, K> = Vec::new();
        while let Some(e) = heap.pop() {
            let _ = v.push(e);
        }
        v.reverse();
        v
    }

    /// The kept indices with their keys, largest key first, written to `out`; returns how many.
    pub fn write_sorted(&self, indices: &mut [usize], keys: &mut [T]) -> usize {
        let sorted = self.sorted();
        let n = sorted.len().min(indices.len()).min(keys.len());
        for ((e, i), k) in sorted.iter().zip(indices.iter_mut()).zip(keys.iter_mut()) {
            *i = e.index;
            *k = e.key;
        }
        n
    }

    /// The kept indices as a selection.
    pub fn selection(&self) -> Selection<K> {
        let mut indices: Vec<usize, K> = Vec::new();
        for e in &self.heap {
            let _ = indices.push(e.index);
        }
        Selection::from_unsorted(indices)
    }
}
