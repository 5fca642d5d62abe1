"""Reference side of PeftInteropTest: transformers + PEFT load KubeTune's outputs, and write
PEFT adapters for KubeTune to load. Every command reads a JSON request file and prints JSON.

  causal-adapter REQ    {"adapter", "prompt": [ids], "continuation": [ids]}
      AutoPeftModelForCausalLM.from_pretrained(adapter) alone (base from adapter_config.json), and
      AutoModelForCausalLM.from_pretrained(adapter); prints the continuation's log-probabilities.
  seqcls-adapter REQ    {"adapter", "texts": [str]}
      AutoPeftModelForSequenceClassification.from_pretrained(adapter, **the adapter's
      kubetune.sequence_classification_kwargs); texts tokenised by AutoTokenizer(adapter) as one
      padded batch; prints labels and class probabilities.
  full-causal REQ       {"model", "prompt", "continuation"}: AutoModelForCausalLM; also the
      generation config, the tokenizer's pad id and a rendered chat prompt.
  full-seqcls REQ       {"model", "texts"}: AutoModelForSequenceClassification, one padded batch.
  peft-adapters REQ     {"base", "out", "prompt", "continuation"}
      writes PEFT adapters with random non-zero B (plain, rslora, patterns, dora) under out/NAME
      and prints each one's log-probabilities under PEFT.
  tokenize REQ          {"tokenizer", "texts": [str], "chats": [[{role, content}]]}
      AutoTokenizer(tokenizer) default encoding of each text, and apply_chat_template of each chat
      (text and ids; with and without a generation prompt). {"jobs": [REQ, ...]} runs several.
"""
import json
import sys

import torch

torch.manual_seed(0)
torch.set_num_threads(1)
DTYPE = torch.float32


def log_probs(model, prompt, continuation):
    ids = torch.tensor([prompt + continuation])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return [lp[len(prompt) - 1 + i, t].item() for i, t in enumerate(continuation)]


def classify(model, tokenizer, texts):
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits.float()
    probs = torch.softmax(logits, dim=-1)
    id2label = model.config.id2label
    return {
        "labels": [id2label[int(i)] for i in probs.argmax(-1)],
        "probabilities": probs.tolist(),
        "id2label": {str(k): v for k, v in id2label.items()},
        "input_ids": batch["input_ids"].tolist(),
    }


def causal_adapter(req):
    from peft import AutoPeftModelForCausalLM

    from transformers import AutoModelForCausalLM

    model = AutoPeftModelForCausalLM.from_pretrained(req["adapter"], dtype=DTYPE).eval()
    # transformers' own PEFT integration reads the same base_model_name_or_path.
    integrated = AutoModelForCausalLM.from_pretrained(req["adapter"], dtype=DTYPE).eval()
    return {"logprobs": log_probs(model, req["prompt"], req["continuation"]),
            "transformers_logprobs": log_probs(integrated, req["prompt"], req["continuation"])}


def seqcls_adapter(req):
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer

    with open(req["adapter"] + "/adapter_config.json") as f:
        kwargs = json.load(f)["kubetune"]["sequence_classification_kwargs"]
    kwargs["id2label"] = {int(k): v for k, v in kwargs["id2label"].items()}
    model = AutoPeftModelForSequenceClassification.from_pretrained(
        req["adapter"], dtype=DTYPE, **kwargs).eval()
    tokenizer = AutoTokenizer.from_pretrained(req["adapter"])
    return classify(model, tokenizer, req["texts"])


def full_causal(req):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(req["model"], dtype=DTYPE).eval()
    generation = GenerationConfig.from_pretrained(req["model"])
    tokenizer = AutoTokenizer.from_pretrained(req["model"])
    chat = [{"role": "user", "content": "hi"}]
    return {"logprobs": log_probs(model, req["prompt"], req["continuation"]),
            "generation": {"bos_token_id": generation.bos_token_id,
                           "eos_token_id": generation.eos_token_id,
                           "pad_token_id": generation.pad_token_id},
            "pad_token_id": tokenizer.pad_token_id,
            "chat_prompt": tokenizer.apply_chat_template(chat, tokenize=False,
                                                         add_generation_prompt=True)}


def full_seqcls(req):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(req["model"], dtype=DTYPE).eval()
    tokenizer = AutoTokenizer.from_pretrained(req["model"])
    return classify(model, tokenizer, req["texts"])


def peft_adapters(req):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    variants = {
        "plain": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]),
        "rslora": dict(r=16, lora_alpha=8, use_rslora=True,
                       target_modules=["q_proj", "k_proj", "o_proj", "up_proj"]),
        "patterns": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "gate_proj"],
                         rank_pattern={"v_proj": 8, "model.layers.1.self_attn.q_proj": 2},
                         alpha_pattern={"gate_proj": 32, r"layers\.0\.self_attn\.q_proj": 3}),
        "dora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], use_dora=True),
    }
    out = {}
    for name, settings in variants.items():
        base = AutoModelForCausalLM.from_pretrained(req["base"], dtype=DTYPE)
        config = LoraConfig(task_type="CAUSAL_LM", init_lora_weights=False, **settings)
        model = get_peft_model(base, config).eval()
        model.save_pretrained(req["out"] + "/" + name)
        out[name] = log_probs(model, req["prompt"], req["continuation"])
    return out


def tokenize(req):
    if "jobs" in req:
        return [tokenize(job) for job in req["jobs"]]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(req["tokenizer"])
    result = {"texts": [tokenizer(t)["input_ids"] for t in req.get("texts", [])], "chats": []}
    for chat in req.get("chats", []):
        entry = {}
        for prompt in (False, True):
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=prompt)
            ids = tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=prompt,
                                                return_dict=True)["input_ids"]
            entry["prompt" if prompt else "full"] = {"text": text, "ids": list(ids)}
        result["chats"].append(entry)
    return result


COMMANDS = {
    "causal-adapter": causal_adapter,
    "seqcls-adapter": seqcls_adapter,
    "full-causal": full_causal,
    "full-seqcls": full_seqcls,
    "peft-adapters": peft_adapters,
    "tokenize": tokenize,
}

if __name__ == "__main__":
    with open(sys.argv[2]) as f:
        request = json.load(f)
    print(json.dumps(COMMANDS[sys.argv[1]](request)))
