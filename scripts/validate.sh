#!/usr/bin/env bash
# Checks that every Swift file is formatted as .swift-format says. Run `scripts/validate.sh --fix`
# to rewrite the files in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."

files=$(git ls-files -co --exclude-standard -- '*.swift' | grep -v '^\.build')
if [ "${1:-}" = "--fix" ]; then
    swift-format format --configuration .swift-format --in-place $files
    exit 0
fi
if ! swift-format lint --strict --configuration .swift-format $files; then
    echo "validate: formatting differs; run scripts/validate.sh --fix" >&2
    exit 1
fi
echo "validate: formatting ok"
