#!/usr/bin/env bash
# Builds the fuzz targets (Fuzz/Sources) with libFuzzer and AddressSanitizer into .build-fuzz and
# runs each on a copy of its seed corpus (Fuzz/Corpus/<name>), so that the repository is left as
# it was.
#
#   scripts/fuzz.sh --runs 1000000                 # the full run: a million inputs per target
#   scripts/fuzz.sh --seconds 15                   # CI's short run
#   scripts/fuzz.sh --runs 200000 fuzz-envelope    # some targets only
#   scripts/fuzz.sh --build-only
#
# Fails when a target crashes (a trap, a failed check or a memory error), leaks, hangs (one input
# for more than 10 s) or goes over 2 GB. The input that did it is kept in Fuzz/artifacts/<name>/
# (ignored by git); `.build-fuzz/debug/fuzz-<name> <file>` runs it again. Prints, per target,
# libFuzzer's count of inputs run and their rate.
set -euo pipefail
cd "$(dirname "$0")/.."

all=(fuzz-signature-headers fuzz-envelope fuzz-dead-letter-line fuzz-configuration)
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

runs=""
seconds=""
build_only=false
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --build-only) build_only=true; shift ;;
    -h | --help) usage; exit 0 ;;
    fuzz-*) targets+=("$1"); shift ;;
    *) usage >&2; exit 2 ;;
    esac
done
if [ -z "$runs$seconds" ] && ! $build_only; then
    usage >&2
    exit 2
fi
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# The fuzz targets exist only with WEBHOOK_GATEWAY_FUZZ set (see Package.swift). lld links them:
# gold fails on the instrumented objects. Builds on a shared machine take turns on one lock.
flags=(-Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -use-ld=lld)
lock=()
command -v flock >/dev/null && lock=(flock /tmp/swift-build.lock)
build_start=$(date +%s)
for target in "${targets[@]}"; do
    "${lock[@]}" env WEBHOOK_GATEWAY_FUZZ=1 swift build --build-path .build-fuzz --product "$target" "${flags[@]}"
done
echo "fuzz: built ${targets[*]} in $(($(date +%s) - build_start)) s"
$build_only && exit 0
bin=.build-fuzz/debug

work=$(mktemp -d /tmp/webhook-gateway-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
    name=${target#fuzz-}
    mkdir -p "$work/$name/corpus" "$work/$name/tmp" "Fuzz/artifacts/$name"
    cp Fuzz/Corpus/"$name"/* "$work/$name/corpus/"
    options=(-timeout=10 -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 -artifact_prefix="Fuzz/artifacts/$name/")
    [ -n "$runs" ] && options+=(-runs="$runs")
    [ -n "$seconds" ] && options+=(-max_total_time="$seconds")
    [ -f "Fuzz/Dictionaries/$name.dict" ] && options+=(-dict="Fuzz/Dictionaries/$name.dict")
    log="$work/$name.log"
    start=$(date +%s)
    # Swift's own crash backtracer would fight the fuzzer's signal handlers: libFuzzer reports.
    # Leaks are looked for after each input that allocated more than it freed (libFuzzer's
    # -detect_leaks), not at exit, where the targets' long-lived globals would be reported (a
    # Swift enum keeps its case in a pointer's spare bits, which LeakSanitizer does not follow).
    # Fuzz/lsan-suppressions.txt names the one leak known outside this package.
    # The target's temporary files (the configuration's secret files) go to the work folder.
    if TMPDIR="$work/$name/tmp" SWIFT_BACKTRACE=enable=no \
        ASAN_OPTIONS=detect_leaks=1:leak_check_at_exit=0 LSAN_OPTIONS="suppressions=$PWD/Fuzz/lsan-suppressions.txt:print_suppressions=0" \
        "$bin/$target" "${options[@]}" "$work/$name/corpus" >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$target")
        tail -n 60 "$log"
    fi
    elapsed=$(($(date +%s) - start))
    executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    done_line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1 || true)
    line="$target: $status, ${executed:-?} inputs in ${elapsed} s (${rate:-?} exec/s)${done_line:+; $done_line}"
    echo "fuzz: $line"
    summary+=("$line")
done

echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failed: ${failed[*]} (inputs in Fuzz/artifacts/)" >&2
    exit 1
fi
