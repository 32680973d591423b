"""Schedule: running the stages over time.

    pipeline.run_once(settings, store, transport, now) -> RunReport   one pass (`publisher run`)
    daemon.Daemon                                                     `publisher daemon`

lock.py is the run lock two passes never overlap on, watch.py notices inbox files,
sending.py drains the outbox continuously for the daemon, status.py reports what the
runs did (`publisher status`).
"""
