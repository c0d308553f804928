"""Dataset statistics as in the paper's Figure A3: top words, video duration and frames,
expressions and objects per video, share of videos with interaction expressions, interaction
expressions per video, objects per interaction. JSON plus one PNG of histograms."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from interrvos.data import storage
from interrvos.data.records import ClipRecord, VideoEntry

STOPWORDS = frozenset("""a an the and or of to in on at by with from for as is are be being been it its that this
then than while into onto over under up down left right""".split()) - {"up", "down", "left", "right"}


def histogram(values: list[int]) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(values).items())}


def dataset_stats(splits: Mapping[str, Mapping[str, VideoEntry]], clips: Mapping[str, ClipRecord],
                  top_words: int = 50) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, videos in splits.items():
        exps = [e for v in videos.values() for e in v.expressions.values()]
        words = Counter(w for e in exps for w in re.findall(r"[a-z]+", e.exp.lower()) if w not in STOPWORDS)
        inter_per_video = [sum(e.caption_type == "interaction" for e in v.expressions.values())
                           for v in videos.values()]
        interactions: dict[tuple, int] = {}
        for vid, v in videos.items():
            for e in v.expressions.values():
                if e.caption_type == "interaction":
                    interactions[(vid, frozenset(e.obj_id))] = len(set(e.obj_id))
        durations = [round(clips[v].num_frames / clips[v].fps, 1) for v in videos if v in clips]
        out[name] = {
            "videos": len(videos),
            "expressions": len(exps),
            "objects": sum(len(v.objects) for v in videos.values()),
            "caption_types": dict(sorted(Counter(e.caption_type for e in exps).items())),
            "interaction_kinds": dict(sorted(Counter(e.interaction for e in exps if e.interaction != "none").items())),
            "expressions_per_video": histogram([len(v.expressions) for v in videos.values()]),
            "objects_per_video": histogram([len(v.objects) for v in videos.values()]),
            "videos_with_interactions": round(sum(n > 0 for n in inter_per_video) / len(videos), 3) if videos else 0.0,
            "interaction_expressions_per_video": histogram(inter_per_video),
            "objects_per_interaction": histogram(list(interactions.values())),
            "frames_per_video": histogram([len(v.frames) for v in videos.values()]),
            "duration_s": {"min": min(durations), "max": max(durations),
                           "mean": round(sum(durations) / len(durations), 1)} if durations else {},
            "top_words": dict(words.most_common(top_words)),
        }
    return out


def plot_stats(stats: Mapping[str, Any], path: str) -> None:
    """One PNG: a row of Figure A3-style panels per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in stats if stats[n]["videos"]]
    if not names:
        return
    panels = [("top_words", "(a) top words"), ("expressions_per_video", "(d) expressions per video"),
              ("objects_per_video", "(e) objects per video"), ("videos_with_interactions", "(f) videos with interactions"),
              ("interaction_expressions_per_video", "(g) interaction expressions per video"),
              ("objects_per_interaction", "(h) objects per interaction")]
    fig, axes = plt.subplots(len(names), len(panels), figsize=(4 * len(panels), 3.2 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        s = stats[name]
        for c, (key, title) in enumerate(panels):
            ax = axes[r][c]
            ax.set_title(f"{name}: {title}", fontsize=9)
            if key == "top_words":
                items = list(s[key].items())[:20]
                ax.barh([w for w, _ in items][::-1], [n for _, n in items][::-1], color="#4c72b0")
                ax.tick_params(axis="y", labelsize=6)
            elif key == "videos_with_interactions":
                share = s[key]
                ax.pie([share, 1 - share], labels=["with", "without"], autopct="%1.0f%%", colors=["#dd8452", "#cccccc"])
            else:
                ax.bar(list(s[key].keys()), list(s[key].values()), color="#55a868")
                ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    storage.write_bytes(path, buf.getvalue())
