//! Fuzz target `roundtrip_resp_request`: `obsim::fuzzing::Target::RoundtripRespRequest` under the counting allocator
//! (README "Fuzzing"; `tests/fuzz_corpus.rs` replays this target's corpus on stable).
#![no_main]

use obsim::fuzzing::{Target, run};
use obsim_fuzz::METER;

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    run(Target::RoundtripRespRequest, input, &METER);
});
