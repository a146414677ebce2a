"""The experiment folder of ``tune.run``, behind one face: everything else imports from
``tune.experiment`` only."""

from tune.experiment.folder import *  # noqa: F403
