"""The offline demo: ``ispo demo`` (cli), warm start, held-out evaluation and the GRPO-vs-ISPO runs."""
