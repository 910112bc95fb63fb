"""The execution engine: where an evaluation's rows are scored.

Each module's name says which side of the process boundary it runs on:
``main_*`` in the main process, ``worker_*`` inside each worker process,
``shared_*`` on both. Sync evaluations with workers take the stream::

    main process                                  |  worker process (local or Dask)
                                                  |
    Runner ─ Payload ──> main_pickling            |
      (runners.py)        pickles it once         |
                          │                       |
    rows ──────────────> main_stream ── chunks ──>|──> worker_process.run_chunk
      dataset order       ChunkSizer,    through  |      unpickles the Payload once,
                          ≤ 2 x slots    an       |      worker_fixtures builds the
                          in flight      Executor |      fixtures once per scope,
                          │              (main_   |      shared_scoring scores each row
                          │               local_  |      │
                          │               pool or |      │ (shared_start_marks: rows start)
                          │               main_   |      │
                          │               dask_   |      ▼
    sink(Record) <─────── oldest chunk   pool)  <─|─── Records (shared_transfer pickles
      RecordWriter,       first; a dead worker's  |      each one that can travel)
      progress            rows run again alone    |

Async evaluations, and sync ones without workers, stay in the main process:
``main_inline`` runs their rows under a concurrency strategy, with
``shared_scoring``. ``main_executor_choice`` picks the executor for a run
and ``main_sizing`` sizes a local pool; ``main_fixture_specs`` describes the
user's fixtures for the workers (``shared_payload.FixtureSpec``). Workers
never touch storage: only the main process writes.
"""
