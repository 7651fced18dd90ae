#!/bin/sh
# Minimises fuzz/corpus/<target>/ for each target given (all when none): keeps every named
# file (seed-*, crash-*, regress-*) and, of the fuzzer's own finds, those adding edge
# coverage to them (libFuzzer -merge=1 -use_counters=0), at most FINDS_LIMIT of them, the
# smallest first, so that the repository keeps a few hundred small files. `cargo fuzz cmin`
# would rename every file to its hash, losing the names that say what an input found
# (README "Fuzzing"). Run from fuzz/ after `cargo +nightly fuzz build -s none`.
set -eu
bin=target/x86_64-unknown-linux-gnu/release
finds_limit=${FINDS_LIMIT:-20}
targets=${*:-$(cargo +nightly fuzz list)}
for target in $targets; do
    finds=$(mktemp -d)
    find "corpus/$target" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' ! -name 'regress-*' \
        -exec mv {} "$finds/" \;
    "$bin/$target" -merge=1 -use_counters=0 -max_len=4096 "corpus/$target" "$finds" 2>/dev/null || true
    rm -rf "$finds"
    find "corpus/$target" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' ! -name 'regress-*' \
        -printf '%s %p\n' | sort -n -k1,1 -k2,2 | tail -n +"$((finds_limit + 1))" | cut -d' ' -f2- | xargs -r rm
    echo "$target: $(ls "corpus/$target" | wc -l) files"
done
