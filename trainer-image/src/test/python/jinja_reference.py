"""Renders small templates in transformers' chat-template Jinja environment (the reference for
JinjaEnvironmentTest). Usage: jinja_reference.py REQUEST_JSON, REQUEST_JSON: {"variables": {...},
"templates": [str]}. Prints a JSON list: {"output": str} or {"error": str} per template."""
import json
import sys

from transformers.utils.chat_template_utils import _compile_jinja_template


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    results = []
    for template in request["templates"]:
        try:
            results.append({"output": _compile_jinja_template(template).render(**request["variables"])})
        except Exception as e:
            results.append({"error": f"{type(e).__name__}: {e}"})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
