//! Fuzz target `scenario`: `obsim::fuzzing::Target::Scenario` under the counting allocator
//! (README "Fuzzing"; `tests/fuzz_corpus.rs` replays this target's corpus on stable).
#![no_main]

use obsim::fuzzing::{Target, run};
use obsim_fuzz::METER;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    run(Target::Scenario, input, &METER);
});
