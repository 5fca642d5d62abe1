"""Reference side of the GGUF converter tests: the `gguf` package and transformers read GGUF files.

  dequantize FILE NAME...        sha256 of gguf.quants.dequantize(tensor) as little-endian float32,
                                 per tensor, with its type and first values (JSON on stdout)
  synthetic FILE                 writes a GGUF holding one tensor per type (F32, F16, BF16, Q8_0,
                                 Q4_0, Q4_1) quantized by gguf.quants.quantize from seeded values;
                                 prints the same JSON as `dequantize` for them
  logits FILE IDS OUT            transformers' logits for the comma-separated token ids with the
                                 model loaded from the GGUF (float32), written to OUT as raw
                                 little-endian float32 (seq x vocab)
  tokenize FILE CONVERTED TEXTS  ids of each text (JSON list in the file TEXTS) from AutoTokenizer
                                 loaded from the GGUF and from the converted folder, the special
                                 tokens each reports, and apply_chat_template of a chat by both;
                                 also the ids with the GGUF tokenizer's pre-tokenizer replaced by
                                 SmolLM2's own (Digits(individual_digits) + ByteLevel), which is
                                 what llama.cpp's `smollm` pre-tokenizer does
  types                          ggml type ids and block layouts of the gguf package
"""
import hashlib
import json
import os
import sys

import numpy as np


def digest(values):
    flat = np.ascontiguousarray(values, dtype="<f4").reshape(-1)
    return {"sha256": hashlib.sha256(flat.tobytes()).hexdigest(), "count": int(flat.size),
            "first": [float(v) for v in flat[:4]]}


def dequantize(path, names):
    import gguf
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    out = {}
    for name in names:
        t = tensors[name]
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        out[name] = dict(digest(values), type=t.tensor_type.name)
    print(json.dumps(out))


def synthetic(path):
    import gguf
    from gguf import GGMLQuantizationType as T
    rng = np.random.default_rng(20261201)
    writer = gguf.GGUFWriter(path, "llama")
    kinds = [T.F32, T.F16, T.BF16, T.Q8_0, T.Q4_0, T.Q4_1]
    for kind in kinds:
        # Rows of 96 values (3 blocks of 32), wide dynamic range, plus an all-zero block.
        values = (rng.standard_normal((6, 96)) * rng.uniform(0.01, 4.0, (6, 1))).astype(np.float32)
        values[1, :32] = 0.0
        if kind == T.F32:
            data = values
        elif kind == T.F16:
            data = values.astype(np.float16)
        else:
            data = gguf.quants.quantize(values, kind)
        writer.add_tensor(f"t.{kind.name}", data, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    dequantize(path, [f"t.{k.name}" for k in kinds])


def logits(path, ids, out):
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32)
    model.eval()
    tokens = torch.tensor([[int(i) for i in ids.split(",")]])
    with torch.no_grad():
        result = model(tokens).logits[0].to(torch.float32).numpy()
    np.ascontiguousarray(result, dtype="<f4").tofile(out)
    print(json.dumps({"shape": list(result.shape), "config": {
        k: getattr(model.config, k, None) for k in
        ["rope_theta", "rms_norm_eps", "num_key_value_heads", "head_dim", "tie_word_embeddings"]}},
        default=str))


def tokenize(path, converted, texts_file):
    from transformers import AutoTokenizer
    with open(texts_file, encoding="utf-8") as f:
        texts = json.load(f)
    from_gguf = AutoTokenizer.from_pretrained(os.path.dirname(path), gguf_file=os.path.basename(path))
    from_folder = AutoTokenizer.from_pretrained(converted)
    chat = [{"role": "user", "content": "How do I reset my password?"},
            {"role": "assistant", "content": "Sure thing! Open the sign in page."},
            {"role": "user", "content": "Thanks 123"}]
    result = {}
    for name, tok in [("gguf", from_gguf), ("converted", from_folder)]:
        result[name] = {
            "ids": [tok(text)["input_ids"] for text in texts],
            "special": {k: getattr(tok, k) for k in ["bos_token", "eos_token", "pad_token", "unk_token"]},
            "chat": tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True),
            "decoded": [tok.decode(tok(text)["input_ids"]) for text in texts],
        }
    from tokenizers import Tokenizer, pre_tokenizers
    smollm = Tokenizer.from_str(from_gguf.backend_tokenizer.to_str())
    smollm.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    result["smollm_pretokenizer"] = {"ids": [smollm.encode(text).ids for text in texts]}
    print(json.dumps(result))


def types():
    from gguf.constants import GGML_QUANT_SIZES
    print(json.dumps({t.name: [t.value, size[0], size[1]] for t, size in GGML_QUANT_SIZES.items()}))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "dequantize":
        dequantize(args[0], args[1:])
    elif command == "synthetic":
        synthetic(args[0])
    elif command == "logits":
        logits(*args)
    elif command == "tokenize":
        tokenize(*args)
    elif command == "types":
        types()
    else:
        raise SystemExit(f"unknown command {command}")
