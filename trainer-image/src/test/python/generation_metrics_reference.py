"""Reference for the generation-metric tests: sacreBLEU's corpus BLEU and rouge-score's ROUGE-L.

Usage: generation_metrics_reference.py PAIRS_JSON
PAIRS_JSON: {"hypotheses": [str], "references": [str]}
Prints JSON {"corpus_bleu": float (corpus_bleu(hyps, [refs]), sacreBLEU's defaults: 13a, exp smoothing),
             "corpus_counts": {"correct": [int], "total": [int], "sys_len": int, "ref_len": int},
             "pair_bleu": [float] (corpus_bleu([h], [[r]]) of each pair alone),
             "tokens_13a": [str] (Tokenizer13a()(r.rstrip()) of each hypothesis, then each reference),
             "rouge_l": [{"precision", "recall", "fmeasure"}] (RougeScorer(['rougeL'], use_stemmer=False)
                        .score(reference, hypothesis) of each pair),
             "versions": {...}}
"""
import json
import sys

import rouge_score
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    hyps, refs = request["hypotheses"], request["references"]
    corpus = sacrebleu.corpus_bleu(hyps, [refs])
    tok = Tokenizer13a()
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    out = {
        "corpus_bleu": corpus.score,
        "corpus_counts": {"correct": list(corpus.counts), "total": list(corpus.totals),
                          "sys_len": corpus.sys_len, "ref_len": corpus.ref_len},
        "pair_bleu": [sacrebleu.corpus_bleu([h], [[r]]).score for h, r in zip(hyps, refs)],
        "tokens_13a": [tok(s.rstrip()) for s in hyps + refs],
        "rouge_l": [],
        "versions": {"sacrebleu": sacrebleu.__version__,
                     "rouge_score": getattr(rouge_score, "__version__", "0.1.2")},
    }
    for h, r in zip(hyps, refs):
        s = scorer.score(r, h)["rougeL"]
        out["rouge_l"].append({"precision": s.precision, "recall": s.recall, "fmeasure": s.fmeasure})
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
