"""Ray job entrypoint for `interrvos sweep` (thin: the CLI does the work).

    ray job submit --address http://HEAD:8265 --working-dir . -- python jobs/sweep.py --config jobs/configs/sweep.yaml

Under `ray job submit` RAY_ADDRESS is set, so the job joins the cluster instead of starting a local Ray.
The prediction cache (`cache:`) is a folder on the driver's node; re-submitting resumes from it.
"""

import sys

from interrvos.cli import app

if __name__ == "__main__":
    app(["sweep", *sys.argv[1:]], prog_name="interrvos")
