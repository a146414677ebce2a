"""The study's question, answered with room folds: its plan (plan: the folds and a typed
point per run, built once per launch), each place's rows and scores (places), the fold runs
on Ray (runs), the answer's statistics (answer, intervals), the result pooled from an
experiment folder (result), and its confirmation with fresh seeds (confirmation).
``tune.run`` and ``tune.confirm`` drive it; ``tune.report`` reads its result."""
