#!/usr/bin/env bash
# Writes the admin API's OpenAPI document as the binary serves it (/admin/openapi.json) from
# docs/admin-api.yaml, the document people edit: Sources/WebhookGateway/Admin/AdminAPIDocument.swift.
# With --check, fails if that file is not what the YAML gives (CI runs this; a test compares the
# document's routes with the router's). Needs python3 with PyYAML (installed with pip if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
out=Sources/WebhookGateway/Admin/AdminAPIDocument.swift
generated=$(python3 - <<'PY'
import json, yaml
with open("docs/admin-api.yaml", encoding="utf-8") as f:
    document = yaml.safe_load(f)
text = json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False)
assert '"""#' not in text
print("// Written by scripts/openapi.sh from docs/admin-api.yaml: edit that file and run the script.")
print("")
print("/// The admin API's OpenAPI 3.1 document, served at `/admin/openapi.json`.")
print("enum AdminAPIDocument {")
print('    static let json = #"""')
for line in text.splitlines():
    print("        " + line if line else "")
print('        """#')
print("}")
PY
)
if [ "${1:-}" = "--check" ]; then
    if ! diff -q <(printf '%s\n' "$generated") "$out" >/dev/null; then
        echo "openapi: $out is not what docs/admin-api.yaml gives; run scripts/openapi.sh" >&2
        exit 1
    fi
    echo "openapi: $out matches docs/admin-api.yaml"
else
    printf '%s\n' "$generated" > "$out"
    echo "openapi: wrote $out"
fi
