#!/usr/bin/env bash
# Regenerates examples/models/kubetune-mini: a 0.76M-parameter Llama (hidden 128, 4 layers, 4 heads,
# 2 KV heads, intermediate 344, tied embeddings, the 299-token byte-level BPE of init-tiny-model)
# pretrained with the KubeTune trainer (method Full) on the generated corpus in
# examples/data/pretrain-corpus. About 5 minutes on one core. Run from anywhere:
#   examples/models/pretrain-kubetune-mini.sh [work-dir]
# The trainer must be built first: mvn -B -q -pl trainer-image -am package -Dmaven.test.skip=true
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$(mkdir -p "${1:-/tmp/kubetune-mini-pretrain}" && cd "${1:-/tmp/kubetune-mini-pretrain}" && pwd)"
STEPS="${STEPS:-600}"
TRAINER="$ROOT/trainer-image/bin/trainer"
CORPUS="$ROOT/examples/data/pretrain-corpus"

python3 "$CORPUS/generate.py"
rm -rf "$WORK/init" "$WORK/run"
"$TRAINER" init-tiny-model --output "$WORK/init" --seed 1 \
    --hidden 128 --layers 4 --heads 4 --kv-heads 2 --intermediate 344
cat > "$WORK/pretrain.json" <<JSON
{
  "apiVersion": "kubetune.io/trainer-config/v1",
  "kind": "TrainerConfig",
  "job": { "namespace": "default", "name": "kubetune-mini-pretrain", "uid": "0", "trainingRevision": "pretrain-1" },
  "baseModel": { "uri": "file://$WORK/init/" },
  "dataset": { "train": "file://$CORPUS/train.jsonl", "validation": "file://$CORPUS/test.jsonl", "format": "completion" },
  "method": { "type": "Full" },
  "hyperparameters": { "maxSteps": $STEPS, "learningRate": 0.003, "batchSize": 32, "gradientAccumulation": 1,
    "maxSequenceLength": 256, "warmupSteps": 30, "weightDecay": 0.01, "maxGradNorm": 1.0, "seed": 42,
    "evalEverySteps": 200 },
  "checkpoints": { "uri": "file://$WORK/run/", "everySteps": 1000, "keepLast": 1 },
  "output": { "uri": "file://$WORK/run/final/" },
  "evaluation": { "metric": "eval_loss", "compareWithBase": true }
}
JSON
start=$(date +%s)
"$TRAINER" train --config "$WORK/pretrain.json" | tee "$WORK/pretrain.log" | grep -v '"progress"'
echo "pretraining took $(( $(date +%s) - start )) s"
OUT="$ROOT/examples/models/kubetune-mini"
mkdir -p "$OUT"
cp "$WORK/run/final/config.json" "$WORK/run/final/model.safetensors" "$WORK/run/final/tokenizer.json" "$OUT/"
cp "$WORK/run/final/metrics.json" "$OUT/pretrain-metrics.json"
chmod 644 "$OUT"/*   # the trainer writes some files 0600
python3 - "$OUT/pretrain-metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("held-out eval loss: random init %.3f (perplexity %.1f) -> pretrained %.3f (perplexity %.2f)" % (
    m["initial"]["eval_loss"], m["initial"]["perplexity"], m["final"]["eval_loss"], m["final"]["perplexity"]))
PY
