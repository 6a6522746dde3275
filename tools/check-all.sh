#!/bin/sh
# check-all.sh - build with warnings as errors and run the whole test suite,
# then build again with AddressSanitizer + UndefinedBehaviorSanitizer in a
# separate directory and run the suite once more, then fuzz the parsers
# briefly. Run from the top of a checkout.
set -e
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
# The demo command configures in the source tree; out-of-tree builds need it clean.
if [ -f config.status ]; then
	echo "=== the source tree was configured in place (make demo): make distclean ==="
	make distclean >/dev/null
fi
./autogen.sh

rm -rf build-werror build-asan
mkdir build-werror build-asan

echo "=== build with -Werror, make check ==="
(cd build-werror && ../configure --enable-werror && make -j2 && make -j2 check) || {
	cat build-werror/test-suite.log 2>/dev/null; exit 1; }

echo "=== build with ASan + UBSan, make check ==="
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ../configure --enable-werror --enable-sanitizers CC=gcc && make -j2 && make -j2 check) || {
	cat build-asan/test-suite.log 2>/dev/null; exit 1; }

echo "=== fuzz the front-end parsers (libFuzzer, ${FUZZ_SECONDS:-20} s each) ==="
(cd build-werror && make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-20}")

echo "=== benchmark (report only) ==="
(cd build-werror && make bench BENCH_ARGS=--quick)

# One closing line over both passes, in the plain "N passed, N failed" form.
passed=0
failed=0
for log in build-werror/test-suite.log build-asan/test-suite.log; do
	p=$(sed -n 's/^# PASS: *//p' "$log")
	f=$(sed -n 's/^# FAIL: *//p' "$log")
	e=$(sed -n 's/^# ERROR: *//p' "$log")
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0}))
done
echo "=== all test passes succeeded ==="
echo "tests: $passed passed, $failed failed"
