"""Tracking errors say what happened: no answer ("unreachable", tried again) or an error answer
(what the server said, not tried again); a deleted experiment of the sweep's name is one line."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.tracking import TrackingError, TrialTracker, open_experiment, set_tag


class _Refusing(BaseHTTPRequestHandler):
    hits = 0

    def _answer(self) -> None:
        type(self).hits += 1
        body = json.dumps({"error_code": "PERMISSION_DENIED", "message": "token expired for user ada"}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def refusing_server():
    _Refusing.hits = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_error_answer_says_what_the_server_said_and_is_not_retried(refusing_server):
    with pytest.raises(TrackingError, match="answered with an error: .*token expired for user ada") as info:
        open_experiment(refusing_server, "x")
    assert "unreachable" not in str(info.value) and not info.value.unreachable
    _Refusing.hits = 0
    with pytest.raises(TrackingError, match=r"tagging run r1 failed \(the server answered\): .*token expired") as info:
        set_tag(refusing_server, "r1", "k", "v")
    assert _Refusing.hits == 1  # an answer is final: not tried five times
    with pytest.warns(UserWarning, match="answered with an error"):
        tracker = TrialTracker(refusing_server, "r1")
    assert tracker.error is not None and not tracker.error.unreachable


def test_no_answer_is_unreachable_and_retried():
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(TrackingError, match=f"MLflow tracking at {uri} is unreachable") as info:
        open_experiment(uri, "x")
    assert info.value.unreachable
    with pytest.raises(TrackingError, match=r"tagging run r1 failed \(no answer\)") as info:
        set_tag(uri, "r1", "k", "v")
    assert info.value.unreachable


def test_a_deleted_experiment_of_the_same_name_is_one_line_naming_the_fix(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("tiny"))
    with pytest.raises(TrackingError, match=r"MLflow experiment 'tiny' \(id \d+\) .* was deleted.*mlflow experiments restore.*mlflow gc.*tracking\.experiment") as info:
        open_experiment(uri, "tiny")
    assert "\n" not in str(info.value)
    assert open_experiment(uri, "tiny2")  # another name works


def test_a_sweeps_experiment_opens_as_model_training(tmp_path):
    """MLflow 3's UI shows an experiment tagged mlflow.experimentKind = custom_model_development as
    model training (its runs table), not on the GenAI overview: a new experiment gets the tag, and
    so does one made before the tag was set."""
    from mlflow import MlflowClient

    from orchestrator.tracking import KIND_TAG, TRAINING_KIND

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    assert client.get_experiment(open_experiment(uri, "new")).tags[KIND_TAG] == "custom_model_development" == TRAINING_KIND
    old = client.create_experiment("old")
    assert KIND_TAG not in client.get_experiment(old).tags
    assert open_experiment(uri, "old") == old
    assert client.get_experiment(old).tags[KIND_TAG] == TRAINING_KIND
