"""Serving without Serve: what the Ray Serve apps do (decode a request, run the model, encode the
answer; score a submission; store results), as plain functions and classes testable in-process.
The thin Serve applications are `model_app` and `evaluate_app` (deploy configs in serve/)."""
