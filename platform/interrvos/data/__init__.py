"""Records, the MeViS-compatible format, RLE masks, video decode/encode and storage URIs."""
