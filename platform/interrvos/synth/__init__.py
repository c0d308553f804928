"""Synthetic interaction videos with exact ground truth: masks, actors, targets and event spans.

Everything derives from (seed, video index), so a video is byte-identical in its JSON files (and
identical frame by frame once decoded) however many videos are made and wherever they run.

Files per video, under `SynthConfig.out`:

`<video_id>.mp4`
    h264, `width` x `height`, `fps`, `num_frames` frames, streamed frame by frame.

`<video_id>.masks.json` (the source format the clip extractor reads)
    `{obj_id: {"category": str, "mask": [RLE | None, ...one per frame]}}` where RLE is COCO
    compressed RLE `{"size": [h, w], "counts": str}` of the object's *visible* region after
    occlusion by objects in front (so masks of one frame never overlap), and None where the object
    is not visible at all (fully hidden or outside the frame). Object ids are "1", "2", ...

`<video_id>.meta.json`
    {"video_id", "width", "height", "fps", "num_frames", "seed", "index", "background",
     "objects": {obj_id: {"category", "colour", "size": "small|medium|large", "texture",
                          "motion": "static|moving"}},            # static: never moves at all
     "events": [EVENT, ...],
     "multi_instance": [{"object_ids", "category", "motion": "moving <direction>",
                         "start_frame", "end_frame"}],            # look-alikes moving in formation
     "episodes": [{"start_frame", "end_frame", "num_events"}],
     "occluded_object_frames": int,                               # object-frames partly hidden
     "generator": {...the settings that decide the content, checked before reusing files}}

    EVENT, unidirectional (the actor initiates, the target receives):
        {"verb", "direction": "unidirectional", "actor_ids": [...], "target_ids": [...],
         "start_frame", "end_frame", "contact_frame"}
    EVENT, bidirectional (participants act alike):
        {"verb", "direction": "bidirectional", "participant_ids": [...],
         "start_frame", "end_frame", "contact_frame"}
    Frames are video frame indices; [start_frame, end_frame) is half-open. contact_frame is the
    first frame of the span where the masks of an actor and a target (or of two participants)
    touch, measured on the rendered masks; None when they never do.

Verbs. Unidirectional: push, pull, hit, chase, follow, carry, orbit, approach. Bidirectional:
move_together, collide, circle_each_other, meet. See `interrvos.synth.events` for what each
looks like. Directions are image directions (up = towards row 0). Video i's first event takes
the verb `events.VERB_CYCLE[(seed + i) % 12]`, so verbs stay balanced across videos; the rest
are drawn at random (60% unidirectional).

Videos longer than 480 frames are a sequence of 240-400-frame episodes, each with fresh events,
so every 1000-frame part of a long video has events. Video ids: `synth_00000` for seed 0,
`synth_s<seed>_00000` otherwise.
"""

from interrvos.synth.generate import generate_video, output_paths, run_synth, video_id_for

__all__ = ["generate_video", "output_paths", "run_synth", "video_id_for"]
