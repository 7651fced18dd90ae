//! The scenario entry point: TOML text loaded from a string as `obsim run` loads a file
//! (`Scenario::parse`: serde, the schema's ranges, every rule between keys), and, when
//! accepted, expanded into its hosts (what the run would register) and the app's config.
//!
//! Why: everything `parse` accepts must be runnable; a count that wraps or a range the
//! schema misses shows up here as a panic, a hang (the fuzzer's timeout) or a budget overrun.

use std::path::Path;

use super::Budget;
use crate::scenario::Scenario;

/// Heap a scenario's load may hold whatever its size: every part's defaults, the parsed
/// document, an error's rendering with its source line.
const FIXED_BYTES: usize = 1 << 20;
/// Heap per byte of scenario text: the TOML document, its value tree and the typed config.
const BYTES_PER_INPUT_BYTE: usize = 128;

/// Computes the schema the range check reads, once per process (it is cached for good).
pub(super) fn warm_up() {
    let _schema = crate::scenario::schema::json_schema_cached();
}

/// Loads `input` (if it is UTF-8) as a scenario file named `fuzz.toml`.
pub(super) fn load(input: &[u8]) -> Budget {
    let budget =
        Budget::new(FIXED_BYTES + BYTES_PER_INPUT_BYTE * input.len(), FIXED_BYTES + BYTES_PER_INPUT_BYTE * input.len());
    let Ok(text) = std::str::from_utf8(input) else {
        return budget;
    };
    match Scenario::parse(Path::new("fuzz.toml"), text) {
        Ok(scenario) => {
            let hosts = scenario.placed_hosts();
            assert!(hosts.len() > 1, "scenario: an accepted topology places {} hosts", hosts.len());
            let _app = scenario.app_config();
        }
        Err(error) => assert_eq!(error.file, Path::new("fuzz.toml"), "scenario: an error names another file"),
    }
    budget
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_scenario_loads_and_a_broken_one_is_refused() {
        warm_up();
        load(b"name = \"x\"\nduration = \"1m\"\n[topology]\nmachines = [{ type = \"comfyui\", count = 1 }]\n");
        load(b"name = 3\n");
        load(&[0xff, 0xfe]);
    }
}
