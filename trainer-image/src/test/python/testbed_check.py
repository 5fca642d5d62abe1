"""Prints the versions of the reference stack; TestbedTest checks that it imports."""
import json

import peft
import safetensors
import torch
import transformers

print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__,
                  "peft": peft.__version__, "safetensors": safetensors.__version__}))
