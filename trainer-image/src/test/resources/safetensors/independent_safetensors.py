#!/usr/bin/env python3
"""An independent safetensors writer/checker (numpy only), used by SafetensorsTest.

  write <file>   writes F32, F16 and BF16 tensors with known values (follows the format spec:
                 u64 LE header length, JSON header padded with spaces to 8 bytes, contiguous data)
  check <file>   parses a file written by the Java class, verifies the layout rules and prints
                 each tensor as JSON {name: {dtype, shape, values}} on stdout
"""
import json
import struct
import sys

import numpy as np


def expected_tensors():
    f32 = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 11.5) / 7.0
    f16 = np.array([[0.5, -1.25, 65504.0], [6.1e-5, 0.0, -3.0]], dtype=np.float16)  # incl. max and a subnormal-ish
    bf16_source = np.array([1.0, -2.5, 3.140625, 1e-3, 1e30], dtype=np.float32)
    bf16_bits = (bf16_source.view(np.uint32) >> 16).astype(np.uint16)  # exact truncation of these values
    return [
        ("model.layers.0.weight", "F32", f32.shape, f32.tobytes()),
        ("half", "F16", f16.shape, f16.astype("<f2").tobytes()),
        ("brain", "BF16", bf16_source.shape, bf16_bits.astype("<u2").tobytes()),
    ]


def write(path):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, dtype, shape, data in expected_tensors():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def check(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, "header length %d not a multiple of 8" % n
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    data = raw[8 + n :]
    header.pop("__metadata__", None)
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1]) for v in header.values())
    pos = 0
    for b, e in spans:
        assert b == pos, "offsets not contiguous"
        pos = e
    assert pos == len(data), "data area size mismatch"
    out = {}
    for name, v in header.items():
        assert v["dtype"] == "F32"
        b, e = v["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype="<f4").reshape(v["shape"])
        out[name] = {"dtype": v["dtype"], "shape": v["shape"], "values": arr.flatten().tolist()}
    print(json.dumps(out))


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]](sys.argv[2])
