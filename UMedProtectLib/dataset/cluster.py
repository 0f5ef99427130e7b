"""Running the studies of a dataset on Dask (`distributed`): a local cluster, or an existing one by its address.

Every worker gets a `StudyWorkerSetup` plugin that loads the profile once, sets torch's thread count and, on a
multi-GPU machine, gives each local worker its own GPU. Workers must see the dataset and the output folder under
the same paths as the submitting machine (a shared file system on a cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Optional

import dask
from distributed import Client, LocalCluster, WorkerPlugin, get_worker

from ..errors import InputError
from ..settings import ProtectSettings
from .study_job import StudyJob, run_study

PLUGIN_NAME = "umed-protect-study-setup"
CONNECT_S = 30  # seconds to reach a scheduler and exchange Dask's handshake with it


class StudyWorkerSetup(WorkerPlugin):
    """Per-worker state of a dataset run: the loaded profile, the torch threads and the worker's device."""

    def __init__(self, profile_path: Optional[str], torch_threads: Optional[int], device: str):
        self.profile_path = profile_path
        self.torch_threads = torch_threads
        self.device = device
        self.profile = None
        self.worker_device: Optional[str] = None

    def setup(self, worker) -> None:
        """Load the profile once for all the studies this worker will protect."""
        import torch

        from ..method.profile import load_profile

        if threading.current_thread() is threading.main_thread():
            # Ctrl+C in a terminal signals the whole process group: each worker printed a KeyboardInterrupt
            # traceback. The command gets it too, and stops the workers itself.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        self.profile = load_profile(self.profile_path) if self.profile_path else None
        count = torch.cuda.device_count()
        # Local workers are named 0..N-1: with one worker per GPU, worker k uses GPU k.
        if self.device in ("auto", "cuda") and count > 1 and isinstance(worker.name, int):
            self.worker_device = f"cuda:{worker.name % count}"


def protect_on_worker(job: StudyJob, settings: ProtectSettings) -> dict:
    """The Dask task: protect one study with the run's settings and this worker's loaded profile and device."""
    setup: StudyWorkerSetup = get_worker().plugins[PLUGIN_NAME]
    profile_path = Path(setup.profile_path) if setup.profile_path else None
    return run_study(job, settings, profile_path, setup.profile, setup.worker_device)


async def _handshake(address: str) -> None:
    """Connect to `address` and exchange Dask's handshake within a deadline: Client alone waits forever for a
    server that speaks another protocol and never answers (e.g. an HTTP server waiting for a request line)."""
    from distributed.comm import connect

    comm = await asyncio.wait_for(connect(address, timeout=f"{CONNECT_S}s"), CONNECT_S + 5)
    await comm.close()


def check_workers(workers: int) -> None:
    """Refuse a worker count below 1 or above the machine's cores (each worker is a process with its own threads)."""
    cores = os.cpu_count() or 1
    if not 1 <= workers <= cores:
        raise InputError(f"--workers {workers} must be from 1 to {cores} (this machine's CPU cores; each worker is a "
                         "process); for more, start a Dask cluster and pass --scheduler")


def default_workers(studies: int) -> int:
    """One worker per GPU; without one, a worker per two cores; never more workers than studies."""
    import torch

    count = torch.cuda.device_count() or max(1, (os.cpu_count() or 1) // 2)
    return max(1, min(count, studies))


@contextlib.contextmanager
def dask_client(workers: int, scheduler: Optional[str], profile_path: Optional[str],
                device: str) -> Iterator[Client]:
    """A client of a new local cluster of `workers` processes, or of the cluster at `scheduler`, set up for studies."""
    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                asyncio.run(_handshake(scheduler))
                client = stack.enter_context(Client(scheduler, timeout=f"{CONNECT_S}s"))
            except (OSError, ValueError) as error:  # TimeoutError is an OSError
                reason = str(error) or f"no answer within {CONNECT_S} s"
                raise InputError(f"cannot reach the Dask scheduler {scheduler!r}: {reason}") from None
            except Exception:  # noqa: BLE001 - e.g. an HTTP server there: its reply read as a frame length
                raise InputError(f"{scheduler!r} did not answer as a Dask scheduler; check the address") from None
            threads = None  # the cluster's owner sized its workers
        else:
            # The run's own temporary folder, removed after the cluster: Dask's scratch space (lock files) and the
            # workers' temporary files (torch's compile cache) were left in $TMPDIR by every run.
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="umed-protect-dask-"))
            stack.enter_context(dask.config.set({"temporary-directory": scratch}))  # the scheduler's, too
            # dashboard_address=None alone still serves HTTP on port 8787 (with a warning when it is taken): no
            # dashboard, and a loopback port of the system's choosing for Dask's own routes.
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR, env={"TMPDIR": scratch}))
            client = stack.enter_context(Client(cluster))
            threads = max(1, (os.cpu_count() or 1) // workers)
        client.register_plugin(StudyWorkerSetup(profile_path, threads, device), name=PLUGIN_NAME)
        yield client
