"""Ray job entrypoint for `interrvos pretrain-text` (thin: the CLI does the work).

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/pretrain_text.py --config jobs/configs/pretrain_text.yaml --dataset runs/annotated/train

Writes <storage>/<name>/model: an HF-native InternVL folder (with its tokenizer) for mllm.pretrained.
"""

import sys

from interrvos.cli import app

if __name__ == "__main__":
    app(["pretrain-text", *sys.argv[1:]], prog_name="interrvos")
