// COCO run-length encoded masks in the browser: the answer's {"size": [h, w], "counts": str}.
// The counts string is pycocotools' compressed form (rleToString / rleFrString in maskApi.c): each run
// length is written 5 bits per character (char - 48), low bits first, bit 0x20 meaning "more chars
// follow" and bit 0x10 of the last char the sign; from the third run on, a value is the difference to
// the run two places before. Runs alternate 0s and 1s, starting with 0s, over the pixels in
// column-major order (down the first column, then the next).
"use strict";

// The run lengths of an RLE (a compressed counts string, or an uncompressed list of numbers).
function rleCounts(rle) {
  if (Array.isArray(rle.counts)) return rle.counts.slice();
  const s = rle.counts;
  if (typeof s !== "string") throw new Error("RLE counts must be a string or a list");
  const counts = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new Error(`RLE counts end inside a run (at char ${p})`);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error(`RLE counts has a character outside '0'..'o' at ${p}`);
      // Arithmetic, not bit shifts: JS shifts are 32-bit and 5*k passes 31 for long runs.
      x += (c & 0x1f) * Math.pow(32, k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && (c & 0x10)) x -= Math.pow(32, k);  // sign-extend, as `x |= -1 << 5*k` does in C
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

// Decode to {height, width, data: Uint8Array(h*w) in row-major order (1 = mask), area}.
function decodeRle(rle) {
  if (!rle || !Array.isArray(rle.size) || rle.size.length !== 2) throw new Error("not a COCO RLE (size [h, w])");
  const [h, w] = rle.size;
  const total = h * w;
  const data = new Uint8Array(total);
  const counts = rleCounts(rle);
  let pos = 0;
  let area = 0;
  for (let r = 0; r < counts.length; r++) {
    const n = counts[r];
    if (n < 0) throw new Error(`RLE run ${r} is negative`);
    if (pos + n > total) throw new Error(`RLE runs cover more than ${h}x${w} pixels`);
    if (r % 2 === 1) {  // a run of 1s: walk it down the columns
      let col = Math.floor(pos / h);
      let row = pos - col * h;
      for (let i = 0; i < n; i++) {
        data[row * w + col] = 1;
        if (++row === h) { row = 0; col++; }
      }
      area += n;
    }
    pos += n;
  }
  if (pos !== total) throw new Error(`RLE runs cover ${pos} pixels, expected ${h}x${w} = ${total}`);
  return { height: h, width: w, data, area };
}

window.interrvos = window.interrvos || {};
window.interrvos.rleCounts = rleCounts;
window.interrvos.decodeRle = decodeRle;
