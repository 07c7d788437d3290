#!/usr/bin/env bash
# npm run test:reliability — the reliability tests at full size, then a summary of their figures.
#
# Runs test/concurrency-*.test.ts, test/crash-*.test.ts and test/faults-s3.test.ts through tap
# (so that tap's before/after scripts start and stop Ceph RGW and the local KMS) with
# KMSCRYPT_RELIABILITY_FULL=1, which makes every scenario use its full size. Each scenario appends
# its figures as JSON lines to $KMSCRYPT_RELIABILITY_REPORT (test/support/reliability-report.ts);
# this script then prints the table: pushes attempted / landed / rejected / lost, kills survived,
# faults injected and outcomes, tamper cases tried and detected.
#
# The tamper tests (test/tamper-*.test.ts) report tamperTried / tamperDetected; they have one size.
#
# Extra arguments go to tap, e.g.: npm run test:reliability -- --reporter=terse
# KMSCRYPT_RELIABILITY_REPORT may be set to keep the figures in a file of your choice.
set -u
cd "$(dirname "$0")/.."

report="${KMSCRYPT_RELIABILITY_REPORT:-}"
if [ -z "$report" ]; then
  report="$(mktemp "${TMPDIR:-/tmp}/kmscrypt-reliability.XXXXXX")"
  trap 'rm -f "$report"' EXIT
else
  : > "$report"
fi
# KMSCRYPT_RELIABILITY_SIZE=npm-test runs the same files at the sizes npm test uses: a quicker
# re-run that still prints the table of figures.
case "${KMSCRYPT_RELIABILITY_SIZE:-full}" in
  full) export KMSCRYPT_RELIABILITY_FULL=1 ;;
  npm-test) unset KMSCRYPT_RELIABILITY_FULL ;;
  *) echo "test:reliability: KMSCRYPT_RELIABILITY_SIZE=${KMSCRYPT_RELIABILITY_SIZE} is not full or npm-test" >&2; exit 2 ;;
esac
export KMSCRYPT_RELIABILITY_REPORT="$report"

# bin/ runs dist/: test what the sources say.
npx tsc -p tsconfig.json || { echo "test:reliability: the build failed" >&2; exit 1; }

files=()
for f in test/concurrency-*.test.ts test/crash-*.test.ts test/faults-s3.test.ts test/tamper-*.test.ts; do
  [ -e "$f" ] && files+=("$f")
done
if [ "${#files[@]}" -eq 0 ]; then
  echo "test:reliability: no reliability test files found" >&2
  exit 1
fi

started=$(date +%s)
# Full size runs far longer than the per-file timeout npm test uses.
npx tap --disable-coverage --timeout=14400 "$@" "${files[@]}"
status=$?
elapsed=$(( $(date +%s) - started ))

echo
echo "test:reliability: ${#files[@]} files in ${elapsed} s (tap exit ${status})"
node --import=@tapjs/typescript/import -e '
const { readFigures, summarize, summaryProblems } = require("./test/support/reliability-report.ts");
const lines = readFigures(process.argv[1]);
console.log(summarize(lines));
const problems = summaryProblems(lines);
if (lines.length === 0) problems.push("no figures were recorded");
for (const p of problems) console.log(`PROBLEM: ${p}`);
process.exitCode = problems.length ? 1 : 0;
' "$report"
summary=$?

if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$summary"
