"""A sweep on a simulated Ray cluster that loses a worker node mid-way.

    python tests/orchestrator/lost_node.py SWEEP.yaml OUT.json

A head without GPU and two worker nodes with one fake GPU each (``ray.cluster_utils.Cluster``); the
sweep joins it with ``--address`` exactly as on a real cluster, and its trials (``gpu: 0.5``) can
only run on the workers. A watcher thread waits until a trial on a worker has a checkpoint (its
``history.json`` names its MLflow run; the run's ``node_id`` tag names its node) and has not reached
its last epoch, then removes that node at once (``allow_graceful=False``: its raylet and every
worker process on it are killed, as when a machine dies). Tune should restart the trials it ran from
their checkpoints on the other worker (``resources.max_failures``).

Runs in a process of its own, like ``simulated_cluster.py`` (whose notes on ``RAY_TMPDIR`` apply).
OUT.json: the exit code, the node ids, the removed node and the trials running on it then.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from mlflow import MlflowClient
from ray.cluster_utils import Cluster

from orchestrator.config import load_sweep
from orchestrator.sweep import main
from orchestrator.trial import NODE_TAG
from orchestrator.trial_histories import HISTORY
from tests.orchestrator.simulated_cluster import gpu_cluster



def checkpointed_runs(storage: Path) -> dict[str, int]:
    """MLflow run id -> newest checkpointed epoch, of the trials under ``storage`` (any run folder)."""
    out: dict[str, int] = {}
    for file in storage.glob(f"*/*/checkpoint_*/{HISTORY}"):
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            continue  # being written
        if data["history"]:
            out[data["run_id"]] = max(out.get(data["run_id"], 0), data["history"][-1]["epoch"])
    return out


def remove_a_busy_worker(cluster: Cluster, workers: list, sweep: str, report: dict, stop: threading.Event) -> None:
    config = load_sweep(sweep)
    client = MlflowClient(config.tracking.uri)
    epochs = config.grid["epochs"][0]
    by_id = {w.node_id: w for w in workers}
    while not stop.wait(0.5):
        experiment = client.get_experiment_by_name(config.tracking.experiment)
        if experiment is None:
            continue
        saved = checkpointed_runs(Path(config.storage))
        runs = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'RUNNING'")
        busy = [r for r in runs if r.data.tags.get(NODE_TAG) in by_id and 1 <= saved.get(r.info.run_id, 0) < epochs]
        if not busy:
            continue
        node = busy[0].data.tags[NODE_TAG]
        report["running_on_removed"] = sorted(r.data.tags["trial_id"] for r in runs if r.data.tags.get(NODE_TAG) == node)
        report["checkpointed_epochs_at_removal"] = {r.data.tags["trial_id"]: saved.get(r.info.run_id, 0) for r in runs if NODE_TAG in r.data.tags}
        cluster.remove_node(by_id[node], allow_graceful=False)
        report["removed"] = node
        report["removed_at"] = time.time()
        return


def run(sweep: str, out: str) -> None:
    cluster = gpu_cluster()
    stop = threading.Event()
    report: dict = {}
    try:
        workers = sorted(cluster.worker_nodes, key=lambda n: n.node_id)
        report.update(head=cluster.head_node.node_id, workers=[w.node_id for w in workers])
        watcher = threading.Thread(target=remove_a_busy_worker, args=(cluster, workers, sweep, report, stop), daemon=True)
        watcher.start()
        report["rc"] = main([sweep, "--address", cluster.address])
        report["ended_at"] = time.time()
    finally:
        stop.set()
        import ray

        ray.shutdown()
        cluster.shutdown()
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
