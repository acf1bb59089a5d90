#!/bin/bash
# The README's test command (`npm test`): installs what the tests need, type-checks, and runs every
# test with node's own runner, whose closing summary is what CI counts.
set -euo pipefail
cd "$(dirname "$0")/.."

bash setup/install.sh
echo "== type check"
npx tsc -p .
echo "== tests"
mapfile -t tests < <(find test -name '*.test.ts' | sort)
node --import tsx --test --test-reporter=spec "${tests[@]}"
