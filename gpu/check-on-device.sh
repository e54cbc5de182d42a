#!/usr/bin/env bash
# Device check for hardmine-gpu, one short script for a GPU host (the `device` machine):
# builds with CUDA, runs the GPU-vs-core tests (ignored on CPU machines), runs the golden
# cases through `hardmine parity --path gpu`, and times the fused focal kernel. Well under 8 min.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
cargo test --release -p hardmine-gpu --features cuda -- --include-ignored 2>&1 | tail -n 5
cargo build --release -p hardmine-cli --features gpu
./target/release/hardmine parity --path gpu --check golden/*.jsonl | tail -n 3
for n in 1048576 268435456; do
    ./target/release/hardmine bench --op focal --op bce --path gpu --n "$n" --repeats 5
done
