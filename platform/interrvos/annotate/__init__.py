"""The four-stage annotation pipeline (paper Sec. 3.1): visual prompts, prompt texts, answer
schemas, LLM backends (openai, vllm, local), the Ray Data pipeline, assembly and statistics.

Entry points: `interrvos.annotate.pipeline.run_annotate(cfg)` (the `interrvos annotate` job),
`interrvos.annotate.report.annotate_for_demo(...)` and `report_section(...)` (the demo)."""
