#!/usr/bin/env bash
# The core's size option `small` on the target, called by check.sh:
# - the library alone, as the smallest integration links it: `size_probe` (focal, GHM-C and
#   OHEM on one path, no formatting) built with and without those calls; the flash difference
#   is the library's code and tables, libm and compiler-builtins included. Per path (f32,
#   Q15.16), with and without `small`. Fails if `small` exceeds its targets: 24 KiB on f32,
#   32 KiB on Q15.16. `--nm` also lists the largest symbols of each build with the calls.
# - `small` changes no result: `parity_probe` (every call whose code `small` changes, lengths
#   around the block sizes, both paths) and the firmware itself, built with and without it,
#   print identical results under QEMU; the firmware's instruction counts with `small`.
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
qemu() { # qemu ELF OUT: run under QEMU with instruction counting
    timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -icount shift=0 \
        -semihosting-config enable=on,target=native -kernel "$1" >"$2"
}
small_dir=target/small # `small` builds in their own target directory: nothing is rebuilt twice
cargo build --release --locked -q --bin parity_probe --bin firmware
cargo build --release --locked -q --bin parity_probe --bin firmware --features small --target-dir "$small_dir"
for v in default small; do
    dir=target
    [[ $v == small ]] && dir=$small_dir
    qemu "$dir/thumbv7em-none-eabihf/release/parity_probe" "$out/parity-$v.out"
    qemu "$dir/thumbv7em-none-eabihf/release/firmware" "$out/firmware-$v.out"
    grep -q '^parity done$' "$out/parity-$v.out"
    grep -q '^done true$' "$out/firmware-$v.out"
done
if grep '^parity .* errors' "$out/parity-default.out" | grep -qv ' errors 0$'; then
    echo "parity_probe: a library call failed"
    status=1
fi
cases=$(grep -c '^parity .* errors' "$out/parity-default.out" || true)
if [ "$cases" -eq 0 ]; then
    echo "parity_probe printed no cases"
    exit 1
fi
results() { grep -E '^(q16|f32|checksum) ' "$1"; }
if diff <(grep '^parity' "$out/parity-default.out") <(grep '^parity' "$out/parity-small.out") >/dev/null \
    && diff <(results "$out/firmware-default.out") <(results "$out/firmware-small.out") >/dev/null; then
    echo "small vs default on the target: $cases parity cases and the firmware's $(results "$out/firmware-small.out" | wc -l) results identical"
else
    echo "small vs default on the target: results DIFFER"
    diff <(grep '^parity' "$out/parity-default.out") <(grep '^parity' "$out/parity-small.out") | head -10 || true
    diff <(results "$out/firmware-default.out") <(results "$out/firmware-small.out") | head -10 || true
    status=1
fi
awk -v label="with small" -f instructions.awk "$out/firmware-small.out"
exit $status
