"""``[core] hostname_callable`` for the Celery worker of tests/ops/test_celery.py.

Only the worker's environment points at it, so a task instance whose ``hostname`` is this name provably ran
on that worker (the scheduler and the api-server report the machine's real name).
"""

import os


def worker_hostname() -> str:
    return os.environ["SS4GL_TEST_WORKER_HOSTNAME"]
