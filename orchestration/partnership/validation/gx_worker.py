"""The night's Great Expectations worker: `python -m orchestration.partnership.validation.gx_worker R W`,
started by batch.start_worker, serving requests on file descriptor R and replying on W."""

import os
import sys
from multiprocessing.connection import Connection

from orchestration.partnership.validation.batch import serve

if __name__ == "__main__":
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
    # Every reply has been sent and every result written: tearing down Great Expectations'
    # modules would only keep the night waiting at its end.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
