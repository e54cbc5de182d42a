#!/usr/bin/env bash
# Device check for hardmine-gpu, one short script for a GPU host (the `device` machine):
# builds with CUDA, runs the GPU-vs-core tests (ignored on CPU machines), runs the golden
# cases through `hardmine parity --path gpu`, and prints throughput and effective bandwidth
# (12 bytes per element: logit and target read, gradient written) at N = 2^20 and 2^28.
# Well under 8 minutes on an H200.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
cargo test --release -p hardmine-gpu --features cuda -- --include-ignored 2>&1 | tail -n 8
cargo build --release -p hardmine-cli --features gpu
./target/release/hardmine parity --path gpu --check golden/*.jsonl | tail -n 3
for n in 1048576 268435456; do
    for op in focal bce ghm_c; do
        line=$(./target/release/hardmine bench --op "$op" --path gpu --n "$n" --repeats 5 --json)
        echo "$line"
        python3 -c 'import json,sys; m=json.loads(sys.argv[1]); print(f"  {m[\"op\"]} n={m[\"n\"]}: {m[\"melem_per_s\"]:.0f} Melem/s, {m[\"melem_per_s\"]*12e-3:.0f} GB/s effective")' "$line"
    done
done
