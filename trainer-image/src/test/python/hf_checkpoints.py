"""Random-weight Hugging Face checkpoints at real shapes, written by transformers, and their logits.

  hf_checkpoints.py make SPECS_JSON OUT_ROOT
      SPECS_JSON: {"NAME": {"model_type": ..., "seed": ..., "max_shard_size": ..., "config": {...},
                  "ids": [...], "config_style": "transformers5" | "transformers4"}, ...}
      For each spec, into OUT_ROOT/NAME (one process, so torch is imported once):
      Builds AutoConfig.for_model(model_type, **config), a model from it with every parameter
      random (biases and norm weights too, so that a missing bias or norm shows), saves it in bf16
      with save_pretrained(OUT_DIR, max_shard_size=...) exactly as transformers writes it, then
      loads it back with dtype=float32 and eager attention and writes the logits of `ids` to
      OUT_DIR/reference-logits.f32 (raw little-endian float32, seq x vocab); no logits when `ids`
      is empty (the loader benchmark needs only the files).
      "lm_head_in_file": "equal" | "different" also writes lm_head.weight for a tied model.
      "transformers4" rewrites config.json in the 4.x style afterwards (top-level rope_theta,
      rope_scaling, torch_dtype) and checks transformers still reads it to the same config.
      Prints {NAME: {"shape": [seq, vocab], "files": [...], ...}} as JSON.
"""
import gc
import json
import os
import sys

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.initialization import no_init_weights


def randomize(model, seed):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float32)
            if name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.1 * noise)
            else:
                parameter.copy_(0.02 * noise)


def to_transformers4_style(config_path):
    with open(config_path) as f:
        config = json.load(f)
    rope = config.pop("rope_parameters")
    config["rope_theta"] = rope.pop("rope_theta")
    if rope.get("rope_type", "default") != "default":
        config["rope_scaling"] = rope
    config["torch_dtype"] = config.pop("dtype")
    with open(config_path, "w") as f:
        json.dump(config, f, indent=2)


def reference_logits(out_dir, ids):
    model = AutoModelForCausalLM.from_pretrained(
        out_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].to(torch.float32).contiguous()
    logits.numpy().astype("<f4").tofile(os.path.join(out_dir, "reference-logits.f32"))
    return list(logits.shape), model.config


def make(spec, out_dir):
    torch.manual_seed(spec["seed"])
    config = AutoConfig.for_model(spec["model_type"], **spec["config"])
    # Every parameter is overwritten below: skip transformers' own initialisation (the slowest
    # part at these shapes) and build the model in bf16 directly. Copying fp32 noise into bf16
    # rounds to nearest even, as .to(torch.bfloat16) does.
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.tie_weights()  # part of the initialisation skipped above
    randomize(model, spec["seed"])
    lm_head = spec.get("lm_head_in_file")
    if lm_head:
        # A tied model whose file also holds lm_head.weight: a copy of the embedding ("equal"),
        # or other values ("different"; transformers then unties and warns).
        embedding = model.get_input_embeddings().weight.detach().clone()
        if lm_head == "different":
            embedding = embedding.flip(0)
        model.lm_head.weight = torch.nn.Parameter(embedding)
    model.save_pretrained(out_dir, max_shard_size=spec.get("max_shard_size", "300MB"))
    del model
    before = AutoConfig.from_pretrained(out_dir).to_dict()
    if spec.get("config_style") == "transformers4":
        to_transformers4_style(os.path.join(out_dir, "config.json"))
        after = AutoConfig.from_pretrained(out_dir).to_dict()
        for key in ("rope_parameters", "head_dim", "eos_token_id"):
            if before.get(key) != after.get(key):
                raise SystemExit(f"4.x-style config reads differently: {key} "
                                 f"{before.get(key)} != {after.get(key)}")
    files = sorted(f for f in os.listdir(out_dir) if f.endswith(".safetensors"))
    result = {"files": files, "transformers": transformers.__version__}
    if spec["ids"]:
        shape, config = reference_logits(out_dir, spec["ids"])
        result.update({"shape": shape, "rope_parameters": config.rope_parameters})
    return result


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    if sys.argv[1] != "make":
        raise SystemExit("usage: hf_checkpoints.py make SPECS_JSON OUT_ROOT")
    results = {}
    for name, spec in json.loads(sys.argv[2]).items():
        results[name] = make(spec, os.path.join(sys.argv[3], name))
        gc.collect()
    print(json.dumps(results))
