"""Ray job entrypoint for `interrvos train` (thin: the CLI does the work).

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/train.py --config jobs/configs/train_1b.yaml --set storage=s3://bucket/interrvos/runs

Under `ray job submit` RAY_ADDRESS is set, so the job joins the cluster instead of starting a local Ray.
A re-submission with the same run name resumes from the run's latest checkpoint.
"""

import sys

from interrvos.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="interrvos")
