#!/usr/bin/env python3
"""Writes the house-style chat dataset (train.jsonl, validation.jsonl) from ../house-style.

Each completion record {prompt, completion} of ../house-style/train.jsonl and test.jsonl becomes a
chat record {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}, the assistant's
answer without the completion's leading space (a chat template separates the turns itself). The
model's chat template (SmolLM2's adds its default system prompt) is applied by the trainer.

To keep the SmolLM2 example on a CPU within minutes, it takes a seeded sample: TRAIN_SIZE records
of train.jsonl and VALIDATION_SIZE of test.jsonl (the held-out prompts stay held out).
Regenerate with: python3 generate.py
"""
import json
import os
import random

SEED = 20261201
TRAIN_SIZE = 400
VALIDATION_SIZE = 24

here = os.path.dirname(os.path.abspath(__file__))
source = os.path.join(here, "..", "house-style")


def chats(name, size, rng):
    with open(os.path.join(source, name), encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    sample = rng.sample(records, size)
    return [{"messages": [{"role": "user", "content": r["prompt"]},
                          {"role": "assistant", "content": r["completion"].lstrip(" ")}]}
            for r in sample]


def write(name, records):
    with open(os.path.join(here, name), "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    rng = random.Random(SEED)
    write("train.jsonl", chats("train.jsonl", TRAIN_SIZE, rng))
    write("validation.jsonl", chats("test.jsonl", VALIDATION_SIZE, rng))
