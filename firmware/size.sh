#!/usr/bin/env bash
# The library alone, as the smallest integration links it: `size_probe` (focal, GHM-C and OHEM
# on one path, no formatting) built with and without those calls; the flash difference is the
# library's code and tables, libm and compiler-builtins included. Per path (f32, Q15.16), with
# and without the core's size option `small`. Fails if `small` exceeds its targets: 24 KiB on
# f32, 32 KiB on Q15.16. Called by check.sh; `--nm` also lists the largest symbols of each
# build with the calls.
set -euo pipefail
cd "$(dirname "$0")"
tools="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin"
out=target/size-probe
mkdir -p "$out"

flash() { # everything loaded from flash (as check.sh counts it)
    "$tools/llvm-size" -A "$1" | awk '$1 ~ /^\.(vector_table|text|rodata|data)$/ { f += $2 } END { print f }'
}
build() { # build NAME FEATURES...: the probe with those features, copied to $out/NAME
    local name=$1
    shift
    cargo build --release --locked -q --bin size_probe --features "probe $*"
    cp target/thumbv7em-none-eabihf/release/size_probe "$out/$name"
}
kib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1024 }'; }

status=0
for path in f32 q16; do
    build "$path-base" "$path"
    build "$path-full" "$path calls"
    build "$path-small" "$path calls small"
    base=$(flash "$out/$path-base")
    full=$(( $(flash "$out/$path-full") - base ))
    small=$(( $(flash "$out/$path-small") - base ))
    case $path in
        f32) label=f32 target=24 ;;
        q16) label=Q15.16 target=32 ;;
    esac
    printf 'library alone, %s: %s KiB with small (%s KiB without; %d and %d B, program without the calls %d B)\n' \
        "$label" "$(kib "$small")" "$(kib "$full")" "$small" "$full" "$base"
    if (( small > target * 1024 )); then
        printf 'library alone, %s: %d B with small exceeds the %d KiB target\n' "$label" "$small" "$target"
        status=1
    fi
    if [[ ${1:-} == --nm ]]; then
        for v in full small; do
            echo "-- largest symbols, $path-$v"
            "$tools/llvm-nm" --size-sort --print-size --radix=d -C "$out/$path-$v" | tail -25
        done
    fi
done
exit $status
