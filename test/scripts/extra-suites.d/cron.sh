#!/usr/bin/env bash
# Extra suite: the cron parser and next-fire calculator (src/cron.c), which
# is plain C and needs no server.
#
#   1. compile src/cron.c warning-free with gcc and clang-14 (-std=c99
#      -Wall -Wextra -Werror, plus the prototype and declaration rules of
#      PostgreSQL's own CFLAGS);
#   2. build test/unit/cron_test.c with gcc and run it (TAP);
#   3. build test/fuzz/cron_fuzz.c with clang-14 (libFuzzer, ASan, UBSan)
#      and fuzz for TEGO_CRON_FUZZ_SECONDS (default 60; 0 skips) from a copy
#      of test/fuzz/corpus; any crash or failed check fails the suite.
#
# Runs from any directory, as root or not; builds in a mktemp folder and
# writes nothing into the checkout.  The folder is removed on success and
# kept (path printed, with any crashing input) on failure.  When clang-14 or
# libclang-rt-14-dev is missing it installs them as root, and fails with
# the command to run otherwise.  Exit 0 = passed, 1 = failed; the last line
# is the summary.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TOP=$(cd "$HERE/../../.." && pwd -P)
FUZZ_SECONDS=${TEGO_CRON_FUZZ_SECONDS:-60}
CFLAGS_STRICT=(-std=c99 -Wall -Wextra -Werror -Wmissing-prototypes
	-Wdeclaration-after-statement -Wpointer-arith -pedantic)

BUILD=$(mktemp -d "${TMPDIR:-/tmp}/tego-cron.XXXXXX") || { echo "cron: mktemp failed"; exit 1; }
PASS=0
FAIL=0
DETAIL=()

# finish: print the summary line, clean up, exit
finish() {
	if [ "$FAIL" -eq 0 ]; then
		rm -rf "$BUILD"
	else
		echo "(cron build folder kept: $BUILD)"
	fi
	local line="== cron: $PASS passed, $FAIL failed" joined
	if [ ${#DETAIL[@]} -gt 0 ]; then
		joined=$(printf '%s; ' "${DETAIL[@]}")
		line+=" (${joined%; })"
	fi
	echo "$line"
	[ "$FAIL" -eq 0 ] && exit 0
	exit 1
}
trap 'echo "cron: interrupted"; FAIL=$((FAIL + 1)); finish' INT TERM

step_ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
step_fail() { FAIL=$((FAIL + 1)); echo "not ok - $1"; }

# --- 1. warnings -------------------------------------------------------------
for cc in gcc clang-14; do
	if ! command -v "$cc" >/dev/null 2>&1; then
		[ "$cc" = gcc ] && step_fail "gcc is not installed"
		continue # clang-14 is installed (or reported) below
	fi
	if "$cc" "${CFLAGS_STRICT[@]}" -O2 -c "$TOP/src/cron.c" -o "$BUILD/cron-$cc.o" 2>"$BUILD/cc-$cc.log"; then
		step_ok "src/cron.c compiles warning-free with $cc"
	else
		cat "$BUILD/cc-$cc.log"
		step_fail "src/cron.c compiles warning-free with $cc"
	fi
done

# --- 2. unit test ------------------------------------------------------------
if gcc -std=c99 -Wall -Wextra -Werror -O2 -I "$TOP/src" \
	"$TOP/test/unit/cron_test.c" "$TOP/src/cron.c" -o "$BUILD/cron_test" 2>"$BUILD/unit-cc.log"; then
	"$BUILD/cron_test" >"$BUILD/unit.out" 2>&1
	rc=$?
	grep -E '^not ok|^#' "$BUILD/unit.out"
	unit_summary=$(tail -n 1 "$BUILD/unit.out")
	if [ "$rc" -eq 0 ]; then
		step_ok "unit test: $unit_summary"
	else
		tail -n 5 "$BUILD/unit.out"
		step_fail "unit test (exit $rc): $unit_summary"
	fi
	DETAIL+=("unit: $unit_summary")
else
	cat "$BUILD/unit-cc.log"
	step_fail "unit test builds"
fi

# --- 3. fuzzing --------------------------------------------------------------
if [ "$FUZZ_SECONDS" = 0 ]; then
	echo "# fuzzing skipped (TEGO_CRON_FUZZ_SECONDS=0)"
	finish
fi

# true when clang-14 and its libFuzzer runtime are installed
have_fuzz_tools() {
	command -v clang-14 >/dev/null 2>&1 &&
		dpkg-query -W -f='${Status}' libclang-rt-14-dev 2>/dev/null | grep -q ' installed$'
}

if ! have_fuzz_tools; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "# installing clang-14 libclang-rt-14-dev"
		export DEBIAN_FRONTEND=noninteractive
		if ! { apt-get update -q && apt-get install -y -q clang-14 libclang-rt-14-dev; } \
			>"$BUILD/apt.log" 2>&1; then
			tail -n 20 "$BUILD/apt.log"
		fi
	else
		echo "cron: clang-14 and libclang-rt-14-dev are needed to fuzz; as root run:"
		echo "  apt-get update && apt-get install -y clang-14 libclang-rt-14-dev"
	fi
fi
if ! have_fuzz_tools; then
	step_fail "clang-14 and libclang-rt-14-dev are installed"
	finish
fi

if ! clang-14 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Werror -I "$TOP/src" \
	"$TOP/test/fuzz/cron_fuzz.c" "$TOP/src/cron.c" -o "$BUILD/cron_fuzz" 2>"$BUILD/fuzz-cc.log"; then
	cat "$BUILD/fuzz-cc.log"
	step_fail "fuzzer builds with clang-14"
	finish
fi
# the clang-14 warnings step above is skipped when clang-14 was just installed
if [ ! -f "$BUILD/cron-clang-14.o" ]; then
	if clang-14 "${CFLAGS_STRICT[@]}" -O2 -c "$TOP/src/cron.c" -o "$BUILD/cron-clang-14.o" 2>"$BUILD/cc-clang.log"; then
		step_ok "src/cron.c compiles warning-free with clang-14"
	else
		cat "$BUILD/cc-clang.log"
		step_fail "src/cron.c compiles warning-free with clang-14"
	fi
fi

mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
cp "$TOP"/test/fuzz/corpus/* "$BUILD/corpus/" 2>/dev/null
(cd "$BUILD" &&
	ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	./cron_fuzz -max_total_time="$FUZZ_SECONDS" -timeout=20 -print_final_stats=1 \
		-artifact_prefix="$BUILD/artifacts/" "$BUILD/corpus" >"$BUILD/fuzz.log" 2>&1)
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$BUILD/fuzz.log" | tail -n 1)
cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$BUILD/fuzz.log" | tail -n 1)
fuzz_summary="${runs:-?} runs in ${FUZZ_SECONDS}s, ${cov:-no coverage line}"
artifacts=$(find "$BUILD/artifacts" -type f 2>/dev/null)
if [ "$rc" -eq 0 ] && [ -z "$artifacts" ]; then
	step_ok "fuzzing: $fuzz_summary, no crash"
	DETAIL+=("fuzz: $fuzz_summary, no crash")
else
	grep -E -A12 'check failed|ERROR: |runtime error|SUMMARY' "$BUILD/fuzz.log" | head -n 60
	for f in $artifacts; do
		echo "--- crashing input $f (reproduce: $BUILD/cron_fuzz $f):"
		od -c "$f" | head -n 10
	done
	step_fail "fuzzing (exit $rc): $fuzz_summary"
	DETAIL+=("fuzz: FAILED")
fi
finish
