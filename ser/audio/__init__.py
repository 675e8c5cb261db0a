"""Audio input: decoding, environmental noise and mixing at a target SNR."""
