"""Serve SmolLM2-135M-Instruct (packaged, offline) as an OpenAI-compatible endpoint on Ray Serve.

    python serve/local_llm.py [--port 8000]        # local Ray, blocks; Ctrl-C stops it
    serve run serve/local_llm.yaml                 # the same from the deploy config
    interrvos annotate --set backend=openai --set openai.base_url=http://127.0.0.1:8000/v1 \
        --set openai.text_model=SmolLM2-135M-Instruct --set vision_backend=local   # docs/annotation.md

The application lives in the package (interrvos.annotate.serve_app) so Serve replicas can import it.
"""

import argparse
import time

from interrvos.annotate.serve_app import build_app

if __name__ == "__main__":
    import ray
    from ray import serve

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    ray.init()
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(build_app({"threads": args.threads}), route_prefix="/", name="local_llm")
    print(f"OpenAI-compatible endpoint: http://127.0.0.1:{args.port}/v1 (model SmolLM2-135M-Instruct)")
    while True:
        time.sleep(3600)
