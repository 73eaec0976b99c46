"""``ispo sweep``: a study of methods x seeds through the demo pipeline, with paired statistics.

- :mod:`ispo.study.spec`: study files and seed ranges, checked before anything runs;
- :mod:`ispo.study.runner`: the resumable (method, seed) cells, in worker processes;
- :mod:`ispo.study.stats`: mean and 95% t-interval over seeds, paired differences to the baseline;
- :mod:`ispo.study.summary`: ``study.json``, ``study.md``, ``study.png``;
- :mod:`ispo.study.cli`: the command line. The protocol (dev for selection, test for confirmation) is in docs/study.md.
"""
