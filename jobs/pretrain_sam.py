"""Ray job entrypoint for `interrvos pretrain-sam` (thin: the CLI does the work).

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/pretrain_sam.py --config jobs/configs/pretrain_sam.yaml --set storage=s3://bucket/interrvos/pretrain

Under `ray job submit` RAY_ADDRESS is set, so the job joins the cluster instead of starting a local Ray.
A re-submission with the same run name resumes from the run's latest checkpoint.
"""

import sys

from interrvos.cli import app

if __name__ == "__main__":
    app(["pretrain-sam", *sys.argv[1:]], prog_name="interrvos")
