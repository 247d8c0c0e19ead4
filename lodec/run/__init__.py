"""Running verified stacks: skills, scheduling, the executor, artifacts and run records.

Pipeline position: schema → codec → fingerprint → compiler → stack → verify
→ sign → **run**. Modules:

- ``skills``: Agent Skills folders + ``lodec.toml``, the tree digest, lookup;
- ``schedule``: the read / write / exclusive rule and ``lodec plan`` batches;
- ``sandbox``: network namespaces and the reduced environment;
- ``store``: the content-addressed artifact store;
- ``executor``: ``prepare_run`` (refuses drift) and ``run_stack``;
- ``records``: ``run.json``, journal, provenance, analytics, resolve, discard.

The contract with skills is ``docs/skill-contract.md``; the records are
described in ``docs/run-records.md``.
"""
