//! The fuzz targets' shared harness: the counting global allocator and the `Meter` that
//! `obsim::fuzzing::run` reads it through (README "Fuzzing").

use counting_alloc::Counting;
use obsim::fuzzing::Meter;

/// Every Rust allocation of a fuzz target goes through this counter.
#[global_allocator]
static ALLOCATOR: Counting = Counting::new();

/// The allocator, as `obsim::fuzzing::run` measures with it.
pub struct CountingMeter(&'static Counting);

impl Meter for CountingMeter {
    fn reset(&self) {
        self.0.reset();
    }
    fn live_bytes(&self) -> usize {
        self.0.live_bytes()
    }
    fn peak_bytes(&self) -> usize {
        self.0.peak_bytes()
    }
    fn largest_bytes(&self) -> usize {
        self.0.largest_bytes()
    }
}

/// The meter every target hands to `obsim::fuzzing::run`.
pub static METER: CountingMeter = CountingMeter(&ALLOCATOR);
