"""Storage locations (local paths and URIs) and a region store on a filesystem that is not the local disk."""

import numpy as np
import pytest
from pyarrow.fs import _MockFileSystem

from masking.regions import Regions
from samdata.storage import Location, StorageError, check_reachable, location
from masking.store import ImageRegions, RegionStore, StoreWriter, store_file


def in_memory(path: str = "bucket/regions") -> Location:
    """A folder on pyarrow's in-memory filesystem: nothing there reaches the local disk."""
    return Location(_MockFileSystem(), path, f"mock://{path}")


def row(path: str, k: int) -> ImageRegions:
    boxes = np.arange(4 * k, dtype=np.int32).reshape(k, 4)
    return ImageRegions(path, 64, 48, Regions(boxes, np.arange(k, dtype=np.int64) + 100, np.full(k, 0.5, np.float32)))


def test_paths_and_uris_parse_join_and_print_back(tmp_path):
    local = location("runs", base=tmp_path)
    assert str(local) == str(tmp_path / "runs") and local.local_path == tmp_path / "runs"
    uri = location(f"file://{tmp_path}/runs/")
    assert str(uri / "a" / "b.json") == f"file://{tmp_path}/runs/a/b.json" and (uri / "a").path == f"{tmp_path}/runs/a"
    assert uri.local_path == tmp_path / "runs"
    # an S3 URI keeps its options (endpoint, region) when joined: str() parses back to the same place
    s3 = location("s3://bucket/runs?region=eu-west-1&endpoint_override=127.0.0.1:9&scheme=http")
    child = s3 / "regions" / "x.parquet"
    assert str(child) == "s3://bucket/runs/regions/x.parquet?region=eu-west-1&endpoint_override=127.0.0.1:9&scheme=http"
    assert child.path == "bucket/runs/regions/x.parquet" and child.parent.name == "regions" and child.local_path is None
    assert location(str(child)).path == child.path


@pytest.mark.parametrize("uri", ["foo://bucket/x", "file://relative/x"])
def test_bad_uri_is_one_line_naming_it(uri):
    with pytest.raises(StorageError) as err:
        location(uri)
    assert str(err.value).startswith(f"bad URI {uri!r}: ") and "\n" not in str(err.value)


def test_unreachable_storage_is_one_line_naming_it():
    s3 = location("s3://bucket/runs?region=eu-west-1&endpoint_override=127.0.0.1:9&scheme=http")  # nothing listens on port 9
    with pytest.raises(StorageError) as err:
        check_reachable(s3)
    assert str(err.value).startswith(f"{s3} is unreachable: ") and "\n" not in str(err.value)


def test_files_folders_and_glob(tmp_path):
    for root in (in_memory("bucket/runs"), location(f"file://{tmp_path}/runs")):
        assert not root.exists() and root.iterdir() == [] and root.glob("x-*/s.json") == []
        (root / "x-2" / "s.json").write_text("two")
        (root / "x-1" / "s.json").write_text("one")
        (root / "y-1" / "s.json").write_text("other")
        (root / "x-3").mkdir()
        assert [p.name for p in root.iterdir()] == ["x-1", "x-2", "x-3", "y-1"]
        assert [p.parent.name for p in root.glob("x-*/s.json")] == ["x-1", "x-2"]
        assert (root / "x-1" / "s.json").read_text() == "one" and (root / "x-1").is_dir()
        (root / "x-1" / "s.json").write_text("replaced")  # whole, through a temporary sibling
        assert (root / "x-1" / "s.json").read_text() == "replaced" and [p.name for p in (root / "x-1").iterdir()] == ["s.json"]
        with pytest.raises(FileExistsError):
            (root / "x-3").mkdir(exist_ok=False)
        (root / "x-2").rmtree()
        assert not (root / "x-2").exists()


def test_store_on_a_non_local_filesystem_resumes_and_keeps_metadata():
    """The whole store life cycle through a pyarrow filesystem that is not the local disk."""
    path = store_file(in_memory(), "scenes", "gt", "fp")
    writer = StoreWriter(path)
    writer.write_shard([row("1.png", 1), row("2.png", 2)])
    with pytest.raises(FileNotFoundError, match="never completed"):
        RegionStore.load(path)
    resumed = StoreWriter(path)  # a rerun after a crash
    assert resumed.done() == {"1.png", "2.png"}
    resumed.write_shard([row("3.png", 0)])
    store = resumed.finalize(["1.png", "2.png", "3.png"], {"nodes": '{"a": 3}'})
    loaded = RegionStore.load(path)
    assert len(store) == len(loaded) == 3 and loaded["2.png"].regions.boxes.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert loaded.metadata == {"nodes": '{"a": 3}'} and not resumed.parts.exists()


def test_store_through_a_file_uri(tmp_path):
    uri = f"file://{tmp_path}/shared/regions"
    path = store_file(uri, "scenes", "gt", "fp")
    assert str(path) == f"{uri}/scenes--gt--fp.parquet"
    writer = StoreWriter(path)
    writer.write_shard([row("1.png", 1)])
    writer.finalize(["1.png"])
    assert (tmp_path / "shared" / "regions" / "scenes--gt--fp.parquet").is_file()
    assert RegionStore.load(str(path))["1.png"].regions.areas.tolist() == [100]
    assert RegionStore.load(str(path)).metadata == {}


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    """The one writer every package uses: a write that fails half-way (a full disk) leaves nothing."""
    def half_then_fail(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        location(tmp_path / "out.bin").write(half_then_fail)
    with pytest.raises(TypeError):
        location(tmp_path / "state.json").write_bytes("not bytes")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
