//! A counting wrapper around the system allocator: live bytes, their peak since the last
//! reset, and the largest single allocation since the last reset.
//!
//! Why a crate of its own: a `GlobalAlloc` is `unsafe impl`, and obsim forbids `unsafe`
//! (`[lints]` in its Cargo.toml, which also covers its test binaries). The fuzz targets
//! (`fuzz/`) and the stable replay test (`tests/fuzz_corpus.rs`) each declare
//! `#[global_allocator] static ALLOCATOR: Counting = Counting::new();` and hand `&ALLOCATOR`
//! to `obsim::fuzzing::run`, which resets it, runs one entry point and asserts the entry
//! point's budget against what it measured (README "Fuzzing").
//!
//! The counters are process-wide: measure one input at a time, on one thread.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counted.
#[derive(Debug)]
pub struct Counting {
    live_bytes: AtomicUsize,
    peak_bytes: AtomicUsize,
    largest_bytes: AtomicUsize,
}

impl Counting {
    /// All counters at zero.
    #[must_use]
    pub const fn new() -> Self {
        Self { live_bytes: AtomicUsize::new(0), peak_bytes: AtomicUsize::new(0), largest_bytes: AtomicUsize::new(0) }
    }

    /// Bytes allocated and not yet freed.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes.load(Ordering::Relaxed)
    }

    /// The most bytes live at once since the last `reset`.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes.load(Ordering::Relaxed)
    }

    /// The largest single allocation (or reallocation's new size) since the last `reset`.
    pub fn largest_bytes(&self) -> usize {
        self.largest_bytes.load(Ordering::Relaxed)
    }

    /// Starts a measurement: the peak becomes what is live now, the largest allocation 0.
    pub fn reset(&self) {
        self.peak_bytes.store(self.live_bytes(), Ordering::Relaxed);
        self.largest_bytes.store(0, Ordering::Relaxed);
    }

    /// Counts `size` more bytes live, one allocation of that size.
    fn grew(&self, size: usize) {
        let live = self.live_bytes.fetch_add(size, Ordering::Relaxed) + size;
        self.peak_bytes.fetch_max(live, Ordering::Relaxed);
        self.largest_bytes.fetch_max(size, Ordering::Relaxed);
    }

    /// Counts `size` bytes freed.
    fn shrank(&self, size: usize) {
        self.live_bytes.fetch_sub(size, Ordering::Relaxed);
    }
}

impl Default for Counting {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the wrapper only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            self.grew(layout.size());
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            self.grew(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(pointer, layout) };
        self.shrank(layout.size());
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `dealloc` for the old block; `new_size` is the caller's contract.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            // Count the new block before freeing the old one: a moving realloc holds both.
            self.grew(new_size);
            self.shrank(layout.size());
        }
        moved
    }
}
