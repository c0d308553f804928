"""Drawing masks over frames (OpenCV) and tiling them into contact sheets for reports."""

from __future__ import annotations

import cv2
import numpy as np

from interrvos.data.rle import RLE, decode_rle

# Distinct RGB colours for object overlays (tab10-like).
PALETTE: list[tuple[int, int, int]] = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


def overlay_masks(frame: np.ndarray, masks: list[tuple[str, RLE | None, tuple[int, int, int]]],
                  alpha: float = 0.45) -> np.ndarray:
    """Blend each (label, mask, colour) onto an RGB frame, with a contour and the label at its centroid."""
    out = frame.copy()
    for label, rle, colour in masks:
        if rle is None:
            continue
        m = decode_rle(rle).astype(bool)
        if not m.any():
            continue
        out[m] = (out[m] * (1 - alpha) + np.array(colour) * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, colour, 1)
        if label:
            ys, xs = np.nonzero(m)
            put_label(out, label, (int(xs.mean()), int(ys.mean())))
    return out


def put_label(img: np.ndarray, text: str, center: tuple[int, int], scale: float = 0.4) -> None:
    """White text on a black box centred at `center` (clamped inside the image)."""
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = min(max(center[0] - tw // 2, 0), max(img.shape[1] - tw - 2, 0))
    y = min(max(center[1] + th // 2, th + 2), img.shape[0] - base - 1)
    cv2.rectangle(img, (x - 1, y - th - 2), (x + tw + 1, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)


def fit(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(img, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def tile_rows(rows: list[list[np.ndarray]], titles: list[str], cell_width: int = 200, pad: int = 4) -> np.ndarray:
    """A grid image: one row of cells per entry, each row titled on its left."""
    title_w = 170
    cells = [[fit(c, cell_width) for c in row] for row in rows]
    cell_h = max(c.shape[0] for row in cells for c in row)
    ncols = max(len(r) for r in cells)
    sheet = np.full((len(cells) * (cell_h + pad) + pad, title_w + ncols * (cell_width + pad) + pad, 3), 255, np.uint8)
    for r, (row, title) in enumerate(zip(cells, titles)):
        y = pad + r * (cell_h + pad)
        for line_no, line in enumerate(_wrap(title, 22)[:6]):
            cv2.putText(sheet, line, (6, y + 16 + 16 * line_no), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for c, cell in enumerate(row):
            x = title_w + pad + c * (cell_width + pad)
            sheet[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
    return sheet


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return lines + [line] if line else lines


def save_png(path: str, rgb: np.ndarray) -> None:
    from interrvos.data import storage

    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"PNG encoding failed for {path}")
    storage.write_bytes(path, buf.tobytes())
