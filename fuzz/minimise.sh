#!/bin/sh
# Minimises fuzz/corpus/<target>/ for each target given (all when none): keeps every named
# file (seed-*, crash-*, regress-*) and, of the fuzzer's own finds, only those adding
# coverage to them (libFuzzer -merge=1). `cargo fuzz cmin` would rename every file to its
# hash, losing the names that say what an input found (README "Fuzzing").
# Run from fuzz/ after `cargo +nightly fuzz build -s none`.
set -eu
bin=target/x86_64-unknown-linux-gnu/release
targets=${*:-$(cargo +nightly fuzz list)}
for target in $targets; do
    finds=$(mktemp -d)
    find "corpus/$target" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'crash-*' ! -name 'regress-*' \
        -exec mv {} "$finds/" \;
    "$bin/$target" -merge=1 -max_len=4096 "corpus/$target" "$finds" 2>/dev/null || true
    rm -rf "$finds"
    echo "$target: $(ls "corpus/$target" | wc -l) files"
done
