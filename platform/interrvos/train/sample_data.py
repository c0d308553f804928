"""A small ready-made training set: clips of a red square (the actor) pushing a blue disc (the target),
built from the model package's synthetic clip, with five expressions each (two referring, an
actor-target pair in both directions, a multi-object one). For tests, benchmarks and smoke runs that
need a dataset folder without running synth -> extract -> annotate."""

from __future__ import annotations

from pathlib import Path

from interrvos.data.mevis import write_dataset, write_frame
from interrvos.data.records import Expression, VideoEntry
from interrvos.data.rle import encode_mask
from interrvos.model.synthetic import synthetic_clip


def write_pushing_dataset(root: str | Path, num_videos: int = 3, num_frames: int = 6, height: int = 48,
                          width: int = 64, seed: int = 0) -> str:  # fmt: skip
    """Videos where a red square (actor) pushes a blue disc (target), five expressions each."""
    videos, masks = {}, {}
    for v in range(num_videos):
        vid = f"push{v:02d}"
        clip = synthetic_clip(num_frames, height, width, seed=seed + v)
        frames = [f"{i:05d}" for i in range(num_frames)]
        for name, frame in zip(frames, clip.frames, strict=True):
            write_frame(str(root), vid, name, frame)
        sq, disc = f"{vid}:sq", f"{vid}:disc"
        masks[sq] = [encode_mask(m) if m.any() else None for m in clip.actor]
        masks[disc] = [encode_mask(m) if m.any() else None for m in clip.target]
        pair = {"caption_type": "interaction", "interaction": "unidirectional"}
        videos[vid] = VideoEntry(vid_id=vid, frames=frames, objects={
            "1": {"category": "square", "anno_id": sq}, "2": {"category": "disc", "anno_id": disc}}, expressions={
            "0": Expression(exp="the red square", caption_type="single_appearance", obj_id=["1"], anno_id=[sq]),
            "1": Expression(exp="the blue disc", caption_type="single_appearance", obj_id=["2"], anno_id=[disc]),
            "2": Expression(exp="red square pushing the blue disc", obj_id=["1", "2"], anno_id=[sq, disc],
                            actor_ids=["1"], target_ids=["2"], actor_anno_id=[sq], target_anno_id=[disc], **pair),
            "3": Expression(exp="blue disc pushed by the red square", obj_id=["2", "1"], anno_id=[disc, sq],
                            actor_ids=["2"], target_ids=["1"], actor_anno_id=[disc], target_anno_id=[sq], **pair),
            "4": Expression(exp="square and disc moving right", caption_type="multi", obj_id=["1", "2"],
                            anno_id=[sq, disc]),
        })  # fmt: skip
    write_dataset(str(root), videos, masks)
    return str(root)


def teach_tiny(model, steps: int, lr: float = 1e-2) -> None:
    """A few optimizer steps (in this process, no Ray) on one synthetic clip. A random-init tiny model
    answers without [SEG_ACT] (empty masks, J&F 0 everywhere); ~40 steps teach it to emit the token
    and draw masks that score above 0: for tests and benchmarks that need predictions that are not empty."""
    import torch

    from interrvos.model.processor import TrainingExpression

    clip, p = synthetic_clip(4, 48, 64, seed=0), model.processor
    exps = [TrainingExpression("red square pushing the blue disc", clip.actor[:2], clip.target[:2]),
            TrainingExpression("the blue disc", clip.target[:2]), TrainingExpression("the red square", clip.actor[:2])]
    batch = p.collate([p.sample(clip.frames[:2], exps, model.sample_rng())])
    opt = torch.optim.AdamW(model.trainable_parameters().values(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
