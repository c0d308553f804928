"""Ray job entrypoint for `interrvos predict` (thin: the CLI does the work).

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/predict.py --config jobs/configs/predict.yaml

Under `ray job submit` RAY_ADDRESS is set, so the job joins the cluster instead of starting a local Ray.
"""

import sys

from interrvos.cli import app

if __name__ == "__main__":
    app(["predict", *sys.argv[1:]], prog_name="interrvos")
