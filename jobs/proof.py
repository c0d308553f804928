"""Ray job entrypoint for `interrvos proof` (thin: the CLI does the work).

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/proof.py --config jobs/configs/proof.yaml
"""

import sys

from interrvos.cli import app

if __name__ == "__main__":
    app(["proof", *sys.argv[1:]], prog_name="interrvos")
