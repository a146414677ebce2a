"""The study's question, answered with room folds: its plan (the folds and one point per
run, built once per launch), the fold runs on Ray, the answer's statistics (answer,
intervals), the result read from an experiment folder, and its confirmation with fresh
seeds. ``tune.run`` and ``tune.confirm`` drive it; ``tune.report`` reads its result."""
