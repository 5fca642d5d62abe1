"""The peer side of `trainer benchmark --model DIR --peer-python ...`: the same training
configuration through transformers + PEFT (the test bed's pinned versions, requirements.txt).

One configuration per process, so the peak resident set (VmHWM) belongs to that configuration
alone: the model loaded from DIR with AutoModelForCausalLM in fp32 (transformers' default
attention, sdpa), LoRA via peft.LoraConfig on the given modules (or every parameter trainable for
full fine-tuning), torch.optim.AdamW, gradient clipping by global norm, batch x length random
token ids as inputs and labels (the model shifts them, as for KubeTune's completion rows).
`--precision bf16` runs forward and loss under torch.autocast("cpu", torch.bfloat16), the peer's
mixed-precision setting on CPU; weights, gradients and optimizer state stay fp32. `--compile`
wraps the model in torch.compile (the default inductor backend: fused C++ kernels for the
element-wise chains, compiled with the host's C++ compiler during the warm-up steps).

Prints one JSON object: precision, compiled, tokensPerSecond, secondsPerStep, stepSeconds (every
step, warm-up included), trainableParameters, losses, peakRssMiB, and (with --gemm) the fp32 and
bf16 GEMM rates of this torch build.
"""
import argparse
import contextlib
import json
import time

import torch


def peak_rss_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return -1


def gemm_gflops(dtype, n=1024, repeats=8, rounds=4):
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            (a @ b)[0, 0].item()
        best = max(best, repeats * 2 * n**3 / (time.perf_counter() - started) / 1e9)
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--method", choices=["lora", "full"], required=True)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--sequence-length", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup-steps", type=int, required=True)
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=16.0)
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--compile", action="store_true", help="train the torch.compile'd model")
    p.add_argument("--gemm", action="store_true", help="also measure fp32 and bf16 GEMM rates")
    args = p.parse_args()
    if args.warmup_steps < 1 or args.steps <= args.warmup_steps:
        p.error("--steps must exceed --warmup-steps, which must be at least 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    if args.method == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=args.lora_rank,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=args.target_modules.split(","),
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, config)
    model.train()
    if args.compile:
        model = torch.compile(model)
    params = [q for q in model.parameters() if q.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.learning_rate, weight_decay=args.weight_decay)
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(1)
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if args.precision == "bf16"
        else contextlib.nullcontext
    )
    losses = []
    step_seconds = []
    started = None
    for step in range(args.steps):
        step_started = time.perf_counter()
        if step == args.warmup_steps:
            started = step_started
        ids = torch.randint(0, vocab, (args.batch_size, args.sequence_length), generator=generator)
        with autocast():
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 6))
        step_seconds.append(round(time.perf_counter() - step_started, 4))
    seconds = time.perf_counter() - started
    timed = args.steps - args.warmup_steps
    result = {
        "engine": "torch " + torch.__version__,
        "transformers": __import__("transformers").__version__,
        "peft": __import__("peft").__version__,
        "attention": getattr(model.config, "_attn_implementation", None),
        "method": args.method,
        "precision": args.precision,
        "compiled": args.compile,
        "threads": torch.get_num_threads(),
        "tokensPerSecond": round(timed * args.batch_size * args.sequence_length / seconds, 3),
        "secondsPerStep": round(seconds / timed, 4),
        "stepSeconds": step_seconds,
        "trainableParameters": sum(q.numel() for q in params),
        "loraDropout": args.lora_dropout if args.method == "lora" else None,
        "losses": losses,
        "peakRssMiB": peak_rss_mib(),
    }
    if args.gemm:
        result["gemmGflops"] = round(gemm_gflops(torch.float32), 3)
        result["gemmGflopsBf16"] = round(gemm_gflops(torch.bfloat16), 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
