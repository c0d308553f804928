#!/usr/bin/env python
"""Convert original InternVL2.5 weights (the internvl_chat layout: OpenGVLab/InternVL2_5-1B or -4B as
downloaded) into an HF-native InternVL folder that ReVIOsA loads with `mllm.pretrained=DST`.
Offline, no remote code. See platform/interrvos/model/convert_internvl.py for the key mapping.

    .venv/bin/python scripts/convert_internvl.py /models/InternVL2_5-1B /models/InternVL2_5-1B-hf [--dtype bfloat16]
"""

import argparse
import json
import os
import sys

os.environ.setdefault("DS_ACCELERATOR", "cpu")  # transformers may import deepspeed, which then logs to stdout

from interrvos.errors import InterRVOSError
from interrvos.model.convert_internvl import convert_internvl_chat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="folder of the original checkpoint (config.json, model.safetensors, tokenizer)")
    parser.add_argument("dst", help="output folder (HF-native InternVLForConditionalGeneration)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None,
                        help="cast the weights (default: keep the checkpoint's dtype)")
    args = parser.parse_args()
    try:
        summary = convert_internvl_chat(args.src, args.dst, args.dtype)
    except InterRVOSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
