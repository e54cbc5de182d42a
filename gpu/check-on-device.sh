#!/usr/bin/env bash
# Device check for hardmine-gpu, one short script for a GPU host (the `device` machine):
# builds with CUDA, runs the GPU-vs-core tests (ignored on CPU machines), runs the golden
# cases through `hardmine parity --path gpu`, and prints throughput and effective bandwidth
# (12 bytes per element: logit and target read, gradient written) at N = 2^20 and 2^28.
# Well under 8 minutes on an H200.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# A failure is reported and the run goes on, so that one run brings back every figure; the
# script exits non-zero at the end if any step failed.
failed=0
fail() { echo "check-on-device: $1 FAILED"; failed=1; }
cargo test --release -p hardmine-gpu --features cuda -- --include-ignored 2>&1 | tail -n 40 ||
    fail "GPU tests"
cargo build --release -p hardmine-cli --features gpu
./target/release/hardmine parity --path gpu --check golden/*.jsonl | tail -n 12 ||
    fail "golden cases on the GPU"
for n in 1048576 268435456; do
    for op in sigmoid_focal bce_with_logits ghm_c; do
        line=$(./target/release/hardmine bench --op "$op" --path gpu --n "$n" --repeats 5 --json) ||
            { line="{\"op\":\"$op\",\"error\":\"bench failed\",\"melem_per_s\":0}"; fail "$op bench"; }
        echo "$line"
        echo "$line" | sed -E 's/.*"melem_per_s":([0-9.eE+-]+).*/\1/' |
            awk -v op="$op" -v n="$n" '{ printf "  %s n=%s: %.0f Melem/s, %.0f GB/s effective\n", op, n, $1, $1 * 0.012 }'
    done
    # OHEM top-512 from host slices (the losses' upload included).
    ./target/release/hardmine bench --op ohem --path gpu --n "$n" --repeats 5 --json ||
        fail "ohem bench"
done
exit "$failed"
