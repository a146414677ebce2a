"""Data: BatVision readers, features, the feature cache, and the synthetic echo-room set."""
