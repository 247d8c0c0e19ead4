"""Running verified stacks on Temporal workers (``docs/temporal.md``).

The Temporal SDK (``temporalio``) is an optional extra (``pip install 'lodec[temporal]'``):
nothing outside this package imports it, and this package's ``__init__`` does not either, so
the base install never loads it unless ``--engine temporal`` or ``lodec worker`` is used.

Modules:

- ``types``: the workflow's and activities' inputs and outputs (identifiers and digests only);
- ``workflow``: ``RunWorkflow``, lodec's schedule of a verified DAG as deterministic workflow code;
- ``activities``: ``plan`` and ``run_step``, each re-verifying the pack on the worker first;
- ``connect``: the client connection (address, namespace, TLS, API key);
- ``worker``: a worker process serving both;
- ``submit``: starting a run's workflow and following it to its end.
"""
