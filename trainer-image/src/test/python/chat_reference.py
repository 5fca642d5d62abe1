"""Reference for the chat-template and tokenizer tests: what transformers does with a model folder.

Usage: chat_reference.py REQUEST_JSON MODEL_DIR...
REQUEST_JSON: {"strings": [str], "chats": [{"messages": [...], "add_generation_prompt": bool}]}
Prints JSON {MODEL_DIR: result}, each result: {"encodings": [[id]] (encode(s, add_special_tokens=False)),
              "encodings_with_special": [[id]] (encode(s), the tokenizer's own BOS/EOS rules),
              "renders": [str] (apply_chat_template(tokenize=False)),
              "render_ids": [[id]] (apply_chat_template(tokenize=True)),
              "render_errors": [str|null]}
"""
import json
import sys

from transformers import AutoTokenizer


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    json.dump({model_dir: reference(model_dir, request) for model_dir in sys.argv[2:]}, sys.stdout,
              ensure_ascii=False)


def reference(model_dir, request):
    tok = AutoTokenizer.from_pretrained(model_dir)
    out = {"encodings": [], "encodings_with_special": [], "renders": [], "render_ids": [], "render_errors": []}
    for s in request.get("strings", []):
        out["encodings"].append(tok.encode(s, add_special_tokens=False))
        out["encodings_with_special"].append(tok.encode(s))
    for chat in request.get("chats", []):
        kwargs = {"add_generation_prompt": chat.get("add_generation_prompt", False)}
        try:
            text = tok.apply_chat_template(chat["messages"], tokenize=False, **kwargs)
            ids = tok.apply_chat_template(chat["messages"], tokenize=True, return_dict=False, **kwargs)
            out["renders"].append(text)
            out["render_ids"].append(list(ids))
            out["render_errors"].append(None)
        except Exception as e:  # the Java side must refuse the same conversations
            out["renders"].append(None)
            out["render_ids"].append(None)
            out["render_errors"].append(f"{type(e).__name__}: {e}")
    return out


if __name__ == "__main__":
    main()
