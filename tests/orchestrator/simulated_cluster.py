"""A sweep on a simulated Ray cluster: a head (no GPU) and two worker nodes with one fake GPU each,
joined with ``--address`` exactly as on a real cluster, then ``--resume`` of the same run.

    python tests/orchestrator/simulated_cluster.py SWEEP.yaml OUT.json

Runs in a process of its own: ``ray.cluster_utils.Cluster`` cannot share a process with the test
session's local Ray. ``RAY_TMPDIR`` should point to a private, short folder (Unix socket paths are
short): a Cluster's head writes ``ray_current_cluster`` there, where a plain ``ray.init()`` of any
other process on this machine would find it and connect. OUT.json: the exit codes, the head's and
the workers' node ids, and the nodes the masker actors were placed on (from the GCS actor table:
an actor that got no batch shows up there too, not in the store's ``nodes`` metadata).
"""

from __future__ import annotations

import json
import sys

import ray
from ray.cluster_utils import Cluster

from orchestrator.config import load_sweep
from orchestrator.rundirs import latest_run_dir, read_state, storage_location, write_state
from orchestrator.sweep import main

SMALL = 100 * 1024 * 1024  # object store per node


def gpu_cluster() -> Cluster:
    """A head without GPU and two workers of 2 CPUs and one fake GPU each (custom resources
    ``worker0``/``worker1``), all started; ``cluster.worker_nodes`` lists the workers."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False, "object_store_memory": SMALL})
    try:
        for i in range(2):
            cluster.add_node(num_cpus=2, num_gpus=1, resources={f"worker{i}": 1}, object_store_memory=SMALL)
        cluster.wait_for_nodes()
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


def run(sweep: str, out: str) -> None:
    cluster = gpu_cluster()
    try:
        workers = sorted(cluster.worker_nodes, key=lambda n: n.node_id)
        report = {"head": cluster.head_node.node_id, "workers": [w.node_id for w in workers]}
        report["rc"] = main([sweep, "--address", cluster.address])
        # --resume of an unfinished run: Tuner.restore from the file:// storage (every trial is done)
        config = load_sweep(sweep)
        run_dir = latest_run_dir(storage_location("storage", config.storage), config.name)
        state = read_state(run_dir)
        write_state(run_dir, {**state, "finished": False})
        report["resume_rc"] = main([sweep, "--address", cluster.address, "--resume"])
        report["run_dir"] = str(run_dir)
        ray.init(address=cluster.address)  # the sweep disconnected when it ended; the GCS keeps dead actors
        actors = ray._private.state.actors().values()  # no public API without the dashboard
        report["masker_actor_nodes"] = [a["Address"]["NodeID"] for a in actors if "MaskerActor" in a["ActorClassName"]]
    finally:
        ray.shutdown()
        cluster.shutdown()
    with open(out, "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
