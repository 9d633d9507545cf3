#!/usr/bin/env bash
# First-party plugins through the registry path, as any third-party pack: start a local registry, publish
# plugins/sd, plugins/samplers and plugins/lora to it, create an environment, `comfy install` them there, and run
# the txt2img + LoRA demo workflow in that environment (`comfy run --env demo`).
#
# Everything lives under output/demo/registry-demo/ (registry data, HEARTH_HOME with the environment, the
# registry config holding the token): the user's own home and config are never touched. Python packages the packs
# need beyond Hearth's own (regex, safetensors) come from PyPI, or from uv's cache there on later runs.
#
# Run from the repository root: examples/registry_demo.sh  (make demo runs it last)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
COMFY="${COMFY:-$ROOT/.venv/bin/comfy}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
WORK="$ROOT/output/demo/registry-demo"
MODELS="$ROOT/output/demo/models"
OUT="$ROOT/output/demo"
PACKS=(sd samplers lora)

export HEARTH_HOME="$WORK/home"
export COMFY_CONFIG="$WORK/config.toml"
unset COMFY_REGISTRY_URL COMFY_ENV HEARTH_PLUGINS HEARTH_DISABLE_PLUGINS HEARTH_CUSTOM_NODES

say() { printf '\n== %s\n' "$*"; }

# A fresh registry, config and environment each run; uv's download cache (under HEARTH_HOME/cache) is kept.
rm -rf "$WORK/registry" "$WORK/config.toml" "$WORK/home/envs" "$WORK/home/current-env" "$WORK/registry.log"
mkdir -p "$WORK"

say "registry: a publisher 'hearth' (the plugins' PublisherId) and a publish token"
"$COMFY" registry admin create-user demo --data "$WORK/registry"
"$COMFY" registry admin create-publisher hearth --owner demo --name "Hearth" --data "$WORK/registry"
# The registry holds an untrusted publisher's versions for review (comfy registry serve --review untrusted, the
# default); the first-party publisher is one an admin trusts, so its verified packs go active on a passing scan.
"$COMFY" registry admin trust hearth --reason "first-party plugins" --data "$WORK/registry"
# Hearth's own distribution names are reserved (no stranger's pack may take them); the admin lets these packs have them.
for pack in "${PACKS[@]}"; do
    "$COMFY" registry admin allow-name "hearth-$pack" --reason "first-party plugin" --data "$WORK/registry"
done
TOKEN="$("$COMFY" registry admin create-token --publisher hearth --data "$WORK/registry" 2>/dev/null)"

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
say "registry: comfy registry serve on $URL (log: $WORK/registry.log)"
"$COMFY" registry serve --host 127.0.0.1 --port "$PORT" --data "$WORK/registry" >"$WORK/registry.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    if "$PYTHON" -c "import httpx, sys; sys.exit(httpx.get('$URL/healthz', timeout=1).status_code != 200)" \
        2>/dev/null; then break; fi
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/registry.log"; echo "the registry did not start" >&2; exit 1; }
    sleep 0.1
done

"$COMFY" login --registry "$URL" --token "$TOKEN"

for pack in "${PACKS[@]}"; do
    say "publish plugins/$pack"
    "$COMFY" node publish "plugins/$pack"
done

say "wait for the registry to verify them"
for pack in "${PACKS[@]}"; do
    name="hearth-$pack"
    for i in $(seq 1 600); do
        status="$("$COMFY" info "$name" --json | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["versions"][0]["status"])')"
        [ "$status" != pending ] && break
        sleep 0.5
    done
    echo "$name: $status"
    [ "$status" = active ] || { echo "$name was not verified (status $status); see comfy info $name" >&2; exit 1; }
done
"$COMFY" search hearth

say "an environment, and the packs installed into it from the registry"
"$COMFY" env create demo
"$COMFY" install hearth-sd hearth-samplers hearth-lora --env demo
"$COMFY" list --env demo
"$COMFY" plugins --env demo

say "the demo workflow, run in that environment"
[ -f "$MODELS/checkpoints/tiny-sd1.safetensors" ] || "$COMFY" models make-tiny all --models-dir "$MODELS"
"$COMFY" run examples/workflows/txt2img_lora_sd1_api.json --env demo --models-dir "$MODELS" --out "$OUT"
