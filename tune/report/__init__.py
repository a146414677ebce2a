"""The report of an experiment folder: the summary's data (data), written as summary.md
(markdown) and report.html (html) with its figures (plots), the search's quality, and the
records tune.evaluate and tune.confirm write (records). ``tune.summary`` writes it."""
